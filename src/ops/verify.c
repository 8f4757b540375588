/*
 * ops/verify.c - harvbk_backup_verify: read the manifest, every volume index
 * and every distinct chunk they reference, checking each against its id.
 * The backup is registered as "being read" (in this process and by a shared
 * read lock in the state directory) so that a delete is refused.
 */
#include "ops.h"
#include "../state/locks.h"

#include <string.h>

typedef struct verify_job {
    harvbk_ctx *ctx;
    int kind;
    char *ns, *name;
    int read_fd;                   /* the backup's shared read lock */
} verify_job;

static void verify_job_free(void *p)
{
    verify_job *j = p;
    if (!j)
        return;
    if (j->read_fd >= 0)
        hb_readlock_release_k(&j->ctx->state, j->kind, j->ns, j->name, false, j->read_fd);
    hb_free(j->ns);
    hb_free(j->name);
    hb_free(j);
}

static int verify_run(harvbk_op *op, hb_err *e)
{
    verify_job *j = op->job;
    harvbk_ctx *ctx = op->ctx;
    hb_store *st = op->sref->st;
    uint64_t t0 = hb_mono_ms();
    hb_manifest m;
    hb_dset *checked = NULL;
    uint64_t chunks = 0;
    const char *word = hb_entry_word(j->kind);
    hb_log_info(&ctx->log, "verify of %s %s/%s started", word, j->ns, j->name);
    int rc = hb_store_manifest_read(st, hb_entry_dir(j->kind), j->ns, j->name, &m, e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(e, rc, "%s %s/%s was deleted", word, j->ns, j->name);
    if (rc == 0) {
        uint64_t total = 0;
        for (size_t i = 0; i < m.nvols; i++) {
            total += m.vols[i].size; /* the engine reports holes and dedup'd chunks too */
            chunks += m.vols[i].data_chunks;
        }
        atomic_store(&op->total, total);
        if (!(checked = hb_dset_new((size_t)HB_MIN(chunks, (uint64_t)1 << 24))))
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_job job;
    hb_op_job(op, st, &job);
    for (size_t i = 0; rc == 0 && i < m.nvols; i++) {
        if (hb_op_cancelled(op)) {
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "verify of %s %s/%s cancelled", word, j->ns,
                           j->name);
            break;
        }
        hb_index ix;
        rc = hb_store_index_read(st, hb_entry_dir(j->kind), &m, &m.vols[i], &ix, e);
        if (rc == 0) {
            rc = hb_engine_verify_volume(&job, &ix, m.vols[i].name, checked, e);
            hb_index_clear(&ix);
        }
        if (rc == HARVBK_E_CANCELLED || (rc && hb_op_cancelled(op)))
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "verify of %s %s/%s cancelled", word, j->ns,
                           j->name);
    }
    if (rc == 0) { /* the progress hook hears of the end while the entry is still held */
        atomic_store(&op->done, atomic_load(&op->total));
        hb_op_progress_flush(op);
        if (hb_op_cancelled(op))
            rc = hb_seterr(e, HARVBK_E_CANCELLED, "verify of %s %s/%s cancelled", word, j->ns,
                           j->name);
    }
    uint64_t ms = hb_mono_ms() - t0;
    if (rc == 0) {
        hb_log_info(&ctx->log, "verify of %s %s/%s OK: %zu volume(s), %zu distinct chunks "
                    "checked in %llu.%03llu s", word, j->ns, j->name, m.nvols,
                    hb_dset_count(checked),
                    (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
    } else {
        hb_log_error(&ctx->log, "verify of %s %s/%s failed after %llu ms: %s", word, j->ns,
                     j->name, (unsigned long long)ms, e->msg);
    }
    hb_dset_free(checked);
    hb_manifest_clear(&m);
    if (j->kind == HB_ENTRY_BACKUP)
        hb_ctx_use_del(ctx, HB_USE_READ, j->ns, j->name);
    verify_job_free(j);
    return rc;
}

static int verify_start(harvbk_op **out, harvbk_ctx *ctx, int kind, const char *ns,
                        const char *name, const harvbk_op_options *opts, hb_err *e)
{
    int rc = hb_check_name("namespace", ns, e);
    if (rc == 0)
        rc = hb_check_name(kind == HB_ENTRY_SNAPSHOT ? "snapshot name" : "backup name", name, e);
    if (rc)
        return rc;
    verify_job *j = hb_calloc(1, sizeof *j);
    if (j) {
        j->ctx = ctx;
        j->kind = kind;
        j->read_fd = -1;
    }
    if (!j || !(j->ns = hb_strdup(ns)) || !(j->name = hb_strdup(name))) {
        verify_job_free(j);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    hb_store_ref *ref = NULL;
    harvbk_op *op = NULL;
    bool used = false;
    rc = hb_kind_store_acquire(ctx, kind, false, &ref, e);
    if (rc == HARVBK_E_NOTFOUND)
        hb_seterr(e, rc, "snapshot %s/%s not found", ns, name);
    if (rc)
        goto fail;
    if (kind == HB_ENTRY_BACKUP) {
        if ((rc = hb_ctx_use_add(ctx, HB_USE_READ, ns, name, e)))
            goto fail;
        used = true;
    }
    if ((rc = hb_readlock_try_k(&ctx->state, kind, ns, name, false, &j->read_fd, e)))
        goto fail;
    /* exists? (NOTFOUND / STATE now; a damaged manifest is the verify's finding) */
    char *mkey = hb_key_manifest(hb_entry_dir(kind), ns, name);
    uint64_t size;
    rc = mkey ? hb_target_head(ref->st->t, mkey, &size, e) : hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_free(mkey);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_manifest m;
        hb_err_clear(e);
        rc = hb_entry_manifest_load(ctx, ref->st, kind, ns, name, &m, e);
        hb_manifest_clear(&m);
    }
    if (rc)
        goto fail;
    if ((rc = hb_op_new(&op, ctx, "verify", ref, opts->progress_cb, opts->progress_payload,
                        verify_run, verify_job_free, j, e)))
        goto fail;
    ref = NULL;
    if ((rc = hb_op_start(op, e)))
        goto fail;
    *out = op;
    return 0;
fail:
    if (used)
        hb_ctx_use_del(ctx, HB_USE_READ, ns, name);
    if (op) {
        hb_op_discard(op);
    } else {
        hb_ctx_store_release(ctx, ref);
        verify_job_free(j);
    }
    return rc;
}

int harvbk_backup_verify(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                         const char *name, const harvbk_op_options *opts)
{
    return hb_entry_verify(__func__, out, ctx, HB_ENTRY_BACKUP, namespace_, name, opts);
}

int hb_entry_verify(const char *fn, harvbk_op **out, harvbk_ctx *ctx, int kind,
                    const char *namespace_, const char *name, const harvbk_op_options *opts)
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
    if (rc == 0)
        rc = verify_start(out, ctx, kind, namespace_, name, opts, &e);
    return hb_ctx_fail_rc(ctx, rc, &e);
}
