/*
 * ops/quota.c - snapshot space quotas (harvbk/quota.h).
 *
 * Limits: "quotas.json" in the state directory,
 *   {"namespaces":{"<ns>":<bytes>,...},"vms":{"<ns>/<vm>":<bytes>,...}}
 * replaced atomically under the flock "locks/quotas.lock" (read-modify-write
 * from several processes).
 *
 * Usage (docs/SNAPSHOTS.md "Quotas"): for a namespace, the set of distinct
 * non-hole chunk ids in the indexes of its committed snapshots (manifest
 * present); for a VM, the same over the snapshots whose manifest names that
 * VM; each id counted with the size of its chunk object in the snapshot store
 * (a chunk object that is missing counts 0). Computed from the store on every
 * call: exact after any create or delete, and never out of date.
 *
 * Enforcement (backup.c): refused at start when a usage is at or over its
 * limit; a snapshot also checks after each volume (usage + its new chunks)
 * and, exactly, just before its commit while holding the namespace's quota
 * lock ("locks/<ns>.quota.lock", flock), so two snapshots of one namespace
 * cannot both slip under a limit that only one of them fits.
 */
#include "ops.h"
#include "../state/recovery.h"
#include "../core/digestset.h"
#include "../core/fsutil.h"
#include "../core/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QUOTAS_FILE_MAX (16u * 1024u * 1024u)
#define QUOTAS_WHAT "quota file"

/* ---- the limits file ---- */

typedef struct qlimit {
    char *ns, *vm;      /* vm NULL: the namespace's limit */
    uint64_t limit;
} qlimit;

typedef struct qlimits {
    qlimit *v;
    size_t n;
} qlimits;

static void limits_clear(qlimits *l)
{
    for (size_t i = 0; i < l->n; i++) {
        hb_free(l->v[i].ns);
        hb_free(l->v[i].vm);
    }
    hb_free(l->v);
    l->v = NULL;
    l->n = 0;
}

static qlimit *limits_find(const qlimits *l, const char *ns, const char *vm)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].ns, ns) == 0 &&
            (vm ? l->v[i].vm && strcmp(l->v[i].vm, vm) == 0 : !l->v[i].vm))
            return &l->v[i];
    return NULL;
}

static int limits_push(qlimits *l, const char *ns, const char *vm, uint64_t limit)
{
    qlimit *v = hb_realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return HARVBK_E_NOMEM;
    l->v = v;
    qlimit *q = &l->v[l->n];
    q->ns = hb_strdup(ns);
    q->vm = vm ? hb_strdup(vm) : NULL;
    q->limit = limit;
    if (!q->ns || (vm && !q->vm)) {
        hb_free(q->ns);
        hb_free(q->vm);
        return HARVBK_E_NOMEM;
    }
    l->n++;
    return 0;
}

static int limits_parse(const hb_buf *b, qlimits *l, hb_err *e)
{
    cJSON *root = NULL;
    int rc = hb_json_parse(b->data, b->len, QUOTAS_WHAT, &root, e);
    if (rc == 0 && !cJSON_IsObject(root))
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s is not a JSON object", QUOTAS_WHAT);
    static const char *const sections[] = { "namespaces", "vms" };
    for (size_t s = 0; rc == 0 && s < 2; s++) {
        const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, sections[s]);
        if (!sec)
            continue;
        if (!cJSON_IsObject(sec)) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: %s is not an object", QUOTAS_WHAT,
                           sections[s]);
            break;
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, sec)
        {
            uint64_t v = 0;
            const char *key = it->string;
            char ns[64], vm[64];
            bool ok = key != NULL;
            if (ok && s == 0) {
                ok = hb_name_valid(key);
                if (ok)
                    snprintf(ns, sizeof ns, "%s", key);
            } else if (ok) {
                const char *sl = strchr(key, '/');
                ok = sl && (size_t)(sl - key) < sizeof ns && strlen(sl + 1) < sizeof vm;
                if (ok) {
                    memcpy(ns, key, (size_t)(sl - key));
                    ns[sl - key] = '\0';
                    snprintf(vm, sizeof vm, "%s", sl + 1);
                    ok = hb_name_valid(ns) && hb_name_valid(vm);
                }
            }
            if (!ok) {
                rc = hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid name in %s", QUOTAS_WHAT,
                               sections[s]);
                break;
            }
            rc = hb_json_get_u64(sec, key, true, &v, QUOTAS_WHAT, e);
            if (rc)
                break;
            if (limits_push(l, ns, s == 0 ? NULL : vm, v) != 0) {
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
                break;
            }
        }
    }
    cJSON_Delete(root);
    if (rc)
        limits_clear(l);
    return rc;
}

