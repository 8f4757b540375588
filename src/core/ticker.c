/* core/ticker.c - monotonic condition variables, hb_ticker and hb_flusher. */
#include "ticker.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

int hb_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

int hb_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int r = pthread_condattr_init(&ca);
    if (r)
        return r;
    r = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (r == 0)
        r = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

int hb_cond_wait_until_ms(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t mono_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(mono_ms / 1000u);
    ts.tv_nsec = (long)((mono_ms % 1000u) * 1000000u);
    return pthread_cond_timedwait(cv, mu, &ts);
}

static void *ticker_main(void *arg)
{
    hb_ticker *t = arg;
    pthread_mutex_lock(&t->mu);
    uint64_t next = hb_mono_ms() + t->period_ms;
    while (!t->quit) {
        if (hb_mono_ms() < next) {
            hb_cond_wait_until_ms(&t->cv, &t->mu, next);
            continue; /* re-check quit and the time */
        }
        pthread_mutex_unlock(&t->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&t->mu);
        next = hb_mono_ms() + t->period_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int hb_ticker_start(hb_ticker *t, uint64_t period_ms, void (*fn)(void *arg), void *arg)
{
    memset(t, 0, sizeof *t);
    t->period_ms = period_ms;
    t->fn = fn;
    t->arg = arg;
    int r = pthread_mutex_init(&t->mu, NULL);
    if (r)
        return r;
    r = hb_cond_init_mono(&t->cv);
    if (r) {
        pthread_mutex_destroy(&t->mu);
        return r;
    }
    r = hb_thread_start(&t->th, ticker_main, t);
    if (r) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        return r;
    }
    t->on = true;
    return 0;
}

void hb_ticker_stop(hb_ticker *t)
{
    if (!t->on)
        return;
    pthread_mutex_lock(&t->mu);
    t->quit = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    t->on = false;
}

static void *flusher_main(void *arg)
{
    hb_flusher *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->quit && f->counted - f->mark < f->every)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->quit)
            break;
        f->mark = f->counted;
        pthread_mutex_unlock(&f->mu);
        int r = f->fn(f->arg);
        pthread_mutex_lock(&f->mu);
        f->calls++;
        if (r != 0)
            break;
    }
    f->ended = true;
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int hb_flusher_init(hb_flusher *f, uint64_t every, int (*fn)(void *arg), void *arg)
{
    memset(f, 0, sizeof *f);
    f->every = every ? every : 1;
    f->fn = fn;
    f->arg = arg;
    int r = pthread_mutex_init(&f->mu, NULL);
    if (r)
        return r;
    r = pthread_cond_init(&f->cv, NULL);
    if (r) {
        pthread_mutex_destroy(&f->mu);
        return r;
    }
    f->inited = true;
    return 0;
}

void hb_flusher_count(hb_flusher *f, uint64_t n)
{
    if (!f->inited)
        return;
    pthread_mutex_lock(&f->mu);
    if (!f->started && !f->quit && !f->ended) {
        f->started = hb_thread_start(&f->th, flusher_main, f) == 0;
        f->ended = !f->started; /* no thread: never tried again */
    }
    f->counted += n;
    if (f->started && f->counted - f->mark >= f->every)
        pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

uint64_t hb_flusher_calls(hb_flusher *f)
{
    if (!f->inited)
        return 0;
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->calls;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void hb_flusher_stop(hb_flusher *f)
{
    if (!f->inited)
        return;
    pthread_mutex_lock(&f->mu);
    f->quit = true;
    pthread_cond_signal(&f->cv);
    bool started = f->started;
    pthread_mutex_unlock(&f->mu);
    if (started)
        pthread_join(f->th, NULL);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    f->inited = false;
}
