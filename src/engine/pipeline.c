/* engine/pipeline.c - bookkeeping shared by the backup, restore and verify
 * pipelines. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

pthread_mutex_t hb_engine_set_mu = PTHREAD_MUTEX_INITIALIZER;

static atomic_size_t buf_live, buf_peak;

unsigned hb_pipe_workers(const hb_job *job)
{
    unsigned n = job && job->threads ? job->threads : hb_default_threads();
    if (job && job->st && job->st->t && job->st->t->min_workers > n)
        n = job->st->t->min_workers;
    if (job && job->st && job->st->t && job->st->t->max_workers &&
        n > job->st->t->max_workers)
        n = job->st->t->max_workers;
    if (n < 1)
        n = 1;
    if (n > HB_ENGINE_MAX_WORKERS)
        n = HB_ENGINE_MAX_WORKERS;
    return n;
}

void hb_pipe_init(hb_pipe *p, hb_job *job)
{
    memset(p, 0, sizeof *p);
    p->job = job;
    atomic_init(&p->stop, 0);
    pthread_mutex_init(&p->err_mu, NULL);
    pthread_mutex_init(&p->prog_mu, NULL);
}

void hb_pipe_destroy(hb_pipe *p)
{
    pthread_mutex_destroy(&p->err_mu);
    pthread_mutex_destroy(&p->prog_mu);
}

int hb_pipe_fail(hb_pipe *p, int code, const hb_err *src)
{
    if (code == 0)
        code = HARVBK_E_ERROR;
    pthread_mutex_lock(&p->err_mu);
    if (p->code == 0) {
        p->code = code;
        if (src && src->msg[0])
            hb_seterr(&p->err, code, "%s", src->msg);
        else
            hb_seterr(&p->err, code, "%s", "");
    }
    pthread_mutex_unlock(&p->err_mu);
    atomic_store(&p->stop, 1);
    return code;
}

int hb_pipe_failf(hb_pipe *p, int code, const char *fmt, ...)
{
    hb_err e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    e.code = code;
    return hb_pipe_fail(p, code, &e);
}

bool hb_pipe_stopped(hb_pipe *p)
{
    if (atomic_load_explicit(&p->stop, memory_order_relaxed))
        return true;
    if (p->job && p->job->cancel && atomic_load(p->job->cancel)) {
        hb_pipe_fail(p, HARVBK_E_CANCELLED, NULL);
        return true;
    }
    if (p->job && p->job->deadline_ms && hb_mono_ms() >= p->job->deadline_ms) {
        hb_pipe_failf(p, HARVBK_E_TIMEOUT, "%s",
                      p->job->deadline_msg ? p->job->deadline_msg : "deadline passed");
        return true;
    }
    return false;
}

bool hb_pipe_progress(hb_pipe *p, uint64_t delta)
{
    if (hb_pipe_stopped(p))
        return false;
    if (!p->job || !p->job->progress || delta == 0)
        return true;
    bool ok = true;
    pthread_mutex_lock(&p->prog_mu);
    if (atomic_load(&p->stop)) {
        ok = false;
    } else if (p->job->progress(delta, p->job->progress_ud) != 0) {
        hb_pipe_fail(p, HARVBK_E_CANCELLED, NULL); /* before unlocking: no later call */
        ok = false;
    }
    pthread_mutex_unlock(&p->prog_mu);
    return ok;
}

int hb_pipe_result(hb_pipe *p, hb_err *e)
{
    pthread_mutex_lock(&p->err_mu);
    int code = p->code;
    if (code && e)
        *e = p->err;
    pthread_mutex_unlock(&p->err_mu);
    return code;
}

int hb_pool_init(hb_pool *pl, size_t cap)
{
    memset(pl, 0, sizeof *pl);
    pl->items = hb_calloc(cap ? cap : 1, sizeof *pl->items);
    if (!pl->items)
        return HARVBK_E_NOMEM;
    pl->cap = cap;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->cv, NULL);
    return 0;
}

void hb_pool_destroy(hb_pool *pl)
{
    if (!pl->items)
        return;
    pthread_mutex_destroy(&pl->mu);
    pthread_cond_destroy(&pl->cv);
    hb_free(pl->items);
    pl->items = NULL;
}

