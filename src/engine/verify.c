/*
 * engine/verify.c - fetch and check every distinct chunk of a volume index.
 *
 * The calling thread walks the index (hb_pipe_walk_run) and queues each id once (ids already in
 * the caller's `checked` set are skipped); workers fetch the chunk,
 * hb_store_chunk_get decompresses and re-hashes it. Verified ids are added to
 * `checked` so later volumes and backups sharing chunks do not fetch them again.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <string.h>

typedef struct vf_worker {
    uint8_t *raw;
    hb_buf scratch;
} vf_worker;

typedef struct vf_ctx {
    hb_pipe pipe;
    hb_store *st;
    const hb_index *ix;
    const char *volname;
    hb_dset *checked; /* caller's, under hb_engine_set_mu; may be NULL */
    hb_dset *seen;    /* queued by this call (calling thread only) */
    hb_pool workers;
} vf_ctx;

/* Worker: fetch and check chunk it->i. */
static int vf_chunk(void *ctx, hb_walk_item *it)
{
    vf_ctx *c = ctx;
    uint64_t i = it->i;
    const uint8_t *id = hb_index_id(c->ix, i);
    uint32_t len = hb_index_chunk_len(c->ix, i);
    vf_worker *w = hb_pool_get(&c->workers);
    hb_err e;
    hb_err_clear(&e);
    size_t got = 0;
    int r = hb_store_chunk_get(c->st, id, w->raw, c->ix->chunk_size, &got, &w->scratch, &e);
    hb_pool_put(&c->workers, w);
    if (r < 0) {
        hb_err_prefix(&e, "volume '%s'", c->volname);
        return hb_pipe_fail(&c->pipe, r, &e);
    }
    if (got != len) {
        char hex[HB_DIGEST_HEX_LEN + 1];
        hb_hex(id, HB_DIGEST_LEN, hex);
        return hb_pipe_failf(&c->pipe, HARVBK_E_CHUNK,
                             "volume '%s': chunk %s has %zu bytes, the index expects %" PRIu32,
                             c->volname, hex, got, len);
    }
    if (c->checked) {
        pthread_mutex_lock(&hb_engine_set_mu);
        r = hb_dset_add(c->checked, id);
        pthread_mutex_unlock(&hb_engine_set_mu);
        if (r < 0)
            return hb_pipe_failf(&c->pipe, HARVBK_E_NOMEM, "out of memory");
    }
    return 0;
}

/* Calling thread: skip holes, ids checked before and ids already queued. */
static int vf_visit(void *ctx, uint64_t i, uint64_t *bytes)
{
    vf_ctx *c = ctx;
    *bytes = hb_index_chunk_len(c->ix, i);
    if (hb_index_is_hole(c->ix, i))
        return HB_PIPE_SKIP;
    const uint8_t *id = hb_index_id(c->ix, i);
    if (c->checked) {
        pthread_mutex_lock(&hb_engine_set_mu);
        bool skip = hb_dset_has(c->checked, id);
        pthread_mutex_unlock(&hb_engine_set_mu);
        if (skip)
            return HB_PIPE_SKIP;
    }
    int r = hb_dset_add(c->seen, id);
    if (r < 0)
        return hb_pipe_failf(&c->pipe, HARVBK_E_NOMEM, "out of memory");
    if (r == 0)
        return HB_PIPE_SKIP; /* already queued by this call */
    hb_store_chunk_prefetch(c->st, id); /* read ahead (see restore.c, rs_visit) */
    return HB_PIPE_QUEUE;
}

static const hb_pipe_walk_ops vf_walk_ops = { .visit = vf_visit, .fill = NULL, .work = vf_chunk };

int hb_engine_verify_volume(hb_job *job, const hb_index *ix, const char *volume,
                            hb_dset *checked, hb_err *e)
{
    if (!job || !job->st || !ix)
        return hb_seterr(e, HARVBK_E_INVALID, "verify: missing argument");
    const char *name = volume ? volume : "?";
    if (ix->count && (ix->chunk_size == 0 || !ix->ids))
        return hb_seterr(e, HARVBK_E_INVALID, "volume '%s': empty index", name);

    vf_ctx c;
    memset(&c, 0, sizeof c);
    hb_pipe_init(&c.pipe, job);
    c.st = job->st;
    c.ix = ix;
    c.volname = name;
    c.checked = checked;

    unsigned nworkers = hb_pipe_workers(job);
    if (ix->count < nworkers)
        nworkers = ix->count ? (unsigned)ix->count : 1;
    size_t nitems = (size_t)nworkers * 2 + 2;
    vf_worker *workers = hb_calloc(nworkers, sizeof *workers);
    c.seen = hb_dset_new(1024);
    int rc;
    if (!workers || !c.seen || hb_pool_init(&c.workers, nworkers) < 0) {
        hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    if (ix->count == 0)
        goto done;
    for (unsigned k = 0; k < nworkers; k++) {
        workers[k].raw = hb_engine_buf_alloc(ix->chunk_size);
        if (!workers[k].raw) {
            hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory for chunk buffers");
            goto done;
        }
        hb_pool_put(&c.workers, &workers[k]);
    }
    hb_pipe_walk_run(&c.pipe, ix->count, nworkers, nitems, NULL, &vf_walk_ops, &c);

done:
    rc = hb_pipe_result(&c.pipe, e);
    if (workers)
        for (unsigned k = 0; k < nworkers; k++) {
            hb_engine_buf_free(workers[k].raw);
            hb_buf_free(&workers[k].scratch);
        }
    hb_free(workers);
    if (c.seen)
        hb_dset_free(c.seen);
    hb_pool_destroy(&c.workers);
    hb_pipe_destroy(&c.pipe);
    if (rc == 0)
        hb_log_debug(job->log, "verified volume '%s'", name);
    return rc;
}
