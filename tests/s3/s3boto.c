/* tests/s3/s3boto.c - boto3's view of the S3 test server (see s3boto.h). */
#include "s3boto.h"

#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- env */

static char *g_python, *g_check, *g_mirror;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    hb_buf b = HB_BUF_INIT;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        hb_buf_append(&b, tmp, n);
    fclose(f);
    hb_buf_append(&b, "", 1);
    char *s = strdup((char *)b.data);
    hb_buf_free(&b);
    return s;
}

static char *env_value(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return strndup(p + nl + 1, ll - nl - 1);
        p = eol ? eol + 1 : NULL;
    }
    return NULL;
}

static void load(void)
{
    if (g_python)
        return;
    s3t_env(); /* fails clearly when the environment is missing */
    const char *path = getenv("HARVBK_TEST_S3_ENV");
    char *t = slurp(path);
    if (!t)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    g_python = env_value(t, "HARVBK_TEST_S3_PYTHON");
    g_check = env_value(t, "HARVBK_TEST_S3_CHECK");
    free(t);
    if (!g_python || !g_check)
        fail_msg("%s lacks HARVBK_TEST_S3_PYTHON or HARVBK_TEST_S3_CHECK", path);
    char *slash = strrchr(g_check, '/');
    assert_non_null(slash);
    if (asprintf(&g_mirror, "%.*s/boto3_mirror.py", (int)(slash - g_check), g_check) < 0)
        abort();
}

/* ---------------------------------------------------------------- run */

int s3b_run(const char *const *argv, const char *const *env, unsigned timeout_s, char **out)
{
    char *dir = s3t_tmpdir("run");
    char *outp = s3t_path(dir, "out");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    uint64_t deadline = s3t_now_ms() + (uint64_t)timeout_s * 1000u;
    bool killed = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (s3t_now_ms() > deadline) {
            kill(pid, SIGKILL); /* our own child, by PID */
            waitpid(pid, &status, 0);
            killed = true;
            break;
        }
        usleep(10000);
    }
    if (out) {
        *out = slurp(outp);
        if (!*out)
            *out = strdup("");
    }
    unlink(outp);
    rmdir(dir);
    free(outp);
    free(dir);
    if (killed)
        fprintf(stderr, "%s: killed after %u s\n", argv[0], timeout_s);
    return !killed && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------- boto3 */

char *s3b_view_text(const s3t_mode *m, const char *prefix, bool download, unsigned page_size)
{
    load();
    char ps[32];
    snprintf(ps, sizeof ps, "%u", page_size ? page_size : 1000u);
    const char *argv[16];
    size_t n = 0;
    argv[n++] = g_python;
    argv[n++] = g_check;
    argv[n++] = "--bucket";
    argv[n++] = s3t_bucket(m);
    argv[n++] = "--prefix";
    argv[n++] = prefix;
    argv[n++] = "--page-size";
    argv[n++] = ps;
    if (m->tls)
        argv[n++] = "--tls";
    if (m->vhost)
        argv[n++] = "--vhost";
    if (!download)
        argv[n++] = "--no-download";
    argv[n] = NULL;
    char *out = NULL;
    int st = s3b_run(argv, NULL, 600, &out);
    if (st != 0)
        fail_msg("check_boto3.py --prefix '%s' (%s): exit %d", prefix, m->name, st);
    return out;
}

cJSON *s3b_view(const s3t_mode *m, const char *prefix, bool download, unsigned page_size)
{
    char *t = s3b_view_text(m, prefix, download, page_size);
    cJSON *j = cJSON_Parse(t);
    if (!j || !cJSON_IsObject(j))
        fail_msg("check_boto3.py printed no JSON object: %.300s", t);
    free(t);
    return j;
}

size_t s3b_mirror(const s3t_mode *m, const char *store_prefix, const char *dir, bool down)
{
    load();
    char *prefix = NULL;
    if (asprintf(&prefix, "%s/", store_prefix) < 0)
        abort();
    const char *argv[16];
    size_t n = 0;
    argv[n++] = g_python;
    argv[n++] = g_mirror;
    argv[n++] = down ? "down" : "up";
    argv[n++] = "--bucket";
    argv[n++] = s3t_bucket(m);
    argv[n++] = "--prefix";
    argv[n++] = prefix;
    argv[n++] = "--dir";
    argv[n++] = dir;
    if (m->tls)
        argv[n++] = "--tls";
    if (m->vhost)
        argv[n++] = "--vhost";
    argv[n] = NULL;
    char *out = NULL;
    int st = s3b_run(argv, NULL, 600, &out);
    if (st != 0)
        fail_msg("boto3_mirror.py %s --prefix '%s' --dir %s: exit %d", argv[2], prefix, dir, st);
    unsigned long cnt = 0;
    if (sscanf(out, "%lu objects", &cnt) != 1)
        fail_msg("boto3_mirror.py printed '%s'", out);
    free(out);
    free(prefix);
    return (size_t)cnt;
}

