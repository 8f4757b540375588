/* tests/nfs/nfstest.c - see nfstest.h */
#include "nfstest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

char *nfst_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && s);
    return s;
}

const nfst_env *nfst_get_env(void)
{
    static nfst_env env;
    env.url = getenv("HARVBK_TEST_NFS_URL");
    env.ro_url = getenv("HARVBK_TEST_NFS_RO_URL");
    env.export_dir = getenv("HARVBK_TEST_NFS_EXPORT_DIR");
    env.env_dir = getenv("HARVBK_TEST_NFS_ENV_DIR");
    env.script = getenv("HARVBK_TEST_NFS_SCRIPT");
    if (!env.url || !env.ro_url || !env.export_dir || !env.env_dir || !env.script)
        fail_msg("HARVBK_TEST_NFS_* not set: run the NFS tests through ctest (fixture nfs) "
                 "or tests/nfs/in-netns.sh ENVFILE -- PROGRAM");
    return &env;
}

uint64_t nfst_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *nfst_mkdtemp(const char *tag)
{
    const char *base = getenv("HARVBK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char *t = nfst_strf("%s/nfs-%s-XXXXXX", base, tag);
    assert_non_null(mkdtemp(t));
    return t;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

void nfst_rmrf(const char *path)
{
    if (path)
        nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int nfst_sh(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    assert_true(vasprintf(&cmd, fmt, ap) >= 0);
    va_end(ap);
    char *full = nfst_strf("(%s) 2>&1", cmd);
    FILE *f = popen(full, "r");
    assert_non_null(f);
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(f);
    if (out)
        *out = buf;
    else
        free(buf);
    free(cmd);
    free(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* splitmix64 */
static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rnd_next(&s);
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
}

void nfst_write_disk(const char *path, uint64_t size, uint64_t seed, const int *zero_chunks)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t *buf = xmalloc(NFST_CHUNK);
    for (uint64_t off = 0, i = 0; off < size; off += NFST_CHUNK, i++) {
        size_t n = (size_t)(size - off < NFST_CHUNK ? size - off : NFST_CHUNK);
        bool zero = false;
        for (const int *z = zero_chunks; z && *z >= 0; z++)
            if ((uint64_t)*z == i)
                zero = true;
        if (zero)
            memset(buf, 0, n);
        else
            fill(buf, n, seed * 1000003u + i);
        assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    }
    free(buf);
    assert_int_equal(close(fd), 0);
}

void nfst_touch_chunk(const char *path, unsigned chunk, uint64_t seed)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t b[4096];
    fill(b, sizeof b, seed);
    assert_int_equal(pwrite(fd, b, sizeof b, (off_t)chunk * NFST_CHUNK + 1000), (ssize_t)sizeof b);
    assert_int_equal(close(fd), 0);
}

void nfst_assert_same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    if (!fa || !fb)
        fail_msg("cannot open %s or %s", a, b);
    static uint8_t ba[1 << 16], bb[1 << 16];
    uint64_t off = 0;
    for (;;) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        if (na != nb || memcmp(ba, bb, na) != 0)
            fail_msg("%s and %s differ near offset %llu", a, b, (unsigned long long)off);
        if (na == 0)
            break;
        off += na;
    }
    fclose(fa);
    fclose(fb);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **nfst_chunk_ids(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = xmalloc(NFST_CHUNK);
    size_t cap = 64, cnt = 0;
    char **v = xmalloc(cap * sizeof *v);
    size_t k;
    while ((k = fread(buf, 1, NFST_CHUNK, f)) > 0) {
        bool zero = true;
        for (size_t i = 0; i < k && zero; i++)
            zero = buf[i] == 0;
        if (zero)
            continue;
        uint8_t d[32];
        SHA256(buf, k, d);
        char *hex = xmalloc(65);
        for (int i = 0; i < 32; i++)
            sprintf(hex + 2 * i, "%02x", d[i]);
        bool dup = false;
        for (size_t i = 0; i < cnt && !dup; i++)
            dup = !strcmp(v[i], hex);
        if (dup) {
            free(hex);
            continue;
        }
        if (cnt == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[cnt++] = hex;
    }
    fclose(f);
    free(buf);
    qsort(v, cnt, sizeof *v, str_cmp);
    *n = cnt;
    return v;
}

typedef struct fent {
    char *name;
    uint64_t ino;
} fent;

static int fent_cmp(const void *a, const void *b)
{
    return strcmp(((const fent *)a)->name, ((const fent *)b)->name);
}

static void walk(const char *root, const char *rel, fent **v, size_t *n, size_t *cap,
                 bool basename_only)
{
    char *dir = *rel ? nfst_strf("%s/%s", root, rel) : nfst_strf("%s", root);
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *r = *rel ? nfst_strf("%s/%s", rel, de->d_name) : nfst_strf("%s", de->d_name);
        char *p = nfst_strf("%s/%s", root, r);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            walk(root, r, v, n, cap, basename_only);
        } else if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *v = realloc(*v, *cap * sizeof **v);
                assert_non_null(*v);
            }
            (*v)[*n].name = basename_only ? nfst_strf("%s", de->d_name) : nfst_strf("%s", r);
            (*v)[*n].ino = (uint64_t)st.st_ino;
            (*n)++;
        }
        free(r);
        free(p);
    }
    closedir(d);
    free(dir);
}

