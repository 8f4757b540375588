/*
 * ops/op.c - operation handles.
 *
 * Each operation runs on its own joinable thread (signals blocked, so the
 * embedding program's handlers keep running on its own threads). The handle
 * is shared by the caller and the context's list of not-yet-joined ops (two
 * references). Whoever comes first joins the thread: harvbk_op_free() or
 * harvbk_ctx_free(); the context detaches from the op under op->mu, so an op
 * handle outlives its context.
 *
 * The thread's last steps publish the end in this order: store reference
 * released, context's running count decremented, then the op's state and
 * result under op->mu with a broadcast. So when harvbk_op_wait() returns,
 * everything the operation held (record lock, leases, registry entries, the
 * store) is already released.
 */
#include "ops.h"
#include "../core/ticker.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static bool op_ok(const harvbk_op *op)
{
    return op && op->magic == HB_OP_MAGIC;
}

int hb_op_bad(const harvbk_op *op, const char *fn)
{
    if (!op)
        return hb_fail(HARVBK_E_INVALID, "%s: op is NULL", fn);
    return hb_fail(HARVBK_E_INVALID, "%s: op is not a valid operation (freed, or not a harvbk_op)",
                   fn);
}

int hb_op_new(harvbk_op **out, harvbk_ctx *ctx, const char *kind, hb_store_ref *sref,
              harvbk_progress_cb cb, void *payload, hb_op_run_fn run, hb_op_free_fn free_job,
              void *job, hb_err *e)
{
    *out = NULL;
    harvbk_op *op = hb_calloc(1, sizeof *op);
    if (!op)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (hb_cond_init_mono(&op->cv) != 0) {
        hb_free(op);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot create an operation");
    }
    if (hb_cond_init_mono(&op->prog_cv) != 0) {
        pthread_cond_destroy(&op->cv);
        hb_free(op);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot create an operation");
    }
    pthread_mutex_init(&op->mu, NULL);
    pthread_mutex_init(&op->join_mu, NULL);
    pthread_mutex_init(&op->prog_mu, NULL);
    atomic_init(&op->prog_vetoed, false);
    op->magic = HB_OP_MAGIC;
    op->kind = kind;
    op->state = HARVBK_STATE_INPROGRESS;
    atomic_init(&op->done, 0);
    atomic_init(&op->total, 0);
    atomic_init(&op->cancel, 0);
    atomic_init(&op->refs, 1);
    op->ctx = ctx;
    op->sref = sref;
    op->progress_cb = cb;
    op->progress_payload = payload;
    op->run = run;
    op->free_job = free_job;
    op->job = job;
    op->reg.fd = -1;
    *out = op;
    return 0;
}

static void op_destroy(harvbk_op *op)
{
    hb_sched_pass_free(op->sched);
    for (size_t i = 0; i < op->nretained; i++)
        hb_free(op->retained[i]);
    hb_free(op->retained);
    pthread_mutex_destroy(&op->mu);
    pthread_mutex_destroy(&op->join_mu);
    pthread_mutex_destroy(&op->prog_mu);
    pthread_cond_destroy(&op->cv);
    pthread_cond_destroy(&op->prog_cv);
    op->magic = HB_OP_DEAD;
    hb_free(op);
}

static void op_unref(harvbk_op *op)
{
    if (atomic_fetch_sub(&op->refs, 1) == 1)
        op_destroy(op);
}

void hb_op_discard(harvbk_op *op)
{
    if (!op)
        return;
    if (op->free_job && op->job)
        op->free_job(op->job);
    op->job = NULL;
    hb_opreg_remove(&op->reg);
    if (op->sref)
        hb_ctx_store_release(op->ctx, op->sref);
    op->sref = NULL;
    op_destroy(op);
}

/* ---- the progress thread ---- */

static void prog_wait_until(harvbk_op *op, uint64_t mono_ms)
{
    hb_cond_wait_until_ms(&op->prog_cv, &op->prog_mu, mono_ms);
}

/* Calls op->progress_cb: periodically when the counters moved, for flushes,
 * and once at a successful end. Calls start at least
 * HB_PROGRESS_INTERVAL_MS apart; prog_mu is released during each call. */
