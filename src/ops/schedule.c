/*
 * ops/schedule.c - harvbk_schedule_create/update/delete/suspend/resume/get/list:
 * the checks of a schedule and its info handles (harvbk/schedule.h,
 * docs/SCHEDULES.md). Running schedules: schedule_run.c.
 */
#include "ops.h"
#include "../core/json.h"
#include "../sched/cron.h"
#include "../state/catalog.h"
#include "../state/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600LL * 1000)
#define APART_MS (10LL * 60 * 1000)

struct harvbk_schedule {
    hb_sched_rec r;
    int64_t next_run;
};

struct harvbk_schedule_list {
    harvbk_schedule **v;
    size_t n;
};

const char *harvbk_schedule_run_state_name(int state)
{
    switch (state) {
    case HARVBK_SCHEDULE_RUN_INPROGRESS: return "InProgress";
    case HARVBK_SCHEDULE_RUN_READY: return "Ready";
    case HARVBK_SCHEDULE_RUN_ERROR: return "Error";
    case HARVBK_SCHEDULE_RUN_SKIPPED: return "Skipped";
    case HARVBK_SCHEDULE_RUN_CANCELLED: return "Cancelled";
    default: return "unknown";
    }
}

int hb_sched_public_state(int item_state)
{
    switch (item_state) {
    case HB_SI_READY: return HARVBK_SCHEDULE_RUN_READY;
    case HB_SI_ERROR: return HARVBK_SCHEDULE_RUN_ERROR;
    case HB_SI_SKIPPED: return HARVBK_SCHEDULE_RUN_SKIPPED;
    case HB_SI_CANCELLED: return HARVBK_SCHEDULE_RUN_CANCELLED;
    default: return HARVBK_SCHEDULE_RUN_INPROGRESS;
    }
}

int hb_sched_check_name(const char *ns, const char *name, hb_err *e)
{
    int rc = hb_check_name("namespace", ns, e);
    if (rc == 0)
        rc = hb_check_name("schedule name", name, e);
    if (rc == 0 && strlen(name) > HARVBK_SCHEDULE_NAME_MAX)
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "schedule name '%s' is longer than %u characters (its backups append "
                       "\"-YYYYMMDD-HHMM\")",
                       name, HARVBK_SCHEDULE_NAME_MAX);
    return rc;
}

int hb_sched_next(const hb_sched_rec *r, int64_t after_ms, int64_t *out, hb_err *e)
{
    hb_cron *c = NULL;
    int rc = hb_cron_parse(r->cron, &c, e);
    if (rc == 0)
        rc = hb_cron_next(c, after_ms, out, e);
    hb_cron_free(c);
    return rc;
}

/* ---- checks ---- */

typedef struct sched_timing {
    int64_t next, interval;
} sched_timing;

static int cron_timing(const char *expr, int64_t now, sched_timing *t, hb_err *e)
{
    hb_cron *c = NULL;
    int rc = hb_cron_parse(expr, &c, e);
    if (rc == 0)
        rc = hb_cron_next(c, now, &t->next, e);
    if (rc == 0)
        rc = hb_cron_interval(c, now, &t->interval, e);
    hb_cron_free(c);
    return rc;
}

static void fmt_ms(int64_t ms, char *out, size_t size)
{
    hb_iso8601(ms / 1000, out, size);
}