static char **listing(const char *dir, const char *sub, size_t *n, uint64_t **inos, bool base)
{
    fent *v = NULL;
    size_t cnt = 0, cap = 0;
    walk(dir, sub, &v, &cnt, &cap, base);
    if (cnt > 1)
        qsort(v, cnt, sizeof *v, fent_cmp);
    char **names = xmalloc((cnt + 1) * sizeof *names);
    uint64_t *in = inos ? xmalloc((cnt + 1) * sizeof *in) : NULL;
    for (size_t i = 0; i < cnt; i++) {
        names[i] = v[i].name;
        if (in)
            in[i] = v[i].ino;
    }
    free(v);
    if (inos)
        *inos = in;
    *n = cnt;
    return names;
}

char **nfst_list_files(const char *dir, size_t *n, uint64_t **inos)
{
    return listing(dir, "", n, inos, false);
}

char **nfst_store_chunks(const char *store_dir, size_t *n, uint64_t **inos)
{
    return listing(store_dir, "chunks", n, inos, true);
}

void nfst_free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- library calls ---- */

static char *ctx_msg(harvbk_ctx *ctx)
{
    char buf[1024] = "";
    if (ctx)
        harvbk_ctx_errmsg_copy(ctx, buf, sizeof buf);
    return nfst_strf("%s", buf);
}

static int op_end(harvbk_op *op, int rc, harvbk_ctx *ctx, char **msg)
{
    char buf[1024] = "";
    if (rc == 0 && op) {
        rc = harvbk_op_wait(op);
        if (rc)
            harvbk_op_errmsg_copy(op, buf, sizeof buf);
    } else if (rc && ctx) {
        harvbk_ctx_errmsg_copy(ctx, buf, sizeof buf);
    }
    harvbk_op_free(op);
    if (msg)
        *msg = nfst_strf("%s", buf);
    return rc;
}

/* HARVBK_TEST_LOG=debug|info|warn|error: the library's log on stderr, with a
 * monotonic timestamp (to read what the target did around a failure). */
static void log_stderr(int level, const char *message, void *payload)
{
    (void)payload;
    static const char *names[] = { "error", "warn", "info", "debug" };
    fprintf(stderr, "[%llu harvbk %s] %s\n", (unsigned long long)nfst_now_ms(),
            level >= 0 && level <= 3 ? names[level] : "?", message);
}