/* ---------------------------------------------------------------- library */

void s3b_sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t d[32];
    unsigned int dl = 0;
    assert_int_equal(EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int collect_key(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "size", (double)size);
    cJSON_AddItemToObject((cJSON *)ud, key, o);
    return 0;
}

cJSON *s3b_library_view(const harvbk_target_config *cfg, size_t *chunks, size_t *chunks_ok)
{
    static hb_logger lg = { s3t_log_cb, NULL, HARVBK_LOG_DEBUG };
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    if (hb_target_open(&t, &cfg->cfg, "s3boto", &lg, &e) != 0)
        fail_msg("hb_target_open: %s", e.msg);
    cJSON *view = cJSON_CreateObject();
    if (hb_target_list(t, "", collect_key, view, &e) != 0)
        fail_msg("hb_target_list: %s", e.msg);
    size_t nchunks = 0, nok = 0;
    uint8_t *raw = malloc(64u << 20);
    assert_non_null(raw);
    cJSON *it;
    cJSON_ArrayForEach(it, view)
    {
        hb_buf b = HB_BUF_INIT;
        if (hb_target_get(t, it->string, &b, &e) != 0)
            fail_msg("hb_target_get %s: %s", it->string, e.msg);
        uint64_t listed = (uint64_t)cJSON_GetObjectItemCaseSensitive(it, "size")->valuedouble;
        if (listed != b.len)
            fail_msg("%s: listed with %llu bytes, read %zu", it->string,
                     (unsigned long long)listed, b.len);
        char hex[65];
        s3b_sha256_hex(b.data, b.len, hex);
        cJSON_AddStringToObject(it, "sha256", hex);
        uint8_t id[HB_DIGEST_LEN];
        if (hb_chunk_key_parse(it->string, id)) {
            nchunks++;
            size_t rl = 0;
            if (hb_chunk_decode(b.data, b.len, id, raw, 64u << 20, &rl, &e) == 0)
                nok++;
            else
                fprintf(stderr, "chunk %s: %s\n", it->string, e.msg);
            hb_err_clear(&e);
        }
        hb_buf_free(&b);
    }
    free(raw);
    hb_target_close(t);
    if (chunks)
        *chunks = nchunks;
    if (chunks_ok)
        *chunks_ok = nok;
    return view;
}

size_t s3b_assert_views_equal(const cJSON *boto, const cJSON *lib, const char *store_prefix)
{
    size_t plen = strlen(store_prefix);
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, boto)
    {
        const char *k = it->string;
        if (strncmp(k, store_prefix, plen) != 0 || k[plen] != '/')
            fail_msg("boto3 lists '%s', not under '%s/'", k, store_prefix);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(lib, k + plen + 1);
        if (!l)
            fail_msg("boto3 lists '%s', the library does not", k);
        const cJSON *bsz = cJSON_GetObjectItemCaseSensitive(it, "size");
        const cJSON *lsz = cJSON_GetObjectItemCaseSensitive(l, "size");
        assert_true(cJSON_IsNumber(bsz) && cJSON_IsNumber(lsz));
        if (bsz->valuedouble != lsz->valuedouble)
            fail_msg("'%s': boto3 says %.0f bytes, the library %.0f", k, bsz->valuedouble,
                     lsz->valuedouble);
        /* sha256: null when boto3 only listed (--no-download) */
        const cJSON *bh = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        const cJSON *lh = cJSON_GetObjectItemCaseSensitive(l, "sha256");
        if (cJSON_IsString(bh) && cJSON_IsString(lh) &&
            strcmp(bh->valuestring, lh->valuestring) != 0)
            fail_msg("'%s': boto3 downloads sha256 %s, the library reads %s", k, bh->valuestring,
                     lh->valuestring);
        n++;
    }
    cJSON_ArrayForEach(it, lib)
    {
        char *full = NULL;
        if (asprintf(&full, "%s/%s", store_prefix, it->string) < 0)
            abort();
        if (!cJSON_GetObjectItemCaseSensitive(boto, full))
            fail_msg("the library lists '%s', boto3 does not", full);
        free(full);
    }
    return n;
}

void s3b_assert_server_logs_clean(void)
{
    const s3env *env = s3t_env();
    static const char *const logs[] = { "proxy.log", "proxy.out", "s3rver.log" };
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        char *p = s3t_path(env->dir, logs[i]);
        if (s3t_tree_contains(p, env->secret))
            fail_msg("the secret appears in %s", p);
        free(p);
    }
}
