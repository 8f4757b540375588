/*
 * ops/vm_catalog.c - the public VM catalog functions (register, lookup,
 * unregister, power state, list) of a context; the catalog's files are
 * state/catalog.c's.
 */
#include "ops.h"
#include "../state/catalog.h"
#include "../state/vm.h"

#include <stdlib.h>
#include <string.h>

struct harvbk_vm_list {
    harvbk_vm **v;
    size_t n;
};

static int check_ns_name(const char *ns, const char *name, hb_err *e)
{
    int rc = hb_check_name("namespace", ns, e);
    return rc ? rc : hb_check_name("VM name", name, e);
}

int harvbk_vm_register(harvbk_ctx *ctx, const harvbk_vm *vm)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    if (!vm)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: vm is NULL", __func__);
    pthread_mutex_lock(&ctx->state.cat_mu);
    int rc = hb_catalog_put(&ctx->state, vm, false, &e);
    pthread_mutex_unlock(&ctx->state.cat_mu);
    if (rc == 0)
        hb_log_info(&ctx->log, "VM %s/%s registered (%zu volumes)", vm->ns, vm->name, vm->nvols);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_vm_lookup(harvbk_vm **out, harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    int rc = check_ns_name(namespace_, name, &e);
    if (rc == 0)
        rc = hb_catalog_get(&ctx->state, namespace_, name, out, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_vm_unregister(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = check_ns_name(namespace_, name, &e);
    if (rc == 0) {
        pthread_mutex_lock(&ctx->state.cat_mu);
        rc = hb_catalog_remove(&ctx->state, namespace_, name, &e);
        pthread_mutex_unlock(&ctx->state.cat_mu);
    }
    if (rc == 0)
        hb_log_info(&ctx->log, "VM %s/%s unregistered", namespace_, name);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_vm_set_registered_power_state(harvbk_ctx *ctx, const char *namespace_,
                                         const char *name, harvbk_power_state state)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = check_ns_name(namespace_, name, &e);
    if (rc == 0 && state != HARVBK_POWER_UNKNOWN && state != HARVBK_POWER_ON &&
        state != HARVBK_POWER_OFF)
        rc = hb_seterr(&e, HARVBK_E_INVALID, "invalid power state %d", (int)state);
    if (rc == 0) {
        harvbk_vm *vm = NULL;
        pthread_mutex_lock(&ctx->state.cat_mu);
        rc = hb_catalog_get(&ctx->state, namespace_, name, &vm, &e);
        if (rc == 0) {
            vm->power = state;
            rc = hb_catalog_put(&ctx->state, vm, true, &e);
        }
        pthread_mutex_unlock(&ctx->state.cat_mu);
        harvbk_vm_free(vm);
    }
    return hb_ctx_fail_rc(ctx, rc, &e);
}

static int vm_cmp(const void *a, const void *b)
{
    const harvbk_vm *x = *(harvbk_vm *const *)a, *y = *(harvbk_vm *const *)b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int list_push(harvbk_vm_list *l, harvbk_vm *vm)
{
    harvbk_vm **v = hb_realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return HARVBK_E_NOMEM;
    l->v = v;
    l->v[l->n++] = vm;
    return 0;
}

static int list_add(harvbk_vm *vm, void *ud)
{
    if (list_push(ud, vm) != 0) {
        harvbk_vm_free(vm);
        return HARVBK_E_NOMEM;
    }
    return 0;
}

int harvbk_vm_list_get(harvbk_vm_list **out, harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    harvbk_vm_list *l = hb_calloc(1, sizeof *l);
    int rc = !l ? hb_seterr(&e, HARVBK_E_NOMEM, NULL)
                : hb_catalog_foreach(&ctx->state, list_add, l, &e);
    if (rc) {
        harvbk_vm_list_free(l);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, vm_cmp);
    *out = l;
    return 0;
}

size_t harvbk_vm_list_count(const harvbk_vm_list *list) { return list ? list->n : 0; }

const harvbk_vm *harvbk_vm_list_at(const harvbk_vm_list *list, size_t i)
{
    return list && i < list->n ? list->v[i] : NULL;
}

void harvbk_vm_list_free(harvbk_vm_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        harvbk_vm_free(list->v[i]);
    hb_free(list->v);
    hb_free(list);
}