/* The checks that need no other schedule; r holds the new values. */
static int check_values(const hb_sched_rec *r, int64_t now, sched_timing *t, hb_err *e)
{
    int rc = cron_timing(r->cron, now, t, e);
    if (rc) {
        const char *why = e->msg;
        if (strncmp(why, "cron: ", 6) == 0)
            why += 6;
        char m[HB_ERRMSG_MAX];
        snprintf(m, sizeof m, "%s", why);
        return hb_seterr(e, HARVBK_E_CRON, "invalid cron expression '%s': %s", r->cron, m);
    }
    if (!r->skip_interval_check && t->interval < HOUR_MS)
        return hb_seterr(e, HARVBK_E_INTERVAL,
                         "cron expression '%s' fires every %lld minutes; a schedule may fire at "
                         "most once an hour (or use the skip-interval-check flag)",
                         r->cron, (long long)(t->interval / 60000));
    if (r->retain < HARVBK_SCHEDULE_RETAIN_MIN || r->retain > HARVBK_SCHEDULE_RETAIN_MAX)
        return hb_seterr(e, HARVBK_E_RETAIN, "retain %u is outside %u..%u", r->retain,
                         HARVBK_SCHEDULE_RETAIN_MIN, HARVBK_SCHEDULE_RETAIN_MAX);
    if (r->max_failure < HARVBK_SCHEDULE_MAX_FAILURE_MIN)
        return hb_seterr(e, HARVBK_E_MAX_FAILURE, "max failure %u is below %u", r->max_failure,
                         HARVBK_SCHEDULE_MAX_FAILURE_MIN);
    if (r->max_failure >= r->retain)
        return hb_seterr(e, HARVBK_E_MAX_FAILURE,
                         "max failure %u must be less than retain %u", r->max_failure,
                         r->retain);
    return 0;
}

/* How far apart two series of the same interval fire: their next times'
 * distance modulo the interval, the shorter way round. */
static int64_t apart(int64_t a, int64_t b, int64_t interval)
{
    int64_t d = llabs(a - b);
    if (interval > 0) {
        d %= interval;
        if (interval - d < d)
            d = interval - d;
    }
    return d;
}

/* One schedule per VM; another schedule of the same interval at least 10
 * minutes apart. Called with the global schedules lock held. */
static int check_others(harvbk_ctx *ctx, const hb_sched_rec *r, const sched_timing *t,
                        int64_t now, hb_err *e)
{
    hb_sched_id *ids = NULL;
    size_t n = 0;
    int rc = hb_sched_list(ctx->state.dir, &ids, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *ons = ids[i].ns, *oname = ids[i].name;
        if (strcmp(ons, r->ns) == 0 && strcmp(oname, r->name) == 0)
            continue;
        hb_sched_rec o;
        hb_err oe;
        if (hb_sched_read(ctx->state.dir, ons, oname, &o, &oe) != 0) {
            hb_log_warn(&ctx->log, "schedule %s/%s is unreadable: %s", ons, oname, oe.msg);
            continue;
        }
        if (strcmp(o.vm_ns, r->vm_ns) == 0 && strcmp(o.vm_name, r->vm_name) == 0)
            rc = hb_seterr(e, HARVBK_E_VM_SCHEDULED, "VM %s/%s already has schedule %s/%s",
                           r->vm_ns, r->vm_name, ons, oname);
        sched_timing ot;
        hb_err ce;
        if (rc == 0 && !r->skip_interval_check && cron_timing(o.cron, now, &ot, &ce) == 0 &&
            ot.interval == t->interval && apart(ot.next, t->next, t->interval) < APART_MS) {
            char a[32], b[32];
            fmt_ms(t->next, a, sizeof a);
            fmt_ms(ot.next, b, sizeof b);
            rc = hb_seterr(e, HARVBK_E_SCHEDULE_CONFLICT,
                           "cron expression '%s' next fires at %s, less than 10 minutes from "
                           "schedule %s/%s ('%s', next at %s) of the same interval",
                           r->cron, a, ons, oname, o.cron, b);
        }
        hb_sched_rec_clear(&o);
    }
    hb_free(ids);
    return rc;
}

static int check_target(harvbk_ctx *ctx, const hb_sched_rec *r, const char *what, hb_err *e)
{
    if (r->type != HARVBK_SCHEDULE_BACKUP)
        return 0;
    int rc = hb_ctx_check_target(ctx, e);
    if (rc)
        hb_err_prefix(e, "cannot %s backup schedule %s/%s while the target is unreachable", what,
                      r->ns, r->name);
    return rc;
}

