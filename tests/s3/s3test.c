/* tests/s3/s3test.c - helpers of the S3 target tests (see s3test.h). */
#include "s3test.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- env */

static s3env g_env;
static bool g_env_loaded;

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

static char *env_get(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = ll - nl - 1;
            if (vl >= 2 && (v[0] == '\'' || v[0] == '"') && v[vl - 1] == v[0]) {
                v++;
                vl -= 2;
            }
            return strndup(v, vl);
        }
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

const s3env *s3t_env(void)
{
    if (g_env_loaded)
        return &g_env;
    const char *path = getenv("HARVBK_TEST_S3_ENV");
    if (!path || !*path)
        fail_msg("HARVBK_TEST_S3_ENV is not set: run these tests through ctest (fixture \"s3\", "
                 "tests/s3/s3env.sh start DIR)");
    char *t = read_all(path, NULL);
    if (!t)
        fail_msg("cannot read the S3 test environment '%s': %s", path, strerror(errno));
    struct {
        char **dst;
        const char *name;
    } f[] = {
        { &g_env.endpoint, "HARVBK_TEST_S3_ENDPOINT" },
        { &g_env.endpoint_tls, "HARVBK_TEST_S3_ENDPOINT_TLS" },
        { &g_env.ca, "HARVBK_TEST_S3_CA" },
        { &g_env.region, "HARVBK_TEST_S3_REGION" },
        { &g_env.akid, "HARVBK_TEST_S3_ACCESS_KEY_ID" },
        { &g_env.secret_file, "HARVBK_TEST_S3_SECRET_FILE" },
        { &g_env.bucket, "HARVBK_TEST_S3_BUCKET" },
        { &g_env.bucket_vhost, "HARVBK_TEST_S3_BUCKET_VHOST" },
        { &g_env.control, "HARVBK_TEST_S3_CONTROL" },
        { &g_env.dir, "HARVBK_TEST_S3_DIR" },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i].dst = env_get(t, f[i].name);
        if (!*f[i].dst)
            fail_msg("%s: %s is missing", path, f[i].name);
    }
    free(t);
    size_t n = 0;
    g_env.secret = read_all(g_env.secret_file, &n);
    if (!g_env.secret)
        fail_msg("cannot read %s", g_env.secret_file);
    while (n > 0 && (g_env.secret[n - 1] == '\n' || g_env.secret[n - 1] == '\r'))
        g_env.secret[--n] = '\0';
    assert_true(n >= 8);
    g_env_loaded = true;
    return &g_env;
}

char *s3t_prefix(const char *tag)
{
    unsigned r;
    hb_random(&r, sizeof r);
    char *p = NULL;
    if (asprintf(&p, "%s-%ld-%08x/a b+c%%\xc3\xbc", tag, (long)getpid(), r) < 0)
        abort();
    return p;
}

const char *s3t_endpoint(const s3t_mode *m)
{
    const s3env *env = s3t_env();
    if (m->tls)
        return env->endpoint_tls;
    if (!m->vhost)
        return env->endpoint;
    /* virtual-hosted style needs a name: BUCKET.localhost resolves to 127.0.0.1 */
    static __thread char buf[256];
    const char *ip = strstr(env->endpoint, "127.0.0.1");
    assert_non_null(ip);
    snprintf(buf, sizeof buf, "%.*slocalhost%s", (int)(ip - env->endpoint), env->endpoint,
             ip + 9);
    return buf;
}

const char *s3t_bucket(const s3t_mode *m)
{
    return m->vhost ? s3t_env()->bucket_vhost : s3t_env()->bucket;
}

char *s3t_url(const s3t_mode *m, const char *prefix)
{
    char *u = NULL;
    if (asprintf(&u, "s3://%s/%s", s3t_bucket(m), prefix) < 0)
        abort();
    return u;
}