static void log_from_env(harvbk_ctx *ctx)
{
    const char *v = getenv("HARVBK_TEST_LOG");
    if (!v || !*v)
        return;
    int level = !strcmp(v, "error") ? HARVBK_LOG_ERROR
                : !strcmp(v, "warn") ? HARVBK_LOG_WARN
                : !strcmp(v, "info") ? HARVBK_LOG_INFO
                                     : HARVBK_LOG_DEBUG;
    harvbk_ctx_set_log_hook(ctx, log_stderr, NULL, level);
}

int nfst_ctx(harvbk_ctx **out, const char *state_dir, const char *url, unsigned timeout_ms,
             char **msg)
{
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, state_dir, NULL);
    if (rc) {
        if (msg)
            *msg = nfst_strf("harvbk_ctx_open: %s", harvbk_strerror(rc));
        *out = NULL;
        return rc;
    }
    log_from_env(ctx);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    rc = harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url);
    if (rc == 0) /* the tests count chunks of this size (a new store takes it) */
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "4194304");
    if (rc == 0 && timeout_ms) {
        char t[16];
        snprintf(t, sizeof t, "%u", timeout_ms);
        rc = harvbk_target_config_set(cfg, HARVBK_TARGET_TIMEOUT_MS, t);
    }
    bool cfg_refused = rc != 0;
    if (rc == 0)
        rc = harvbk_ctx_set_target(ctx, cfg);
    harvbk_target_config_free(cfg);
    if (msg)
        *msg = cfg_refused ? nfst_strf("harvbk_target_config_set refused the setting")
                           : ctx_msg(ctx);
    *out = ctx;
    return rc;
}

harvbk_ctx *nfst_ctx_ok(const char *state_dir, const char *url, unsigned timeout_ms)
{
    harvbk_ctx *ctx = NULL;
    char *msg = NULL;
    int rc = nfst_ctx(&ctx, state_dir, url, timeout_ms, &msg);
    if (rc)
        fail_msg("set target %s: %s: %s", url, harvbk_error_name(rc), msg);
    free(msg);
    return ctx;
}

void nfst_vm(harvbk_ctx *ctx, const char *ns, const char *vm, const char *path)
{
    harvbk_vm *v = NULL;
    assert_int_equal(harvbk_vm_new(&v, ns, vm), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v, "root", path), 0);
    int rc = harvbk_vm_register(ctx, v);
    if (rc)
        fail_msg("harvbk_vm_register: %s", harvbk_ctx_errmsg(ctx));
    harvbk_vm_free(v);
}

int nfst_backup(harvbk_ctx *ctx, const char *ns, const char *vm, const char *path,
                const char *name, char **msg)
{
    harvbk_vm *v = NULL;
    assert_int_equal(harvbk_vm_new(&v, ns, vm), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v, "root", path), 0);
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, v, name, NULL);
    harvbk_vm_free(v);
    return op_end(op, rc, ctx, msg);
}

int nfst_restore(harvbk_ctx *ctx, const char *ns, const char *name, const char *new_vm,
                 const char *dir, char **msg)
{
    harvbk_restore_options o;
    assert_int_equal(harvbk_restore_options_init(&o, HARVBK_RESTORE_OPTIONS_VERSION), 0);
    o.new_vm_namespace = ns;
    o.new_vm_name = new_vm;
    o.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, ctx, ns, name, &o);
    return op_end(op, rc, ctx, msg);
}

int nfst_verify(harvbk_ctx *ctx, const char *ns, const char *name, char **msg)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, ns, name, NULL);
    return op_end(op, rc, ctx, msg);
}

int nfst_gc(harvbk_ctx *ctx, char **msg)
{
    harvbk_op *op = NULL;
    int rc = harvbk_gc(&op, ctx, NULL);
    return op_end(op, rc, ctx, msg);
}

int nfst_backup_state(harvbk_ctx *ctx, const char *ns, const char *name)
{
    harvbk_backup_info *info = NULL;
    int rc = harvbk_backup_get(&info, ctx, ns, name);
    if (rc)
        return rc;
    int st = harvbk_backup_info_state(info);
    harvbk_backup_info_free(info);
    return st;
}
