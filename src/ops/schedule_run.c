/*
 * ops/schedule_run.c - running schedules: harvbk_schedule_run_due (one pass as
 * one operation), harvbk_schedule_next_due, the per-run results, failure
 * counting, automatic suspension and retention (docs/SCHEDULES.md "Running").
 *
 * Two flocks per schedule (state/schedule.h): the record lock, held for
 * milliseconds around each read-modify-write, and the run lock, held by the
 * process running a firing from the moment it decides to run it until the
 * run's result, failure count and retention are recorded. A firing is decided
 * with both held, and the decision (latest firing handled, history item
 * InProgress) is written before the run starts, so no two processes run the
 * same firing. The record lock is taken first and the run lock tried with it
 * held, so a process that finds the run lock taken while the firing is due
 * knows the holder is running an earlier firing: it records this one as
 * skipped. A history item left InProgress by a dead process is settled (from
 * the entry's own state) by the next process that takes the run lock.
 */
#include "ops.h"
#include "../sched/cron.h"
#include "../state/catalog.h"
#include "../state/record.h"
#include "../state/recovery.h"
#include "../state/schedule.h"
#include "../state/vm.h"

#include <stdio.h>
#include <string.h>

#define TICK_MS 100u
#define MAX_MISSED_COUNT 1000000u /* bound on counting missed firings */

typedef struct sched_run {
    char *ns, *name;       /* the schedule */
    char entry[64];        /* "" for a skipped firing */
    int kind;              /* HB_ENTRY_* */
    char *vm_ns, *vm_name;
    int64_t planned;
    uint64_t deadline_ms;  /* real time a run may take */
    int run_fd;            /* run lock, -1 once released */
    /* results: under op->mu once the op started */
    int state;             /* HARVBK_SCHEDULE_RUN_* */
    int code;
    char *msg;             /* set once, when the run ended; NULL before */
    /* while running (op thread only) */
    harvbk_op *child;
    uint64_t t0;
    uint64_t done, total;  /* the child's last progress, kept once it is freed */
    bool started, deadline_hit, cancelled;
} sched_run;

struct hb_sched_pass {
    sched_run *runs;
    size_t n, cap;
    harvbk_schedule_run_options opts;
};

static void pass_free(void *p)
{
    hb_sched_pass *pass = p;
    if (!pass)
        return;
    for (size_t i = 0; i < pass->n; i++) {
        sched_run *r = &pass->runs[i];
        hb_sched_unlock(r->run_fd);
        if (r->child)
            harvbk_op_free(r->child);
        hb_free(r->ns);
        hb_free(r->name);
        hb_free(r->vm_ns);
        hb_free(r->vm_name);
        hb_free(r->msg);
    }
    hb_free(pass->runs);
    hb_free(pass);
}

void hb_sched_pass_free(hb_sched_pass *pass) { pass_free(pass); }

static sched_run *pass_add(hb_sched_pass *pass, const hb_sched_rec *rec, hb_err *e)
{
    if (pass->n == pass->cap) {
        size_t cap = pass->cap ? pass->cap * 2 : 8;
        sched_run *v = hb_realloc(pass->runs, cap * sizeof *v);
        if (!v) {
            hb_seterr(e, HARVBK_E_NOMEM, NULL);
            return NULL;
        }
        pass->runs = v;
        pass->cap = cap;
    }
    sched_run *r = &pass->runs[pass->n];
    memset(r, 0, sizeof *r);
    r->run_fd = -1;
    r->ns = hb_strdup(rec->ns);
    r->name = hb_strdup(rec->name);
    r->vm_ns = hb_strdup(rec->vm_ns);
    r->vm_name = hb_strdup(rec->vm_name);
    pass->n++;
    if (!r->ns || !r->name || !r->vm_ns || !r->vm_name) {
        hb_seterr(e, HARVBK_E_NOMEM, NULL);
        return NULL;
    }
    r->kind = rec->type == HARVBK_SCHEDULE_SNAPSHOT ? HB_ENTRY_SNAPSHOT : HB_ENTRY_BACKUP;
    return r;
}

/* The latest firing at or before now after rec->last_planned, and how many
 * earlier ones it stands for. 0 with *latest 0 when none is due. */