harvbk_target_config *s3t_config(const s3t_mode *m, const char *prefix, bool with_secret)
{
    const s3env *env = s3t_env();
    harvbk_target_config *c = NULL;
    assert_int_equal(harvbk_target_config_new(&c), 0);
    char *url = s3t_url(m, prefix);
    assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_URL, url), 0);
    free(url);
    assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_ENDPOINT, s3t_endpoint(m)), 0);
    assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_REGION, env->region), 0);
    assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_ACCESS_KEY_ID, env->akid), 0);
    if (with_secret)
        assert_int_equal(
            harvbk_target_config_set(c, HARVBK_TARGET_SECRET_ACCESS_KEY, env->secret), 0);
    if (m->tls)
        assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_CA_CERT_FILE, env->ca), 0);
    if (m->vhost)
        assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_VIRTUAL_HOSTED, "1"), 0);
    return c;
}

/* ---------------------------------------------------------------- log */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char **g_log;
static size_t g_nlog, g_caplog;

void s3t_log_cb(int level, const char *message, void *payload)
{
    (void)level;
    (void)payload;
    pthread_mutex_lock(&g_log_mu);
    if (g_nlog == g_caplog) {
        g_caplog = g_caplog ? 2 * g_caplog : 256;
        g_log = realloc(g_log, g_caplog * sizeof *g_log);
    }
    g_log[g_nlog++] = strdup(message);
    pthread_mutex_unlock(&g_log_mu);
    if (getenv("HARVBK_TEST_VERBOSE"))
        fprintf(stderr, "[lib %d] %s\n", level, message);
}

bool s3t_log_contains(const char *needle)
{
    bool found = false;
    pthread_mutex_lock(&g_log_mu);
    for (size_t i = 0; i < g_nlog && !found; i++)
        found = strstr(g_log[i], needle) != NULL;
    pthread_mutex_unlock(&g_log_mu);
    return found;
}

size_t s3t_log_lines(void)
{
    pthread_mutex_lock(&g_log_mu);
    size_t n = g_nlog;
    pthread_mutex_unlock(&g_log_mu);
    return n;
}

harvbk_ctx *s3t_ctx(const char *state_dir)
{
    harvbk_ctx_options o = HARVBK_CTX_OPTIONS_INIT;
    o.log_cb = s3t_log_cb;
    o.log_level = HARVBK_LOG_DEBUG;
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, state_dir, &o);
    if (rc)
        fail_msg("harvbk_ctx_open(%s): %s", state_dir, harvbk_strerror(rc));
    return ctx;
}

void s3t_set_target_ok(harvbk_ctx *ctx, const harvbk_target_config *cfg)
{
    int rc = harvbk_ctx_set_target(ctx, cfg);
    if (rc)
        fail_msg("harvbk_ctx_set_target: %s: %s", harvbk_error_name(rc), harvbk_ctx_errmsg(ctx));
}

/* ---------------------------------------------------------------- control */

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    hb_buf *b = ud;
    hb_buf_append(b, p, s * n);
    return s * n;
}

static long http(const char *method, const char *url, const char *body, hb_buf *out)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (!strcmp(method, "POST"))
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    CURLcode rc = curl_easy_perform(c);
    long st = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    return st;
}

void s3t_control(const char *suffix, const char *json)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s3t_env()->control, suffix ? suffix : "");
    hb_buf b = HB_BUF_INIT;
    long st = http("POST", url, json, &b);
    if (st != 200)
        fail_msg("POST %s %s: HTTP %ld %.200s", url, json ? json : "", st,
                 b.data ? (char *)b.data : "");
    hb_buf_free(&b);
}

uint64_t s3t_stat(const char *path)
{
    char url[512];
    snprintf(url, sizeof url, "%s/stats", s3t_env()->control);
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(http("GET", url, NULL, &b), 200);
    hb_buf_append(&b, "", 1);
    cJSON *root = cJSON_Parse((char *)b.data);
    assert_non_null(root);
    cJSON *it = root;
    char *p = strdup(path), *save = NULL;
    for (char *tok = strtok_r(p, ".", &save); tok && it; tok = strtok_r(NULL, ".", &save))
        it = cJSON_GetObjectItemCaseSensitive(it, tok);
    uint64_t v = cJSON_IsNumber(it) ? (uint64_t)it->valuedouble : 0;
    free(p);
    cJSON_Delete(root);
    hb_buf_free(&b);
    return v;
}

