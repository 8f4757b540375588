/*
 * harvbk_bench - end-to-end benchmark of libharvbk through its public API.
 *
 *   harvbk_bench --size 1G --dir SCRATCH [--threads N] [--codec zstd] [--keep] [--json]
 *   harvbk_bench --generate-only --size 1G --image PATH
 *   harvbk_bench --mutate IMAGE [--generation N]
 *
 * It writes a VM-like raw disk image that is a pure function of (seed, size):
 * per 4 MiB region 30% holes (never written), 15% zero bytes written for real,
 * 35% text-like data (log lines), 20% random bytes. Then, on a local file://
 * target, every phase runs in its own forked child so that wait4() gives its
 * CPU time and its own peak RSS:
 *   full        full backup
 *   mutate      deterministic ~1% change (spread extents), generation 1
 *   incr        incremental backup, no changed ranges (everything is re-read)
 *   mutate      the same extents rewritten again, generation 2
 *   incr-ranges incremental backup given those extents with harvbk_ranges
 *   restore     restore the last backup as a new VM into a new file
 *   verify      harvbk_backup_verify of the last backup
 *   compare     restored bytes == image bytes (fails loudly otherwise)
 * "--mutate IMAGE --generation 0" puts the generated original bytes (and holes)
 * back, so one image can serve several tools in turn (bench/run-peers.sh).
 *
 * Only the public API (include/harvbk.h) is used.
 */
#include <harvbk.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION ((uint64_t)4 << 20) /* generator granularity */
#define BLK 4096u                  /* mutation alignment */
#define BENCH_NS "bench"
#define BENCH_VM "vm"
#define BENCH_VOL "disk"
#define DEFAULT_SEED 20240601u

/* ------------------------------------------------------------------ utils */

static bool g_json;
static bool g_verbose;
static const char *g_phase_hook; /* --phase-hook: run before and after each phase */
static volatile sig_atomic_t g_stop; /* SIGINT/SIGTERM seen: stop after this phase */

static void on_signal(int sig) { g_stop = sig; }

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("harvbk_bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

/* "1G", "256M", "512K", "4096", binary multiples; optional "iB"/"B" suffix. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    default: break;
    }
    if (mul > 1 && (*end == 'i' || *end == 'I'))
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end)
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

static void fmt_bytes(char *buf, size_t n, uint64_t b)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.1f MiB", (double)b / (1ull << 20));
    else if (b >= 1024)
        snprintf(buf, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(buf, n, "%" PRIu64 " B", b);
}

static void full_write(int fd, const void *buf, size_t len, uint64_t off, const char *what)
{
    const char *p = buf;
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write %s at %" PRIu64 ": %s", what, off, strerror(errno));
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
}

static size_t full_read(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("read %s at %" PRIu64 ": %s", what, off + got, strerror(errno));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* snprintf that refuses to truncate (paths). */
static void pfmt(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pfmt(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= n)
        die("path too long: %s", out);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

/* ------------------------------------------------------ deterministic data */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
    return mix64(mix64(mix64(a) ^ b) ^ c);
}

typedef struct rng { uint64_t s[4]; } rng;

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        seed = mix64(seed + (uint64_t)i);
        r->s[i] = seed;
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r) /* xoshiro256** */
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static void fill_random(uint8_t *buf, size_t len, rng *r)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, len - i);
    }
}

static const char *const WORDS[] = {
    "the", "request", "completed", "in", "ms", "user", "session", "opened", "closed", "for",
    "connection", "from", "port", "accepted", "publickey", "error", "warning", "info", "debug",
    "kernel", "eth0", "link", "up", "down", "disk", "sda1", "mounted", "filesystem", "ext4",
    "with", "ordered", "data", "mode", "systemd", "started", "stopped", "service", "unit",
    "nginx", "GET", "POST", "HTTP/1.1", "200", "404", "500", "upstream", "timed", "out",
    "while", "reading", "response", "header", "client", "server", "cache", "miss", "hit",
    "postgres", "checkpoint", "starting", "complete", "wrote", "buffers", "WAL", "file",
    "added", "removed", "recycled", "transaction", "commit", "rollback", "query", "took",
    "seconds", "retrying", "backoff", "token", "expired", "renewed", "lease", "acquired",
    "controller", "reconcile", "pod", "node", "volume", "attached", "detached", "snapshot",
    "backup", "restore", "ready", "pending", "failed", "succeeded", "memory", "pressure",
    "cpu", "throttled", "oom", "killed", "process", "pid", "exited", "status", "code",
    "signal", "received", "shutting", "down", "gracefully", "listening", "on", "address",
    "config", "reloaded", "certificate", "valid", "until", "dns", "lookup", "resolved",
    "packet", "dropped", "queue", "full", "rate", "limit", "exceeded", "job", "scheduled",
    "cron", "daily", "logrotate", "compressing", "archive", "sync", "flushed", "index",
};
#define NWORDS (sizeof(WORDS) / sizeof(WORDS[0]))
static const char *const LEVELS[] = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};
static const char *const HOSTS[] = {"web-01", "web-02", "db-01", "worker-3", "edge-7"};
static const char *const PROCS[] = {"nginx", "sshd", "postgres", "kubelet", "systemd",
                                    "containerd", "cron", "app"};

static char *put_num(char *p, unsigned v, int width)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Text-like data: syslog-ish lines, compresses ~3-5x with fast codecs. */
static void fill_text(uint8_t *buf, size_t len, rng *r)
{
    char line[512];
    size_t pos = 0;
    uint64_t t = rng_next(r) % (86400ull * 365);
    while (pos < len) {
        uint64_t x = rng_next(r);
        t += x % 3;
        char *p = line;
        p = put_str(p, "2024-");
        p = put_num(p, (unsigned)(t / 86400 / 31 % 12 + 1), 2);
        *p++ = '-';
        p = put_num(p, (unsigned)(t / 86400 % 28 + 1), 2);
        *p++ = 'T';
        p = put_num(p, (unsigned)(t / 3600 % 24), 2);
        *p++ = ':';
        p = put_num(p, (unsigned)(t / 60 % 60), 2);
        *p++ = ':';
        p = put_num(p, (unsigned)(t % 60), 2);
        *p++ = '.';
        p = put_num(p, (unsigned)(x >> 20) % 1000, 3);
        p = put_str(p, "Z ");
        p = put_str(p, HOSTS[(x >> 8) % 5]);
        *p++ = ' ';
        p = put_str(p, PROCS[(x >> 12) % 8]);
        *p++ = '[';
        p = put_num(p, (unsigned)(x >> 32) % 30000 + 100, 1);
        p = put_str(p, "]: ");
        p = put_str(p, LEVELS[(x >> 16) % 6]);
        *p++ = ' ';
        uint64_t y = rng_next(r);
        unsigned nw = 4 + (unsigned)(y % 14);
        for (unsigned i = 0; i < nw; i++) {
            uint64_t z = rng_next(r);
            if ((z & 15) == 0) { /* a number now and then */
                p = put_num(p, (unsigned)(z >> 8) % 100000, 1);
            } else {
                p = put_str(p, WORDS[(z >> 8) % NWORDS]);
            }
            *p++ = (i + 1 == nw) ? '\n' : ' ';
        }
        size_t n = (size_t)(p - line);
        if (n > len - pos)
            n = len - pos;
        memcpy(buf + pos, line, n);
        pos += n;
    }
}

enum { K_HOLE, K_ZERO, K_TEXT, K_RANDOM };
static const char *const KIND_NAMES[] = {"hole", "zero", "text", "random"};

static int region_kind(uint64_t seed, uint64_t idx)
{
    unsigned v = (unsigned)(hash3(seed, idx, 0x6b696e64ull) % 100);
    if (v < 30)
        return K_HOLE;
    if (v < 45)
        return K_ZERO;
    if (v < 80)
        return K_TEXT;
    return K_RANDOM;
}

