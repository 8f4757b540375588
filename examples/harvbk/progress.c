/*
 * progress.c - waiting for an operation: progress bar on stderr (only when it
 * is a terminal), SIGINT/SIGTERM turned into harvbk_op_cancel(), and the
 * library log hook.
 *
 * The library calls cli_progress_cb() on one of its threads; it only stores
 * two numbers. Everything else (drawing, rate, ETA) happens on the main thread
 * between harvbk_op_wait_timeout() calls, about five times a second.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TICK_MS 200
#define RATE_WINDOW 10 /* samples (2 s) used for throughput and ETA */

static volatile sig_atomic_t g_signal;
static pthread_mutex_t g_stderr_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_bar_visible;

void cli_stderr_lock(void) { pthread_mutex_lock(&g_stderr_mu); }
void cli_stderr_unlock(void) { pthread_mutex_unlock(&g_stderr_mu); }

int cli_progress_cb(uint64_t done, uint64_t total, void *payload)
{
    cli_progress *pr = payload;
    atomic_store_explicit(&pr->done, done, memory_order_relaxed);
    atomic_store_explicit(&pr->total, total, memory_order_relaxed);
    atomic_store_explicit(&pr->seen, 1, memory_order_release);
    return 0;
}

static void on_signal(int sig) { g_signal = sig; }

void cli_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* The first signal asks for a clean cancel; a second one kills at once. */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_signal_pending(void) { return (int)g_signal; }

bool cli_bar_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *term = getenv("TERM");
        enabled = isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
    }
    return enabled != 0;
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* Clear the bar line (caller holds the stderr lock). */
static void bar_clear_locked(void)
{
    if (g_bar_visible) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        g_bar_visible = false;
    }
}

void cli_log_cb(int level, const char *message, void *payload)
{
    (void)payload;
    static const char *names[] = {"error", "warning", "info", "debug"};
    const char *lv = (level >= 0 && level <= 3) ? names[level] : "log";
    cli_stderr_lock();
    bar_clear_locked();
    fprintf(stderr, "harvbk: [%s] %s\n", lv, message ? message : "");
    fflush(stderr);
    cli_stderr_unlock();
}

static void fmt_eta(double secs, char *buf, size_t size)
{
    if (secs < 0 || secs > 99 * 3600.0) {
        snprintf(buf, size, "--:--");
        return;
    }
    unsigned long s = (unsigned long)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%lu:%02lu:%02lu", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, size, "%lu:%02lu", s / 60, s % 60);
}

typedef struct bar_state {
    double t[RATE_WINDOW];
    uint64_t d[RATE_WINDOW];
    unsigned n, head;
    unsigned spin;
} bar_state;

