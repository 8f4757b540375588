/* tests/e2e/e2e.c - helpers of the end-to-end tests (see e2e.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "e2e.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------ misc */

void e2e_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *e2e_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

char *e2e_path(const char *a, const char *b)
{
    return e2e_strf("%s/%s", a, b);
}

const char *e2e_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

unsigned e2e_scaled_ms(unsigned ms)
{
    const char *s = getenv("HARVBK_E2E_TIMEOUT_SCALE");
    long k = s && *s ? strtol(s, NULL, 10) : 1;
    if (k < 1 || k > 100)
        k = 1;
    return (unsigned)(ms * (unsigned long)k);
}

const char *e2e_cli(void)
{
    const char *c = getenv("HARVBK_CLI");
    if (!c || !*c)
        fail_msg("HARVBK_CLI is not set (path of the harvbk CLI)");
    return c;
}

size_t e2e_line_count(const char *s)
{
    size_t n = 0;
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n')
            n++;
    if (s[strlen(s) - 1] != '\n')
        n++;
    return n;
}

bool e2e_icontains(const char *hay, const char *needle)
{
    if (!hay || !needle)
        return false;
    return strcasestr(hay, needle) != NULL;
}

/* -------------------------------------------------------------- temp dirs */

static const char *tmp_base(void)
{
    const char *b = getenv("HARVBK_TEST_TMP");
    return b && *b ? b : "/tmp";
}

static void mkdir_p(const char *path)
{
    char *p = strdup(path);
    assert_non_null(p);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    }
    mkdir(p, 0755);
    free(p);
}

