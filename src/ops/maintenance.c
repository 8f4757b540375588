/*
 * ops/maintenance.c - operations in progress across processes and maintenance
 * mode (harvbk/maintenance.h; files: state/opreg.h).
 */
#include "ops.h"
#include "../core/json.h"
#include "../state/opreg.h"
#include "../state/schedule.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WAIT_POLL_MS 200u

int hb_maintenance_check(harvbk_ctx *ctx, const char *what, hb_err *e)
{
    hb_maint m;
    hb_err re;
    int x = hb_maint_read(ctx->state.dir, &m, &re);
    if (x == 0)
        return 0;
    char since[32] = "?";
    if (x == 1 && m.since > 0)
        hb_iso8601(m.since / 1000, since, sizeof since);
    hb_maint_clear(&m);
    if (x < 0)
        return hb_seterr(e, x, "cannot tell whether the state directory is in maintenance "
                               "mode: %s", re.msg);
    return hb_seterr(e, HARVBK_E_MAINTENANCE,
                     "cannot %s: the state directory is in maintenance mode (since %s; "
                     "harvbk_maintenance_exit / 'harvbk maintenance exit' leaves it)",
                     what, since);
}

int hb_op_register(harvbk_ctx *ctx, harvbk_op *op, hb_err *e)
{
    char what[200];
    snprintf(what, sizeof what, "%s", op->what[0] ? op->what : op->kind);
    int rc = hb_opreg_add(ctx->state.dir, op->kind, what, &op->reg, e);
    /* registered first, then checked: see state/opreg.h */
    if (rc == 0 && strcmp(op->kind, "verify") != 0 &&
        (rc = hb_maintenance_check(ctx, what, e)) != 0)
        hb_opreg_remove(&op->reg);
    return rc;
}

struct harvbk_op_list {
    hb_opinfo *v;
    size_t n;
};