/* Fill buf (REGION bytes) with the original content of region idx. */
static void region_content(uint64_t seed, uint64_t idx, int kind, uint8_t *buf)
{
    rng r;
    rng_seed(&r, hash3(seed, idx, 0x64617461ull));
    switch (kind) {
    case K_TEXT: fill_text(buf, REGION, &r); break;
    case K_RANDOM: fill_random(buf, REGION, &r); break;
    default: memset(buf, 0, REGION); break;
    }
}

typedef struct gen_stats { uint64_t bytes[4]; } gen_stats;

/* Write the whole image (creating/truncating it). */
static void generate_image(const char *path, uint64_t size, uint64_t seed, gen_stats *gs)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("create %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0)
        die("truncate %s: %s", path, strerror(errno));
    uint8_t *buf = xmalloc(REGION);
    memset(gs, 0, sizeof *gs);
    for (uint64_t off = 0, idx = 0; off < size; off += REGION, idx++) {
        uint64_t len = size - off < REGION ? size - off : REGION;
        int k = region_kind(seed, idx);
        gs->bytes[k] += len;
        if (k == K_HOLE)
            continue;
        region_content(seed, idx, k, buf);
        full_write(fd, buf, len, off, path);
    }
    free(buf);
    if (close(fd) != 0)
        die("close %s: %s", path, strerror(errno));
}

/* ----------------------------------------------------------- the mutation */

typedef struct extent { uint64_t off, len; } extent;

/* ~pct% of the image in extents of `ext` bytes, one per stride, spread over
 * the whole image with a seeded jitter. Identical for every generation. */
static size_t mutation_extents(uint64_t size, uint64_t seed, double pct, uint64_t ext,
                               extent **out)
{
    uint64_t want = (uint64_t)((double)size * pct / 100.0);
    if (ext < BLK)
        ext = BLK;
    ext = ext / BLK * BLK;
    uint64_t n = (want + ext - 1) / ext;
    if (n == 0)
        n = 1;
    uint64_t stride = size / n;
    if (stride < ext) {
        ext = stride / BLK * BLK;
        if (ext == 0)
            die("image too small for the mutation");
    }
    extent *e = xmalloc(sizeof *e * n);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t base = k * stride;
        uint64_t room = stride - ext;
        uint64_t jitter = room ? (hash3(seed, k, 0x6d7574ull) % (room + 1)) / BLK * BLK : 0;
        uint64_t off = (base + jitter) / BLK * BLK;
        uint64_t len = ext;
        if (off + len > size)
            len = size - off;
        e[k].off = off;
        e[k].len = len;
    }
    *out = e;
    return (size_t)n;
}

/* Apply generation gen (>= 1: new bytes; 0: the generated original bytes). */
static void mutate_image(const char *path, uint64_t seed, double pct, uint64_t ext, unsigned gen,
                         uint64_t *out_bytes)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        die("stat %s: %s", path, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    extent *ex;
    size_t n = mutation_extents(size, seed, pct, ext, &ex);
    uint8_t *buf = xmalloc(REGION);
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++) {
        uint64_t off = ex[k].off, len = ex[k].len;
        total += len;
        if (gen > 0) {
            rng r;
            rng_seed(&r, hash3(seed, k, 0x67656e00ull + gen));
            uint8_t *b = len <= REGION ? buf : xmalloc(len);
            if (hash3(seed, k, gen) % 100 < 60)
                fill_text(b, len, &r);
            else
                fill_random(b, len, &r);
            full_write(fd, b, len, off, path);
            if (b != buf)
                free(b);
            continue;
        }
        /* generation 0: region by region, the original content / holes */
        for (uint64_t o = off; o < off + len;) {
            uint64_t idx = o / REGION, rbase = idx * REGION;
            uint64_t rend = rbase + REGION < off + len ? rbase + REGION : off + len;
            int kd = region_kind(seed, idx);
            if (kd == K_HOLE) {
                if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o,
                              (off_t)(rend - o)) != 0) {
                    /* no hole punching here: zeros are the same bytes */
                    memset(buf, 0, rend - o);
                    full_write(fd, buf, rend - o, o, path);
                }
            } else {
                region_content(seed, idx, kd, buf);
                full_write(fd, buf + (o - rbase), rend - o, o, path);
            }
            o = rend;
        }
    }
    free(buf);
    free(ex);
    if (close(fd) != 0)
        die("close %s: %s", path, strerror(errno));
    if (out_bytes)
        *out_bytes = total;
}

/* ---------------------------------------------------------- disk usage */

static uint64_t g_du_alloc, g_du_apparent;
static int du_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)p; (void)f;
    if (flag == FTW_F || flag == FTW_D || flag == FTW_DP || flag == FTW_SL) {
        g_du_alloc += (uint64_t)sb->st_blocks * 512u;
        g_du_apparent += (uint64_t)sb->st_size;
    }
    return 0;
}
/* du-like: allocated bytes (st_blocks * 512, "du -sB1") and apparent bytes
 * (st_size of every entry, directories included, as "du -sb" counts). */
static void du(const char *path, uint64_t *alloc, uint64_t *apparent)
{
    g_du_alloc = g_du_apparent = 0;
    nftw(path, du_cb, 32, FTW_PHYS);
    if (alloc)
        *alloc = g_du_alloc;
    if (apparent)
        *apparent = g_du_apparent;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)f;
    if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
        rmdir(p);
    else
        unlink(p);
    return 0;
}
static void rm_rf(const char *path) { nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS); }

/* --cold-store: the page cache drops every file of the store (its clean
 * pages: the backups synced them), as when a restore runs hours after the
 * backup. No privileges needed, nothing else's cache touched. */
static uint64_t g_cold_files;
static int cold_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)f;
    if (flag != FTW_F)
        return 0;
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
            g_cold_files++;
        close(fd);
    }
    return 0;
}
static uint64_t drop_cache(const char *path)
{
    g_cold_files = 0;
    nftw(path, cold_cb, 32, FTW_PHYS);
    return g_cold_files;
}

/* ------------------------------------------------------- phases in children */

typedef struct child_result {
    int rc;                /* 0 ok, else HARVBK_E_* or 1 */
    uint64_t uploaded;     /* backups: bytes the backup wrote to the target */
    uint64_t aux;          /* phase-specific */
    char msg[1024];
} child_result;

typedef struct phase {
    char name[32];
    double wall, user, sys;
    long maxrss_kib;
    uint64_t logical;      /* bytes for MB/s (0: not a throughput phase) */
    uint64_t uploaded;
    bool has_uploaded;
    uint64_t target_alloc; /* target size on disk after the phase */
    uint64_t target_apparent;
    bool has_target;
    bool has_ceil;         /* the machine's ceiling for this phase (see below) */
    double ceil_s, ceil_disk_s, ceil_cpu_s;
    child_result res;
} phase;

typedef struct cfg {
    uint64_t size;
    uint64_t seed;
    unsigned threads;
    const char *codec;
    uint64_t chunk_size;
    double change_pct;
    uint64_t change_ext;
    bool keep;
    char run_dir[PATH_MAX];
    char image[PATH_MAX];
    bool image_external;
    char state[PATH_MAX];
    char target[PATH_MAX];
    char restore_dir[PATH_MAX];
    /* another target than the file:// one in the scratch dir (S3) */
    const char *target_url, *endpoint, *region, *akid, *secret_file, *ca_cert;
    bool vhost;
    /* an encrypted store (FORMAT.md section 10): its key file or passphrase file */
    const char *key_file, *passphrase_file;
    /* the ceilings: ceiling_bench's path (NULL: next to this program), off */
    const char *ceiling_bench;
    const char *ceiling_disk_bytes; /* ceiling_bench --disk-bytes (NULL: its default) */
    bool no_ceiling;
    bool cold_store; /* --cold-store */
} cfg;

typedef void (*child_fn)(const cfg *c, void *arg, child_result *r);

/* pipe + fork; the child gets the default SIGINT/SIGTERM back. */
static pid_t fork_piped(int pfd[2])
{
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    return pid;
}