static int latest_firing(const hb_sched_rec *rec, int64_t now, int64_t *latest, uint32_t *missed,
                         int64_t *next_after, hb_err *e)
{
    hb_cron *c = NULL;
    *latest = 0;
    *missed = 0;
    int rc = hb_cron_parse(rec->cron, &c, e);
    int64_t t = rec->last_planned, n = 0;
    uint32_t count = 0;
    while (rc == 0 && (rc = hb_cron_next(c, t, &n, e)) == 0 && n <= now) {
        t = n;
        if (count < MAX_MISSED_COUNT)
            count++;
        else {
            /* a very long downtime: jump to near now instead of counting on */
            int64_t iv = 0;
            if ((rc = hb_cron_interval(c, t, &iv, e)) == 0 && iv > 0 && now - t > 2 * iv)
                t = now - 2 * iv;
        }
    }
    if (rc == 0 && count) {
        *latest = t;
        *missed = count - 1;
        rc = hb_cron_next(c, t, next_after, e);
    }
    hb_cron_free(c);
    return rc;
}

/* ---- settling a run's result in the record ---- */

static hb_sched_item *find_item(hb_sched_rec *rec, const char *entry, int64_t planned)
{
    for (size_t i = rec->nhist; i-- > 0;)
        if (rec->hist[i].planned == planned && strcmp(rec->hist[i].entry, entry) == 0)
            return &rec->hist[i];
    return NULL;
}

static void count_result(harvbk_ctx *ctx, hb_sched_rec *rec, int item_state)
{
    if (item_state == HB_SI_READY) {
        rec->consecutive_failures = 0;
    } else if (item_state == HB_SI_ERROR) {
        rec->consecutive_failures++;
        if (rec->consecutive_failures >= rec->max_failure && !rec->suspended) {
            char *reason = hb_strdup("max failure reached"), *by = hb_strdup("max-failure");
            if (reason && by) {
                hb_free(rec->suspend_reason);
                hb_free(rec->suspended_by);
                rec->suspend_reason = reason;
                rec->suspended_by = by;
                rec->suspended = true;
                hb_log_warn(&ctx->log,
                            "schedule %s/%s suspended: %u consecutive failures (max failure %u)",
                            rec->ns, rec->name, rec->consecutive_failures, rec->max_failure);
            } else {
                hb_free(reason);
                hb_free(by);
            }
        }
    }
}

/* Settle every history item left InProgress by a process that died (the
 * caller holds the run lock, so none of them is running here), from the
 * entry's local record alone (no target access): Ready stays Ready, a record
 * whose writer died is made Error (interrupted), no record is an Error too.
 * *busy when an entry is still being written by a live writer (the firing
 * is then skipped). Returns whether rec changed. */
static bool settle_orphans(harvbk_ctx *ctx, hb_sched_rec *rec, bool *busy)
{
    int kind = rec->type == HARVBK_SCHEDULE_SNAPSHOT ? HB_ENTRY_SNAPSHOT : HB_ENTRY_BACKUP;
    bool changed = false;
    *busy = false;
    for (size_t i = 0; i < rec->nhist; i++) {
        hb_sched_item *it = &rec->hist[i];
        if (it->state != HB_SI_RUNNING)
            continue;
        int state = HARVBK_STATE_ERROR;
        char msg[HB_ERRMSG_MAX] = "the process running it ended before it started the entry";
        hb_record er;
        hb_err le;
        if (it->entry[0] && hb_record_read_k(&ctx->state, kind, rec->ns, it->entry, &er, &le) == 0) {
            /* InProgress with a dead writer: Error now (not at the next open);
             * recovery leaves the record as it now is in er */
            hb_record_recover(&ctx->state, &er, NULL, &le);
            state = er.state;
            snprintf(msg, sizeof msg, "%s",
                     er.error && er.error[0] ? er.error
                                             : "the process running it ended before it finished");
            hb_record_clear(&er);
        }
        if (state == HARVBK_STATE_INPROGRESS) {
            *busy = true;
            continue;
        }
        it->state = state == HARVBK_STATE_READY ? HB_SI_READY : HB_SI_ERROR;
        if (it->state == HB_SI_ERROR)
            hb_sched_item_set_error(it, HARVBK_E_INTERRUPTED, msg);
        if (!it->finished)
            it->finished = hb_now_ms();
        hb_log_info(&ctx->log, "schedule %s/%s: run %s of a process that ended is %s", rec->ns,
                    rec->name, it->entry, hb_sched_item_state_name(it->state));
        count_result(ctx, rec, it->state);
        changed = true;
    }
    return changed;
}

