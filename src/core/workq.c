/*
 * core/workq.c - fixed pool of worker threads over a bounded FIFO.
 * submit blocks while `depth` jobs wait; drain waits until the queue is empty
 * AND no job is running. A job must not submit to its own queue when that can
 * fill it (it would wait for itself).
 */
#include "workq.h"

#include <stdlib.h>
#include <unistd.h>

struct hb_workq {
    pthread_mutex_t mu;
    pthread_cond_t not_empty; /* workers wait for jobs */
    pthread_cond_t not_full;  /* submitters wait for room */
    pthread_cond_t idle;      /* drainers wait for empty queue + nothing running */
    void **ring;
    size_t depth, head, count;
    size_t running;
    bool stopping;
    hb_work_fn fn;
    void *arg;
    pthread_t *threads;
    unsigned nthreads;
};

static void *worker(void *p)
{
    hb_workq *q = p;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->count == 0 && !q->stopping)
            pthread_cond_wait(&q->not_empty, &q->mu);
        if (q->count == 0)
            break; /* stopping and nothing left */
        void *job = q->ring[q->head];
        q->head = (q->head + 1) % q->depth;
        q->count--;
        q->running++;
        pthread_cond_signal(&q->not_full);
        pthread_mutex_unlock(&q->mu);
        q->fn(job, q->arg);
        pthread_mutex_lock(&q->mu);
        q->running--;
        if (q->count == 0 && q->running == 0)
            pthread_cond_broadcast(&q->idle);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void stop_and_join(hb_workq *q, unsigned started)
{
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(q->threads[i], NULL);
}

static void destroy(hb_workq *q)
{
    pthread_cond_destroy(&q->idle);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    free(q->threads);
    free(q->ring);
    free(q);
}

int hb_workq_new(hb_workq **out, unsigned nthreads, size_t depth, hb_work_fn fn, void *arg)
{
    *out = NULL;
    if (!fn)
        return HARVBK_E_INVALID;
    if (nthreads == 0)
        nthreads = hb_default_threads();
    if (depth == 0)
        depth = 1;
    hb_workq *q = calloc(1, sizeof *q);
    if (!q)
        return HARVBK_E_NOMEM;
    q->ring = calloc(depth, sizeof *q->ring);
    q->threads = calloc(nthreads, sizeof *q->threads);
    if (!q->ring || !q->threads) {
        free(q->ring);
        free(q->threads);
        free(q);
        return HARVBK_E_NOMEM;
    }
    q->depth = depth;
    q->fn = fn;
    q->arg = arg;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->idle, NULL);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
            stop_and_join(q, i);
            destroy(q);
            return HARVBK_E_NOMEM;
        }
    }
    q->nthreads = nthreads;
    *out = q;
    return 0;
}

int hb_workq_submit(hb_workq *q, void *job)
{
    if (!q)
        return HARVBK_E_INVALID;
    pthread_mutex_lock(&q->mu);
    while (q->count == q->depth && !q->stopping)
        pthread_cond_wait(&q->not_full, &q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        return HARVBK_E_STATE;
    }
    q->ring[(q->head + q->count) % q->depth] = job;
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

void hb_workq_drain(hb_workq *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->mu);
    while (q->count > 0 || q->running > 0)
        pthread_cond_wait(&q->idle, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

void hb_workq_free(hb_workq *q)
{
    if (!q)
        return;
    hb_workq_drain(q);
    stop_and_join(q, q->nthreads);
    destroy(q);
}

unsigned hb_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return 2;
    if (n > 16)
        return 16;
    return (unsigned)n;
}