/* --phase-hook CMD: "CMD start|end PHASE" through the shell, untimed, its
 * output on stderr (bench/run-s3.sh counts each phase's S3 requests). */
static void phase_hook(const char *when, const char *name)
{
    if (!g_phase_hook)
        return;
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "%s %s %s 1>&2", g_phase_hook, when, name);
    fflush(NULL);
    int rc = system(cmd);
    if (rc != 0)
        die("--phase-hook: '%s' failed (status %d)", cmd, rc);
}

static double g_phase_t0; /* when the running phase began (set before its fork) */

/* Runs fn in a child process; fills p with its wall time and wait4 rusage. */
static void run_phase(const cfg *c, phase *p, const char *name, uint64_t logical, child_fn fn,
                      void *arg)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->logical = logical;
    if (!g_json || g_verbose)
        note("  %-12s ... ", name);
    phase_hook("start", name);
    sync(); /* earlier phases' dirty pages are not this phase's cost */
    int pfd[2];
    double t0 = now_s();
    g_phase_t0 = t0;
    pid_t pid = fork_piped(pfd);
    if (pid == 0) {
        close(pfd[0]);
        child_result r;
        memset(&r, 0, sizeof r);
        fn(c, arg, &r);
        ssize_t w = write(pfd[1], &r, sizeof r);
        (void)w;
        _exit(0);
    }
    close(pfd[1]);
    if (!g_json || g_verbose)
        note("[pid %d] ", (int)pid);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    while ((w = wait4(pid, &status, 0, &ru)) < 0 && errno == EINTR)
        ;
    double t1 = now_s();
    if (w < 0)
        die("wait4: %s", strerror(errno));
    ssize_t got = read(pfd[0], &p->res, sizeof p->res);
    close(pfd[0]);
    phase_hook("end", name);
    p->wall = t1 - t0;
    p->user = tv_s(ru.ru_utime);
    p->sys = tv_s(ru.ru_stime);
    p->maxrss_kib = ru.ru_maxrss;
    if (got != (ssize_t)sizeof p->res) {
        p->res.rc = 1;
        if (WIFSIGNALED(status))
            snprintf(p->res.msg, sizeof p->res.msg, "child killed by signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(p->res.msg, sizeof p->res.msg, "child exited with status %d",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    p->uploaded = p->res.uploaded;
    if (!g_json || g_verbose)
        note("%s %.2f s\n", p->res.rc ? "FAILED" : "done", p->wall);
}

/* Library log lines, each with the milliseconds since its phase began. */
static void log_hook(int level, const char *message, void *payload)
{
    (void)payload;
    static const char *lv[] = {"error", "warn", "info", "debug"};
    fprintf(stderr, "[harvbk %s +%.1f ms] %s\n", level >= 0 && level <= 3 ? lv[level] : "?",
            (now_s() - g_phase_t0) * 1e3, message);
}

static void set_err_ctx(child_result *r, int rc, harvbk_ctx *ctx, const char *what)
{
    char m[700] = "";
    if (ctx)
        harvbk_ctx_errmsg_copy(ctx, m, sizeof m);
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s: %s (%s)%s%s", what, harvbk_strerror(rc),
             harvbk_error_name(rc), m[0] ? ": " : "", m);
}

static void set_err_op(child_result *r, int rc, harvbk_op *op, const char *what)
{
    char m[700] = "";
    if (op)
        harvbk_op_errmsg_copy(op, m, sizeof m);
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s: %s (%s)%s%s", what, harvbk_strerror(rc),
             harvbk_error_name(rc), m[0] ? ": " : "", m);
}

/* The S3 secret from a file (trailing newline dropped); NULL when unreadable. */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    char *s = strdup(buf);
    memset(buf, 0, sizeof buf);
    return s;
}

static void wipe_free(char *s)
{
    if (s) {
        volatile char *v = s;
        while (*v)
            *v++ = 0;
        free(s);
    }
}

/* Open the context; point it at the target if it has none yet. */
static harvbk_ctx *open_ctx(const cfg *c, child_result *r)
{
    harvbk_ctx_options o = HARVBK_CTX_OPTIONS_INIT;
    o.threads = c->threads;
    if (g_verbose) {
        o.log_cb = log_hook;
        o.log_level = HARVBK_LOG_DEBUG;
    }
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, c->state, &o);
    if (rc) {
        set_err_ctx(r, rc, NULL, "harvbk_ctx_open");
        return NULL;
    }
    /* the S3 secret is given to each process for its session only */
    char *secret = c->secret_file ? read_secret(c->secret_file) : NULL;
    harvbk_target_config *have = NULL;
    rc = harvbk_ctx_get_target(ctx, &have);
    harvbk_target_config_free(have);
    if (rc == HARVBK_OK) {
        if (secret && (rc = harvbk_ctx_set_target_secret(ctx, secret)) != 0) {
            set_err_ctx(r, rc, ctx, "harvbk_ctx_set_target_secret");
            harvbk_ctx_free(ctx);
            ctx = NULL;
        }
        wipe_free(secret);
        return ctx;
    }
    harvbk_target_config *tc = NULL;
    char url[PATH_MAX + 16], num[32];
    pfmt(url, sizeof url, "file://%s", c->target);
    rc = harvbk_target_config_new(&tc);
    if (!rc)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_URL, c->target_url ? c->target_url : url);
    if (!rc && c->endpoint)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_ENDPOINT, c->endpoint);
    if (!rc && c->region)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_REGION, c->region);
    if (!rc && c->akid)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_ACCESS_KEY_ID, c->akid);
    if (!rc && secret)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_SECRET_ACCESS_KEY, secret);
    if (!rc && c->ca_cert)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_CA_CERT_FILE, c->ca_cert);
    if (!rc && c->vhost)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_VIRTUAL_HOSTED, "1");
    wipe_free(secret);
    if (!rc && c->key_file)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_KEY_FILE, c->key_file);
    if (!rc && c->passphrase_file)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_PASSPHRASE_FILE, c->passphrase_file);
    if (!rc && c->codec)
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_CODEC, c->codec);
    if (!rc && c->chunk_size) {
        snprintf(num, sizeof num, "%" PRIu64, c->chunk_size);
        rc = harvbk_target_config_set(tc, HARVBK_TARGET_CHUNK_SIZE, num);
    }
    if (rc) {
        set_err_ctx(r, rc, ctx, "target configuration");
        harvbk_target_config_free(tc);
        harvbk_ctx_free(ctx);
        return NULL;
    }
    rc = harvbk_ctx_set_target(ctx, tc);
    harvbk_target_config_free(tc);
    if (rc) {
        set_err_ctx(r, rc, ctx, "harvbk_ctx_set_target");
        harvbk_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

typedef struct backup_arg {
    const char *name;
    const extent *ranges; /* NULL: no changed ranges */
    size_t nranges;
} backup_arg;

static void child_backup(const cfg *c, void *argp, child_result *r)
{
    const backup_arg *a = argp;
    harvbk_ctx *ctx = open_ctx(c, r);
    if (!ctx)
        return;
    harvbk_vm *vm = NULL;
    harvbk_ranges *rs = NULL;
    harvbk_op *op = NULL;
    harvbk_backup_info *info = NULL;
    int rc = harvbk_vm_new(&vm, BENCH_NS, BENCH_VM);
    if (!rc)
        rc = harvbk_vm_add_volume_file(vm, BENCH_VOL, c->image);
    if (!rc) {
        static const char meta[] = "{\"kind\":\"VirtualMachine\",\"bench\":true}";
        rc = harvbk_vm_set_metadata(vm, meta, sizeof meta - 1);
    }
    if (rc) {
        set_err_ctx(r, rc, ctx, "VM description");
        goto out;
    }
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    if (a->ranges) {
        if ((rc = harvbk_ranges_new(&rs)) != 0) {
            set_err_ctx(r, rc, ctx, "harvbk_ranges_new");
            goto out;
        }
        for (size_t i = 0; i < a->nranges; i++) {
            rc = harvbk_ranges_add(rs, BENCH_VOL, a->ranges[i].off, a->ranges[i].len);
            if (rc) {
                set_err_ctx(r, rc, ctx, "harvbk_ranges_add");
                goto out;
            }
        }
        bo.changed_ranges = rs;
    }
    rc = harvbk_backup_create(&op, ctx, vm, a->name, &bo);
    if (rc) {
        set_err_ctx(r, rc, ctx, "harvbk_backup_create");
        goto out;
    }
    rc = harvbk_op_wait(op);
    if (rc) {
        set_err_op(r, rc, op, "backup");
        goto out;
    }
    rc = harvbk_backup_get(&info, ctx, BENCH_NS, a->name);
    if (rc) {
        set_err_ctx(r, rc, ctx, "harvbk_backup_get");
        goto out;
    }
    if (harvbk_backup_info_state(info) != HARVBK_STATE_READY) {
        r->rc = 1;
        snprintf(r->msg, sizeof r->msg, "backup %s is %s after a successful wait", a->name,
                 harvbk_state_name(harvbk_backup_info_state(info)));
        goto out;
    }
    r->uploaded = harvbk_backup_info_uploaded_bytes(info);
    r->aux = harvbk_backup_info_logical_bytes(info);
out:
    harvbk_backup_info_free(info);
    harvbk_op_free(op);
    harvbk_ranges_free(rs);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
}

static void child_restore(const cfg *c, void *argp, child_result *r)
{
    const char *backup = argp;
    harvbk_ctx *ctx = open_ctx(c, r);
    if (!ctx)
        return;
    harvbk_op *op = NULL;
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = BENCH_NS;
    ro.new_vm_name = "restored";
    ro.target_dir = c->restore_dir;
    int rc = harvbk_restore_create(&op, ctx, BENCH_NS, backup, &ro);
    if (rc)
        set_err_ctx(r, rc, ctx, "harvbk_restore_create");
    else if ((rc = harvbk_op_wait(op)) != 0)
        set_err_op(r, rc, op, "restore");
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
}

static void child_verify(const cfg *c, void *argp, child_result *r)
{
    const char *backup = argp;
    harvbk_ctx *ctx = open_ctx(c, r);
    if (!ctx)
        return;
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, BENCH_NS, backup, NULL);
    if (rc)
        set_err_ctx(r, rc, ctx, "harvbk_backup_verify");
    else if ((rc = harvbk_op_wait(op)) != 0)
        set_err_op(r, rc, op, "verify");
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
}