void hb_sched_recover(harvbk_ctx *ctx)
{
    hb_sched_id *ids = NULL;
    size_t n = 0;
    hb_err e;
    if (hb_sched_list(ctx->state.dir, &ids, &n, &e) != 0) {
        hb_log_warn(&ctx->log, "schedules not checked for interrupted runs: %s", e.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *ns = ids[i].ns, *name = ids[i].name;
        int fd = -1, run_fd = -1;
        hb_sched_rec rec;
        if (hb_sched_lock(ctx->state.dir, ns, name, &fd, &e) != 0)
            continue;
        if (hb_sched_run_lock_try(ctx->state.dir, ns, name, &run_fd, &e) == 0 &&
            hb_sched_read(ctx->state.dir, ns, name, &rec, &e) == 0) {
            bool busy = false;
            if (settle_orphans(ctx, &rec, &busy) && hb_sched_write(ctx->state.dir, &rec, &e) != 0)
                hb_log_warn(&ctx->log, "schedule %s/%s: %s", ns, name, e.msg);
            hb_sched_rec_clear(&rec);
        }
        hb_sched_unlock(run_fd);
        hb_sched_unlock(fd);
    }
    hb_free(ids);
}

/* Delete the given entries (names in del, n of them); marks each deleted one
 * in the record (re-read under the record lock). An entry in use (a restore
 * reads it) stays and is retried next time; *all_done tells. */
static int delete_entries(harvbk_ctx *ctx, const char *ns, const char *name, int kind,
                          char (*del)[64], size_t n, bool *all_done, hb_err *e)
{
    bool *gone = n ? hb_calloc(n, sizeof *gone) : NULL;
    if (n && !gone)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    *all_done = true;
    for (size_t i = 0; i < n; i++) {
        int rc = hb_entry_delete("harvbk_schedule_run_due", ctx, kind, ns, del[i]);
        if (rc == 0 || rc == HARVBK_E_NOTFOUND) {
            gone[i] = true;
            hb_log_info(&ctx->log, "schedule %s/%s: %s %s/%s deleted", ns, name,
                        hb_entry_word(kind), ns, del[i]);
        } else {
            *all_done = false;
            char m[HB_ERRMSG_MAX];
            harvbk_ctx_errmsg_copy(ctx, m, sizeof m);
            hb_log_warn(&ctx->log, "schedule %s/%s: %s %s/%s not deleted now (retried later): %s",
                        ns, name, hb_entry_word(kind), ns, del[i], m);
        }
    }
    int fd = -1, rc = 0;
    hb_sched_rec rec;
    if (n && (rc = hb_sched_lock(ctx->state.dir, ns, name, &fd, e)) == 0) {
        rc = hb_sched_read(ctx->state.dir, ns, name, &rec, e);
        if (rc == 0) {
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; gone[i] && j < rec.nhist; j++)
                    if (strcmp(rec.hist[j].entry, del[i]) == 0)
                        rec.hist[j].deleted = true;
            hb_sched_rec_trim(&rec);
            rc = hb_sched_write(ctx->state.dir, &rec, e);
            hb_sched_rec_clear(&rec);
        } else if (rc == HARVBK_E_NOTFOUND) {
            rc = 0; /* the schedule was deleted meanwhile */
        }
        hb_sched_unlock(fd);
    }
    hb_free(gone);
    return rc;
}

/* The failed entries of rec (and, with retain, the oldest Ready ones beyond
 * it) into *out. */