/* Only the members of the caller's version of src are read (into *opts). */
static int opts_get(const harvbk_schedule_options *src, harvbk_schedule_options *opts,
                    hb_err *e)
{
    if (!src)
        return hb_seterr(e, HARVBK_E_INVALID, "options are NULL");
    int rc = hb_opts_take(HB_OPTS_SCHEDULE, opts, src, e);
    if (rc == 0 && (opts->flags & ~HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK))
        rc = hb_seterr(e, HARVBK_E_INVALID, "unknown schedule flags 0x%x", opts->flags);
    if (rc == 0 && opts->now_ms < 0)
        rc = hb_seterr(e, HARVBK_E_INVALID, "now_ms is negative");
    return rc;
}

static int set_str(char **dst, const char *src)
{
    char *s = hb_strdup(src ? src : "");
    if (!s)
        return HARVBK_E_NOMEM;
    hb_free(*dst);
    *dst = s;
    return 0;
}

static int sched_create(harvbk_ctx *ctx, const char *ns, const char *name,
                        const harvbk_schedule_options *o, hb_err *e)
{
    harvbk_schedule_options copy;
    int rc = hb_sched_check_name(ns, name, e);
    if (rc == 0)
        rc = opts_get(o, &copy, e);
    o = &copy;
    if (rc)
        return rc;
    if (o->type != HARVBK_SCHEDULE_BACKUP && o->type != HARVBK_SCHEDULE_SNAPSHOT)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown schedule type %d", o->type);
    const char *vm_ns = o->vm_namespace ? o->vm_namespace : ns;
    if (strcmp(vm_ns, ns) != 0)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "the VM of schedule %s/%s must be in namespace %s, not %s", ns, name, ns,
                         vm_ns);
    if ((rc = hb_check_name("VM name", o->vm_name, e)))
        return rc;
    if (!o->cron || !*o->cron)
        return hb_seterr(e, HARVBK_E_CRON, "a schedule needs a cron expression");
    if ((rc = hb_maintenance_check(ctx, "create a schedule", e)))
        return rc;
    int64_t now = o->now_ms ? o->now_ms : hb_now_ms();

    hb_sched_rec r;
    memset(&r, 0, sizeof r);
    r.type = o->type;
    r.retain = o->retain ? o->retain : HARVBK_SCHEDULE_RETAIN_DEFAULT;
    /* the default max failure stays below a small retain (retain 3: 2) */
    r.max_failure = o->max_failure ? o->max_failure
                                   : HB_MIN(HARVBK_SCHEDULE_MAX_FAILURE_DEFAULT, r.retain - 1);
    r.deadline_s = o->deadline_s == HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING ? 0 : o->deadline_s;
    r.skip_interval_check = (o->flags & HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK) != 0;
    r.created = r.last_planned = now;
    if (set_str(&r.ns, ns) || set_str(&r.name, name) || set_str(&r.vm_ns, ns) ||
        set_str(&r.vm_name, o->vm_name) || set_str(&r.cron, o->cron) ||
        set_str(&r.suspend_reason, "") || set_str(&r.suspended_by, "")) {
        hb_sched_rec_clear(&r);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    sched_timing t;
    rc = check_values(&r, now, &t, e);
    if (rc == 0 && (rc = hb_catalog_exists(&ctx->state, ns, o->vm_name, e)) == 0)
        rc = hb_seterr(e, HARVBK_E_NOTFOUND, "VM %s/%s is not in the catalog", ns, o->vm_name);
    if (rc == 1)
        rc = 0;
    if (rc == 0)
        rc = check_target(ctx, &r, "create", e);
    int gfd = -1;
    if (rc == 0)
        rc = hb_sched_global_lock(ctx->state.dir, &gfd, e);
    if (rc == 0) {
        hb_sched_rec old;
        hb_err ne;
        int x = hb_sched_read(ctx->state.dir, ns, name, &old, &ne);
        if (x == 0 || x == HARVBK_E_CORRUPT || x == HARVBK_E_FORMAT)
            rc = hb_seterr(e, HARVBK_E_EXISTS, "schedule %s/%s exists", ns, name);
        hb_sched_rec_clear(&old);
    }
    if (rc == 0)
        rc = check_others(ctx, &r, &t, now, e);
    if (rc == 0)
        rc = hb_sched_write(ctx->state.dir, &r, e);
    hb_sched_unlock(gfd);
    if (rc == 0)
        hb_log_info(&ctx->log, "schedule %s/%s created: %s of VM %s/%s at '%s', retain %u",
                    ns, name, r.type == HARVBK_SCHEDULE_SNAPSHOT ? "snapshots" : "backups", ns,
                    r.vm_name, r.cron, r.retain);
    hb_sched_rec_clear(&r);
    return rc;
}

