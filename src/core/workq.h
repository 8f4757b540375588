/*
 * core/workq.h - a fixed pool of worker threads with a bounded FIFO of jobs.
 * hb_workq_submit blocks while the queue is full (that is the memory bound).
 */
#ifndef HB_WORKQ_H
#define HB_WORKQ_H

#include "hb.h"

typedef void (*hb_work_fn)(void *job, void *arg);
typedef struct hb_workq hb_workq;

/* nthreads workers call fn(job, arg) for every submitted job; at most
 * `depth` jobs wait in the queue. */
int hb_workq_new(hb_workq **out, unsigned nthreads, size_t depth, hb_work_fn fn, void *arg);
int hb_workq_submit(hb_workq *q, void *job);      /* blocks while full */
void hb_workq_drain(hb_workq *q);                 /* wait until all submitted jobs ran */
void hb_workq_free(hb_workq *q);                  /* drains, joins, frees; NULL ok */

/* Number of worker threads to use by default: online CPUs, min 2, max 16. */
unsigned hb_default_threads(void);

#endif
