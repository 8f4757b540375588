/*
 * core/ticker.h - monotonic condition variables, and the library's two
 * kinds of helper thread: one calling a function periodically (hb_ticker),
 * one calling it every so many bytes counted (hb_flusher). Both threads run
 * with every signal blocked.
 */
#ifndef HB_TICKER_H
#define HB_TICKER_H

#include "hb.h"

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, whoever starts
 * it (the embedding program's handlers run on its own threads). 0 or an
 * errno value. */
int hb_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* A condition variable whose timed waits use CLOCK_MONOTONIC (a wall-clock
 * step neither shortens nor stretches them). 0 or an errno value. */
int hb_cond_init_mono(pthread_cond_t *cv);
/* pthread_cond_timedwait until hb_mono_ms() reaches mono_ms, on a condition
 * variable made by hb_cond_init_mono: 0, ETIMEDOUT (or another errno). */
int hb_cond_wait_until_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t mono_ms);

/* A thread calling fn(arg) every period_ms (the first call one period after
 * the start; the next one period after a call returns) until hb_ticker_stop.
 * fn runs with no lock of the ticker held. */
typedef struct hb_ticker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool on, quit;
    uint64_t period_ms;
    void (*fn)(void *arg);
    void *arg;
} hb_ticker;

/* 0, or an errno value when the thread cannot be started (then t is off and
 * hb_ticker_stop is a no-op). */
int hb_ticker_start(hb_ticker *t, uint64_t period_ms, void (*fn)(void *arg), void *arg);
/* Wakes the thread, waits for a call in progress to return, joins. After it
 * returns fn is never called again. Safe on a ticker that is off. */
void hb_ticker_stop(hb_ticker *t);


/* A thread that calls fn(arg) each time `every` more units (bytes, say)
 * were counted since the previous call began, until fn returns non-zero or
 * hb_flusher_stop. fn runs with no lock of the flusher held. The thread
 * starts with the first hb_flusher_count. A zero-initialised hb_flusher is
 * off: count and stop do nothing. */
typedef struct hb_flusher {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool inited, started, quit, ended;
    uint64_t every, counted, mark, calls;
    int (*fn)(void *arg);
    void *arg;
} hb_flusher;

/* 0, or an errno value (then f stays off). */
int hb_flusher_init(hb_flusher *f, uint64_t every, int (*fn)(void *arg), void *arg);
/* n more counted (any thread); wakes the thread when a call is due. */
void hb_flusher_count(hb_flusher *f, uint64_t n);
uint64_t hb_flusher_calls(hb_flusher *f); /* calls made (returned) so far */
/* Waits for a call in progress, joins, and turns f off (again a no-op). */
void hb_flusher_stop(hb_flusher *f);

#endif