static void *prog_main(void *arg)
{
    harvbk_op *op = arg;
    bool called = false;
    uint64_t last_ms = 0, told_done = 0, told_total = 0;
    pthread_mutex_lock(&op->prog_mu);
    for (;;) {
        unsigned req = op->prog_flush_req;
        bool stop = op->prog_stop;
        bool vetoed = atomic_load(&op->prog_vetoed);
        uint64_t done = atomic_load(&op->done), total = atomic_load(&op->total);
        bool moved = done != told_done || total != told_total;
        bool want;
        if (vetoed)
            want = false; /* it said stop: never called again */
        else if (stop)
            want = op->prog_final && (moved || !called);
        else if (req != op->prog_flush_done)
            want = moved || !called;
        else
            want = moved;
        uint64_t now = hb_mono_ms();
        if (want && called && now < last_ms + HB_PROGRESS_INTERVAL_MS) {
            prog_wait_until(op, last_ms + HB_PROGRESS_INTERVAL_MS);
            continue; /* re-read: more may have happened meanwhile */
        }
        if (want) {
            pthread_mutex_unlock(&op->prog_mu);
            int r = op->progress_cb(done, total, op->progress_payload);
            pthread_mutex_lock(&op->prog_mu);
            called = true;
            last_ms = now;
            told_done = done;
            told_total = total;
            if (r != 0) {
                atomic_store(&op->prog_vetoed, true);
                atomic_store(&op->cancel, 1);
            }
            if (stop)
                break; /* the last call */
        }
        /* every flush requested before the counters were read is served */
        if (req != op->prog_flush_done) {
            op->prog_flush_done = req;
            pthread_cond_broadcast(&op->prog_cv);
        }
        if (want)
            continue;
        if (stop)
            break;
        prog_wait_until(op, hb_mono_ms() + HB_PROGRESS_INTERVAL_MS);
    }
    op->prog_flush_done = op->prog_flush_req;
    pthread_cond_broadcast(&op->prog_cv);
    pthread_mutex_unlock(&op->prog_mu);
    return NULL;
}

/* Stop the progress thread (after one last call when `final` and due) and
 * join it. */
static void prog_end(harvbk_op *op, bool final)
{
    if (!op->prog_started)
        return;
    pthread_mutex_lock(&op->prog_mu);
    op->prog_stop = true;
    op->prog_final = final;
    pthread_cond_broadcast(&op->prog_cv);
    pthread_mutex_unlock(&op->prog_mu);
    pthread_join(op->prog_thread, NULL);
    op->prog_started = false;
}

void hb_op_progress_flush(harvbk_op *op)
{
    if (!op->prog_started)
        return;
    pthread_mutex_lock(&op->prog_mu);
    unsigned ticket = ++op->prog_flush_req;
    pthread_cond_broadcast(&op->prog_cv);
    while ((int)(op->prog_flush_done - ticket) < 0)
        pthread_cond_wait(&op->prog_cv, &op->prog_mu);
    pthread_mutex_unlock(&op->prog_mu);
}

static void *op_main(void *arg)
{
    harvbk_op *op = arg;
    harvbk_ctx *ctx = op->ctx; /* cleared only after this thread was joined */
    hb_err e;
    hb_err_clear(&e);
    int rc = op->run(op, &e); /* frees op->job */
    op->job = NULL;
    /* the progress hook's last call, before the op is seen to end */
    if (rc == 0 && atomic_load(&op->done) < atomic_load(&op->total))
        atomic_store(&op->done, atomic_load(&op->total));
    prog_end(op, rc == 0);
    hb_opreg_remove(&op->reg);
    if (rc && e.code == 0)
        hb_seterr(&e, rc, NULL);
    if (rc == 0)
        hb_err_clear(&e);

    hb_store_ref *sref = op->sref;
    op->sref = NULL;
    hb_ctx_store_release(ctx, sref);
    pthread_mutex_lock(&ctx->mu);
    ctx->nrunning--;
    pthread_cond_broadcast(&ctx->cv);
    pthread_mutex_unlock(&ctx->mu);

    pthread_mutex_lock(&op->mu);
    op->result = rc;
    op->state = rc ? HARVBK_STATE_ERROR : HARVBK_STATE_READY;
    memcpy(op->errmsg, rc ? e.msg : "", rc ? sizeof op->errmsg : 1);
    pthread_cond_broadcast(&op->cv);
    pthread_mutex_unlock(&op->mu);
    return NULL;
}