void hb_pool_put(hb_pool *pl, void *item)
{
    pthread_mutex_lock(&pl->mu);
    pl->items[pl->n++] = item;
    pthread_cond_signal(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

void *hb_pool_get(hb_pool *pl)
{
    pthread_mutex_lock(&pl->mu);
    while (pl->n == 0)
        pthread_cond_wait(&pl->cv, &pl->mu);
    void *it = pl->items[--pl->n];
    pthread_mutex_unlock(&pl->mu);
    return it;
}

/* ---- the chunk walk ---- */

typedef struct walk_run {
    hb_pipe *p;
    const hb_pipe_walk_ops *ops;
    void *ctx;
    hb_pool free_items;
} walk_run;

static void walk_work(void *job, void *arg)
{
    hb_walk_item *it = job;
    walk_run *w = arg;
    if (!hb_pipe_stopped(w->p) && w->ops->work(w->ctx, it) == 0)
        hb_pipe_progress(w->p, it->bytes);
    hb_pool_put(&w->free_items, it);
}

int hb_pipe_walk_run(hb_pipe *p, uint64_t count, unsigned workers, size_t nitems,
                     void *const *data, const hb_pipe_walk_ops *ops, void *ctx)
{
    if (workers < 1)
        workers = 1;
    if (nitems < 1)
        nitems = 1;
    walk_run w = { .p = p, .ops = ops, .ctx = ctx };
    hb_walk_item *items = hb_calloc(nitems, sizeof *items);
    hb_workq *q = NULL;
    if (!items || hb_pool_init(&w.free_items, nitems) < 0) {
        hb_pipe_failf(p, HARVBK_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < nitems; k++) {
        items[k].data = data ? data[k] : NULL;
        hb_pool_put(&w.free_items, &items[k]);
    }
    int rc = hb_workq_new(&q, workers, nitems, walk_work, &w);
    if (rc < 0) {
        q = NULL;
        hb_pipe_failf(p, rc, "cannot start worker threads");
        goto done;
    }

    uint64_t pending = 0; /* progress of skipped positions not yet reported */
    for (uint64_t i = 0; i < count; i++) {
        if (hb_pipe_stopped(p))
            break;
        uint64_t bytes = 0;
        int v = ops->visit(ctx, i, &bytes);
        if (v < 0)
            break;
        if (v == HB_PIPE_SKIP) {
            pending += bytes;
            if (pending >= HB_PIPE_PROGRESS_BATCH) {
                if (!hb_pipe_progress(p, pending))
                    break;
                pending = 0;
            }
            continue;
        }
        if (pending && !hb_pipe_progress(p, pending))
            break;
        pending = 0;
        hb_walk_item *it = hb_pool_get(&w.free_items);
        it->i = i;
        it->bytes = bytes;
        if (ops->fill && ops->fill(ctx, it) < 0) {
            hb_pool_put(&w.free_items, it);
            break;
        }
        rc = hb_workq_submit(q, it);
        if (rc < 0) {
            hb_pool_put(&w.free_items, it);
            hb_pipe_failf(p, rc, "cannot queue work");
            break;
        }
    }
    hb_workq_free(q); /* waits for the items in flight */
    q = NULL;
    if (pending)
        hb_pipe_progress(p, pending);

done:
    hb_workq_free(q);
    hb_pool_destroy(&w.free_items);
    hb_free(items);
    return hb_pipe_result(p, NULL);
}

static void buf_count(size_t count)
{
    size_t live = atomic_fetch_add(&buf_live, count) + count;
    size_t peak = atomic_load(&buf_peak);
    while (live > peak && !atomic_compare_exchange_weak(&buf_peak, &peak, live)) {
    }
}

void *hb_engine_buf_alloc(size_t n)
{
    /* Page-aligned, so that restores can hand them to O_DIRECT writes. */
    void *p = NULL;
    if (posix_memalign(&p, HB_ENGINE_BUF_ALIGN, n ? n : 1) != 0)
        p = NULL;
    if (p)
        buf_count(1);
    return p;
}

void hb_engine_buf_free(void *p)
{
    if (!p)
        return;
    atomic_fetch_sub(&buf_live, 1);
    hb_free(p);
}

#define BUFS_HUGE ((size_t)2 << 20) /* x86-64 / arm64 (4 KiB pages) PMD size */

void *hb_engine_bufs_alloc(size_t n, size_t count, size_t *stride)
{
    size_t st = ((n ? n : 1) + HB_ENGINE_BUF_ALIGN - 1) & ~(size_t)(HB_ENGINE_BUF_ALIGN - 1);
    if (count == 0 || st < n || st > SIZE_MAX / count)
        return NULL;
    size_t total = st * count, align = HB_ENGINE_BUF_ALIGN;
    if (total >= BUFS_HUGE && total <= SIZE_MAX - BUFS_HUGE) {
        /* whole huge pages: the tail one is not left half used by others */
        total = (total + BUFS_HUGE - 1) & ~(BUFS_HUGE - 1);
        align = BUFS_HUGE;
    }
    void *p = NULL;
    if (posix_memalign(&p, align, total) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (align == BUFS_HUGE)
        (void)madvise(p, total, MADV_HUGEPAGE); /* a hint: 4 KiB pages work too */
#endif
    buf_count(count);
    if (stride)
        *stride = st;
    return p;
}

void hb_engine_bufs_free(void *block, size_t count)
{
    if (!block)
        return;
    atomic_fetch_sub(&buf_live, count);
    hb_free(block);
}

size_t hb_engine_buf_live(void) { return atomic_load(&buf_live); }
size_t hb_engine_buf_peak(void) { return atomic_load(&buf_peak); }
void hb_engine_buf_peak_reset(void) { atomic_store(&buf_peak, atomic_load(&buf_live)); }