static int limits_load(harvbk_ctx *ctx, qlimits *l, hb_err *e)
{
    memset(l, 0, sizeof *l);
    char *path = hb_state_path(&ctx->state, HB_QUOTAS_FILE, NULL, NULL);
    if (!path)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_buf b = HB_BUF_INIT;
    int rc = hb_read_file(path, &b, QUOTAS_FILE_MAX, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    } else if (rc == 0) {
        rc = limits_parse(&b, l, e);
        if (rc)
            hb_err_prefix(e, "%s", path);
    }
    hb_buf_free(&b);
    hb_free(path);
    return rc;
}

static int limits_save(harvbk_ctx *ctx, const qlimits *l, hb_err *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *nss = root ? cJSON_AddObjectToObject(root, "namespaces") : NULL;
    cJSON *vms = root ? cJSON_AddObjectToObject(root, "vms") : NULL;
    bool ok = nss && vms;
    for (size_t i = 0; ok && i < l->n; i++) {
        const qlimit *q = &l->v[i];
        if (!q->vm) {
            ok = hb_json_add_u64(nss, q->ns, q->limit) != NULL;
        } else {
            char key[160];
            snprintf(key, sizeof key, "%s/%s", q->ns, q->vm);
            ok = hb_json_add_u64(vms, key, q->limit) != NULL;
        }
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    char *path = hb_state_path(&ctx->state, HB_QUOTAS_FILE, NULL, NULL);
    int rc = (!text || !path) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (rc == 0)
        rc = hb_write_file_atomic(path, text, strlen(text), 0600, e);
    hb_free(text);
    hb_free(path);
    return rc;
}

/* A blocking flock on locks/<file>. */
static int flock_file(harvbk_ctx *ctx, const char *file, int *out_fd, hb_err *e)
{
    char *dir = hb_state_path(&ctx->state, HB_LOCKS_DIR, NULL, NULL);
    int rc = dir ? hb_lock_file(dir, file, true, out_fd, e) : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(dir);
    return rc;
}

int hb_quota_lock(harvbk_ctx *ctx, const char *ns, int *out_fd, hb_err *e)
{
    char file[96];
    snprintf(file, sizeof file, "%s.quota.lock", ns); /* no '.' in names: no clash */
    return flock_file(ctx, file, out_fd, e);
}

void hb_quota_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int hb_quota_limits(harvbk_ctx *ctx, const char *ns, const char *vm, bool *has_ns,
                    uint64_t *ns_limit, bool *has_vm, uint64_t *vm_limit, hb_err *e)
{
    qlimits l;
    int rc = limits_load(ctx, &l, e);
    if (rc)
        return rc;
    const qlimit *qn = limits_find(&l, ns, NULL);
    const qlimit *qv = vm ? limits_find(&l, ns, vm) : NULL;
    if (has_ns)
        *has_ns = qn != NULL;
    if (ns_limit)
        *ns_limit = qn ? qn->limit : 0;
    if (has_vm)
        *has_vm = qv != NULL;
    if (vm_limit)
        *vm_limit = qv ? qv->limit : 0;
    limits_clear(&l);
    return 0;
}

/* ---- usage ---- */

typedef struct bucket {
    char *ns, *vm;       /* vm NULL: namespace */
    hb_dset *ids;
    size_t snapshots;
    uint64_t usage;
    bool has_limit;
    uint64_t limit;
} bucket;

typedef struct usage_scan {
    hb_store *st;
    const char *only_ns;  /* NULL: every namespace */
    bucket *b;
    size_t n;
    hb_err *e;
} usage_scan;

static bucket *bucket_get(usage_scan *us, const char *ns, const char *vm)
{
    for (size_t i = 0; i < us->n; i++)
        if (strcmp(us->b[i].ns, ns) == 0 &&
            (vm ? us->b[i].vm && strcmp(us->b[i].vm, vm) == 0 : !us->b[i].vm))
            return &us->b[i];
    bucket *v = hb_realloc(us->b, (us->n + 1) * sizeof *v);
    if (!v)
        return NULL;
    us->b = v;
    bucket *b = &us->b[us->n];
    memset(b, 0, sizeof *b);
    b->ns = hb_strdup(ns);
    b->vm = vm ? hb_strdup(vm) : NULL;
    b->ids = hb_dset_new(256);
    if (!b->ns || (vm && !b->vm) || !b->ids) {
        hb_free(b->ns);
        hb_free(b->vm);
        hb_dset_free(b->ids);
        return NULL;
    }
    us->n++;
    return b;
}

static void scan_clear(usage_scan *us)
{
    for (size_t i = 0; i < us->n; i++) {
        hb_free(us->b[i].ns);
        hb_free(us->b[i].vm);
        hb_dset_free(us->b[i].ids);
    }
    hb_free(us->b);
    us->b = NULL;
    us->n = 0;
}

static int add_index(bucket *bn, bucket *bv, const hb_index *ix)
{
    for (uint64_t i = 0; ix->ids && i < ix->count; i++) {
        if (hb_index_is_hole(ix, i))
            continue;
        if (hb_dset_add(bn->ids, hb_index_id(ix, i)) < 0 ||
            (bv && hb_dset_add(bv->ids, hb_index_id(ix, i)) < 0))
            return HARVBK_E_NOMEM;
    }
    return 0;
}

static int usage_entry(const char *ns, const char *name, void *ud)
{
    usage_scan *us = ud;
    if (us->only_ns && strcmp(ns, us->only_ns) != 0)
        return 0;
    hb_manifest m;
    hb_err me;
    hb_err_clear(&me);
    int rc = hb_store_manifest_read(us->st, HB_KIND_SNAPSHOTS, ns, name, &m, &me);
    if (rc == HARVBK_E_NOTFOUND)
        return 0; /* deleted meanwhile: no longer counts */
    if (rc) {
        *us->e = me;
        return rc;
    }
    bucket *bn = bucket_get(us, m.ns, NULL);
    bucket *bv = bn ? bucket_get(us, m.ns, m.vm_name) : NULL;
    if (!bn || !bv)
        rc = hb_seterr(us->e, HARVBK_E_NOMEM, NULL);
    bn = rc ? NULL : bucket_get(us, m.ns, NULL); /* realloc may have moved it */
    for (size_t v = 0; rc == 0 && v < m.nvols; v++) {
        hb_index ix;
        rc = hb_store_index_read(us->st, HB_KIND_SNAPSHOTS, &m, &m.vols[v], &ix, &me);
        if (rc == 0) {
            rc = add_index(bn, bv, &ix);
            if (rc)
                hb_seterr(us->e, rc, NULL);
            hb_index_clear(&ix);
        } else if (rc == HARVBK_E_NOTFOUND &&
                   hb_entry_committed(us->st, HB_ENTRY_SNAPSHOT, ns, name, &me) == 0) {
            rc = 0; /* deleted while we read it */
            break;
        } else {
            *us->e = me;
        }
    }
    if (rc == 0) {
        bn->snapshots++;
        bv->snapshots++;
    }
    hb_manifest_clear(&m);
    return rc;
}

static int bucket_sum(hb_store *st, bucket *b, hb_err *e)
{
    b->usage = 0;
    size_t pos = 0;
    const uint8_t *id;
    while (hb_dset_next(b->ids, &pos, &id)) {
        char key[HB_CHUNK_KEY_LEN];
        hb_chunk_key(id, key);
        uint64_t size = 0;
        hb_err he;
        hb_err_clear(&he);
        int rc = hb_target_head(st->t, key, &size, &he);
        if (rc == HARVBK_E_NOTFOUND)
            continue; /* a missing chunk takes no space (verify reports it) */
        if (rc) {
            *e = he;
            return rc;
        }
        b->usage += size;
    }
    return 0;
}

/* Buckets of every namespace (or only `only_ns`) and VM with snapshots. */
static int usage_scan_run(usage_scan *us, hb_store *st, const char *only_ns, hb_err *e)
{
    memset(us, 0, sizeof *us);
    us->st = st;
    us->only_ns = only_ns;
    us->e = e;
    int rc = hb_store_entry_list(st, HB_KIND_SNAPSHOTS, usage_entry, us, e);
    if (rc == HARVBK_E_NOMEM && e->code == 0)
        hb_seterr(e, rc, NULL);
    if (rc)
        hb_err_prefix(e, "cannot read the snapshots of the snapshot store");
    return rc;
}

int hb_quota_usage(hb_store *st, const char *ns, const char *vm, const hb_index *extra,
                   size_t nextra, uint64_t *out_ns, uint64_t *out_vm, hb_err *e)
{
    usage_scan us;
    int rc = usage_scan_run(&us, st, ns, e);
    bucket *bn = rc ? NULL : bucket_get(&us, ns, NULL);
    bucket *bv = rc || !vm ? NULL : bucket_get(&us, ns, vm);
    if (rc == 0 && (!bn || (vm && !bv)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    bn = rc ? NULL : bucket_get(&us, ns, NULL);
    for (size_t i = 0; rc == 0 && extra && i < nextra; i++)
        if ((rc = add_index(bn, bv, &extra[i])) != 0)
            hb_seterr(e, rc, NULL);
    if (rc == 0)
        rc = bucket_sum(st, bn, e);
    if (rc == 0 && bv)
        rc = bucket_sum(st, bv, e);
    if (rc == 0) {
        if (out_ns)
            *out_ns = bn->usage;
        if (out_vm)
            *out_vm = bv ? bv->usage : 0;
    }
    scan_clear(&us);
    return rc;
}

/* Usage from the context's snapshot store (0 when it does not exist yet). */
static int ctx_usage(harvbk_ctx *ctx, const char *ns, const char *vm, uint64_t *out_ns,
                     uint64_t *out_vm, hb_err *e)
{
    *out_ns = *out_vm = 0;
    hb_store_ref *ref = NULL;
    int rc = hb_snapstore_open(ctx, NULL, false, &ref, e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        return 0;
    }
    if (rc == 0)
        rc = hb_quota_usage(ref->st, ns, vm, NULL, 0, out_ns, out_vm, e);
    hb_ctx_store_release(ctx, ref);
    return rc;
}

int hb_quota_check_start(harvbk_ctx *ctx, const char *ns, const char *vm, const char *what,
                         hb_quota_state *out, hb_err *e)
{
    hb_quota_state q;
    memset(&q, 0, sizeof q);
    int rc = hb_quota_limits(ctx, ns, vm, &q.has_ns, &q.ns_limit, &q.has_vm, &q.vm_limit, e);
    if (rc == 0 && (q.has_ns || q.has_vm)) {
        rc = ctx_usage(ctx, ns, vm, &q.ns_usage, &q.vm_usage, e);
        if (rc)
            hb_err_prefix(e, "%s: cannot compute the snapshot space usage", what);
        else if (q.has_vm && q.vm_usage >= q.vm_limit)
            rc = hb_seterr(e, HARVBK_E_QUOTA,
                           "%s refused: VM %s/%s uses %llu bytes of snapshot space, at or over "
                           "its quota of %llu bytes",
                           what, ns, vm, (unsigned long long)q.vm_usage,
                           (unsigned long long)q.vm_limit);
        else if (q.has_ns && q.ns_usage >= q.ns_limit)
            rc = hb_seterr(e, HARVBK_E_QUOTA,
                           "%s refused: namespace %s uses %llu bytes of snapshot space, at or "
                           "over its quota of %llu bytes",
                           what, ns, (unsigned long long)q.ns_usage,
                           (unsigned long long)q.ns_limit);
    }
    if (out)
        *out = q;
    return rc;
}

/* ---- public ---- */

static int check_target(const char *ns, const char *vm, hb_err *e)
{
    int rc = hb_check_name("namespace", ns, e);
    if (rc == 0 && vm)
        rc = hb_check_name("VM name", vm, e);
    return rc;
}

static int quota_update(harvbk_ctx *ctx, const char *ns, const char *vm, bool set,
                        uint64_t limit, hb_err *e)
{
    int fd = -1;
    int rc = flock_file(ctx, "quotas.lock", &fd, e);
    if (rc)
        return rc;
    qlimits l;
    rc = limits_load(ctx, &l, e);
    if (rc == 0) {
        qlimit *q = limits_find(&l, ns, vm);
        if (set && q) {
            q->limit = limit;
        } else if (set) {
            if (limits_push(&l, ns, vm, limit) != 0)
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        } else if (!q) {
            rc = vm ? hb_seterr(e, HARVBK_E_NOTFOUND, "VM %s/%s has no snapshot quota", ns, vm)
                    : hb_seterr(e, HARVBK_E_NOTFOUND, "namespace %s has no snapshot quota", ns);
        } else {
            size_t k = (size_t)(q - l.v);
            hb_free(q->ns);
            hb_free(q->vm);
            memmove(&l.v[k], &l.v[k + 1], (l.n - k - 1) * sizeof *l.v);
            l.n--;
        }
        if (rc == 0)
            rc = limits_save(ctx, &l, e);
        limits_clear(&l);
    }
    close(fd);
    if (rc == 0) {
        char who[160];
        if (vm)
            snprintf(who, sizeof who, "VM %s/%s", ns, vm);
        else
            snprintf(who, sizeof who, "namespace %s", ns);
        if (set)
            hb_log_info(&ctx->log, "snapshot quota of %s set to %llu bytes", who,
                        (unsigned long long)limit);
        else
            hb_log_info(&ctx->log, "snapshot quota of %s cleared", who);
    }
    return rc;
}

int harvbk_quota_set(harvbk_ctx *ctx, const char *namespace_, const char *vm,
                     uint64_t limit_bytes)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = check_target(namespace_, vm, &e);
    if (rc == 0 && limit_bytes > ((uint64_t)1 << 53))
        rc = hb_seterr(&e, HARVBK_E_INVALID, "quota %llu is larger than 2^53 bytes",
                       (unsigned long long)limit_bytes);
    if (rc == 0)
        rc = quota_update(ctx, namespace_, vm, true, limit_bytes, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_quota_clear(harvbk_ctx *ctx, const char *namespace_, const char *vm)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = check_target(namespace_, vm, &e);
    if (rc == 0)
        rc = quota_update(ctx, namespace_, vm, false, 0, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_quota_get(harvbk_ctx *ctx, const char *namespace_, const char *vm,
                     int *out_has_limit, uint64_t *out_limit, uint64_t *out_usage)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    bool has_ns = false, has_vm = false;
    uint64_t ns_limit = 0, vm_limit = 0, ns_use = 0, vm_use = 0;
    int rc = check_target(namespace_, vm, &e);
    if (rc == 0)
        rc = hb_quota_limits(ctx, namespace_, vm, &has_ns, &ns_limit, &has_vm, &vm_limit, &e);
    if (rc == 0 && out_usage)
        rc = ctx_usage(ctx, namespace_, vm, &ns_use, &vm_use, &e);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    if (out_has_limit)
        *out_has_limit = vm ? has_vm : has_ns;
    if (out_limit)
        *out_limit = vm ? vm_limit : ns_limit;
    if (out_usage)
        *out_usage = vm ? vm_use : ns_use;
    return 0;
}

struct harvbk_quota_list {
    bucket *v;
    size_t n;
};

static int bucket_cmp(const void *a, const void *b)
{
    const bucket *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (c)
        return c;
    if (!x->vm || !y->vm)
        return x->vm ? 1 : y->vm ? -1 : 0;
    return strcmp(x->vm, y->vm);
}

int harvbk_quota_list_get(harvbk_quota_list **out, harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    qlimits l;
    usage_scan us;
    memset(&us, 0, sizeof us);
    int rc = limits_load(ctx, &l, &e);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    hb_store_ref *ref = NULL;
    rc = hb_snapstore_open(ctx, NULL, false, &ref, &e);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(&e);
        rc = 0;
    } else if (rc == 0) {
        rc = usage_scan_run(&us, ref->st, NULL, &e);
    }
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        bucket *b = bucket_get(&us, l.v[i].ns, l.v[i].vm);
        if (!b) {
            rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
            break;
        }
        b->has_limit = true;
        b->limit = l.v[i].limit;
    }
    for (size_t i = 0; rc == 0 && ref && i < us.n; i++)
        rc = bucket_sum(ref->st, &us.b[i], &e);
    hb_ctx_store_release(ctx, ref);
    limits_clear(&l);
    harvbk_quota_list *ql = rc ? NULL : hb_calloc(1, sizeof *ql);
    if (rc == 0 && !ql)
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc) {
        scan_clear(&us);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    for (size_t i = 0; i < us.n; i++) { /* the sets are not needed any more */
        hb_dset_free(us.b[i].ids);
        us.b[i].ids = NULL;
    }
    if (us.n > 1)
        qsort(us.b, us.n, sizeof *us.b, bucket_cmp);
    ql->v = us.b;
    ql->n = us.n;
    *out = ql;
    return 0;
}

size_t harvbk_quota_list_count(const harvbk_quota_list *list) { return list ? list->n : 0; }

const char *harvbk_quota_list_namespace(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n ? list->v[i].ns : NULL;
}

const char *harvbk_quota_list_vm(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n ? list->v[i].vm : NULL;
}

int harvbk_quota_list_has_limit(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n && list->v[i].has_limit ? 1 : 0;
}

uint64_t harvbk_quota_list_limit(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n ? list->v[i].limit : 0;
}

uint64_t harvbk_quota_list_usage(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n ? list->v[i].usage : 0;
}

size_t harvbk_quota_list_snapshots(const harvbk_quota_list *list, size_t i)
{
    return list && i < list->n ? list->v[i].snapshots : 0;
}

void harvbk_quota_list_free(harvbk_quota_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        hb_free(list->v[i].ns);
        hb_free(list->v[i].vm);
        hb_dset_free(list->v[i].ids);
    }
    hb_free(list->v);
    hb_free(list);
}