int hb_op_start(harvbk_op *op, hb_err *e)
{
    harvbk_ctx *ctx = op->ctx;
    int rc = hb_op_register(ctx, op, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&ctx->mu);
    if (ctx->closing) {
        pthread_mutex_unlock(&ctx->mu);
        hb_opreg_remove(&op->reg);
        return hb_seterr(e, HARVBK_E_BUSY, "the context is being closed");
    }
    ctx->nrunning++;
    pthread_mutex_unlock(&ctx->mu);

    int err = 0;
    if (op->progress_cb) {
        err = hb_thread_start(&op->prog_thread, prog_main, op);
        op->prog_started = err == 0;
    }
    if (err == 0) {
        op->started = true;
        err = hb_thread_start(&op->thread, op_main, op);
    }
    if (err)
        prog_end(op, false); /* nothing ran: no call was due */

    pthread_mutex_lock(&ctx->mu);
    if (err) {
        op->started = false;
        ctx->nrunning--;
    } else {
        atomic_fetch_add(&op->refs, 1); /* the context's list */
        op->next = ctx->ops;
        ctx->ops = op;
    }
    pthread_mutex_unlock(&ctx->mu);
    if (err)
        hb_opreg_remove(&op->reg);
    if (err)
        return hb_seterr(e, err == EAGAIN ? HARVBK_E_NOMEM : HARVBK_E_ERROR,
                         "cannot start the %s thread: %s", op->kind, strerror(err));
    return 0;
}

static void op_join(harvbk_op *op)
{
    pthread_mutex_lock(&op->join_mu);
    if (op->started && !op->joined) {
        pthread_join(op->thread, NULL);
        op->joined = true;
    }
    pthread_mutex_unlock(&op->join_mu);
}

void hb_op_ctx_release_all(harvbk_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    ctx->closing = true;
    harvbk_op *list = ctx->ops;
    ctx->ops = NULL;
    for (harvbk_op *op = list; op; op = op->next)
        atomic_store(&op->cancel, 1);
    pthread_mutex_unlock(&ctx->mu);
    while (list) {
        harvbk_op *op = list;
        list = op->next;
        op_join(op);
        pthread_mutex_lock(&op->mu);
        op->ctx = NULL;
        op->next = NULL;
        pthread_mutex_unlock(&op->mu);
        op_unref(op);
    }
}

void harvbk_op_free(harvbk_op *op)
{
    if (!op_ok(op))
        return;
    atomic_store(&op->cancel, 1);
    op_join(op);
    bool removed = false;
    pthread_mutex_lock(&op->mu);
    harvbk_ctx *ctx = op->ctx;
    if (ctx) {
        pthread_mutex_lock(&ctx->mu);
        for (harvbk_op **pp = &ctx->ops; *pp; pp = &(*pp)->next) {
            if (*pp == op) {
                *pp = op->next;
                removed = true;
                break;
            }
        }
        pthread_mutex_unlock(&ctx->mu);
        if (removed)
            op->ctx = NULL;
    }
    pthread_mutex_unlock(&op->mu);
    if (removed)
        op_unref(op);
    op_unref(op);
}

/* ---- waiting, state ---- */

int harvbk_op_wait(harvbk_op *op)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    pthread_mutex_lock(&op->mu);
    while (op->state == HARVBK_STATE_INPROGRESS)
        pthread_cond_wait(&op->cv, &op->mu);
    int rc = op->result;
    char msg[HB_ERRMSG_MAX];
    memcpy(msg, op->errmsg, sizeof msg);
    pthread_mutex_unlock(&op->mu);
    /* the operation's failure is this call's: the thread's last error too */
    return rc ? hb_fail(rc, "%s", msg) : 0;
}

