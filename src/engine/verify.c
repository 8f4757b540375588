/*
 * engine/verify.c - fetch and check every distinct chunk of a volume index.
 *
 * The calling thread walks the index and queues each id once (ids already in
 * the caller's `checked` set are skipped); workers fetch the chunk,
 * hb_store_chunk_get decompresses and re-hashes it. Verified ids are added to
 * `checked` so later volumes and backups sharing chunks do not fetch them again.
 */
#include "pipeline.h"

#include <inttypes.h>
#include <string.h>

#define VF_PROGRESS_BATCH (256ull << 20)

typedef struct vf_item {
    uint64_t i;
} vf_item;

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
    hb_pool items;
    hb_pool workers;
} vf_ctx;

static int vf_chunk(vf_ctx *c, uint64_t i)
{
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

static void vf_work(void *job, void *arg)
{
    vf_item *it = job;
    vf_ctx *c = arg;
    if (!hb_pipe_stopped(&c->pipe) && vf_chunk(c, it->i) == 0)
        hb_pipe_progress(&c->pipe, hb_index_chunk_len(c->ix, it->i));
    hb_pool_put(&c->items, it);
}

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
    vf_item *items = hb_calloc(nitems, sizeof *items);
    hb_dset *seen = hb_dset_new(1024); /* queued by this call */
    hb_workq *q = NULL;
    int rc;
    if (!workers || !items || !seen || hb_pool_init(&c.items, nitems) < 0 ||
        hb_pool_init(&c.workers, nworkers) < 0) {
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
    for (size_t k = 0; k < nitems; k++)
        hb_pool_put(&c.items, &items[k]);
    rc = hb_workq_new(&q, nworkers, nitems, vf_work, &c);
    if (rc < 0) {
        q = NULL;
        hb_pipe_failf(&c.pipe, rc, "cannot start worker threads");
        goto done;
    }

    uint64_t pending = 0;
    for (uint64_t i = 0; i < ix->count; i++) {
        if (hb_pipe_stopped(&c.pipe))
            break;
        uint32_t len = hb_index_chunk_len(ix, i);
        bool skip = hb_index_is_hole(ix, i);
        if (!skip) {
            const uint8_t *id = hb_index_id(ix, i);
            if (checked) {
                pthread_mutex_lock(&hb_engine_set_mu);
                skip = hb_dset_has(checked, id);
                pthread_mutex_unlock(&hb_engine_set_mu);
            }
            if (!skip) {
                int r = hb_dset_add(seen, id);
                if (r < 0) {
                    hb_pipe_failf(&c.pipe, HARVBK_E_NOMEM, "out of memory");
                    break;
                }
                skip = r == 0; /* already queued by this call */
            }
        }
        if (skip) {
            pending += len;
            if (pending >= VF_PROGRESS_BATCH) {
                if (!hb_pipe_progress(&c.pipe, pending))
                    break;
                pending = 0;
            }
            continue;
        }
        if (pending && !hb_pipe_progress(&c.pipe, pending))
            break;
        pending = 0;
        vf_item *it = hb_pool_get(&c.items);
        it->i = i;
        rc = hb_workq_submit(q, it);
        if (rc < 0) {
            hb_pool_put(&c.items, it);
            hb_pipe_failf(&c.pipe, rc, "cannot queue work");
            break;
        }
    }
    hb_workq_free(q);
    q = NULL;
    if (pending)
        hb_pipe_progress(&c.pipe, pending);

done:
    hb_workq_free(q);
    rc = hb_pipe_result(&c.pipe, e);
    if (workers)
        for (unsigned k = 0; k < nworkers; k++) {
            hb_engine_buf_free(workers[k].raw);
            hb_buf_free(&workers[k].scratch);
        }
    hb_free(workers);
    hb_free(items);
    if (seen)
        hb_dset_free(seen);
    hb_pool_destroy(&c.items);
    hb_pool_destroy(&c.workers);
    hb_pipe_destroy(&c.pipe);
    if (rc == 0)
        hb_log_debug(job->log, "verified volume '%s'", name);
    return rc;
}