char *e2e_mkdtemp(const char *tag)
{
    mkdir_p(tmp_base());
    char *p = e2e_strf("%s/e2e-%s-XXXXXX", tmp_base(), tag);
    if (!mkdtemp(p))
        fail_msg("mkdtemp %s: %s", p, strerror(errno));
    return p;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void e2e_rmrf_force(const char *path)
{
    if (!path)
        return;
    nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
    /* a path that is a file */
    unlink(path);
}

void e2e_rmrf(const char *path)
{
    if (getenv("HARVBK_E2E_KEEP"))
        return;
    e2e_rmrf_force(path);
}

/* Scratch dir of this process: child cwd and capture files. */
static char *g_io_dir;
static unsigned g_io_seq;

static void io_cleanup(void)
{
    if (g_io_dir)
        e2e_rmrf_force(g_io_dir);
}

static const char *io_dir(void)
{
    if (!g_io_dir) {
        g_io_dir = e2e_mkdtemp("io");
        atexit(io_cleanup);
        atexit(e2e_kill_children); /* runs first */
    }
    return g_io_dir;
}

/* -------------------------------------------------------------- processes */

/* Every child still running, so a failing test (which longjmps out) cannot
 * leave one behind: e2e_kill_children() kills them by PID and reaps them. */
#define E2E_MAX_CHILDREN 64
static pid_t g_children[E2E_MAX_CHILDREN];

static void child_add(pid_t pid)
{
    for (int i = 0; i < E2E_MAX_CHILDREN; i++)
        if (g_children[i] == 0) {
            g_children[i] = pid;
            return;
        }
}

static void child_del(pid_t pid)
{
    for (int i = 0; i < E2E_MAX_CHILDREN; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
}

void e2e_kill_children(void)
{
    for (int i = 0; i < E2E_MAX_CHILDREN; i++) {
        pid_t pid = g_children[i];
        if (pid <= 0)
            continue;
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        g_children[i] = 0;
    }
}

static void cmdline_of(char *buf, size_t size, char *const *argv)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; argv[i] && off + 1 < size; i++) {
        int n = snprintf(buf + off, size - off, "%s%s", i ? " " : "", argv[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
}

int e2e_spawnv(e2e_proc *p, const char *state, const char *const *args)
{
    memset(p, 0, sizeof *p);
    const char *cli = e2e_cli();
    const char *dir = io_dir();
    unsigned seq = ++g_io_seq;
    p->out_path = e2e_strf("%s/out-%u", dir, seq);
    p->err_path = e2e_strf("%s/err-%u", dir, seq);

    /* argv: [wrapper...] cli [--state S] args... NULL */
    size_t nargs = 0;
    while (args && args[nargs])
        nargs++;
    char *wrap = getenv("HARVBK_CLI_WRAPPER") ? strdup(getenv("HARVBK_CLI_WRAPPER")) : NULL;
    size_t nwrap = 0;
    char *wrapv[32];
    if (wrap) {
        for (char *sv = NULL, *t = strtok_r(wrap, " ", &sv); t && nwrap < 31;
             t = strtok_r(NULL, " ", &sv))
            wrapv[nwrap++] = t;
    }
    char **argv = calloc(nwrap + nargs + 4, sizeof *argv);
    assert_non_null(argv);
    size_t k = 0;
    for (size_t i = 0; i < nwrap; i++)
        argv[k++] = wrapv[i];
    argv[k++] = (char *)cli;
    if (state) {
        argv[k++] = "--state";
        argv[k++] = (char *)state;
    }
    for (size_t i = 0; i < nargs; i++)
        argv[k++] = (char *)args[i];
    argv[k] = NULL;
    cmdline_of(p->cmdline, sizeof p->cmdline, argv);

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawnattr_init(&at);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGCHLD);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
    if (rc != 0 && nwrap > 0) /* wrapper given by name: search PATH */
        rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(argv);
    free(wrap);
    if (rc != 0) {
        errno = rc;
        print_error("spawn %s: %s\n", p->cmdline, strerror(rc));
        return -1;
    }
    p->pid = pid;
    child_add(pid);
    return 0;
}

bool e2e_proc_alive(e2e_proc *p)
{
    if (p->pid <= 0)
        return false;
    /* Not reaping: a zombie is "not alive" for our purposes. */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;
    return si.si_pid == 0;
}

static void collect(e2e_proc *p, e2e_res *r, int status)
{
    r->pid = p->pid;
    if (WIFEXITED(status)) {
        r->exited = true;
        r->code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r->signaled = true;
        r->sig = WTERMSIG(status);
    }
    r->out = e2e_read_file(p->out_path, &r->out_len);
    r->err = e2e_read_file(p->err_path, &r->err_len);
    if (!r->out) {
        r->out = strdup("");
        r->out_len = 0;
    }
    if (!r->err) {
        r->err = strdup("");
        r->err_len = 0;
    }
    snprintf(r->cmdline, sizeof r->cmdline, "%s", p->cmdline);
    child_del(p->pid);
    unlink(p->out_path);
    unlink(p->err_path);
    free(p->out_path);
    free(p->err_path);
    p->out_path = p->err_path = NULL;
    p->pid = 0;
}

static int reap(pid_t pid, int *status)
{
    for (;;) {
        pid_t w = waitpid(pid, status, 0);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
    }
}

int e2e_proc_wait(e2e_proc *p, e2e_res *r, unsigned timeout_ms)
{
    memset(r, 0, sizeof *r);
    assert_true(p->pid > 0);
    uint64_t deadline = e2e_now_ms() + e2e_scaled_ms(timeout_ms ? timeout_ms : E2E_TIMEOUT_MS);
    int status = 0;
    unsigned nap = 1;
    for (;;) {
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = 0;
            break;
        }
        if (e2e_now_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            reap(p->pid, &status);
            r->timed_out = true;
            break;
        }
        e2e_sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
    collect(p, r, status);
    if (r->timed_out)
        r->signaled = false; /* our kill, reported as timed_out */
    return 0;
}

int e2e_proc_kill9(e2e_proc *p, e2e_res *r)
{
    memset(r, 0, sizeof *r);
    assert_true(p->pid > 0);
    int status = 0;
    kill(p->pid, SIGKILL);
    reap(p->pid, &status);
    collect(p, r, status);
    return 0;
}

int e2e_runv(e2e_res *r, const char *state, unsigned timeout_ms, const char *const *args)
{
    e2e_proc p;
    memset(r, 0, sizeof *r);
    if (e2e_spawnv(&p, state, args) != 0)
        fail_msg("could not start %s", e2e_cli());
    return e2e_proc_wait(&p, r, timeout_ms);
}

#define E2E_MAX_ARGS 64

static void collect_args(const char **args, va_list ap)
{
    size_t n = 0;
    for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *)) {
        assert_true(n + 1 < E2E_MAX_ARGS);
        args[n++] = a;
    }
    args[n] = NULL;
}