static void child_generate(const cfg *c, void *argp, child_result *r)
{
    gen_stats *gs = argp; /* the child's copy; summary goes back in aux */
    generate_image(c->image, c->size, c->seed, gs);
    r->aux = gs->bytes[K_HOLE];
}

static void child_mutate(const cfg *c, void *argp, child_result *r)
{
    unsigned gen = *(const unsigned *)argp;
    mutate_image(c->image, c->seed, c->change_pct, c->change_ext, gen, &r->aux);
}

/* Find the restored volume file: DIR/disk.raw, else the only regular file. */
static bool restored_path(const cfg *c, char *out, size_t n)
{
    struct stat st;
    pfmt(out, n, "%s/%s.raw", c->restore_dir, BENCH_VOL);
    if (stat(out, &st) == 0)
        return true;
    DIR *d = opendir(c->restore_dir);
    if (!d)
        return false;
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        char p[PATH_MAX + 300];
        pfmt(p, sizeof p, "%s/%s", c->restore_dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            pfmt(out, n, "%s", p);
            found++;
        }
    }
    closedir(d);
    return found == 1;
}

static void child_compare(const cfg *c, void *argp, child_result *r)
{
    (void)argp;
    char rp[PATH_MAX];
    if (!restored_path(c, rp, sizeof rp)) {
        r->rc = 1;
        snprintf(r->msg, sizeof r->msg, "restored volume file not found in %.900s", c->restore_dir);
        return;
    }
    int a = open(c->image, O_RDONLY | O_CLOEXEC), b = open(rp, O_RDONLY | O_CLOEXEC);
    if (a < 0 || b < 0) {
        r->rc = 1;
        snprintf(r->msg, sizeof r->msg, "open for compare: %s", strerror(errno));
        return;
    }
    struct stat sa, sb;
    fstat(a, &sa);
    fstat(b, &sb);
    if (sa.st_size != sb.st_size) {
        r->rc = 1;
        snprintf(r->msg, sizeof r->msg, "MISMATCH: restored size %lld != image size %lld",
                 (long long)sb.st_size, (long long)sa.st_size);
        return;
    }
    r->aux = (uint64_t)sb.st_blocks * 512u; /* restored file's allocation */
    const size_t B = 4u << 20;
    uint8_t *x = xmalloc(B), *y = xmalloc(B);
    for (uint64_t off = 0; off < (uint64_t)sa.st_size; off += B) {
        size_t want = (uint64_t)sa.st_size - off < B ? (size_t)((uint64_t)sa.st_size - off) : B;
        size_t ga = full_read(a, x, want, off, c->image), gb = full_read(b, y, want, off, rp);
        if (ga != want || gb != want) {
            r->rc = 1;
            snprintf(r->msg, sizeof r->msg, "short read during compare at %" PRIu64, off);
            break;
        }
        if (memcmp(x, y, want) != 0) {
            size_t i = 0;
            while (x[i] == y[i])
                i++;
            r->rc = 1;
            snprintf(r->msg, sizeof r->msg,
                     "MISMATCH: restored bytes differ from the image at offset %" PRIu64
                     " (region %" PRIu64 ", kind %s): image 0x%02x restored 0x%02x",
                     off + i, (off + i) / REGION,
                     KIND_NAMES[region_kind(c->seed, (off + i) / REGION)], x[i], y[i]);
            break;
        }
    }
    free(x);
    free(y);
    close(a);
    close(b);
}

/* ------------------------------------------------------------ the ceiling */

/* What ceiling_bench measured ("key value" lines), kept as text for --json. */
typedef struct ceiling {
    size_t n;
    char key[48][40], val[48][40];
    double wall; /* how long the measurement took */
} ceiling;

static double ceil_get(const ceiling *ce, const char *key)
{
    for (size_t i = 0; i < ce->n; i++)
        if (!strcmp(ce->key[i], key))
            return strtod(ce->val[i], NULL);
    return 0;
}

static const char *ceil_str(const ceiling *ce, const char *key)
{
    for (size_t i = 0; i < ce->n; i++)
        if (!strcmp(ce->key[i], key))
            return ce->val[i];
    return "?";
}

/* ceiling_bench: --ceiling-bench PATH, else the one next to this program. */
static bool ceiling_path(const cfg *c, char *out, size_t n)
{
    if (c->ceiling_bench) {
        pfmt(out, n, "%s", c->ceiling_bench);
        return access(out, X_OK) == 0;
    }
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0)
        return false;
    self[k] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = '\0';
    pfmt(out, n, "%s/ceiling_bench", self);
    return access(out, X_OK) == 0;
}

/* Runs ceiling_bench on the image, the store and the scratch disk of this run
 * (after the phases, so it never competes with them). false: not measured,
 * said why on stderr. */