int harvbk_op_list_get(harvbk_op_list **out, harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_op_list *l = hb_calloc(1, sizeof *l);
    if (!l)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    int rc = hb_opreg_list(ctx->state.dir, &l->v, &l->n, &e);
    if (rc) {
        hb_free(l);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    *out = l;
    return 0;
}

size_t harvbk_op_list_count(const harvbk_op_list *list) { return list ? list->n : 0; }

int harvbk_op_list_at(const harvbk_op_list *list, size_t i, const char **kind, const char **what,
                      int64_t *pid, int64_t *started_ms)
{
    if (!list)
        return hb_fail(HARVBK_E_INVALID, "%s: list is NULL", __func__);
    if (i >= list->n)
        return hb_fail(HARVBK_E_INVALID, "%s: index %zu is out of range (the list has %zu)",
                       __func__, i, list->n);
    const hb_opinfo *o = &list->v[i];
    if (kind)
        *kind = o->kind;
    if (what)
        *what = o->what;
    if (pid)
        *pid = o->pid;
    if (started_ms)
        *started_ms = o->started;
    return 0;
}

void harvbk_op_list_free(harvbk_op_list *list)
{
    if (!list)
        return;
    hb_free(list->v);
    hb_free(list);
}

/* Suspend every active schedule, remembering which in m. */
static int suspend_all(harvbk_ctx *ctx, hb_maint *m, hb_err *e)
{
    hb_sched_id *ids = NULL;
    size_t n = 0;
    int rc = hb_sched_list(ctx->state.dir, &ids, &n, e);
    if (rc == 0 && n && !(m->suspended = hb_calloc(n, sizeof *m->suspended)))
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool changed = false;
        hb_err se;
        int x = hb_sched_set_suspended(ctx, ids[i].ns, ids[i].name, true, "maintenance",
                                       "maintenance", &changed, &se);
        if (x == HARVBK_E_NOMEM)
            rc = hb_seterr(e, x, NULL);
        else if (x && x != HARVBK_E_NOTFOUND)
            hb_log_warn(&ctx->log, "maintenance: schedule %s/%s not suspended: %s", ids[i].ns,
                        ids[i].name, se.msg);
        char *id = changed ? hb_asprintf("%s/%s", ids[i].ns, ids[i].name) : NULL;
        if (id)
            m->suspended[m->nsuspended++] = id;
        else if (changed)
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_free(ids);
    return rc;
}

/* Resume those of m still suspended by maintenance. */
static void resume_listed(harvbk_ctx *ctx, const hb_maint *m)
{
    for (size_t i = 0; i < m->nsuspended; i++) {
        char ns[64], name[64];
        const char *slash = strchr(m->suspended[i], '/');
        if (!slash || (size_t)(slash - m->suspended[i]) >= sizeof ns ||
            strlen(slash + 1) >= sizeof name)
            continue;
        snprintf(ns, sizeof ns, "%.*s", (int)(slash - m->suspended[i]), m->suspended[i]);
        snprintf(name, sizeof name, "%s", slash + 1);
        if (hb_sched_check_name(ns, name, NULL) != 0)
            continue;
        hb_sched_rec r;
        hb_err se;
        if (hb_sched_read(ctx->state.dir, ns, name, &r, &se) != 0)
            continue; /* deleted meanwhile */
        bool ours = r.suspended && strcmp(r.suspended_by, "maintenance") == 0;
        hb_sched_rec_clear(&r);
        if (ours && hb_sched_set_suspended(ctx, ns, name, false, "", "", NULL, &se) != 0)
            hb_log_warn(&ctx->log, "maintenance: schedule %s/%s not resumed: %s", ns, name,
                        se.msg);
    }
}

static int enter(harvbk_ctx *ctx, uint32_t wait_s, hb_err *e)
{
    hb_maint m;
    int x = hb_maint_read(ctx->state.dir, &m, e);
    if (x < 0)
        return x;
    hb_maint_clear(&m);
    if (x == 1)
        return 0; /* already */
    memset(&m, 0, sizeof m);
    m.since = hb_now_ms();
    /* the file first: from here on no operation starts (state/opreg.h) */
    int rc = hb_maint_write(ctx->state.dir, &m, e);
    if (rc)
        return rc;
    if ((rc = suspend_all(ctx, &m, e)) == 0)
        rc = hb_maint_write(ctx->state.dir, &m, e);
    uint64_t end = hb_mono_ms() + (uint64_t)wait_s * 1000;
    hb_opinfo *ops = NULL;
    size_t n = 0;
    while (rc == 0) {
        hb_free(ops);
        ops = NULL;
        if ((rc = hb_opreg_list(ctx->state.dir, &ops, &n, e)) != 0 || n == 0)
            break;
        if (hb_mono_ms() >= end) {
            char list[400] = "";
            size_t off = 0;
            for (size_t i = 0; i < n && off < sizeof list - 1; i++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s (pid %ld)",
                                        i ? ", " : "", ops[i].what, ops[i].pid);
            rc = hb_seterr(e, HARVBK_E_BUSY,
                           "cannot enter maintenance mode: %zu operation(s) still running%s: %s",
                           n, wait_s ? " after the wait" : "", list);
            break;
        }
        usleep(WAIT_POLL_MS * 1000);
    }
    hb_free(ops);
    if (rc) { /* nothing changes */
        resume_listed(ctx, &m);
        hb_err re;
        hb_maint_remove(ctx->state.dir, &re);
    } else {
        hb_log_info(&ctx->log, "maintenance mode entered; %zu schedule(s) suspended",
                    m.nsuspended);
    }
    hb_maint_clear(&m);
    return rc;
}

int harvbk_maintenance_enter(harvbk_ctx *ctx, uint32_t wait_s)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = enter(ctx, wait_s, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_maintenance_exit(harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    hb_maint m;
    int x = hb_maint_read(ctx->state.dir, &m, &e);
    int rc = x < 0 ? x : 0;
    if (x == 1) {
        /* the file goes first, so resumed schedules can run at once */
        rc = hb_maint_remove(ctx->state.dir, &e);
        if (rc == 0) {
            resume_listed(ctx, &m);
            hb_log_info(&ctx->log, "maintenance mode left; %zu schedule(s) resumed",
                        m.nsuspended);
        }
        hb_maint_clear(&m);
    }
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_maintenance_status(harvbk_ctx *ctx, int *active, int64_t *since_ms)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    hb_maint m;
    int x = hb_maint_read(ctx->state.dir, &m, &e);
    if (x < 0)
        return hb_ctx_fail_rc(ctx, x, &e);
    if (active)
        *active = x;
    if (since_ms)
        *since_ms = x ? m.since : 0;
    hb_maint_clear(&m);
    return 0;
}

int harvbk_maintenance_status_json(harvbk_ctx *ctx, char **out)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    hb_maint m;
    int x = hb_maint_read(ctx->state.dir, &m, &e);
    if (x < 0)
        return hb_ctx_fail_rc(ctx, x, &e);
    hb_opinfo *ops = NULL;
    size_t n = 0;
    int rc = hb_opreg_list(ctx->state.dir, &ops, &n, &e);
    cJSON *o = rc == 0 ? cJSON_CreateObject() : NULL;
    bool ok = o && cJSON_AddBoolToObject(o, "active", x == 1);
    char buf[40];
    if (ok && x == 1) {
        hb_iso8601(m.since / 1000, buf, sizeof buf);
        ok = cJSON_AddStringToObject(o, "since", buf) != NULL;
    } else if (ok) {
        ok = cJSON_AddNullToObject(o, "since") != NULL;
    }
    cJSON *sus = ok ? cJSON_AddArrayToObject(o, "suspended_schedules") : NULL;
    ok = ok && sus;
    for (size_t i = 0; ok && i < m.nsuspended; i++) {
        cJSON *s = cJSON_CreateString(m.suspended[i]);
        ok = s && cJSON_AddItemToArray(sus, s);
    }
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "operations") : NULL;
    ok = ok && arr;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *it = cJSON_CreateObject();
        ok = it && cJSON_AddItemToArray(arr, it);
        hb_iso8601(ops[i].started / 1000, buf, sizeof buf);
        ok = ok && cJSON_AddStringToObject(it, "kind", ops[i].kind) &&
             cJSON_AddStringToObject(it, "what", ops[i].what) &&
             cJSON_AddNumberToObject(it, "pid", (double)ops[i].pid) &&
             cJSON_AddStringToObject(it, "started", buf);
    }
    char *text = ok ? hb_json_print(o) : NULL;
    cJSON_Delete(o);
    hb_free(ops);
    hb_maint_clear(&m);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    if (!text)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    *out = text;
    return 0;
}