int e2e_run(e2e_res *r, const char *state, ...)
{
    const char *args[E2E_MAX_ARGS];
    va_list ap;
    va_start(ap, state);
    collect_args(args, ap);
    va_end(ap);
    return e2e_runv(r, state, 0, args);
}

void e2e_res_free(e2e_res *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void e2e_res_print(const e2e_res *r)
{
    char st[64];
    if (r->timed_out)
        snprintf(st, sizeof st, "TIMED OUT (killed)");
    else if (r->signaled)
        snprintf(st, sizeof st, "KILLED BY SIGNAL %d (%s)", r->sig, strsignal(r->sig));
    else
        snprintf(st, sizeof st, "exit %d", r->code);
    print_error("  command: %s\n  status : %s\n  stdout : %.2000s\n  stderr : %.2000s\n",
                r->cmdline, st, r->out ? r->out : "", r->err ? r->err : "");
}

static void no_crash(const e2e_res *r, const char *file, int line)
{
    if (r->timed_out || r->signaled || !r->exited) {
        print_error("%s:%d: the CLI did not exit normally\n", file, line);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_assert_ok_at(const e2e_res *r, const char *file, int line)
{
    no_crash(r, file, line);
    if (r->code != 0) {
        print_error("%s:%d: expected success\n", file, line);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_assert_fails_at(const e2e_res *r, const char *file, int line)
{
    no_crash(r, file, line);
    if (r->code == 0) {
        print_error("%s:%d: expected a failure (non-zero exit)\n", file, line);
        e2e_res_print(r);
        _fail(file, line);
    }
    if (r->err_len == 0) {
        print_error("%s:%d: failed without a message on stderr\n", file, line);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_assert_fails_1line_at(const e2e_res *r, const char *file, int line)
{
    e2e_assert_fails_at(r, file, line);
    size_t n = e2e_line_count(r->err);
    if (n != 1) {
        print_error("%s:%d: expected exactly one line on stderr, got %zu\n", file, line, n);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_assert_err_has_at(const e2e_res *r, const char *needle, const char *file, int line)
{
    if (!e2e_icontains(r->err, needle)) {
        print_error("%s:%d: stderr does not mention \"%s\"\n", file, line, needle);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_assert_exit_at(const e2e_res *r, int code, const char *file, int line)
{
    no_crash(r, file, line);
    if (r->code != code) {
        print_error("%s:%d: expected exit status %d\n", file, line, code);
        e2e_res_print(r);
        _fail(file, line);
    }
}

void e2e_ok_at(const char *file, int line, const char *state, ...)
{
    const char *args[E2E_MAX_ARGS];
    va_list ap;
    va_start(ap, state);
    collect_args(args, ap);
    va_end(ap);
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    e2e_assert_ok_at(&r, file, line);
    e2e_res_free(&r);
}

/* ----------------------------------------------------------------- images */

void e2e_fill_random(void *buf, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    uint8_t *p = buf;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    if (i < n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, n - i);
    }
}

void e2e_fill_text(void *buf, size_t n, uint64_t seed)
{
    static const char *words[] = { "the",    "quick", "brown",  "fox",   "jumps", "over",
                                   "lazy",   "dog",   "backup", "restore", "volume",
                                   "chunk",  "store", "target", "harvester" };
    char *p = buf;
    size_t off = 0;
    uint64_t x = seed * 2654435761u + 1;
    unsigned long lineno = 0;
    while (off < n) {
        char line[256];
        int len = snprintf(line, sizeof line, "%06lu:", lineno++);
        for (int w = 0; w < 8; w++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            len += snprintf(line + len, sizeof line - (size_t)len, " %s",
                            words[(x >> 33) % (sizeof words / sizeof *words)]);
        }
        line[len++] = '\n';
        size_t k = (size_t)len < n - off ? (size_t)len : n - off;
        memcpy(p + off, line, k);
        off += k;
    }
}

typedef void (*fill_fn)(void *buf, size_t n, uint64_t seed);

static void make_with(const char *path, uint64_t size, uint64_t seed, fill_fn fill)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    const size_t bufsz = 1 << 20;
    uint8_t *buf = malloc(bufsz);
    assert_non_null(buf);
    for (uint64_t off = 0, blk = 0; off < size; off += bufsz, blk++) {
        size_t n = size - off < bufsz ? (size_t)(size - off) : bufsz;
        if (fill)
            fill(buf, n, seed * 1000003u + blk);
        else
            memset(buf, 0, n);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
            fail_msg("write %s: %s", path, strerror(errno));
    }
    free(buf);
    if (close(fd) != 0)
        fail_msg("close %s: %s", path, strerror(errno));
}

void e2e_make_random(const char *path, uint64_t size, uint64_t seed)
{
    make_with(path, size, seed, e2e_fill_random);
}

void e2e_make_text(const char *path, uint64_t size, uint64_t seed)
{
    make_with(path, size, seed, e2e_fill_text);
}

void e2e_make_zeros(const char *path, uint64_t size)
{
    make_with(path, size, 0, NULL);
}

void e2e_make_hole(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0)
        fail_msg("ftruncate %s: %s", path, strerror(errno));
    close(fd);
}

void e2e_pwrite_file(const char *path, uint64_t off, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    if (pwrite(fd, data, len, (off_t)off) != (ssize_t)len)
        fail_msg("pwrite %s: %s", path, strerror(errno));
    close(fd);
}

void e2e_write_random_at(const char *path, uint64_t off, uint64_t len, uint64_t seed)
{
    uint8_t *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    e2e_fill_random(buf, len, seed);
    e2e_pwrite_file(path, off, buf, len);
    free(buf);
}

void e2e_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    if (len && write(fd, data, len) != (ssize_t)len)
        fail_msg("write %s: %s", path, strerror(errno));
    close(fd);
}

char *e2e_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        ssize_t k = read(fd, b + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    b[n] = 0;
    if (len)
        *len = n;
    return b;
}

void e2e_flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    uint8_t c;
    if (pread(fd, &c, 1, (off_t)off) != 1)
        fail_msg("pread %s at %llu", path, (unsigned long long)off);
    c ^= 0xFF;
    if (pwrite(fd, &c, 1, (off_t)off) != 1)
        fail_msg("pwrite %s", path);
    close(fd);
}

void e2e_truncate(const char *path, uint64_t len)
{
    if (truncate(path, (off_t)len) != 0)
        fail_msg("truncate %s: %s", path, strerror(errno));
}

void e2e_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY);
    if (in < 0)
        fail_msg("open %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0)
        fail_msg("open %s: %s", dst, strerror(errno));
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    for (;;) {
        ssize_t k = read(in, buf, 1 << 20);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            fail_msg("read %s: %s", src, strerror(errno));
        if (k == 0)
            break;
        if (write(out, buf, (size_t)k) != k)
            fail_msg("write %s: %s", dst, strerror(errno));
    }
    free(buf);
    close(in);
    close(out);
}

bool e2e_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int64_t e2e_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

int64_t e2e_allocated(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_blocks * 512 : -1;
}

int e2e_files_cmp(const char *a, const char *b)
{
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    int rc = -1;
    if (fa < 0 || fb < 0) {
        print_error("cannot open %s\n", fa < 0 ? a : b);
        goto out;
    }
    const size_t bs = 1 << 20;
    uint8_t *ba = malloc(bs), *bb = malloc(bs);
    assert_non_null(ba);
    assert_non_null(bb);
    uint64_t off = 0;
    for (;;) {
        ssize_t na = 0, nb = 0, k;
        while ((size_t)na < bs && (k = read(fa, ba + na, bs - (size_t)na)) > 0)
            na += k;
        while ((size_t)nb < bs && (k = read(fb, bb + nb, bs - (size_t)nb)) > 0)
            nb += k;
        ssize_t m = na < nb ? na : nb;
        if (memcmp(ba, bb, (size_t)m) != 0) {
            for (ssize_t i = 0; i < m; i++)
                if (ba[i] != bb[i]) {
                    print_error("%s and %s differ at byte %llu (0x%02x vs 0x%02x)\n", a, b,
                                (unsigned long long)(off + (uint64_t)i), ba[i], bb[i]);
                    break;
                }
            rc = 1;
            break;
        }
        if (na != nb) {
            print_error("%s and %s differ in size (%llu vs longer/shorter)\n", a, b,
                        (unsigned long long)(off + (uint64_t)m));
            rc = 1;
            break;
        }
        if (na == 0) {
            rc = 0;
            break;
        }
        off += (uint64_t)na;
    }
    free(ba);
    free(bb);
out:
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return rc;
}

void e2e_assert_same_file_at(const char *a, const char *b, const char *file, int line)
{
    int rc = e2e_files_cmp(a, b);
    if (rc != 0) {
        print_error("%s:%d: %s and %s are not byte-identical (%s)\n", file, line, a, b,
                    rc < 0 ? "unreadable" : "different bytes");
        _fail(file, line);
    }
}

/* ------------------------------------------------------------ file lists */

static char **g_lst;
static size_t g_lst_n, g_lst_cap, g_lst_skip;

static int list_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag != FTW_F)
        return 0;
    if (g_lst_n + 2 > g_lst_cap) {
        g_lst_cap = g_lst_cap ? g_lst_cap * 2 : 64;
        g_lst = realloc(g_lst, g_lst_cap * sizeof *g_lst);
        assert_non_null(g_lst);
    }
    g_lst[g_lst_n++] = strdup(path + g_lst_skip);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **e2e_list_files(const char *dir, size_t *count)
{
    g_lst = NULL;
    g_lst_n = g_lst_cap = 0;
    g_lst_skip = strlen(dir) + 1;
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        nftw(dir, list_cb, 32, FTW_PHYS);
    char **v = g_lst ? g_lst : calloc(1, sizeof *v);
    assert_non_null(v);
    if (g_lst)
        v[g_lst_n] = NULL;
    qsort(v, g_lst_n, sizeof *v, cmp_str);
    if (count)
        *count = g_lst_n;
    g_lst = NULL;
    return v;
}

size_t e2e_count_files(const char *dir)
{
    size_t n = 0;
    char **v = e2e_list_files(dir, &n);
    e2e_strv_free(v);
    return n;
}

void e2e_strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

bool e2e_strv_has(char *const *v, const char *s)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

char **e2e_strv_minus(char *const *a, char *const *b, size_t *count)
{
    size_t n = 0, na = 0;
    while (a[na])
        na++;
    char **v = calloc(na + 1, sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < na; i++)
        if (!e2e_strv_has(b, a[i]))
            v[n++] = strdup(a[i]);
    if (count)
        *count = n;
    return v;
}

char **e2e_chunk_files(const char *target, size_t *count)
{
    char *d = e2e_path(target, "chunks");
    size_t n = 0;
    char **v = e2e_list_files(d, &n);
    free(d);
    /* make them relative to the target: "chunks/..." */
    for (size_t i = 0; i < n; i++) {
        char *s = e2e_strf("chunks/%s", v[i]);
        free(v[i]);
        v[i] = s;
    }
    if (count)
        *count = n;
    return v;
}

void e2e_sha256_file_range(const char *path, uint64_t off, uint64_t len, char out[65])
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
    uint8_t *buf = malloc(1 << 20);
    assert_non_null(buf);
    while (len > 0) {
        size_t want = len < (1u << 20) ? (size_t)len : (1u << 20);
        ssize_t k = pread(fd, buf, want, (off_t)off);
        if (k <= 0)
            fail_msg("short read of %s", path);
        EVP_DigestUpdate(c, buf, (size_t)k);
        off += (uint64_t)k;
        len -= (uint64_t)k;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(c, md, &mdlen);
    EVP_MD_CTX_free(c);
    free(buf);
    close(fd);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = 0;
}

/* ------------------------------------------------------------ CLI worlds */

void e2e_target_set(const char *state, const char *target_dir, const char *codec,
                    uint64_t chunk_size)
{
    char *url = e2e_strf("file://%s", target_dir);
    char cs[32];
    snprintf(cs, sizeof cs, "%llu", (unsigned long long)chunk_size);
    const char *args[8];
    size_t k = 0;
    args[k++] = "target";
    args[k++] = "set";
    args[k++] = url;
    if (codec && *codec) {
        args[k++] = "--codec";
        args[k++] = codec;
    }
    if (chunk_size) {
        args[k++] = "--chunk-size";
        args[k++] = cs;
    }
    args[k] = NULL;
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    free(url);
}

void e2e_world_init(e2e_world *w, const char *tag, const char *codec, uint64_t chunk_size)
{
    memset(w, 0, sizeof *w);
    w->root = e2e_mkdtemp(tag);
    w->state = e2e_path(w->root, "state");
    w->target = e2e_path(w->root, "target");
    w->work = e2e_path(w->root, "work");
    mkdir(w->target, 0755);
    mkdir(w->work, 0755);
    if (codec)
        e2e_target_set(w->state, w->target, codec, chunk_size);
}

void e2e_world_free(e2e_world *w)
{
    if (w->root)
        e2e_rmrf(w->root);
    free(w->root);
    free(w->state);
    free(w->target);
    free(w->work);
    memset(w, 0, sizeof *w);
}

cJSON *e2e_show_json(const char *state, const char *ns_name, e2e_res *res)
{
    e2e_res r;
    e2e_run(&r, state, "backup", "show", ns_name, "--json", NULL);
    if (r.timed_out || r.signaled) {
        print_error("backup show crashed or hung\n");
        e2e_res_print(&r);
        fail();
    }
    cJSON *j = NULL;
    if (r.exited && r.code == 0) {
        j = cJSON_Parse(r.out);
        if (!j || !cJSON_IsObject(j)) {
            print_error("backup show --json printed no JSON object\n");
            e2e_res_print(&r);
            fail();
        }
    }
    if (res)
        *res = r;
    else
        e2e_res_free(&r);
    return j;
}

cJSON *e2e_list_json(const char *state)
{
    e2e_res r;
    e2e_run(&r, state, "backup", "list", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    if (!j || !cJSON_IsArray(j)) {
        print_error("backup list --json printed no JSON array\n");
        e2e_res_print(&r);
        fail();
    }
    e2e_res_free(&r);
    return j;
}

const char *e2e_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

uint64_t e2e_json_u64(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        char *s = cJSON_PrintUnformatted(o);
        print_error("JSON key \"%s\" missing or not a number in %s\n", key, s ? s : "?");
        free(s);
        fail();
    }
    if (v->valuedouble < 0)
        fail_msg("JSON key \"%s\" is negative", key);
    return (uint64_t)v->valuedouble;
}

cJSON *e2e_list_find(cJSON *arr, const char *ns, const char *name)
{
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const char *n = e2e_json_str(it, "name"), *s = e2e_json_str(it, "namespace");
        if (n && s && strcmp(n, name) == 0 && strcmp(s, ns) == 0)
            return it;
    }
    return NULL;
}

char *e2e_backup_state(const char *state, const char *ns_name)
{
    cJSON *j = e2e_show_json(state, ns_name, NULL);
    if (!j)
        return strdup("");
    const char *s = e2e_json_str(j, "state");
    char *out = strdup(s ? s : "");
    cJSON_Delete(j);
    return out;
}
