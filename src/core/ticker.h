/*
 * core/ticker.h - monotonic condition variables, and a thread that calls a
 * function periodically until stopped.
 */
#ifndef HB_TICKER_H
#define HB_TICKER_H

#include "hb.h"

#include <pthread.h>

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

#endif
