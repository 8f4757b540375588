/*
 * engine/pipeline.h - internal helpers shared by the engine's pipelines (not a
 * contract for other layers): first-error/cancel bookkeeping, serialised
 * progress, a blocking pool of reusable items, counted chunk buffers.
 */
#ifndef HB_ENGINE_PIPELINE_H
#define HB_ENGINE_PIPELINE_H

#include "../core/fsutil.h"
#include "../core/workq.h"
#include "engine.h"

/* Upper bound on worker threads, whatever the job or the backend asks for. */
#define HB_ENGINE_MAX_WORKERS 64u
/* Writer threads of a restore into a file or device (engine/restore.c); its
 * chunk buffers are workers + writers. */
#define HB_ENGINE_RESTORE_WRITERS 4u

typedef struct hb_pipe {
    hb_job *job;
    atomic_int stop;          /* set on the first failure or on cancel */
    pthread_mutex_t err_mu;
    int code;                 /* first failure (0 = none) */
    hb_err err;
    pthread_mutex_t prog_mu;  /* serialises job->progress */
} hb_pipe;

/* Workers for a job: job->threads (or hb_default_threads(), the CPU count),
 * raised to the backend's min_workers (network backends: requests in flight;
 * 0 for a local directory, where the work is CPU-bound), capped by
 * HB_ENGINE_MAX_WORKERS, and to the backend's max_workers (an explicitly
 * configured HARVBK_TARGET_PARALLEL) when set. */
unsigned hb_pipe_workers(const hb_job *job);
void hb_pipe_init(hb_pipe *p, hb_job *job);
void hb_pipe_destroy(hb_pipe *p);
/* Record a failure (the first one wins; later ones are dropped) and stop.
 * src may be NULL or have an empty message. Returns code. */
int hb_pipe_fail(hb_pipe *p, int code, const hb_err *src);
int hb_pipe_failf(hb_pipe *p, int code, const char *fmt, ...) HB_PRINTF(3, 4);
/* True once the pipeline must stop: failure, cancel flag, progress veto, the
 * job's deadline (HARVBK_E_TIMEOUT). */
bool hb_pipe_stopped(hb_pipe *p);
/* Report delta units to job->progress (serialised: the hook only counts, see
 * hb_job). A non-zero return from it cancels. Returns false when the
 * pipeline must stop. */
bool hb_pipe_progress(hb_pipe *p, uint64_t delta);
/* 0, or the first failure copied into e. */
int hb_pipe_result(hb_pipe *p, hb_err *e);

/* A fixed set of items handed out and returned; get blocks while none is free.
 * This is what bounds the memory of every pipeline. */
typedef struct hb_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **items;
    size_t n, cap;
} hb_pool;
int hb_pool_init(hb_pool *pl, size_t cap); /* 0 or HARVBK_E_NOMEM */
void hb_pool_destroy(hb_pool *pl);         /* does not free the items */
void hb_pool_put(hb_pool *pl, void *item);
void *hb_pool_get(hb_pool *pl);

/* The chunk walk every pipeline shares: the calling thread visits positions
 * 0..count-1 in order; a position is either skipped (its bytes go to
 * progress, in batches of HB_PIPE_PROGRESS_BATCH) or queued: it takes a free
 * item (blocking while all nitems are in use: the memory bound), `fill`s it
 * on the calling thread and hands it to one of `workers` threads, which
 * `work` on it and report its bytes to progress. The walk stops at the first
 * failure, cancel, progress veto or deadline (hb_pipe_stopped); a worker
 * skips the items queued before that. hb_pipe_walk_run returns once every
 * queued item is done. */
#define HB_PIPE_PROGRESS_BATCH (256ull << 20)

typedef struct hb_walk_item {
    uint64_t i;     /* position */
    uint64_t bytes; /* reported to progress when work() returns 0 */
    void *data;     /* the caller's (data[k] of hb_pipe_walk_run), e.g. a buffer */
} hb_walk_item;

enum { HB_PIPE_SKIP = 0, HB_PIPE_QUEUE = 1 };

typedef struct hb_pipe_walk_ops {
    /* Calling thread: what to do with position i. Sets *bytes (its share of
     * progress) and returns HB_PIPE_SKIP or HB_PIPE_QUEUE; a negative return
     * (a failure already recorded with hb_pipe_fail) ends the walk. */
    int (*visit)(void *ctx, uint64_t i, uint64_t *bytes);
    /* Calling thread, optional: prepare a queued item (it->i, it->bytes are
     * set), e.g. read the chunk into it->data. Negative (recorded): the walk
     * ends and the item is not worked on. */
    int (*fill)(void *ctx, hb_walk_item *it);
    /* Worker thread: 0 = done, the walk reports it->bytes; > 0 = done, the
     * callback reports (or hands on) the progress itself; negative = failed
     * (recorded). Not called once the pipeline stopped. */
    int (*work)(void *ctx, hb_walk_item *it);
} hb_pipe_walk_ops;

/* Run the walk. data may be NULL, else it has nitems entries (one per item).
 * workers and nitems are at least 1. Setup failures (memory, threads) are
 * recorded in p. Returns hb_pipe_result(p, NULL). */
int hb_pipe_walk_run(hb_pipe *p, uint64_t count, unsigned workers, size_t nitems,
                     void *const *data, const hb_pipe_walk_ops *ops, void *ctx);

/* Chunk-sized buffers. Counted process-wide so tests can check the bound. */
/* Chunk buffers: aligned to HB_ENGINE_BUF_ALIGN (O_DIRECT), counted for
 * tests of bounded memory. */
#define HB_ENGINE_BUF_ALIGN 4096u
void *hb_engine_buf_alloc(size_t n);
void hb_engine_buf_free(void *p);
/* `count` chunk buffers of n bytes each in one block, the k-th at
 * (uint8_t *)block + k * *stride (stride = n rounded up to
 * HB_ENGINE_BUF_ALIGN); counted as `count` buffers. A block of 2 MiB or more
 * is 2 MiB-aligned and asks for transparent huge pages (MADV_HUGEPAGE), so
 * that an O_DIRECT write of a buffer pins one folio instead of 256 pages and
 * goes to the device as one segment (bench/RESULTS.md, "Restore: decode
 * buffers"). Free with hb_engine_bufs_free(block, count). */
void *hb_engine_bufs_alloc(size_t n, size_t count, size_t *stride);
void hb_engine_bufs_free(void *block, size_t count);
/* Test hooks: buffers currently allocated; highest count since the last reset. */
size_t hb_engine_buf_live(void);
size_t hb_engine_buf_peak(void);
void hb_engine_buf_peak_reset(void);

/* Mutex for the digest sets the caller shares across volumes and calls
 * (known, checked): hb_dset is not thread-safe. */
extern pthread_mutex_t hb_engine_set_mu;

#endif
