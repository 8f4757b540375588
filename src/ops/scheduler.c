/*
 * ops/scheduler.c - harvbk_scheduler_start/stop: a runner thread for programs
 * without a loop of their own, built on harvbk_schedule_run_due() and
 * harvbk_schedule_next_due() with the system clock.
 */
#include "ops.h"
#include "../core/ticker.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

/* Schedules are re-read at least this often (other processes change them). */
#define RESCAN_MS 30000
#define MAX_PASSES 64u

struct harvbk_scheduler {
    harvbk_ctx *ctx;
    harvbk_schedule_run_options opts;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;
    harvbk_op *ops[MAX_PASSES]; /* passes still running (runner thread only) */
    size_t nops;
    int64_t due_at, sync_at;    /* when to look at the schedules / the catalog next (ms) */
};

static void reap(harvbk_scheduler *s, bool cancel)
{
    size_t w = 0;
    for (size_t i = 0; i < s->nops; i++) {
        if (cancel)
            harvbk_op_cancel(s->ops[i]);
        if (cancel || harvbk_op_wait_timeout(s->ops[i], 0) == 0) {
            harvbk_op_free(s->ops[i]); /* waits for a cancelled one */
            continue;
        }
        s->ops[w++] = s->ops[i];
    }
    s->nops = w;
}

static void *runner_main(void *arg)
{
    harvbk_scheduler *s = arg;
    harvbk_ctx *ctx = s->ctx;
    hb_log_info(&ctx->log, "schedule runner started");
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        reap(s, false);
        int64_t now = hb_now_ms();
        /* the schedules (and the catalog) are read only when something is
         * due, or every RESCAN_MS to see other processes' changes; a wake-up
         * that only reaps finished passes reads nothing */
        if (now >= s->due_at && s->nops < MAX_PASSES) {
            harvbk_op *op = NULL;
            int rc = harvbk_schedule_run_due(&op, ctx, now, &s->opts);
            if (rc == 0 && op)
                s->ops[s->nops++] = op;
            else if (rc && rc != HARVBK_E_MAINTENANCE) {
                char m[HB_ERRMSG_MAX];
                harvbk_ctx_errmsg_copy(ctx, m, sizeof m);
                hb_log_warn(&ctx->log, "schedule runner: %s", m);
            }
            int64_t next = -1;
            s->due_at = now + RESCAN_MS;
            if (harvbk_schedule_next_due(ctx, hb_now_ms(), &next) == 0 && next >= 0 &&
                next < s->due_at)
                s->due_at = next;
            if (s->due_at < now + 1000) /* one that could not run: not in a tight loop */
                s->due_at = now + 1000;
        }
        if (now >= s->sync_at) {
            hb_err e;
            hb_err_clear(&e);
            int64_t sync_next = 0; /* 0: no periodic sync is configured */
            if (hb_sync_if_due(ctx, now, &sync_next, &e) != 0)
                hb_log_warn(&ctx->log, "schedule runner: catalog sync: %s", e.msg);
            s->sync_at = sync_next > 0 ? sync_next : now + RESCAN_MS;
        }
        int64_t wake = HB_MIN(s->due_at, s->sync_at);
        if (s->nops && wake > now + 1000)
            wake = now + 1000; /* reap finished passes soon */
        int64_t wait = wake - hb_now_ms();
        if (wait < 0)
            wait = 0;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&s->mu);
    }
    reap(s, true);
    hb_log_info(&ctx->log, "schedule runner stopped");
    return NULL;
}

int harvbk_scheduler_start(harvbk_scheduler **out, harvbk_ctx *ctx,
                           const harvbk_schedule_run_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, __func__);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", __func__);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_scheduler *s = hb_calloc(1, sizeof *s);
    if (!s)
        return hb_ctx_failf(ctx, HARVBK_E_NOMEM, "out of memory");
    /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_SCHEDULE_RUN, &s->opts, opts, &e);
    if (rc == 0)
        rc = hb_sched_run_opts_check(&s->opts, &e);
    if (rc) {
        hb_free(s);
        return hb_ctx_fail_rc(ctx, rc, &e);
    }
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    hb_cond_init_mono(&s->cv);
    int err = hb_thread_start(&s->thread, runner_main, s);
    if (err) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        hb_free(s);
        return hb_ctx_failf(ctx, HARVBK_E_ERROR, "cannot start the schedule runner: %s",
                            strerror(err));
    }
    *out = s;
    return 0;
}

void harvbk_scheduler_stop(harvbk_scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    hb_free(s);
}