/* ---------------------------------------------------------------- operations */

harvbk_vm *s3t_vm(const char *ns, const char *name, const char *disk)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, ns, name), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", disk), 0);
    return vm;
}

static int finish(harvbk_op *op, int rc, harvbk_ctx *ctx, char *msg, size_t msize)
{
    if (msg && msize)
        msg[0] = '\0';
    if (rc) {
        if (msg)
            snprintf(msg, msize, "%s", harvbk_ctx_errmsg(ctx));
        return rc;
    }
    rc = harvbk_op_wait(op);
    if (rc && msg)
        harvbk_op_errmsg_copy(op, msg, msize);
    harvbk_op_free(op);
    return rc;
}

int s3t_backup(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name, harvbk_progress_cb cb,
               void *payload, char *msg, size_t msize)
{
    harvbk_backup_options o = HARVBK_BACKUP_OPTIONS_INIT;
    o.progress_cb = cb;
    o.progress_payload = payload;
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, vm, name, &o);
    return finish(op, rc, ctx, msg, msize);
}

int s3t_restore(harvbk_ctx *ctx, const char *ns, const char *backup, const char *new_vm,
                const char *dir, char *msg, size_t msize)
{
    harvbk_restore_options o = HARVBK_RESTORE_OPTIONS_INIT;
    o.new_vm_namespace = ns;
    o.new_vm_name = new_vm;
    o.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, ctx, ns, backup, &o);
    return finish(op, rc, ctx, msg, msize);
}

int s3t_verify(harvbk_ctx *ctx, const char *ns, const char *backup, char *msg, size_t msize)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, ns, backup, NULL);
    return finish(op, rc, ctx, msg, msize);
}

int s3t_gc(harvbk_ctx *ctx, uint64_t *chunks, char *msg, size_t msize)
{
    harvbk_op *op = NULL;
    int rc = harvbk_gc(&op, ctx, NULL);
    if (rc == 0) {
        rc = harvbk_op_wait(op);
        if (rc && msg)
            harvbk_op_errmsg_copy(op, msg, msize);
        if (rc == 0 && chunks)
            harvbk_gc_result(op, chunks, NULL);
        harvbk_op_free(op);
        return rc;
    }
    return finish(op, rc, ctx, msg, msize);
}

int s3t_backup_state(harvbk_ctx *ctx, const char *ns, const char *name)
{
    harvbk_backup_info *bi = NULL;
    if (harvbk_backup_get(&bi, ctx, ns, name) != 0)
        return -1;
    int st = harvbk_backup_info_state(bi);
    harvbk_backup_info_free(bi);
    return st;
}

uint64_t s3t_backup_uploaded(harvbk_ctx *ctx, const char *ns, const char *name)
{
    harvbk_backup_info *bi = NULL;
    assert_int_equal(harvbk_backup_get(&bi, ctx, ns, name), 0);
    uint64_t v = harvbk_backup_info_uploaded_bytes(bi);
    harvbk_backup_info_free(bi);
    return v;
}

/* ---------------------------------------------------------------- listing */

static hb_target *open_target(const harvbk_target_config *cfg)
{
    hb_logger lg = { s3t_log_cb, NULL, HARVBK_LOG_DEBUG };
    static hb_logger g_lg;
    g_lg = lg;
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_open(&t, &cfg->cfg, "s3test", &g_lg, &e);
    if (rc)
        fail_msg("hb_target_open: %s", e.msg);
    return t;
}

static int collect(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    s3t_objs *o = ud;
    o->v = realloc(o->v, (o->n + 1) * sizeof *o->v);
    o->v[o->n].key = strdup(key);
    o->v[o->n].size = size;
    o->n++;
    return 0;
}

static int obj_cmp(const void *a, const void *b)
{
    return strcmp(((const s3t_obj *)a)->key, ((const s3t_obj *)b)->key);
}