int harvbk_op_wait_timeout(harvbk_op *op, uint64_t timeout_ms)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + (timeout_ms % 1000u) * 1000000u;
    uint64_t secs = timeout_ms / 1000u + ns / 1000000000u;
    dl.tv_nsec = (long)(ns % 1000000000u);
    if (secs > (uint64_t)INT32_MAX * 64) /* "forever" for any practical purpose */
        secs = (uint64_t)INT32_MAX * 64;
    dl.tv_sec += (time_t)secs;
    pthread_mutex_lock(&op->mu);
    int err = 0;
    while (op->state == HARVBK_STATE_INPROGRESS && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&op->cv, &op->mu, &dl);
    int rc = op->state == HARVBK_STATE_INPROGRESS ? HARVBK_E_TIMEOUT : 0;
    pthread_mutex_unlock(&op->mu);
    if (rc)
        return hb_fail(rc, "%s: the %s operation still runs after %llu ms", __func__, op->kind,
                       (unsigned long long)timeout_ms);
    return 0;
}

int harvbk_op_cancel(harvbk_op *op)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    atomic_store(&op->cancel, 1);
    return 0;
}

int harvbk_op_state(const harvbk_op *op)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    harvbk_op *o = (harvbk_op *)op; /* the lock is not part of the value */
    pthread_mutex_lock(&o->mu);
    int s = o->state;
    pthread_mutex_unlock(&o->mu);
    return s;
}

int harvbk_op_result(const harvbk_op *op)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    harvbk_op *o = (harvbk_op *)op;
    pthread_mutex_lock(&o->mu);
    int r = o->result;
    pthread_mutex_unlock(&o->mu);
    return r;
}

int harvbk_op_progress(const harvbk_op *op, uint64_t *out_done, uint64_t *out_total)
{
    if (!op_ok(op))
        return hb_op_bad(op, __func__);
    harvbk_op *o = (harvbk_op *)op;
    if (out_done)
        *out_done = atomic_load(&o->done);
    if (out_total)
        *out_total = atomic_load(&o->total);
    return 0;
}

size_t harvbk_op_errmsg_copy(const harvbk_op *op, char *buf, size_t size)
{
    if (!op_ok(op)) {
        if (buf && size)
            buf[0] = '\0';
        return 0;
    }
    harvbk_op *o = (harvbk_op *)op;
    pthread_mutex_lock(&o->mu);
    size_t len = strlen(o->errmsg);
    if (buf && size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, o->errmsg, n);
        buf[n] = '\0';
    }
    pthread_mutex_unlock(&o->mu);
    return len;
}

const char *harvbk_op_kind(const harvbk_op *op)
{
    return op_ok(op) ? op->kind : "";
}

/* ---- helpers for the operations ---- */

int hb_op_progress(uint64_t delta, void *ud)
{
    harvbk_op *op = ud;
    atomic_fetch_add(&op->done, delta);
    return atomic_load(&op->cancel) != 0;
}

static void op_progress_total(uint64_t total, void *ud)
{
    harvbk_op *op = ud;
    atomic_store(&op->total, total);
}

static void op_progress_flush(void *ud)
{
    hb_op_progress_flush(ud);
}

void hb_op_job(harvbk_op *op, hb_store *st, hb_job *job)
{
    memset(job, 0, sizeof *job);
    job->st = st;
    job->log = &op->ctx->log;
    job->threads = op->ctx->threads;
    job->cancel = &op->cancel;
    job->progress = hb_op_progress;
    job->progress_ud = op;
    job->progress_total = op_progress_total;
    job->progress_flush = op_progress_flush;
}

bool hb_op_cancelled(harvbk_op *op)
{
    return atomic_load(&op->cancel) != 0;
}

bool hb_op_sleep(harvbk_op *op, uint64_t ms)
{
    uint64_t end = hb_mono_ms() + ms;
    while (!hb_op_cancelled(op)) {
        uint64_t now = hb_mono_ms();
        if (now >= end)
            return false;
        uint64_t step = HB_MIN(end - now, 50u);
        struct timespec ts = { 0, (long)(step * 1000000u) };
        nanosleep(&ts, NULL);
    }
    return true;
}