static bool measure_ceiling(const cfg *c, ceiling *ce)
{
    memset(ce, 0, sizeof *ce);
    char prog[PATH_MAX], scfg[PATH_MAX + 32];
    if (!ceiling_path(c, prog, sizeof prog)) {
        note("harvbk_bench: ceiling_bench not found (%s); no ceilings\n",
             c->ceiling_bench ? c->ceiling_bench : "next to harvbk_bench");
        return false;
    }
    pfmt(scfg, sizeof scfg, "%s/harvbk-store.json", c->target);
    const char *argv[] = {prog, "--image", c->image, "--dir", c->run_dir, "--store-config", scfg,
                          "--store-dir", c->target,
                          c->ceiling_disk_bytes ? "--disk-bytes" : NULL, c->ceiling_disk_bytes, NULL};
    if (!g_json || g_verbose)
        note("  %-12s ... ", "ceiling");
    sync();
    int pfd[2];
    double t0 = now_s();
    g_phase_t0 = t0;
    pid_t pid = fork_piped(pfd);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execv(prog, (char *const *)argv);
        fprintf(stderr, "harvbk_bench: exec %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (ce->n < 48 && sscanf(line, "%39s %39s", ce->key[ce->n], ce->val[ce->n]) == 2)
            ce->n++;
    if (f)
        fclose(f);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ce->wall = now_s() - t0;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && ceil_get(ce, "disk_read_s") > 0;
    if (!g_json || g_verbose)
        note("%s %.2f s\n", ok ? "done" : "FAILED", ce->wall);
    if (!ok)
        note("harvbk_bench: %s failed; no ceilings\n", prog);
    return ok;
}

/* The machine's ceiling of each phase from the measured figures (the model of
 * bench/README.md): the larger of the disk time and the CPU time spread over
 * every CPU. Bytes the page cache held when measured are not charged to the
 * disk. changed: bytes of the chunks the change touched. */
static void apply_ceiling(const ceiling *ce, phase *ph, size_t n, uint64_t changed, bool cold)
{
    double cores = ceil_get(ce, "cpus"), data = ceil_get(ce, "data_bytes");
    double nonzero = ceil_get(ce, "nonzero_bytes"), uniq = ceil_get(ce, "unique_bytes");
    double rbw = ceil_get(ce, "disk_bytes") / ceil_get(ce, "disk_read_s");
    double wbw = ceil_get(ce, "disk_bytes") / ceil_get(ce, "disk_write_s");
    double zero = ceil_get(ce, "zero_scan_cpu_s"), hash = ceil_get(ce, "hash_cpu_s");
    double comp = ceil_get(ce, "compress_cpu_s");
    if (cores < 1 || data <= 0 || rbw <= 0 || wbw <= 0)
        return;
    double img_unc = data - ceil_get(ce, "image_cached_bytes"); /* read from the disk */
    if (img_unc < 0)
        img_unc = 0;
    double sb = ceil_get(ce, "store_dir_bytes"), st_unc = 1;
    if (sb > 0 && !cold) /* --cold-store: the verify read all of it from the disk */
        st_unc = 1 - ceil_get(ce, "store_dir_cached_bytes") / sb;
    double per_data = zero / data, per_nz = nonzero > 0 ? hash / nonzero : 0;
    double per_uq = uniq > 0 ? comp / uniq : 0, ch = (double)changed;
    for (size_t i = 0; i < n; i++) {
        phase *p = &ph[i];
        double d, u;
        if (!strcmp(p->name, "full")) {
            d = img_unc / rbw;
            u = zero + hash + comp;
        } else if (!strcmp(p->name, "incr")) {
            d = img_unc / rbw;
            u = zero + hash + per_uq * ch; /* only the changed chunks are new */
        } else if (!strcmp(p->name, "incr-ranges")) {
            d = ch * img_unc / data / rbw;
            u = (per_data + per_nz + per_uq) * ch;
        } else if (!strcmp(p->name, "restore")) {
            d = nonzero / wbw; /* zero chunks and holes stay holes */
            u = ceil_get(ce, "decode_cpu_s");
        } else if (!strcmp(p->name, "verify")) {
            d = ceil_get(ce, "stored_bytes") * st_unc / rbw;
            u = ceil_get(ce, "decode_unique_cpu_s");
        } else {
            continue;
        }
        p->has_ceil = true;
        p->ceil_disk_s = d;
        p->ceil_cpu_s = u / cores;
        p->ceil_s = d > p->ceil_cpu_s ? d : p->ceil_cpu_s;
    }
}

/* ---------------------------------------------------------------- output */

static uint64_t g_changed;

static void print_table(const cfg *c, phase *ph, size_t n, uint64_t img_alloc,
                        uint64_t tgt_alloc, uint64_t tgt_apparent, uint64_t restored_alloc,
                        const gen_stats *gs, const ceiling *ce)
{
    char a[32], b[32], d[32];
    char thr[16], chk[32];
    snprintf(thr, sizeof thr, "%u", c->threads);
    if (c->chunk_size)
        fmt_bytes(chk, sizeof chk, c->chunk_size);
    printf("libharvbk %s benchmark: image %.2f GiB (seed %" PRIu64 "), codec %s, threads %s, "
           "chunk size %s\n",
           harvbk_version(), (double)c->size / (1u << 30), c->seed, c->codec ? c->codec : "default",
           c->threads ? thr : "auto", c->chunk_size ? chk : "default");
    if (gs) {
        fmt_bytes(a, sizeof a, gs->bytes[K_HOLE]);
        fmt_bytes(b, sizeof b, gs->bytes[K_ZERO]);
        printf("image layout: holes %s, zeros %s, ", a, b);
        fmt_bytes(a, sizeof a, gs->bytes[K_TEXT]);
        fmt_bytes(b, sizeof b, gs->bytes[K_RANDOM]);
        printf("text %s, random %s\n", a, b);
    }
    fmt_bytes(a, sizeof a, img_alloc);
    fmt_bytes(b, sizeof b, g_changed);
    printf("image allocated on disk: %s; change per incremental: %s (%.2f%%) in %s extents\n",
           a, b, c->change_pct, (fmt_bytes(d, sizeof d, c->change_ext), d));
    if (c->cold_store)
        printf("--cold-store: restore and verify read the store from the disk, not the page cache\n");
    printf("\n%-12s %9s %9s %9s %9s %9s %11s %12s %12s %9s %7s\n", "phase", "wall_s", "MB/s",
           "user_s", "sys_s", "cpu_s", "peakRSS_MiB", "uploaded", "target_after", "ceiling_s",
           "x_ceil");
    for (size_t i = 0; i < n; i++) {
        phase *p = &ph[i];
        char mbs[16] = "-", up[32] = "-", tg[32] = "-", cl[24] = "-", cx[24] = "-";
        if (p->has_ceil) {
            snprintf(cl, sizeof cl, "%.3f%c", p->ceil_s, p->ceil_disk_s > p->ceil_cpu_s ? 'd' : 'c');
            snprintf(cx, sizeof cx, "%.2f", p->ceil_s > 0 ? p->wall / p->ceil_s : 0.0);
        }
        if (p->logical && p->wall > 0)
            snprintf(mbs, sizeof mbs, "%.0f", (double)p->logical / p->wall / 1e6);
        if (p->has_uploaded)
            fmt_bytes(up, sizeof up, p->uploaded);
        if (p->has_target)
            fmt_bytes(tg, sizeof tg, p->target_alloc);
        printf("%-12s %9.3f %9s %9.2f %9.2f %9.2f %11.1f %12s %12s %9s %7s%s\n", p->name, p->wall,
               mbs, p->user, p->sys, p->user + p->sys, (double)p->maxrss_kib / 1024, up, tg, cl,
               cx, p->res.rc ? "  FAILED" : "");
    }
    fmt_bytes(a, sizeof a, tgt_alloc);
    fmt_bytes(b, sizeof b, tgt_apparent);
    if (c->target_url)
        printf("\ntarget: %s (stored size not measured here)\n", c->target_url);
    else
        printf("\nstored in target: %s on disk (st_blocks), %s apparent; ratio to logical %.3f\n",
               a, b, (double)tgt_alloc / (double)c->size);
    if (restored_alloc) {
        fmt_bytes(a, sizeof a, restored_alloc);
        printf("restored file allocated: %s (image: ", a);
        fmt_bytes(a, sizeof a, img_alloc);
        printf("%s)\n", a);
    }
    printf("MB/s = 10^6 bytes of logical volume size per wall second; CPU and peak RSS from "
           "wait4() of the phase's own process.\n");
    if (ce) {
        double db = ceil_get(ce, "disk_bytes"), data = ceil_get(ce, "data_bytes");
        double sb = ceil_get(ce, "store_dir_bytes");
        char cs[32];
        fmt_bytes(cs, sizeof cs, (uint64_t)ceil_get(ce, "chunk_size"));
        printf("ceiling_s = the machine's limit for the phase, measured after the phases on this "
               "image's %s %s chunks\n(bench/README.md): max(disk time, CPU time / %g CPUs), 'd' "
               "or 'c' for the larger; x_ceil = wall_s / ceiling_s.\n",
               cs, ceil_str(ce, "codec"), ceil_get(ce, "cpus"));
        printf("  one core: %s %.0f MB/s, %s-%s compress %.0f MB/s (distinct non-zero chunks, "
               "%.0f%% of them shrank)\n",
               ceil_get(ce, "encrypted") ? "HMAC-SHA-256" : "SHA-256", ceil_get(ce, "sha_mb_per_s"),
               ceil_str(ce, "codec"), ceil_str(ce, "level"), ceil_get(ce, "compress_mb_per_s"),
               100.0 * ceil_get(ce, "compressed_chunks") /
                   (ceil_get(ce, "unique_chunks") > 0 ? ceil_get(ce, "unique_chunks") : 1));
        printf("  disk (O_DIRECT, %.0f MiB, sequential): write+fsync %.0f MB/s, read %.0f MB/s; "
               "page cache held %.0f%% of the image's data, %.0f%% of the store\n",
               db / 1048576, db / ceil_get(ce, "disk_write_s") / 1e6,
               db / ceil_get(ce, "disk_read_s") / 1e6,
               data > 0 ? 100.0 * ceil_get(ce, "image_cached_bytes") / data : 0.0,
               sb > 0 ? 100.0 * ceil_get(ce, "store_dir_cached_bytes") / sb : 0.0);
    }
    bool failed = false;
    for (size_t i = 0; i < n; i++)
        if (ph[i].res.rc) {
            printf("\nFAILED: phase %s: %s\n", ph[i].name, ph[i].res.msg);
            failed = true;
        }
    printf("%s\n", failed ? "\nRESULT: FAILED" : "\nRESULT: ok (restored bytes equal the image)");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void print_json(const cfg *c, phase *ph, size_t n, uint64_t img_alloc, uint64_t tgt_alloc,
                       uint64_t tgt_apparent, uint64_t restored_alloc, bool ok,
                       const gen_stats *gs, const ceiling *ce)
{
    printf("{\n  \"library_version\": ");
    json_str(stdout, harvbk_version());
    printf(",\n  \"size_bytes\": %" PRIu64 ",\n  \"seed\": %" PRIu64 ",\n", c->size, c->seed);
    printf("  \"threads\": %u,\n  \"codec\": ", c->threads);
    json_str(stdout, c->codec ? c->codec : "default");
    printf(",\n  \"chunk_size\": %" PRIu64 ",\n", c->chunk_size);
    printf("  \"encrypted\": %s,\n", c->key_file || c->passphrase_file ? "true" : "false");
    printf("  \"cold_store\": %s,\n", c->cold_store ? "true" : "false");
    printf("  \"change_pct\": %.3f,\n  \"change_extent_bytes\": %" PRIu64 ",\n", c->change_pct,
           c->change_ext);
    printf("  \"changed_bytes\": %" PRIu64 ",\n", g_changed);
    if (gs)
        printf("  \"image_layout_bytes\": {\"hole\": %" PRIu64 ", \"zero\": %" PRIu64
               ", \"text\": %" PRIu64 ", \"random\": %" PRIu64 "},\n",
               gs->bytes[K_HOLE], gs->bytes[K_ZERO], gs->bytes[K_TEXT], gs->bytes[K_RANDOM]);
    printf("  \"image_allocated_bytes\": %" PRIu64 ",\n", img_alloc);
    printf("  \"phases\": [\n");
    for (size_t i = 0; i < n; i++) {
        phase *p = &ph[i];
        printf("    {\"name\": ");
        json_str(stdout, p->name);
        printf(", \"ok\": %s, \"wall_s\": %.4f, \"user_s\": %.4f, \"sys_s\": %.4f, "
               "\"cpu_s\": %.4f, \"peak_rss_kib\": %ld",
               p->res.rc ? "false" : "true", p->wall, p->user, p->sys, p->user + p->sys,
               p->maxrss_kib);
        if (p->logical)
            printf(", \"logical_bytes\": %" PRIu64 ", \"mb_per_s\": %.2f", p->logical,
                   p->wall > 0 ? (double)p->logical / p->wall / 1e6 : 0.0);
        if (p->has_uploaded)
            printf(", \"uploaded_bytes\": %" PRIu64, p->uploaded);
        if (p->has_target)
            printf(", \"target_allocated_bytes_after\": %" PRIu64
                   ", \"target_apparent_bytes_after\": %" PRIu64,
                   p->target_alloc, p->target_apparent);
        if (p->has_ceil)
            printf(", \"ceiling_s\": %.6f, \"ceiling_disk_s\": %.6f, \"ceiling_cpu_s\": %.6f, "
                   "\"ceiling_multiple\": %.3f",
                   p->ceil_s, p->ceil_disk_s, p->ceil_cpu_s, p->ceil_s > 0 ? p->wall / p->ceil_s : 0.0);
        if (p->res.rc) {
            printf(", \"error\": ");
            json_str(stdout, p->res.msg);
        }
        printf("}%s\n", i + 1 < n ? "," : "");
    }
    printf("  ],\n");
    if (ce) { /* what ceiling_bench measured, as it said it */
        printf("  \"ceiling\": {\"wall_s\": %.3f", ce->wall);
        for (size_t i = 0; i < ce->n; i++) {
            char *end;
            strtod(ce->val[i], &end);
            printf(", \"%s\": ", ce->key[i]);
            if (*end || !ce->val[i][0])
                json_str(stdout, ce->val[i]);
            else
                printf("%s", ce->val[i]);
        }
        printf("},\n");
    }
    printf("  \"target_allocated_bytes\": %" PRIu64 ",\n", tgt_alloc);
    printf("  \"target_apparent_bytes\": %" PRIu64 ",\n", tgt_apparent);
    printf("  \"restored_allocated_bytes\": %" PRIu64 ",\n", restored_alloc);
    printf("  \"restore_matches_image\": %s,\n  \"ok\": %s\n}\n", ok ? "true" : "false",
           ok ? "true" : "false");
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  harvbk_bench --size SIZE [--dir SCRATCH] [--image PATH] [--threads N]\n"
          "               [--codec zstd|lz4|gzip|none] [--chunk-size BYTES] [--seed N]\n"
          "               [--change-pct P] [--change-extent BYTES] [--keep] [--json] [--verbose]\n"
          "               [--target-url s3://BUCKET/PREFIX --endpoint URL [--region R]\n"
          "                --access-key-id ID --secret-access-key-file FILE [--ca-cert PEM]\n"
          "                [--virtual-hosted]] [--key-file FILE | --passphrase-file FILE]\n"
          "               [--ceiling-bench PATH [--ceiling-disk-bytes N] | --no-ceiling]\n"
          "               [--phase-hook CMD] [--cold-store]\n"
          "  harvbk_bench --generate-only --size SIZE --image PATH [--seed N]\n"
          "  harvbk_bench --mutate IMAGE [--generation N] [--seed N] [--change-pct P]\n"
          "               [--change-extent BYTES]\n"
          "  harvbk_bench --drop-cache DIR\n"
          "\n"
          "SIZE accepts K/M/G/T suffixes (binary). SCRATCH defaults to $TMPDIR or /tmp;\n"
          "a fresh harvbk-bench.XXXXXX directory is made inside it and removed at the end\n"
          "unless --keep. --image PATH: an existing image is benchmarked as is (and put back\n"
          "to its original bytes afterwards); a missing one is generated there.\n"
          "--mutate applies the deterministic ~1%% change (generation N >= 1) or puts the\n"
          "original bytes back (--generation 0); use the same --seed as the generation.\n"
          "--target-url: run the phases against that target (S3: the secret is given to\n"
          "each phase with harvbk_ctx_set_target_secret, never stored) instead of a\n"
          "file:// target in the scratch directory (use a fresh prefix per run). The\n"
          "target's stored size is then not measured.\n"
          "--key-file / --passphrase-file: the store is encrypted (AES-256-GCM) with that\n"
          "key (an absolute path, mode 0600); bench/run-crypt.sh compares with plaintext.\n"
          "After the phases (file:// target only) ceiling_bench, found next to this program\n"
          "or at --ceiling-bench PATH, measures the machine's limits on this image's chunks\n"
          "and the scratch disk; each phase is shown against its ceiling (bench/README.md).\n"
          "--no-ceiling skips that; --ceiling-disk-bytes sizes its disk test file\n"
          "(default: the image's data, 1..2 GiB).\n"
          "--phase-hook CMD: runs 'CMD start PHASE' before and 'CMD end PHASE' after each\n"
          "phase, untimed, through the shell, its output on stderr; a failure stops.\n"
          "--cold-store (file:// target): the store's files leave the page cache before\n"
          "the restore and before the verify (untimed), so both read it from the disk, as\n"
          "a restore hours after its backup does. --drop-cache DIR does the same to every\n"
          "file under DIR, and nothing else (run-peers.sh --cold-store: the peers' repositories).\n",
          f);
}

int main(int argc, char **argv)
{
    cfg c;
    memset(&c, 0, sizeof c);
    c.seed = DEFAULT_SEED;
    c.change_pct = 1.0;
    c.change_ext = 256u << 10;
    const char *dir = NULL, *image = NULL, *mutate = NULL, *drop = NULL;
    bool gen_only = false, have_size = false;
    unsigned generation = 1;

    enum { O_SIZE = 1000, O_DIR, O_THREADS, O_CODEC, O_KEEP, O_JSON, O_GEN, O_MUTATE, O_GENER,
           O_IMAGE, O_SEED, O_CHUNK, O_PCT, O_EXT, O_VERBOSE, O_HELP, O_TURL, O_EP, O_REGION,
           O_AKID, O_SECRET, O_CA, O_VHOST, O_KEYF, O_PASSF, O_CEILB, O_NOCEIL, O_CEILD, O_HOOK,
           O_COLD, O_DROP };
    static const struct option lo[] = {
        {"size", required_argument, 0, O_SIZE},       {"dir", required_argument, 0, O_DIR},
        {"threads", required_argument, 0, O_THREADS}, {"codec", required_argument, 0, O_CODEC},
        {"keep", no_argument, 0, O_KEEP},             {"json", no_argument, 0, O_JSON},
        {"generate-only", no_argument, 0, O_GEN},     {"mutate", required_argument, 0, O_MUTATE},
        {"generation", required_argument, 0, O_GENER}, {"image", required_argument, 0, O_IMAGE},
        {"seed", required_argument, 0, O_SEED},       {"chunk-size", required_argument, 0, O_CHUNK},
        {"change-pct", required_argument, 0, O_PCT},  {"change-extent", required_argument, 0, O_EXT},
        {"verbose", no_argument, 0, O_VERBOSE},       {"help", no_argument, 0, O_HELP},
        {"target-url", required_argument, 0, O_TURL}, {"endpoint", required_argument, 0, O_EP},
        {"region", required_argument, 0, O_REGION},   {"access-key-id", required_argument, 0, O_AKID},
        {"secret-access-key-file", required_argument, 0, O_SECRET},
        {"ca-cert", required_argument, 0, O_CA},      {"virtual-hosted", no_argument, 0, O_VHOST},
        {"key-file", required_argument, 0, O_KEYF},
        {"passphrase-file", required_argument, 0, O_PASSF},
        {"ceiling-bench", required_argument, 0, O_CEILB}, {"no-ceiling", no_argument, 0, O_NOCEIL},
        {"ceiling-disk-bytes", required_argument, 0, O_CEILD},
        {"phase-hook", required_argument, 0, O_HOOK},
        {"cold-store", no_argument, 0, O_COLD},
        {"drop-cache", required_argument, 0, O_DROP},
        {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end;
        switch (opt) {
        case O_SIZE:
            if (parse_size(optarg, &c.size) || c.size < REGION)
                die("--size: want at least 4M, e.g. 1G, got '%s'", optarg);
            have_size = true;
            break;
        case O_DIR: dir = optarg; break;
        case O_THREADS:
            c.threads = (unsigned)strtoul(optarg, &end, 10);
            if (*end)
                die("--threads: not a number: '%s'", optarg);
            break;
        case O_CODEC: c.codec = optarg; break;
        case O_KEEP: c.keep = true; break;
        case O_JSON: g_json = true; break;
        case O_GEN: gen_only = true; break;
        case O_MUTATE: mutate = optarg; break;
        case O_GENER:
            generation = (unsigned)strtoul(optarg, &end, 10);
            if (*end)
                die("--generation: not a number: '%s'", optarg);
            break;
        case O_IMAGE: image = optarg; break;
        case O_SEED:
            c.seed = strtoull(optarg, &end, 0);
            if (*end)
                die("--seed: not a number: '%s'", optarg);
            break;
        case O_CHUNK:
            if (parse_size(optarg, &c.chunk_size))
                die("--chunk-size: bad size '%s'", optarg);
            break;
        case O_PCT:
            c.change_pct = strtod(optarg, &end);
            if (*end || c.change_pct <= 0 || c.change_pct > 100)
                die("--change-pct: want 0 < P <= 100, got '%s'", optarg);
            break;
        case O_EXT:
            if (parse_size(optarg, &c.change_ext) || c.change_ext < BLK)
                die("--change-extent: want a size >= 4K, got '%s'", optarg);
            break;
        case O_VERBOSE: g_verbose = true; break;
        case O_TURL: c.target_url = optarg; break;
        case O_EP: c.endpoint = optarg; break;
        case O_REGION: c.region = optarg; break;
        case O_AKID: c.akid = optarg; break;
        case O_SECRET: c.secret_file = optarg; break;
        case O_CA: c.ca_cert = optarg; break;
        case O_VHOST: c.vhost = true; break;
        case O_KEYF: c.key_file = optarg; break;
        case O_PASSF: c.passphrase_file = optarg; break;
        case O_CEILB: c.ceiling_bench = optarg; break;
        case O_HOOK: g_phase_hook = optarg; break;
        case O_NOCEIL: c.no_ceiling = true; break;
        case O_COLD: c.cold_store = true; break;
        case O_DROP: drop = optarg; break;
        case O_CEILD: c.ceiling_disk_bytes = optarg; break;
        case O_HELP: usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (c.target_url)
        c.cold_store = false; /* file:// targets only (the store's files are ours to drop) */
    if (c.secret_file) {
        char *sec = read_secret(c.secret_file);
        if (!sec || !*sec)
            die("--secret-access-key-file %s: cannot read a secret from it", c.secret_file);
        wipe_free(sec);
    }
    signal(SIGPIPE, SIG_IGN);
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal; /* no SA_RESTART: wait4 returns EINTR, we wait again */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }

    if (drop) { /* the peers' repositories, for run-peers.sh --cold-store */
        uint64_t nf = drop_cache(drop);
        note("harvbk_bench: %" PRIu64 " files under %s dropped from the page cache\n", nf, drop);
        return 0;
    }
    if (mutate) {
        uint64_t bytes = 0;
        double t0 = now_s();
        mutate_image(mutate, c.seed, c.change_pct, c.change_ext, generation, &bytes);
        note("harvbk_bench: %s generation %u: %" PRIu64 " bytes in %.2f s\n",
             generation ? "mutated to" : "restored original,", generation, bytes, now_s() - t0);
        return 0;
    }
    if (gen_only) {
        if (!have_size || !image)
            die("--generate-only needs --size and --image");
        gen_stats gs;
        double t0 = now_s();
        generate_image(image, c.size, c.seed, &gs);
        note("harvbk_bench: generated %s (%" PRIu64 " bytes, seed %" PRIu64 ") in %.2f s\n",
             image, c.size, c.seed, now_s() - t0);
        return 0;
    }

    /* ---- full benchmark ---- */
    struct stat st;
    bool generate = true;
    if (image && stat(image, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            die("--image %s: not a regular file", image);
        c.size = (uint64_t)st.st_size;
        generate = false;
        if (have_size)
            note("harvbk_bench: --image exists, benchmarking it as is (%" PRIu64 " bytes)\n",
                 c.size);
    } else if (!have_size) {
        die("--size is required (or --image of an existing image)");
    }
    if (!dir || !*dir)
        dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0)
        die("scratch dir %s: %s", dir, strerror(errno));
    pfmt(c.run_dir, sizeof c.run_dir, "%s/harvbk-bench.XXXXXX", dir);
    if (!mkdtemp(c.run_dir))
        die("mkdtemp in %s: %s", dir, strerror(errno));
    {
        char *abs = realpath(c.run_dir, NULL);
        if (!abs)
            die("realpath %s: %s", c.run_dir, strerror(errno));
        pfmt(c.run_dir, sizeof c.run_dir, "%s", abs);
        free(abs);
    }
    c.image_external = image != NULL; /* never deleted; put back to generation 0 */
    if (image && generate)
        pfmt(c.image, sizeof c.image, "%s", image);
    else if (image) {
        char *abs = realpath(image, NULL);
        pfmt(c.image, sizeof c.image, "%s", abs ? abs : image);
        free(abs);
    } else
        pfmt(c.image, sizeof c.image, "%s/image.raw", c.run_dir);
    pfmt(c.state, sizeof c.state, "%s/state", c.run_dir);
    pfmt(c.target, sizeof c.target, "%s/target", c.run_dir);
    pfmt(c.restore_dir, sizeof c.restore_dir, "%s/restore", c.run_dir);
    if (mkdir(c.target, 0755) != 0 || mkdir(c.restore_dir, 0755) != 0)
        die("mkdir in %s: %s", c.run_dir, strerror(errno));

    /* space check: image + restored copy + a compressed copy, roughly */
    struct statvfs vfs;
    if (statvfs(c.run_dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        uint64_t need = (generate ? c.size : 0) + c.size + c.size / 2;
        if (avail < need) {
            rm_rf(c.run_dir);
            die("not enough free space in %s: %.1f GiB available, about %.1f GiB needed", dir,
                (double)avail / (1u << 30), (double)need / (1u << 30));
        }
    }

    if (!g_json || g_verbose)
        note("harvbk_bench: libharvbk %s, scratch %s\n", harvbk_version(), c.run_dir);

    phase ph[12];
    size_t np = 0;
    bool ok = true;
    gen_stats gs;
    memset(&gs, 0, sizeof gs);
    bool have_gs = false;
    if (generate) {
        run_phase(&c, &ph[np], "generate", c.size, child_generate, &gs);
        if (ph[np].res.rc || g_stop) {
            if (!c.keep)
                rm_rf(c.run_dir);
            if (image) /* a half-written image is no use to anyone */
                unlink(c.image);
            die("image generation %s: %s", g_stop ? "interrupted" : "failed", ph[np].res.msg);
        }
        np++;
    }
    /* layout is a pure function of (seed, size): recompute it here */
    for (uint64_t off = 0, idx = 0; off < c.size; off += REGION, idx++)
        gs.bytes[region_kind(c.seed, idx)] += c.size - off < REGION ? c.size - off : REGION;
    have_gs = true;
    uint64_t img_alloc = 0;
    du(c.image, &img_alloc, NULL);

    extent *ex = NULL;
    size_t nex = mutation_extents(c.size, c.seed, c.change_pct, c.change_ext, &ex);
    uint64_t changed = 0;
    for (size_t i = 0; i < nex; i++)
        changed += ex[i].len;
    g_changed = changed;
    unsigned gen1 = 1, gen2 = 2;
    backup_arg b_full = {"full", NULL, 0}, b_incr = {"incr", NULL, 0},
               b_cbt = {"incr-ranges", ex, nex};

    struct step {
        const char *name;
        child_fn fn;
        void *arg;
        uint64_t logical;
        bool backup;
    } steps[] = {
        {"full", child_backup, &b_full, c.size, true},
        {"mutate", child_mutate, &gen1, 0, false},
        {"incr", child_backup, &b_incr, c.size, true},
        {"mutate", child_mutate, &gen2, 0, false},
        {"incr-ranges", child_backup, &b_cbt, c.size, true},
        {"restore", child_restore, (void *)"incr-ranges", c.size, false},
        {"verify", child_verify, (void *)"incr-ranges", c.size, false},
        {"compare", child_compare, NULL, 0, false},
    };
    uint64_t restored_alloc = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        phase *p = &ph[np++];
        if (c.cold_store &&
            (!strcmp(steps[i].name, "restore") || !strcmp(steps[i].name, "verify"))) {
            uint64_t nf = drop_cache(c.target);
            if (g_verbose)
                note("harvbk_bench: --cold-store: %" PRIu64 " files of the store dropped from "
                     "the page cache before %s\n", nf, steps[i].name);
        }
        run_phase(&c, p, steps[i].name, steps[i].logical, steps[i].fn, steps[i].arg);
        if (steps[i].backup) {
            p->has_uploaded = true;
        }
        if (!c.target_url && (steps[i].backup || !strcmp(steps[i].name, "restore"))) {
            du(c.target, &p->target_alloc, &p->target_apparent);
            p->has_target = true;
        }
        if (!strcmp(steps[i].name, "compare") && !p->res.rc)
            restored_alloc = p->res.aux;
        if (g_stop && !p->res.rc) {
            p->res.rc = 1;
            snprintf(p->res.msg, sizeof p->res.msg, "interrupted by signal %d", (int)g_stop);
        }
        if (p->res.rc) {
            ok = false;
            note("harvbk_bench: phase %s FAILED: %s\n", p->name, p->res.msg);
            if (!strcmp(steps[i].name, "compare"))
                note("harvbk_bench: *** RESTORED DATA DOES NOT MATCH THE IMAGE ***\n");
            break; /* later phases depend on this one */
        }
    }

    uint64_t tgt_alloc = 0, tgt_apparent = 0;
    du(c.target, &tgt_alloc, &tgt_apparent);
    /* the ceilings: on a file:// target, after every phase passed */
    ceiling ce;
    bool have_ce = false;
    if (ok && !c.no_ceiling && !c.target_url && !g_stop && (have_ce = measure_ceiling(&c, &ce))) {
        uint64_t cs = (uint64_t)ceil_get(&ce, "chunk_size"), touched = 0, last = UINT64_MAX;
        for (size_t i = 0; cs && i < nex; i++) /* the extents are sorted and apart */
            for (uint64_t k = ex[i].off / cs; k <= (ex[i].off + ex[i].len - 1) / cs; k++)
                if (k != last) {
                    touched += cs;
                    last = k;
                }
        apply_ceiling(&ce, ph, np, touched, c.cold_store);
    }
    if (g_json)
        print_json(&c, ph, np, img_alloc, tgt_alloc, tgt_apparent, restored_alloc, ok,
                   have_gs ? &gs : NULL, have_ce ? &ce : NULL);
    else
        print_table(&c, ph, np, img_alloc, tgt_alloc, tgt_apparent, restored_alloc,
                    have_gs ? &gs : NULL, have_ce ? &ce : NULL);
    fflush(stdout);

    if (c.image_external) { /* leave the caller's image as we found it */
        uint64_t dummy;
        mutate_image(c.image, c.seed, c.change_pct, c.change_ext, 0, &dummy);
    }
    free(ex);
    if (c.keep)
        note("harvbk_bench: kept %s\n", c.run_dir);
    else {
        rm_rf(c.run_dir);
    }
    return ok ? 0 : 1;
}