void s3t_list(const harvbk_target_config *cfg, const char *under, s3t_objs *out)
{
    out->v = NULL;
    out->n = 0;
    hb_target *t = open_target(cfg);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_list(t, under ? under : "", collect, out, &e);
    hb_target_close(t);
    if (rc)
        fail_msg("hb_target_list: %s", e.msg);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, obj_cmp);
}

void s3t_objs_free(s3t_objs *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->v[i].key);
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

bool s3t_objs_has(const s3t_objs *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->v[i].key, key))
            return true;
    return false;
}

size_t s3t_objs_minus(const s3t_objs *a, const s3t_objs *b, uint64_t *bytes)
{
    size_t n = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < a->n; i++)
        if (!s3t_objs_has(b, a->v[i].key)) {
            n++;
            sum += a->v[i].size;
        }
    if (bytes)
        *bytes = sum;
    return n;
}

int s3t_head(const harvbk_target_config *cfg, const char *key)
{
    hb_target *t = open_target(cfg);
    hb_err e;
    hb_err_clear(&e);
    uint64_t size;
    int rc = hb_target_head(t, key, &size, &e);
    hb_target_close(t);
    return rc;
}

int s3t_delete(const harvbk_target_config *cfg, const char *key)
{
    hb_target *t = open_target(cfg);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_del(t, key, &e);
    hb_target_close(t);
    return rc;
}

uint64_t s3t_size(const harvbk_target_config *cfg, const char *key)
{
    hb_target *t = open_target(cfg);
    hb_err e;
    hb_err_clear(&e);
    uint64_t size = 0;
    int rc = hb_target_head(t, key, &size, &e);
    hb_target_close(t);
    if (rc)
        fail_msg("HEAD %s: %s", key, e.msg);
    return size;
}

/* ---------------------------------------------------------------- files */

char *s3t_tmpdir(const char *tag)
{
    const char *base = getenv("HARVBK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char *p = NULL;
    if (asprintf(&p, "%s/s3-%s-XXXXXX", base, tag) < 0 || !mkdtemp(p))
        fail_msg("cannot make a temporary directory in %s", base);
    return p;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void s3t_rmrf(const char *path)
{
    if (path && !getenv("HARVBK_TEST_KEEP"))
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *s3t_path(const char *a, const char *b)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", a, b) < 0)
        abort();
    return p;
}

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(uint8_t *b, size_t n, uint64_t seed, int kind)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    if (kind == 0) { /* random */
        for (size_t i = 0; i < n; i++)
            b[i] = (uint8_t)(xs(&s) >> 24);
    } else { /* text */
        size_t i = 0;
        while (i < n) {
            char line[96];
            int l = snprintf(line, sizeof line, "line %llu: the quick brown fox %llu\n",
                             (unsigned long long)(seed + i), (unsigned long long)xs(&s));
            for (int k = 0; k < l && i < n; k++)
                b[i++] = (uint8_t)line[k];
        }
    }
}

void s3t_make_image(const char *path, uint64_t size, uint64_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    const size_t piece = 256 * 1024;
    uint8_t *b = malloc(piece), *dup = malloc(piece);
    for (uint64_t off = 0, i = 0; off < size; off += piece, i++) {
        size_t n = (size_t)HB_MIN((uint64_t)piece, size - off);
        switch (i % 8) {
        case 3: memset(b, 0, n); break;                  /* zeros */
        case 5: memcpy(b, dup, n); break;                /* duplicate of piece 1 */
        case 1: fill(b, n, seed + i, 0); memcpy(dup, b, n); break;
        case 2:
        case 6: fill(b, n, seed + i, 1); break;          /* text */
        default: fill(b, n, seed + i, 0); break;         /* random */
        }
        assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
    }
    free(b);
    free(dup);
    assert_int_equal(close(fd), 0);
}

void s3t_write_random_at(const char *path, uint64_t off, uint64_t len, uint64_t seed)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t *b = malloc(len);
    fill(b, len, seed, 0);
    assert_int_equal(pwrite(fd, b, len, (off_t)off), (ssize_t)len);
    free(b);
    assert_int_equal(close(fd), 0);
}

