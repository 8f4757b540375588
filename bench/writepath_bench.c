/*
 * writepath_bench - how fast can N threads write one new file, the way a
 * restore does? No libharvbk involved: this isolates the kernel write path
 * that dominates harvbk's restore on some machines (see bench/RESULTS.md).
 *
 *   writepath_bench --file PATH [--size 540M] [--threads 4] [--chunk 4M]
 *
 * For each mode it writes --size bytes of fresh data as --chunk pieces from
 * --threads threads (each thread takes the next chunk), ends with fdatasync,
 * and prints wall seconds and the process's user/sys CPU:
 *   buffered+sfr        pwrite(chunk) + sync_file_range(chunk)   (harvbk 1.0 restore)
 *   buffered+sfr-1M     the chunk as 1 MiB pwrite + sync_file_range pieces
 *   buffered            pwrite(chunk) only, one fdatasync at the end
 *   direct              O_DIRECT pwrite(chunk) (page cache bypassed)
 * The file is removed after each mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { M_SFR, M_SFR1M, M_BUF, M_DIRECT, M_COUNT };
static const char *const MODE_NAMES[] = {"buffered+sfr", "buffered+sfr-1M", "buffered", "direct"};

typedef struct run {
    int fd, mode;
    uint64_t size, chunk, next;
    pthread_mutex_t mu;
    int err;
} run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int put(int fd, const char *b, size_t len, uint64_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, b, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno ? errno : EIO;
        b += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static void *worker(void *p)
{
    run *r = p;
    char *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, r->chunk) != 0)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        uint64_t off = r->next;
        r->next += r->chunk;
        pthread_mutex_unlock(&r->mu);
        if (off >= r->size || r->err)
            break;
        size_t len = (size_t)(r->size - off < r->chunk ? r->size - off : r->chunk);
        memset(buf, (int)((off >> 20) | 1) & 0xff, len); /* fresh data, like a decompressed chunk */
        int e = 0;
        if (r->mode == M_SFR1M) {
            for (size_t pos = 0; pos < len && !e; pos += 1u << 20) {
                size_t n = len - pos < (1u << 20) ? len - pos : (1u << 20);
                e = put(r->fd, buf + pos, n, off + pos);
                if (!e)
                    sync_file_range(r->fd, (off_t)(off + pos), (off_t)n, SYNC_FILE_RANGE_WRITE);
            }
        } else {
            e = put(r->fd, buf, len, off);
            if (!e && r->mode == M_SFR)
                sync_file_range(r->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
        }
        if (e)
            r->err = e;
    }
    free(buf);
    return NULL;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
    if (*end || end == s)
        return -1;
    *out = v * mul;
    return 0;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    uint64_t size = 540ull << 20, chunk = 4ull << 20;
    unsigned threads = 4;
    static const struct option lo[] = {{"file", required_argument, 0, 'f'},
                                       {"size", required_argument, 0, 's'},
                                       {"threads", required_argument, 0, 't'},
                                       {"chunk", required_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'f': file = optarg; break;
        case 's': if (parse_size(optarg, &size)) return fprintf(stderr, "bad --size\n"), 2; break;
        case 'c': if (parse_size(optarg, &chunk) || chunk % 4096) return fprintf(stderr, "bad --chunk\n"), 2; break;
        case 't': threads = (unsigned)atoi(optarg); break;
        default:
            fprintf(o == 'h' ? stdout : stderr,
                    "usage: writepath_bench --file PATH [--size 540M] [--threads 4] [--chunk 4M]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (!file || threads == 0 || threads > 64 || size == 0)
        return fprintf(stderr, "writepath_bench: --file is required (threads 1..64)\n"), 2;
    size = size / 4096 * 4096;
    printf("%-16s %8s %8s %8s %8s   (%llu MiB, %u threads, %llu KiB pieces)\n", "mode", "wall_s",
           "sync_s", "user_s", "sys_s", (unsigned long long)(size >> 20), threads,
           (unsigned long long)(chunk >> 10));
    int rc = 0;
    for (int m = 0; m < M_COUNT; m++) {
        sync();
        run r;
        memset(&r, 0, sizeof r);
        r.mode = m;
        r.size = size;
        r.chunk = chunk;
        pthread_mutex_init(&r.mu, NULL);
        r.fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (m == M_DIRECT ? O_DIRECT : 0),
                    0600);
        if (r.fd < 0) {
            fprintf(stderr, "writepath_bench: %s: %s: %s\n", MODE_NAMES[m], file, strerror(errno));
            rc = 1;
            continue;
        }
        if (ftruncate(r.fd, (off_t)size) != 0) {
            fprintf(stderr, "writepath_bench: ftruncate: %s\n", strerror(errno));
            close(r.fd);
            unlink(file);
            return 1;
        }
        struct rusage a, b;
        getrusage(RUSAGE_SELF, &a);
        double t0 = now_s();
        pthread_t th[64];
        for (unsigned i = 0; i < threads; i++)
            pthread_create(&th[i], NULL, worker, &r);
        for (unsigned i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        double t1 = now_s();
        int se = fdatasync(r.fd);
        double t2 = now_s();
        getrusage(RUSAGE_SELF, &b);
        close(r.fd);
        unlink(file);
        pthread_mutex_destroy(&r.mu);
        if (r.err || se) {
            fprintf(stderr, "writepath_bench: %s: write failed: %s\n", MODE_NAMES[m],
                    strerror(r.err ? r.err : errno));
            rc = 1;
            continue;
        }
        double us = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
                    (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec) / 1e6;
        double ss = (double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
                    (double)(b.ru_stime.tv_usec - a.ru_stime.tv_usec) / 1e6;
        printf("%-16s %8.2f %8.2f %8.2f %8.2f\n", MODE_NAMES[m], t2 - t0, t2 - t1, us, ss);
        fflush(stdout);
    }
    return rc;
}