/* The public entry of create/update/resume: context check, message. */
typedef int (*sched_fn)(harvbk_ctx *ctx, const char *ns, const char *name,
                        const harvbk_schedule_options *o, hb_err *e);
static int sched_public(const char *pub, harvbk_ctx *ctx, sched_fn fn, const char *ns,
                        const char *name, const harvbk_schedule_options *o)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, pub);
    hb_err e;
    hb_err_clear(&e);
    int rc = fn(ctx, ns, name, o, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_schedule_create(harvbk_ctx *ctx, const char *namespace_, const char *name,
                           const harvbk_schedule_options *opts)
{
    return sched_public(__func__, ctx, sched_create, namespace_, name, opts);
}

static int sched_update(harvbk_ctx *ctx, const char *ns, const char *name,
                        const harvbk_schedule_options *o, hb_err *e)
{
    harvbk_schedule_options copy;
    int rc = hb_sched_check_name(ns, name, e);
    if (rc == 0)
        rc = opts_get(o, &copy, e);
    o = &copy;
    if (rc)
        return rc;
    int64_t now = o->now_ms ? o->now_ms : hb_now_ms();
    int gfd = -1, fd = -1;
    hb_sched_rec r;
    memset(&r, 0, sizeof r);
    if ((rc = hb_sched_global_lock(ctx->state.dir, &gfd, e)) == 0 &&
        (rc = hb_sched_lock(ctx->state.dir, ns, name, &fd, e)) == 0)
        rc = hb_sched_read(ctx->state.dir, ns, name, &r, e);
    if (rc == 0 && ((o->vm_namespace && strcmp(o->vm_namespace, r.vm_ns) != 0) ||
                    (o->vm_name && strcmp(o->vm_name, r.vm_name) != 0)))
        rc = hb_seterr(e, HARVBK_E_INVALID, "the VM of schedule %s/%s cannot change (it is %s/%s)",
                       ns, name, r.vm_ns, r.vm_name);
    bool cron_changed = false;
    if (rc == 0 && o->cron && strcmp(o->cron, r.cron) != 0) {
        cron_changed = true;
        if (set_str(&r.cron, o->cron))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (rc == 0) {
        if (o->retain)
            r.retain = o->retain;
        if (o->max_failure)
            r.max_failure = o->max_failure;
        if (o->deadline_s)
            r.deadline_s = o->deadline_s == HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING ? 0 : o->deadline_s;
        if (o->flags & HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK)
            r.skip_interval_check = true;
    }
    sched_timing t;
    if (rc == 0)
        rc = check_values(&r, now, &t, e);
    if (rc == 0 && cron_changed)
        rc = check_others(ctx, &r, &t, now, e);
    if (rc == 0 && cron_changed && r.last_planned < now)
        r.last_planned = now; /* the new expression counts from now */
    if (rc == 0)
        rc = hb_sched_write(ctx->state.dir, &r, e);
    hb_sched_unlock(fd);
    hb_sched_unlock(gfd);
    hb_sched_rec_clear(&r);
    return rc;
}

int harvbk_schedule_update(harvbk_ctx *ctx, const char *namespace_, const char *name,
                           const harvbk_schedule_options *opts)
{
    return sched_public(__func__, ctx, sched_update, namespace_, name, opts);
}

int harvbk_schedule_delete(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int fd = -1;
    int rc = hb_sched_check_name(namespace_, name, &e);
    if (rc == 0 && (rc = hb_sched_lock(ctx->state.dir, namespace_, name, &fd, &e)) == 0) {
        rc = hb_sched_remove(ctx->state.dir, namespace_, name, &e);
        hb_sched_unlock(fd);
    }
    if (rc == 0)
        hb_log_info(&ctx->log, "schedule %s/%s deleted", namespace_, name);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int hb_sched_set_suspended(harvbk_ctx *ctx, const char *ns, const char *name, bool suspend,
                           const char *by, const char *reason, bool *changed, hb_err *e)
{
    int fd = -1;
    hb_sched_rec r;
    memset(&r, 0, sizeof r);
    if (changed)
        *changed = false;
    int rc = hb_sched_lock(ctx->state.dir, ns, name, &fd, e);
    if (rc == 0)
        rc = hb_sched_read(ctx->state.dir, ns, name, &r, e);
    if (rc == 0 && r.suspended != suspend) {
        r.suspended = suspend;
        if (set_str(&r.suspend_reason, suspend ? reason : "") ||
            set_str(&r.suspended_by, suspend ? by : ""))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        if (rc == 0)
            rc = hb_sched_write(ctx->state.dir, &r, e);
        if (rc == 0 && changed)
            *changed = true;
    }
    hb_sched_unlock(fd);
    hb_sched_rec_clear(&r);
    return rc;
}

int harvbk_schedule_suspend(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_sched_check_name(namespace_, name, &e);
    if (rc == 0)
        rc = hb_sched_set_suspended(ctx, namespace_, name, true, "user", "suspended by user",
                                    NULL, &e);
    if (rc == 0)
        hb_log_info(&ctx->log, "schedule %s/%s suspended", namespace_, name);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

static int sched_resume(harvbk_ctx *ctx, const char *ns, const char *name,
                        const harvbk_schedule_options *unused, hb_err *e)
{
    (void)unused;
    int rc = hb_sched_check_name(ns, name, e);
    if (rc)
        return rc;
    if ((rc = hb_maintenance_check(ctx, "resume a schedule", e)))
        return rc;
    hb_sched_rec r;
    if ((rc = hb_sched_read(ctx->state.dir, ns, name, &r, e)))
        return rc;
    bool was_max = r.suspended && strcmp(r.suspended_by, "max-failure") == 0;
    if (r.suspended)
        rc = check_target(ctx, &r, "resume", e);
    hb_sched_rec_clear(&r);
    if (rc)
        return rc;
    if (was_max) {
        /* the failed runs' entries go first; one that cannot be deleted now
         * (a restore reads it) stops the resume, so nothing is left behind */
        if ((rc = hb_sched_delete_failed(ctx, ns, name, e)))
            return rc;
    }
    int fd = -1;
    if ((rc = hb_sched_lock(ctx->state.dir, ns, name, &fd, e)) == 0 &&
        (rc = hb_sched_read(ctx->state.dir, ns, name, &r, e)) == 0) {
        if (r.suspended) {
            r.suspended = false;
            if (set_str(&r.suspend_reason, "") || set_str(&r.suspended_by, ""))
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            if (was_max)
                r.consecutive_failures = 0;
            if (rc == 0)
                rc = hb_sched_write(ctx->state.dir, &r, e);
            if (rc == 0)
                hb_log_info(&ctx->log, "schedule %s/%s resumed", ns, name);
        }
        hb_sched_rec_clear(&r);
    }
    hb_sched_unlock(fd);
    return rc;
}

int harvbk_schedule_resume(harvbk_ctx *ctx, const char *namespace_, const char *name)
{
    return sched_public(__func__, ctx, sched_resume, namespace_, name, NULL);
}

/* ---- info handles ---- */

static int info_new(harvbk_ctx *ctx, const char *ns, const char *name, harvbk_schedule **out,
                    hb_err *e)
{
    harvbk_schedule *s = hb_calloc(1, sizeof *s);
    if (!s)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = hb_sched_read(ctx->state.dir, ns, name, &s->r, e);
    if (rc) {
        hb_free(s);
        return rc;
    }
    s->next_run = -1;
    hb_err ce;
    if (!s->r.suspended && hb_sched_next(&s->r, s->r.last_planned, &s->next_run, &ce) != 0)
        s->next_run = -1;
    *out = s;
    return 0;
}

int harvbk_schedule_get(harvbk_schedule **out, harvbk_ctx *ctx, const char *namespace_,
                        const char *name)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    int rc = hb_sched_check_name(namespace_, name, &e);
    if (rc == 0)
        rc = info_new(ctx, namespace_, name, out, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

void harvbk_schedule_free(harvbk_schedule *s)
{
    if (!s)
        return;
    hb_sched_rec_clear(&s->r);
    hb_free(s);
}

#define GETTER(type, fn, expr, none)                 \
    type harvbk_schedule_##fn(const harvbk_schedule *s) { return s ? (expr) : (none); }
GETTER(const char *, namespace, s->r.ns, NULL)
GETTER(const char *, name, s->r.name, NULL)
GETTER(int, type_of, s->r.type, -1)
GETTER(const char *, vm_namespace, s->r.vm_ns, NULL)
GETTER(const char *, vm_name, s->r.vm_name, NULL)
GETTER(const char *, cron, s->r.cron, NULL)
GETTER(unsigned int, retain, s->r.retain, 0)
GETTER(unsigned int, max_failure, s->r.max_failure, 0)
GETTER(uint32_t, deadline,
       s->r.deadline_s ? s->r.deadline_s : HARVBK_SCHEDULE_DEADLINE_NEXT_FIRING, 0)
GETTER(int, skip_interval_check, s->r.skip_interval_check ? 1 : 0, 0)
GETTER(int, suspended, s->r.suspended ? 1 : 0, 0)
GETTER(const char *, suspend_reason, s->r.suspend_reason, NULL)
GETTER(unsigned int, consecutive_failures, s->r.consecutive_failures, 0)
GETTER(int64_t, created, s->r.created, -1)
GETTER(int64_t, next_run, s->next_run, -1)
GETTER(int64_t, last_run, s->r.last_planned, -1)
GETTER(size_t, history_count, s->r.nhist, 0)
#undef GETTER

int harvbk_schedule_history_at(const harvbk_schedule *s, size_t i, const char **entry,
                               int64_t *planned_ms, int *state, int *error_code,
                               const char **error, unsigned int *missed, int *deleted)
{
    if (!s)
        return hb_fail(HARVBK_E_INVALID, "%s: s is NULL", __func__);
    if (i >= s->r.nhist)
        return hb_fail(HARVBK_E_INVALID, "%s: index %zu is out of range (the history has %zu)",
                       __func__, i, s->r.nhist);
    const hb_sched_item *it = &s->r.hist[i];
    if (entry)
        *entry = it->entry;
    if (planned_ms)
        *planned_ms = it->planned;
    if (state)
        *state = hb_sched_public_state(it->state);
    if (error_code)
        *error_code = it->code;
    if (error)
        *error = it->error;
    if (missed)
        *missed = it->missed;
    if (deleted)
        *deleted = it->deleted ? 1 : 0;
    return 0;
}

static cJSON *json_time(cJSON *o, const char *k, int64_t ms)
{
    if (ms < 0)
        return cJSON_AddNullToObject(o, k);
    char buf[40];
    fmt_ms(ms, buf, sizeof buf);
    return cJSON_AddStringToObject(o, k, buf);
}

int harvbk_schedule_to_json(const harvbk_schedule *s, char **out)
{
    if (!out)
        return hb_fail(HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    if (!s)
        return hb_fail(HARVBK_E_INVALID, "%s: s is NULL", __func__);
    const hb_sched_rec *r = &s->r;
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    char vm[140];
    snprintf(vm, sizeof vm, "%s/%s", r->vm_ns, r->vm_name);
    if (ok) {
        ok &= cJSON_AddStringToObject(root, "name", r->name) != NULL;
        ok &= cJSON_AddStringToObject(root, "namespace", r->ns) != NULL;
        ok &= cJSON_AddStringToObject(root, "type",
                                      r->type == HARVBK_SCHEDULE_SNAPSHOT ? "snapshot"
                                                                           : "backup") != NULL;
        ok &= cJSON_AddStringToObject(root, "vm", vm) != NULL;
        ok &= cJSON_AddStringToObject(root, "cron", r->cron) != NULL;
        ok &= hb_json_add_u64(root, "retain", r->retain) != NULL;
        ok &= hb_json_add_u64(root, "max_failure", r->max_failure) != NULL;
        ok &= (r->deadline_s ? hb_json_add_u64(root, "deadline_s", r->deadline_s)
                             : cJSON_AddNullToObject(root, "deadline_s")) != NULL;
        ok &= cJSON_AddBoolToObject(root, "skip_interval_check", r->skip_interval_check) != NULL;
        ok &= cJSON_AddBoolToObject(root, "suspended", r->suspended) != NULL;
        ok &= cJSON_AddStringToObject(root, "suspend_reason", r->suspend_reason) != NULL;
        ok &= hb_json_add_u64(root, "consecutive_failures", r->consecutive_failures) != NULL;
        ok &= json_time(root, "created", r->created) != NULL;
        ok &= json_time(root, "next_run", s->next_run) != NULL;
        ok &= json_time(root, "last_run", r->last_planned) != NULL;
    }
    cJSON *hist = ok ? cJSON_AddArrayToObject(root, "history") : NULL;
    ok &= hist != NULL;
    for (size_t i = 0; ok && i < r->nhist; i++) {
        const hb_sched_item *it = &r->hist[i];
        cJSON *o = cJSON_CreateObject();
        ok &= o && cJSON_AddItemToArray(hist, o);
        if (!ok)
            break;
        ok &= cJSON_AddStringToObject(o, "entry", it->entry) != NULL;
        ok &= json_time(o, "planned", it->planned) != NULL;
        ok &= json_time(o, "started", it->started ? it->started : -1) != NULL;
        ok &= json_time(o, "finished", it->finished ? it->finished : -1) != NULL;
        ok &= cJSON_AddStringToObject(
                  o, "state", harvbk_schedule_run_state_name(hb_sched_public_state(it->state))) !=
              NULL;
        ok &= cJSON_AddStringToObject(o, "error", it->error) != NULL;
        ok &= cJSON_AddStringToObject(o, "error_code",
                                      it->code ? harvbk_error_name(it->code) : "") != NULL;
        ok &= hb_json_add_u64(o, "missed", it->missed) != NULL;
        ok &= cJSON_AddBoolToObject(o, "deleted", it->deleted) != NULL;
    }
    char *text = ok ? hb_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return hb_fail(HARVBK_E_NOMEM, "%s: out of memory", __func__);
    *out = text;
    return 0;
}

int harvbk_schedule_list_get(harvbk_schedule_list **out, harvbk_ctx *ctx)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    hb_err e;
    hb_err_clear(&e);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_sched_id *ids = NULL;
    size_t n = 0;
    int rc = hb_sched_list(ctx->state.dir, &ids, &n, &e);
    harvbk_schedule_list *l = rc == 0 ? hb_calloc(1, sizeof *l) : NULL;
    if (rc == 0 && !l)
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    if (rc == 0 && n && !(l->v = hb_calloc(n, sizeof *l->v)))
        rc = hb_seterr(&e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        hb_err ie;
        int x = info_new(ctx, ids[i].ns, ids[i].name, &l->v[l->n], &ie);
        if (x == 0)
            l->n++;
        else if (x == HARVBK_E_NOMEM)
            rc = hb_seterr(&e, x, NULL);
        else if (x != HARVBK_E_NOTFOUND) /* deleted meanwhile: not listed */
            hb_log_warn(&ctx->log, "schedule %s/%s is not listed: %s", ids[i].ns, ids[i].name,
                        ie.msg);
    }
    hb_free(ids);
    if (rc) {
        harvbk_schedule_list_free(l);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    *out = l;
    return 0;
}

size_t harvbk_schedule_list_count(const harvbk_schedule_list *list) { return list ? list->n : 0; }

const harvbk_schedule *harvbk_schedule_list_at(const harvbk_schedule_list *list, size_t i)
{
    return list && i < list->n ? list->v[i] : NULL;
}

void harvbk_schedule_list_free(harvbk_schedule_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        harvbk_schedule_free(list->v[i]);
    hb_free(list->v);
    hb_free(list);
}