void s3t_copy(const char *src, const char *dst)
{
    size_t n = 0;
    char *b = read_all(src, &n);
    assert_non_null(b);
    FILE *f = fopen(dst, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(b);
}

static int dig_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

size_t s3t_distinct_chunks(const char *path, size_t chunk_size)
{
    size_t n = 0;
    char *b = read_all(path, &n);
    assert_non_null(b);
    size_t cnt = (n + chunk_size - 1) / chunk_size, k = 0;
    uint8_t(*d)[32] = malloc((cnt ? cnt : 1) * 32);
    for (size_t off = 0; off < n; off += chunk_size) {
        size_t l = HB_MIN(chunk_size, n - off);
        if (hb_is_zero(b + off, l))
            continue;
        unsigned int dl = 0;
        EVP_Digest(b + off, l, d[k], &dl, EVP_sha256(), NULL);
        k++;
    }
    qsort(d, k, 32, dig_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++)
        if (i == 0 || memcmp(d[i], d[i - 1], 32) != 0)
            distinct++;
    free(d);
    free(b);
    return distinct;
}

void s3t_assert_same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    if (!x || !y)
        fail_msg("cannot read %s or %s", a, b);
    if (na != nb)
        fail_msg("%s is %zu bytes, %s is %zu", a, na, b, nb);
    if (memcmp(x, y, na) != 0) {
        size_t i = 0;
        while (x[i] == y[i])
            i++;
        fail_msg("%s and %s differ at offset %zu", a, b, i);
    }
    free(x);
    free(y);
}

static const char *g_needle;
static bool g_found;

static int scan_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(sb->st_mode) || sb->st_size > (64 << 20))
        return 0;
    char *b = read_all(p, NULL);
    if (b && memmem(b, (size_t)sb->st_size, g_needle, strlen(g_needle))) {
        fprintf(stderr, "found the needle in %s\n", p);
        g_found = true;
    }
    free(b);
    return 0;
}

bool s3t_tree_contains(const char *path, const char *needle)
{
    g_needle = needle;
    g_found = false;
    nftw(path, scan_one, 16, FTW_PHYS);
    return g_found;
}

/* ---------------------------------------------------------------- CLI */

void s3t_cli(s3t_run *r, const char *const *env, const char *const *args)
{
    const char *cli = getenv("HARVBK_CLI");
    if (!cli || !*cli)
        fail_msg("HARVBK_CLI is not set");
    char *dir = s3t_tmpdir("cli");
    char *outp = s3t_path(dir, "out"), *errp = s3t_path(dir, "err");
    size_t na = 0;
    while (args[na])
        na++;
    char **argv = calloc(na + 2, sizeof *argv);
    argv[0] = (char *)cli;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = (char *)args[i];
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(cli, argv);
        _exit(127);
    }
    int status = 0;
    uint64_t deadline = s3t_now_ms() + 120000;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (s3t_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10000);
    }
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->out = read_all(outp, NULL);
    r->err = read_all(errp, NULL);
    if (!r->out)
        r->out = strdup("");
    if (!r->err)
        r->err = strdup("");
    if (getenv("HARVBK_TEST_VERBOSE"))
        fprintf(stderr, "$ harvbk %s ... -> %d\n%s%s", args[0], r->status, r->out, r->err);
    free(argv);
    unlink(outp);
    unlink(errp);
    rmdir(dir);
    free(outp);
    free(errp);
    free(dir);
}

void s3t_run_free(s3t_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

uint64_t s3t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

unsigned s3t_slack_ms(void)
{
    const char *pre = getenv("LD_PRELOAD");
    const char *scale = getenv("HARVBK_E2E_TIMEOUT_SCALE");
    unsigned k = scale ? (unsigned)atoi(scale) : 1;
    if (pre && strstr(pre, "vgpreload") && k < 4)
        k = 4;
    return 2500u * (k ? k : 1);
}