static int retention_list(const hb_sched_rec *rec, bool ready_too, char (**out)[64], size_t *n)
{
    *out = NULL;
    *n = 0;
    char(*v)[64] = rec->nhist ? hb_calloc(rec->nhist, sizeof *v) : NULL;
    if (rec->nhist && !v)
        return HARVBK_E_NOMEM;
    size_t cnt = 0, ready = 0;
    for (size_t i = 0; i < rec->nhist; i++) {
        const hb_sched_item *it = &rec->hist[i];
        if (it->deleted || !it->entry[0])
            continue;
        if (it->state == HB_SI_ERROR || it->state == HB_SI_CANCELLED)
            snprintf(v[cnt++], 64, "%s", it->entry);
        else if (it->state == HB_SI_READY)
            ready++;
    }
    /* history is oldest first: the first (ready - retain) Ready ones go */
    for (size_t i = 0; ready_too && ready > rec->retain && i < rec->nhist; i++) {
        const hb_sched_item *it = &rec->hist[i];
        if (it->deleted || !it->entry[0] || it->state != HB_SI_READY)
            continue;
        snprintf(v[cnt++], 64, "%s", it->entry);
        ready--;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int hb_sched_delete_failed(harvbk_ctx *ctx, const char *ns, const char *name, hb_err *e)
{
    hb_sched_rec rec;
    int rc = hb_sched_read(ctx->state.dir, ns, name, &rec, e);
    if (rc)
        return rc;
    char(*del)[64] = NULL;
    size_t n = 0;
    int kind = rec.type == HARVBK_SCHEDULE_SNAPSHOT ? HB_ENTRY_SNAPSHOT : HB_ENTRY_BACKUP;
    rc = retention_list(&rec, false, &del, &n);
    hb_sched_rec_clear(&rec);
    if (rc)
        return hb_seterr(e, rc, NULL);
    bool all = true;
    rc = delete_entries(ctx, ns, name, kind, del, n, &all, e);
    hb_free(del);
    if (rc == 0 && !all)
        rc = hb_seterr(e, HARVBK_E_BUSY,
                       "a failed entry of schedule %s/%s is in use and cannot be deleted yet; "
                       "resume it again later",
                       ns, name);
    return rc;
}

static const char *run_state_item_name(int public_state)
{
    switch (public_state) {
    case HARVBK_SCHEDULE_RUN_READY: return "Ready";
    case HARVBK_SCHEDULE_RUN_CANCELLED: return "Cancelled";
    default: return "Error";
    }
}

/* Record the end of run r (op thread), then apply retention after a success. */
static void settle_run(harvbk_ctx *ctx, sched_run *r, const char *msg)
{
    hb_err e;
    hb_err_clear(&e);
    int item_state = r->state == HARVBK_SCHEDULE_RUN_READY       ? HB_SI_READY
                     : r->state == HARVBK_SCHEDULE_RUN_CANCELLED ? HB_SI_CANCELLED
                                                                 : HB_SI_ERROR;
    int fd = -1;
    hb_sched_rec rec;
    char(*del)[64] = NULL;
    size_t ndel = 0;
    int rc = hb_sched_lock(ctx->state.dir, r->ns, r->name, &fd, &e);
    if (rc == 0 && (rc = hb_sched_read(ctx->state.dir, r->ns, r->name, &rec, &e)) == 0) {
        hb_sched_item *it = find_item(&rec, r->entry, r->planned);
        if (it && it->state == HB_SI_RUNNING) {
            it->state = item_state;
            it->finished = hb_now_ms();
            if (item_state != HB_SI_READY)
                hb_sched_item_set_error(it, r->code, msg);
            count_result(ctx, &rec, item_state);
        }
        if (item_state == HB_SI_READY && retention_list(&rec, true, &del, &ndel) != 0)
            hb_log_warn(&ctx->log, "schedule %s/%s: out of memory for retention", r->ns,
                        r->name);
        hb_sched_rec_trim(&rec);
        rc = hb_sched_write(ctx->state.dir, &rec, &e);
        hb_sched_rec_clear(&rec);
    }
    hb_sched_unlock(fd);
    if (rc == HARVBK_E_NOTFOUND)
        hb_log_info(&ctx->log, "schedule %s/%s was deleted while %s ran", r->ns, r->name,
                    r->entry);
    else if (rc)
        hb_log_error(&ctx->log, "schedule %s/%s: cannot record the result of %s: %s", r->ns,
                     r->name, r->entry, e.msg);
    hb_log_info(&ctx->log, "schedule %s/%s: %s %s/%s %s%s%s", r->ns, r->name,
                hb_entry_word(r->kind), r->ns, r->entry, run_state_item_name(r->state),
                msg && *msg ? ": " : "", msg ? msg : "");
    if (ndel) {
        bool all = true;
        hb_err_clear(&e);
        if (delete_entries(ctx, r->ns, r->name, r->kind, del, ndel, &all, &e) != 0)
            hb_log_warn(&ctx->log, "schedule %s/%s: retention: %s", r->ns, r->name, e.msg);
    }
    hb_free(del);
    hb_sched_unlock(r->run_fd);
    r->run_fd = -1;
}

/* ---- deciding what runs (caller's thread) ---- */

/* 1 when the schedule's firing was added to pass (run or skipped), 0 when
 * nothing is due, < 0 on error. */
static int decide(harvbk_ctx *ctx, hb_sched_pass *pass, const char *ns, const char *name,
                  int64_t now, hb_err *e)
{
    hb_sched_rec rec;
    int rc = hb_sched_read(ctx->state.dir, ns, name, &rec, e);
    if (rc)
        return rc;
    int64_t latest = 0, after = 0;
    uint32_t missed = 0;
    if (!rec.suspended)
        rc = latest_firing(&rec, now, &latest, &missed, &after, e);
    hb_sched_rec_clear(&rec);
    if (rc || !latest)
        return rc;

    /* the record lock first, then the run lock: whoever holds the run lock
     * decided its firing under the record lock, so a firing found due here
     * with the run lock taken is really one the running firing cannot cover */
    int run_fd = -1, fd = -1;
    rc = hb_sched_lock(ctx->state.dir, ns, name, &fd, e);
    if (rc == 0)
        rc = hb_sched_run_lock_try(ctx->state.dir, ns, name, &run_fd, e);
    bool running_elsewhere = rc == HARVBK_E_BUSY;
    if (running_elsewhere) {
        hb_err_clear(e);
        rc = 0;
    }
    if (rc == 0)
        rc = hb_sched_read(ctx->state.dir, ns, name, &rec, e);
    if (rc) {
        hb_sched_unlock(run_fd);
        hb_sched_unlock(fd);
        return rc;
    }
    bool busy = false, settled = false;
    if (!running_elsewhere) {
        settled = settle_orphans(ctx, &rec, &busy);
        running_elsewhere = busy;
    }

    latest = 0;
    if (!rec.suspended)
        rc = latest_firing(&rec, now, &latest, &missed, &after, e);
    int out = 0;
    if (rc == 0 && latest) {
        sched_run *r = pass_add(pass, &rec, e);
        if (!r)
            rc = HARVBK_E_NOMEM;
        else if (!hb_sched_entry_name(rec.name, latest, r->entry, sizeof r->entry))
            rc = hb_seterr(e, HARVBK_E_INVALID, "schedule %s/%s: no valid entry name", ns, name);
        int idx = rc == 0 ? hb_sched_rec_push(&rec, running_elsewhere ? "" : r->entry, latest,
                                              running_elsewhere ? HB_SI_SKIPPED : HB_SI_RUNNING,
                                              missed)
                          : 0;
        if (idx < 0)
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        if (rc == 0) {
            hb_sched_item *it = &rec.hist[idx];
            it->started = hb_now_ms();
            r->planned = latest;
            rec.last_planned = latest;
            if (running_elsewhere) {
                it->finished = it->started;
                hb_sched_item_set_error(it, HARVBK_E_BUSY,
                                        "skipped: the previous firing was still running");
                r->state = HARVBK_SCHEDULE_RUN_SKIPPED;
                r->code = HARVBK_E_BUSY;
                r->msg = hb_strdup("skipped: the previous firing was still running");
                r->entry[0] = '\0';
                hb_log_info(&ctx->log, "schedule %s/%s: firing skipped, the previous one still runs",
                            ns, name);
            } else {
                r->state = HARVBK_SCHEDULE_RUN_INPROGRESS;
                r->deadline_ms = rec.deadline_s ? (uint64_t)rec.deadline_s * 1000
                                                : (uint64_t)(after - latest);
                if (missed)
                    hb_log_info(&ctx->log, "schedule %s/%s: %u missed firing(s) are not caught up",
                                ns, name, missed);
            }
            hb_sched_rec_trim(&rec);
            rc = hb_sched_write(ctx->state.dir, &rec, e);
        }
        if (rc == 0 && !running_elsewhere) {
            r->run_fd = run_fd;
            run_fd = -1;
        }
        if (rc && r) /* not recorded: forget it */
            pass->n--, hb_free(r->ns), hb_free(r->name), hb_free(r->vm_ns), hb_free(r->vm_name);
        out = rc == 0;
    } else if (rc == 0 && settled) {
        rc = hb_sched_write(ctx->state.dir, &rec, e);
    }
    hb_sched_rec_clear(&rec);
    hb_sched_unlock(run_fd);
    hb_sched_unlock(fd);
    return rc ? rc : out;
}

/* ---- the pass (op thread) ---- */

/* Publish the end of run r (state, code, message) and record it. */
static void run_end(harvbk_op *op, sched_run *r, int state, int code, const char *msg)
{
    char *m = hb_strdup(msg ? msg : "");
    pthread_mutex_lock(&op->mu);
    r->state = state;
    r->code = code;
    r->msg = m; /* NULL on OOM: read as "" */
    pthread_mutex_unlock(&op->mu);
    settle_run(op->ctx, r, msg);
}

static void run_start(harvbk_op *op, hb_sched_pass *pass, sched_run *r)
{
    harvbk_ctx *ctx = op->ctx;
    hb_err e;
    hb_err_clear(&e);
    harvbk_vm *vm = NULL;
    int rc;
    r->started = true;
    r->t0 = hb_mono_ms();
    if (pass->opts.resolve_cb) {
        rc = pass->opts.resolve_cb(&vm, r->vm_ns, r->vm_name, pass->opts.resolve_payload);
        if (rc == 0 && !vm)
            rc = HARVBK_E_INVALID;
        if (rc)
            hb_seterr(&e, rc > 0 ? HARVBK_E_ERROR : rc,
                      "the VM resolver failed for VM %s/%s", r->vm_ns, r->vm_name);
    } else {
        rc = hb_catalog_get(&ctx->state, r->vm_ns, r->vm_name, &vm, &e);
    }
    if (rc == 0 && (strcmp(vm->ns, r->vm_ns) != 0 || strcmp(vm->name, r->vm_name) != 0))
        rc = hb_seterr(&e, HARVBK_E_INVALID, "the VM resolver returned %s/%s for VM %s/%s",
                       vm->ns, vm->name, r->vm_ns, r->vm_name);
    if (rc == 0) {
        hb_writer_params p;
        memset(&p, 0, sizeof p);
        p.kind = r->kind;
        p.freeze_cb = pass->opts.freeze_cb;
        p.thaw_cb = pass->opts.thaw_cb;
        p.freeze_payload = pass->opts.freeze_payload;
        p.capture_cb = pass->opts.capture_cb;
        p.release_cb = pass->opts.release_cb;
        p.capture_payload = pass->opts.capture_payload;
        p.freeze_deadline_ms = pass->opts.freeze_deadline_ms;
        if (pass->opts.flags & HARVBK_SCHEDULE_RUN_NO_REFLINK)
            p.flags |= HARVBK_BACKUP_NO_REFLINK;
        p.schedule = r->name;
        rc = hb_writer_start(&r->child, ctx, vm, r->entry, &p, &e);
    }
    harvbk_vm_free(vm);
    if (rc)
        run_end(op, r, HARVBK_SCHEDULE_RUN_ERROR, rc, e.msg);
}

/* 1 when r ended (and was settled). */
static int run_poll(harvbk_op *op, sched_run *r, bool cancel_all)
{
    if (!r->child)
        return 1;
    if (harvbk_op_wait_timeout(r->child, 0) == 0) {
        int res = harvbk_op_result(r->child);
        char msg[HB_ERRMSG_MAX];
        harvbk_op_errmsg_copy(r->child, msg, sizeof msg);
        harvbk_op_progress(r->child, &r->done, &r->total); /* its final bytes */
        int state = res == 0 ? HARVBK_SCHEDULE_RUN_READY : HARVBK_SCHEDULE_RUN_ERROR;
        if (res && r->deadline_hit) {
            res = HARVBK_E_TIMEOUT;
            snprintf(msg, sizeof msg,
                     "the run exceeded its deadline of %llu s and was cancelled",
                     (unsigned long long)(r->deadline_ms / 1000));
        } else if (res && r->cancelled) {
            state = HARVBK_SCHEDULE_RUN_CANCELLED;
        }
        harvbk_op_free(r->child);
        r->child = NULL;
        run_end(op, r, state, res, res ? msg : "");
        return 1;
    }
    if (cancel_all && !r->cancelled && !r->deadline_hit) {
        r->cancelled = true;
        harvbk_op_cancel(r->child);
    } else if (!r->deadline_hit && !r->cancelled && hb_mono_ms() - r->t0 >= r->deadline_ms) {
        r->deadline_hit = true;
        hb_log_warn(&op->ctx->log, "schedule %s/%s: %s exceeded its deadline, cancelling it",
                    r->ns, r->name, r->entry);
        harvbk_op_cancel(r->child);
    }
    return 0;
}

/* The pass's counters: the summed bytes of its runs (its progress thread
 * tells the caller's hook, ops/op.c). */
static void report_progress(harvbk_op *op, hb_sched_pass *pass)
{
    uint64_t done = 0, total = 0;
    for (size_t i = 0; i < pass->n; i++) {
        sched_run *r = &pass->runs[i];
        if (r->child)
            harvbk_op_progress(r->child, &r->done, &r->total);
        done += r->done; /* an ended run keeps its last figures */
        total += r->total;
    }
    if (done < atomic_load(&op->done))
        done = atomic_load(&op->done); /* never backwards as runs end */
    if (total < atomic_load(&op->total))
        total = atomic_load(&op->total);
    atomic_store(&op->done, done);
    atomic_store(&op->total, total);
}

static int pass_run(harvbk_op *op, hb_err *e)
{
    (void)e;
    hb_sched_pass *pass = op->job;
    unsigned maxp = pass->opts.max_parallel ? pass->opts.max_parallel : 2;
    size_t next = 0;
    for (;;) {
        bool cancel = hb_op_cancelled(op);
        unsigned active = 0;
        for (size_t i = 0; i < pass->n; i++) {
            sched_run *r = &pass->runs[i];
            if (r->child && !run_poll(op, r, cancel))
                active++;
        }
        while (!cancel && active < maxp && next < pass->n) {
            sched_run *r = &pass->runs[next++];
            if (r->state != HARVBK_SCHEDULE_RUN_INPROGRESS)
                continue; /* skipped */
            run_start(op, pass, r);
            if (r->child)
                active++;
        }
        if (cancel) /* those not started yet */
            for (; next < pass->n; next++) {
                sched_run *r = &pass->runs[next];
                if (r->state != HARVBK_SCHEDULE_RUN_INPROGRESS)
                    continue;
                run_end(op, r, HARVBK_SCHEDULE_RUN_CANCELLED, HARVBK_E_CANCELLED,
                        "cancelled before it started");
            }
        report_progress(op, pass);
        if (active == 0 && next >= pass->n)
            break;
        hb_op_sleep(op, TICK_MS);
    }
    report_progress(op, pass);
    return 0;
}

static int pass_start(harvbk_op **out, harvbk_ctx *ctx, int64_t now,
                      const harvbk_schedule_run_options *opts, hb_err *e)
{
    int rc = hb_maintenance_check(ctx, "run schedules", e);
    if (rc)
        return rc;
    hb_sched_pass *pass = hb_calloc(1, sizeof *pass);
    if (!pass)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    pass->opts = *opts;
    hb_sched_id *ids = NULL;
    size_t n = 0;
    rc = hb_sched_list(ctx->state.dir, &ids, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        hb_err se;
        hb_err_clear(&se);
        int x = decide(ctx, pass, ids[i].ns, ids[i].name, now, &se);
        if (x == HARVBK_E_NOMEM)
            rc = hb_seterr(e, x, NULL);
        else if (x < 0 && x != HARVBK_E_NOTFOUND)
            hb_log_error(&ctx->log, "schedule %s/%s cannot run: %s", ids[i].ns, ids[i].name,
                         se.msg);
    }
    hb_free(ids);
    if (rc || pass->n == 0) {
        pass_free(pass);
        return rc;
    }
    harvbk_op *op = NULL;
    rc = hb_op_new(&op, ctx, "schedule", NULL, opts->progress_cb, opts->progress_payload,
                   pass_run, pass_free, pass, e);
    if (rc) {
        /* the firings were recorded InProgress: they are settled as
         * interrupted by the next pass once the run locks are released */
        pass_free(pass);
        return rc;
    }
    op->sched = pass;
    if ((rc = hb_op_start(op, e)) != 0) {
        op->sched = NULL;
        hb_op_discard(op); /* frees pass */
        return rc;
    }
    *out = op;
    return 0;
}

int hb_sched_run_opts_check(const harvbk_schedule_run_options *opts, hb_err *e)
{
    if (opts->flags & ~HARVBK_SCHEDULE_RUN_NO_REFLINK)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown schedule run flags 0x%x", opts->flags);
    if (opts->freeze_cb && !opts->thaw_cb)
        return hb_seterr(e, HARVBK_E_INVALID, "a freeze hook needs a thaw hook");
    if (opts->capture_cb && !opts->release_cb)
        return hb_seterr(e, HARVBK_E_INVALID, "a capture hook needs a release hook");
    return 0;
}

int harvbk_schedule_run_due(harvbk_op **out, harvbk_ctx *ctx, int64_t now_ms,
                            const harvbk_schedule_run_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_schedule_run_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_SCHEDULE_RUN, &o, opts, &e);
    opts = &o;
    if (rc == 0 && now_ms < 0)
        rc = hb_seterr(&e, HARVBK_E_INVALID, "now_ms is negative");
    if (rc == 0)
        rc = hb_sched_run_opts_check(opts, &e);
    if (rc == 0)
        rc = pass_start(out, ctx, now_ms, opts, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

size_t harvbk_schedule_run_count(const harvbk_op *op)
{
    if (!op || op->magic != HB_OP_MAGIC || !op->sched)
        return 0;
    return op->sched->n;
}

int harvbk_schedule_run_at(const harvbk_op *op, size_t i, const char **namespace_,
                           const char **schedule, const char **entry, int64_t *planned_ms,
                           int *state, int *error_code, const char **message)
{
    if (!op || op->magic != HB_OP_MAGIC)
        return hb_op_bad(op, __func__);
    if (!op->sched)
        return hb_fail(HARVBK_E_INVALID, "%s: op is a %s operation, not a schedule pass",
                       __func__, op->kind);
    if (i >= op->sched->n)
        return hb_fail(HARVBK_E_INVALID, "%s: index %zu is out of range (the pass has %zu runs)",
                       __func__, i, op->sched->n);
    const sched_run *r = &op->sched->runs[i];
    if (namespace_)
        *namespace_ = r->ns;
    if (schedule)
        *schedule = r->name;
    if (entry)
        *entry = r->entry;
    if (planned_ms)
        *planned_ms = r->planned;
    pthread_mutex_lock((pthread_mutex_t *)&op->mu);
    if (state)
        *state = r->state;
    if (error_code)
        *error_code = r->code;
    if (message)
        *message = r->msg ? r->msg : "";
    pthread_mutex_unlock((pthread_mutex_t *)&op->mu);
    return 0;
}

int harvbk_schedule_next_due(harvbk_ctx *ctx, int64_t now_ms, int64_t *out_ms)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out_ms)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out_ms is NULL", __func__);
    *out_ms = -1;
    hb_err e;
    hb_err_clear(&e);
    hb_sched_id *ids = NULL;
    size_t n = 0;
    int rc = hb_sched_list(ctx->state.dir, &ids, &n, &e);
    int64_t best = -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        hb_sched_rec rec;
        hb_err se;
        if (hb_sched_read(ctx->state.dir, ids[i].ns, ids[i].name, &rec, &se) != 0)
            continue;
        int64_t next = 0;
        if (!rec.suspended && hb_sched_next(&rec, rec.last_planned, &next, &se) == 0) {
            if (next < now_ms)
                next = now_ms;
            if (best < 0 || next < best)
                best = next;
        }
        hb_sched_rec_clear(&rec);
    }
    hb_free(ids);
    if (rc)
        return hb_ctx_fail_rc(ctx, rc, &e);
    *out_ms = best;
    return 0;
}
