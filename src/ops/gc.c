/*
 * ops/gc.c - harvbk_gc: mark-and-sweep of the target's chunks.
 *
 * Lease protocol (docs/FORMAT.md "Concurrency"): gc publishes its "gc" lease
 * and then looks for live "writer" leases (any owner, this context's own
 * included); a backup publishes its writer lease and then waits while a gc
 * lease lives. Whichever publishes second sees the other, so a sweep never
 * runs while a backup writes. One gc per context at a time.
 * harvbk_snapshot_gc is the same over the context's local snapshot store.
 */
#include "ops.h"

#include <string.h>

static int gc_run(harvbk_op *op, hb_err *e)
{
    harvbk_ctx *ctx = op->ctx;
    hb_store *st = op->sref->st;
    uint64_t t0 = hb_mono_ms();
    hb_lease *lease = NULL;
    hb_gc_stats stats = { 0, 0, 0, 0 };
    hb_log_info(&ctx->log, "gc of %s started", st->t->display);
    int rc = hb_lease_acquire(st, "gc", ctx->owner, &lease, e);
    if (rc == 0) {
        unsigned writers = 0;
        rc = hb_lease_count_live(st, "writer", NULL, &writers, e);
        if (rc)
            hb_err_prefix(e, "cannot check for running backups");
        else if (writers > 0)
            rc = hb_seterr(e, HARVBK_E_BUSY,
                           "a backup is being written to the target (by %u writer(s)); try "
                           "again later",
                           writers);
    }
    if (rc == 0 && hb_op_cancelled(op))
        rc = hb_seterr(e, HARVBK_E_CANCELLED, "gc cancelled");
    if (rc == 0) {
        hb_job job;
        hb_op_job(op, st, &job);
        job.lease = lease; /* gc stops before deleting if its lease lapsed */
        rc = hb_engine_gc(&job, &stats, e);
        if (rc == HARVBK_E_CANCELLED || (rc && hb_op_cancelled(op)))
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "gc cancelled");
    }
    hb_lease_release(lease);
    op->gc_chunks = stats.removed_chunks;
    op->gc_bytes = stats.removed_bytes;
    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0)
        hb_log_info(&ctx->log, "gc of %s done: %llu of %llu chunks referenced, %llu chunks "
                    "(%llu bytes) removed in %llu.%03llu s",
                    st->t->display, (unsigned long long)stats.referenced_chunks,
                    (unsigned long long)stats.total_chunks,
                    (unsigned long long)stats.removed_chunks,
                    (unsigned long long)stats.removed_bytes, (unsigned long long)(ms / 1000),
                    (unsigned long long)(ms % 1000));
    else
        hb_log_warn(&ctx->log, "gc of %s ended after %llu ms: %s", st->t->display,
                    (unsigned long long)ms, e->msg);
    pthread_mutex_lock(&ctx->mu);
    ctx->gc_running = false;
    pthread_mutex_unlock(&ctx->mu);
    return rc;
}

static int gc_start(harvbk_op **out, harvbk_ctx *ctx, int kind, const harvbk_op_options *opts,
                    hb_err *e)
{
    hb_store_ref *ref = NULL;
    int rc = hb_kind_store_acquire(ctx, kind, kind == HB_ENTRY_SNAPSHOT, &ref, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&ctx->mu);
    bool busy = ctx->gc_running;
    ctx->gc_running = true;
    pthread_mutex_unlock(&ctx->mu);
    if (busy) {
        hb_ctx_store_release(ctx, ref);
        return hb_seterr(e, HARVBK_E_BUSY, "a gc of this context is already running");
    }
    harvbk_op *op = NULL;
    rc = hb_op_new(&op, ctx, "gc", ref, opts->progress_cb, opts->progress_payload, gc_run, NULL,
                   NULL, e);
    if (rc == 0 && (rc = hb_op_start(op, e)) != 0) {
        hb_op_discard(op); /* releases ref */
        ref = NULL;
    }
    if (rc) {
        hb_ctx_store_release(ctx, ref);
        pthread_mutex_lock(&ctx->mu);
        ctx->gc_running = false;
        pthread_mutex_unlock(&ctx->mu);
        return rc;
    }
    *out = op;
    return 0;
}

static int gc_public(const char *fn, harvbk_op **out, harvbk_ctx *ctx, int kind,
                     const harvbk_op_options *opts)
{
    if (!hb_ctx_ok(ctx))
        return hb_ctx_bad(ctx, fn);
    if (!out)
        return hb_ctx_failf(ctx, HARVBK_E_INVALID, "%s: out is NULL", fn);
    *out = NULL;
    hb_err e;
    hb_err_clear(&e);
    harvbk_op_options o; /* only the members of the caller's version are read */
    int rc = hb_opts_take(HB_OPTS_OP, &o, opts, &e);
    opts = &o;
    if (rc == 0 && kind == HB_ENTRY_BACKUP && hb_ctx_target_read_only(ctx))
        rc = hb_seterr(&e, HARVBK_E_READ_ONLY, "the backup target is read-only: no gc");
    if (rc == 0)
        rc = gc_start(out, ctx, kind, opts, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}

int harvbk_gc(harvbk_op **out, harvbk_ctx *ctx, const harvbk_op_options *opts)
{
    return gc_public(__func__, out, ctx, HB_ENTRY_BACKUP, opts);
}

int harvbk_snapshot_gc(harvbk_op **out, harvbk_ctx *ctx, const harvbk_op_options *opts)
{
    return gc_public(__func__, out, ctx, HB_ENTRY_SNAPSHOT, opts);
}

int harvbk_gc_result(const harvbk_op *op, uint64_t *out_chunks, uint64_t *out_bytes)
{
    if (!op || op->magic != HB_OP_MAGIC)
        return hb_op_bad(op, __func__);
    if (strcmp(op->kind, "gc") != 0)
        return hb_fail(HARVBK_E_INVALID, "%s: op is a %s operation, not a gc", __func__,
                       op->kind);
    int state = harvbk_op_state(op);
    if (state == HARVBK_STATE_INPROGRESS)
        return hb_fail(HARVBK_E_STATE, "%s: the gc still runs (wait for it first)", __func__);
    /* written by the op thread before the state became final (under op->mu) */
    if (out_chunks)
        *out_chunks = op->gc_chunks;
    if (out_bytes)
        *out_bytes = op->gc_bytes;
    return 0;
}