static void bar_draw(bar_state *bs, const char *label, uint64_t done, uint64_t total,
                     double elapsed, bool cancelling)
{
    /* Throughput over the last ~2 s (falls back to the average). */
    bs->t[bs->head] = elapsed;
    bs->d[bs->head] = done;
    unsigned oldest = bs->n < RATE_WINDOW ? 0 : (bs->head + 1) % RATE_WINDOW;
    bs->head = (bs->head + 1) % RATE_WINDOW;
    if (bs->n < RATE_WINDOW)
        bs->n++;
    double dt = elapsed - bs->t[oldest];
    double rate = 0;
    if (dt > 0.05 && done >= bs->d[oldest])
        rate = (double)(done - bs->d[oldest]) / dt;
    else if (elapsed > 0.05)
        rate = (double)done / elapsed;

    /* Sizes share the unit of the total so the line keeps its width. */
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    uint64_t ref = total ? total : done;
    unsigned u = 0;
    double div = 1.0;
    while (u + 1 < sizeof units / sizeof units[0] && (double)ref / div >= 1024.0) {
        div *= 1024.0;
        u++;
    }
    char seta[32], line[512], tail[160];
    if (total > 0 && rate > 1.0)
        fmt_eta((double)(total - (done < total ? done : total)) / rate, seta, sizeof seta);
    else
        fmt_eta(-1, seta, sizeof seta);

    int width = term_width();
    if (cancelling)
        snprintf(tail, sizeof tail, " cancelling...");
    else if (total > 0)
        snprintf(tail, sizeof tail, " %3u%% %6.1f/%.1f %s %6.1f MB/s ETA %5s",
                 (unsigned)(done >= total ? 100 : (done * 100) / total), (double)done / div,
                 (double)total / div, units[u], rate / 1e6, seta);
    else
        snprintf(tail, sizeof tail, " %6.1f %s %6.1f MB/s", (double)done / div, units[u],
                 rate / 1e6);
    /* Reserve a fixed width for the tail so the bar does not jitter. */
    int tail_w = (int)strlen(tail) < 44 ? 44 : (int)strlen(tail);

    int label_len = (int)strlen(label);
    if (label_len > width / 3)
        label_len = width / 3;
    int barw = width - 1 - label_len - 3 - tail_w;
    if (barw > 40)
        barw = 40;
    char bar[64];
    if (barw >= 10) {
        int fill;
        if (total > 0) {
            fill = (int)((double)(done < total ? done : total) / (double)total * barw);
        } else {
            fill = -1;
        }
        for (int i = 0; i < barw; i++) {
            if (fill >= 0)
                bar[i] = i < fill ? '#' : '.';
            else
                bar[i] = (int)(bs->spin % (unsigned)barw) == i ? '#' : '.';
        }
        bar[barw] = '\0';
        bs->spin++;
        snprintf(line, sizeof line, "%.*s [%s]%s", label_len, label, bar, tail);
    } else {
        snprintf(line, sizeof line, "%.*s%s", label_len, label, tail);
    }
    if ((int)strlen(line) > width - 1)
        line[width - 1] = '\0';

    cli_stderr_lock();
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    g_bar_visible = true;
    cli_stderr_unlock();
}

int cli_wait_op(harvbk_op *op, cli_progress *pr, const char *label, double *out_seconds)
{
    bool bar = cli_bar_enabled();
    bool cancel_sent = false;
    bar_state bs;
    memset(&bs, 0, sizeof bs);
    double t0 = cli_now();
    int rc;
    for (;;) {
        if (!cancel_sent && cli_signal_pending()) {
            harvbk_op_cancel(op);
            cancel_sent = true;
        }
        rc = harvbk_op_wait_timeout(op, TICK_MS);
        if (rc != HARVBK_E_TIMEOUT) /* ended (or a bad handle) */
            break;
        if (bar) {
            uint64_t done = 0, total = 0;
            if (pr && atomic_load_explicit(&pr->seen, memory_order_acquire)) {
                done = atomic_load_explicit(&pr->done, memory_order_relaxed);
                total = atomic_load_explicit(&pr->total, memory_order_relaxed);
            } else {
                harvbk_op_progress(op, &done, &total);
            }
            bar_draw(&bs, label, done, total, cli_now() - t0, cancel_sent);
        }
    }
    if (harvbk_op_state(op) != HARVBK_STATE_INPROGRESS)
        rc = harvbk_op_result(op);
    if (bar) {
        cli_stderr_lock();
        bar_clear_locked();
        cli_stderr_unlock();
    }
    if (out_seconds)
        *out_seconds = cli_now() - t0;
    return rc;
}

int cli_finish_op(const harvbk_op *op, int rc, const char *what)
{
    if (rc == 0)
        return CLI_EXIT_OK;
    if (rc == HARVBK_E_CANCELLED && cli_signal_pending()) {
        cli_err("%s: cancelled (%s)", what,
                cli_signal_pending() == SIGINT ? "interrupted" : "terminated");
        return CLI_EXIT_INTERRUPTED;
    }
    return cli_fail_op(op, rc, what);
}
