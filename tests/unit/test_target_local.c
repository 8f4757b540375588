/* tests/unit/test_target_local.c - target configuration (validation, public
 * accessors, JSON persistence, display) and the local directory backend. */
#include "testutil.h"

#include "core/fsutil.h"
#include "core/hb.h"
#include "target/config.h"
#include "target/target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/magic.h>
#if defined(__linux__)
#include <linux/openat2.h>
#include <sys/syscall.h>
#endif

/* ---- configuration ---- */

static void test_cfg_url_schemes_are_validated(void **state)
{
    (void)state;
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    hb_err e;
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "file:///var/backups", &e), 0);
    assert_string_equal(c.url, "file:///var/backups");
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "FILE:///x", &e), 0);
    assert_string_equal(c.url, "file:///x");
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "nfs://srv/export/path", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "s3://bucket/prefix/x", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "s3://bucket", &e), 0);

    hb_err_clear(&e);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "ftp://host/x", &e),
                     HARVBK_E_UNSUPPORTED);
    assert_string_equal(e.msg,
                        "unknown target URL scheme 'ftp' (expected file://, nfs:// or s3://)");
    const char *bad[] = { "file://relative/path", "file:relative", "/just/a/path", "nfs://",
                          "nfs://server", "nfs://server/", "s3://", "s3:///prefix",
                          "s3://AKIA:secret@bucket/p", "nfs://user@srv/export", "s3://bu ck/x",
                          "s3://b/../x" };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad); i++) {
        hb_err_clear(&e);
        assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, bad[i], &e), HARVBK_E_INVALID);
        assert_true(e.msg[0] != '\0');
        assert_null(strstr(e.msg, "AKIA")); /* never echo a pasted credential */
        assert_null(strstr(e.msg, ":secret@"));
    }
    /* a failed set keeps the previous value */
    assert_string_equal(c.url, "s3://bucket");
    /* NULL or "" resets */
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, NULL, &e), 0);
    assert_null(c.url);
    hb_target_cfg_clear(&c);
}

static void test_cfg_values_are_validated(void **state)
{
    (void)state;
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    hb_err e;
    assert_int_equal(c.codec, -1);
    assert_int_equal(c.timeout_ms, HB_DEFAULT_TIMEOUT_MS);

    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CODEC, "lz4", &e), 0);
    assert_int_equal(c.codec, HB_CODEC_LZ4);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CODEC, "brotli", &e), HARVBK_E_INVALID);
    assert_int_equal(c.codec, HB_CODEC_LZ4);
    assert_int_equal(hb_codec_parse("gzip"), HB_CODEC_GZIP);
    assert_int_equal(hb_codec_parse("none"), HB_CODEC_NONE);
    assert_int_equal(hb_codec_parse("ZSTD"), -1);
    assert_string_equal(hb_codec_name(HB_CODEC_ZSTD), "zstd");

    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CHUNK_SIZE, "1048576", &e), 0);
    assert_int_equal(c.chunk_size, 1048576);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CHUNK_SIZE, "65536", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CHUNK_SIZE, "67108864", &e), 0);
    const char *bad_chunk[] = { "1000000", "32768", "134217728", "0", "4M", "-4", " 65536", "" };
    for (size_t i = 0; i + 1 < HB_ARRAY_LEN(bad_chunk); i++)
        assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CHUNK_SIZE, bad_chunk[i], &e),
                         HARVBK_E_INVALID);
    assert_int_equal(c.chunk_size, 67108864);

    const char *bad_num[] = { "12a", "-1", "+1", " 1", "1 ", "0x10", "4294967296", "1.0" };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad_num); i++)
        assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_REFRESH_INTERVAL, bad_num[i], &e),
                         HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_REFRESH_INTERVAL, "4294967295", &e), 0);
    assert_int_equal(c.refresh_interval, 4294967295u);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_TIMEOUT_MS, "0", &e), HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_TIMEOUT_MS, "2500", &e), 0);
    assert_int_equal(c.timeout_ms, 2500);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_PARALLEL, "8", &e), 0);
    assert_int_equal(c.parallel, 8);

    const char *t[] = { "1", "true" }, *f[] = { "0", "false" };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_VIRTUAL_HOSTED, t[i], &e), 0);
        assert_true(c.virtual_hosted);
        assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_VIRTUAL_HOSTED, f[i], &e), 0);
        assert_false(c.virtual_hosted);
    }
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_STORE_SECRET, "yes", &e),
                     HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_STORE_SECRET, "TRUE", &e),
                     HARVBK_E_INVALID);

    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, "https://s3.local:9000", &e),
                     0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, "s3.local:9000", &e),
                     HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, "https://u:p@h", &e),
                     HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_REGION, "us-east-1", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_REGION, "us east", &e),
                     HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_SECRET_ACCESS_KEY, "s e", &e),
                     HARVBK_E_INVALID);
    assert_null(strstr(e.msg, "s e"));
    assert_int_equal(hb_target_cfg_set(&c, 0, "x", &e), HARVBK_E_INVALID);
    assert_int_equal(hb_target_cfg_set(&c, 14, "x", &e), HARVBK_E_INVALID);
    hb_target_cfg_clear(&c);
}

static void fill_all(hb_target_cfg *c, bool store_secret)
{
    hb_err e;
    hb_target_cfg_init(c);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_URL, "s3://bkt/team/a", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_ENDPOINT, "http://127.0.0.1:4569", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_REGION, "eu-west-1", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_ACCESS_KEY_ID, "AKIAEXAMPLE", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_SECRET_ACCESS_KEY, "TopSecret/Key+1", &e),
                     0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_CA_CERT_FILE, "/etc/ca \"q\".pem", &e),
                     0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_VIRTUAL_HOSTED, "1", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_REFRESH_INTERVAL, "300", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_CODEC, "gzip", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_CHUNK_SIZE, "2097152", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_TIMEOUT_MS, "1234", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_PARALLEL, "6", &e), 0);
    assert_int_equal(hb_target_cfg_set(c, HARVBK_TARGET_STORE_SECRET, store_secret ? "1" : "0",
                                       &e),
                     0);
}

/* The mapping of this process that holds p is marked "do not dump" (and so
 * kept out of core files): its VmFlags in /proc/self/smaps carry "dd". */
static bool not_dumped(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    bool in = false, dd = false;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = a >= lo && a < hi;
        else if (in && !strncmp(line, "VmFlags:", 8)) {
            dd = strstr(line, " dd") != NULL;
            break;
        }
    }
    fclose(f);
    return dd;
}

static void test_cfg_json_round_trip_and_secret_policy(void **state)
{
    (void)state;
    hb_err e;
    for (int stored = 0; stored <= 1; stored++) {
        hb_target_cfg c, back;
        fill_all(&c, stored);
        char *json = hb_target_cfg_to_json(&c);
        assert_non_null(json);
        if (stored)
            assert_non_null(strstr(json, "TopSecret/Key+1"));
        else
            assert_null(strstr(json, "TopSecret"));
        assert_int_equal(hb_target_cfg_from_json(&back, json, strlen(json), &e), 0);
        assert_string_equal(back.url, c.url);
        assert_string_equal(back.endpoint, c.endpoint);
        assert_string_equal(back.region, c.region);
        assert_string_equal(back.access_key_id, c.access_key_id);
        assert_string_equal(back.ca_cert_file, c.ca_cert_file);
        if (stored)
            assert_string_equal(back.secret_access_key, c.secret_access_key);
        else
            assert_null(back.secret_access_key);
        assert_true(back.virtual_hosted);
        assert_int_equal(back.refresh_interval, 300);
        assert_int_equal(back.codec, HB_CODEC_GZIP);
        assert_int_equal(back.chunk_size, 2097152);
        assert_int_equal(back.timeout_ms, 1234);
        assert_int_equal(back.parallel, 6);
        assert_int_equal(back.store_secret, stored);

        hb_target_cfg copy;
        assert_int_equal(hb_target_cfg_copy(&copy, &c), 0);
        assert_string_equal(copy.secret_access_key, "TopSecret/Key+1");
        assert_ptr_not_equal(copy.url, c.url);
        /* every copy of the secret is kept out of core dumps */
        assert_true(not_dumped(c.secret_access_key));
        assert_true(not_dumped(copy.secret_access_key));
        assert_false(not_dumped(copy.url));
        if (stored)
            assert_true(not_dumped(back.secret_access_key));
        hb_target_cfg_clear(&copy);
        hb_free_secret(json);
        hb_target_cfg_clear(&back);
        hb_target_cfg_clear(&c);
    }

    /* defaults round trip */
    hb_target_cfg d, back;
    hb_target_cfg_init(&d);
    char *json = hb_target_cfg_to_json(&d);
    assert_int_equal(hb_target_cfg_from_json(&back, json, strlen(json), &e), 0);
    assert_null(back.url);
    assert_int_equal(back.codec, -1);
    assert_int_equal(back.chunk_size, 0);
    assert_int_equal(back.timeout_ms, HB_DEFAULT_TIMEOUT_MS);
    hb_free(json);
    hb_target_cfg_clear(&back);
}

static void test_cfg_from_json_rejects_bad_documents(void **state)
{
    (void)state;
    hb_target_cfg c;
    hb_err e;
    struct {
        const char *doc;
        int rc;
    } cases[] = {
        { "{\"version\":3,\"url\":\"file:///x\"}", HARVBK_E_FORMAT },
        { "{\"url\":\"file:///x\"}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"url\":5}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"chunk_size\":\"4194304\"}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"chunk_size\":1000}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"timeout_ms\":-1}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"virtual_hosted\":1}", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"url\":\"file://rel\"}", HARVBK_E_CORRUPT },
        { "{\"version\":1", HARVBK_E_CORRUPT },
        { "{\"version\":1,\"url\":\"gopher://x/y\"}", HARVBK_E_UNSUPPORTED },
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(cases); i++) {
        hb_err_clear(&e);
        int rc = hb_target_cfg_from_json(&c, cases[i].doc, strlen(cases[i].doc), &e);
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(e.code, cases[i].rc);
        assert_null(c.url);
    }
    hb_err_clear(&e);
    const char *wrong = "{\"version\":1,\"url\":5}";
    assert_int_equal(hb_target_cfg_from_json(&c, wrong, strlen(wrong), &e),
                     HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "'url'"));
}

static void test_cfg_display_hides_credentials(void **state)
{
    (void)state;
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    char *d = hb_target_cfg_display(&c);
    assert_string_equal(d, "(no target)");
    hb_free(d);
    /* set() refuses credentials in URLs; a URL from elsewhere is still scrubbed */
    c.url = hb_strdup("s3://AKIA:supersecret@bucket/prefix");
    c.secret_access_key = hb_secure_strdup("supersecret");
    d = hb_target_cfg_display(&c);
    assert_string_equal(d, "s3://bucket/prefix");
    hb_free(d);
    hb_target_cfg_clear(&c);
    hb_err e;
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "nfs://srv/export/p", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_SECRET_ACCESS_KEY, "zzz", &e), 0);
    d = hb_target_cfg_display(&c);
    assert_string_equal(d, "nfs://srv/export/p");
    assert_null(strstr(d, "zzz"));
    hb_free(d);
    hb_target_cfg_clear(&c);
}

static void test_public_target_config_accessors(void **state)
{
    (void)state;
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char buf[64];
    size_t len = 99;
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_URL, buf, sizeof buf, &len), 0);
    assert_string_equal(buf, "");
    assert_int_equal(len, 0);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_CODEC, buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "");
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_TIMEOUT_MS, buf, sizeof buf,
                                              NULL),
                     0);
    assert_string_equal(buf, "10000");

    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, "file:///srv/backup"), 0);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_URL, buf, 8, &len), 0);
    assert_string_equal(buf, "file://"); /* truncated */
    assert_int_equal(len, strlen("file:///srv/backup"));
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_URL, NULL, 0, &len), 0);
    assert_int_equal(len, strlen("file:///srv/backup"));

    assert_int_equal(harvbk_target_config_has_secret(cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, "k3y"), 0);
    assert_int_equal(harvbk_target_config_has_secret(cfg), 1);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, buf,
                                              sizeof buf, &len),
                     0);
    assert_string_equal(buf, "");
    assert_int_equal(len, 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, NULL), 0);
    assert_int_equal(harvbk_target_config_has_secret(cfg), 0);

    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "131072"), 0);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_CHUNK_SIZE, buf, sizeof buf,
                                              NULL),
                     0);
    assert_string_equal(buf, "131072");
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_VIRTUAL_HOSTED, "true"), 0);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_VIRTUAL_HOSTED, buf, sizeof buf,
                                              NULL),
                     0);
    assert_string_equal(buf, "1");
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CODEC, "zstd"), 0);
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_CODEC, buf, sizeof buf, NULL), 0);
    assert_string_equal(buf, "zstd");

    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, "ftp://x/y"),
                     HARVBK_E_UNSUPPORTED);
    assert_int_equal(harvbk_target_config_set(cfg, (harvbk_target_key)99, "x"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_target_config_get(cfg, (harvbk_target_key)99, buf, sizeof buf, NULL),
                     HARVBK_E_INVALID);
    assert_int_equal(harvbk_target_config_set(NULL, HARVBK_TARGET_URL, "file:///x"),
                     HARVBK_E_INVALID);
    assert_int_equal(harvbk_target_config_new(NULL), HARVBK_E_INVALID);
    harvbk_target_config_free(cfg);
    harvbk_target_config_free(NULL);
}

/* ---- opening targets ---- */

static hb_target *open_local(const char *dir, const char *owner)
{
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    hb_err e;
    char *url = hb_asprintf("file://%s", dir);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, url, &e), 0);
    hb_target *t = NULL;
    int rc = hb_target_open(&t, &c, owner, NULL, &e);
    if (rc)
        print_error("open %s: %s\n", url, e.msg);
    assert_int_equal(rc, 0);
    assert_string_equal(t->display, url);
    hb_free(url);
    hb_target_cfg_clear(&c);
    return t;
}

static void test_open_dispatches_on_scheme(void **state)
{
    (void)state;
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    hb_err e;
    hb_target *t = (hb_target *)1;
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_NOTARGET);
    assert_null(t);
    /* the NFS backend answers (tests/nfs/; this refusal needs no server) */
    hb_target_cfg_set(&c, HARVBK_TARGET_URL, "nfs://srv/export/x?version=4", &e);
    hb_err_clear(&e);
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_UNSUPPORTED);
    assert_non_null(strstr(e.msg, "only NFS version 3 is supported"));
    hb_target_cfg_set(&c, HARVBK_TARGET_URL, "s3://b/p", &e);
    /* the S3 backend answers (tests/unit/test_target_s3.c, tests/s3/) */
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "access key id"));
    hb_free(c.url);
    c.url = hb_strdup("smb://x/y");
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_UNSUPPORTED);
    assert_string_equal(e.msg,
                        "unknown target URL scheme 'smb' (expected file://, nfs:// or s3://)");
    hb_target_cfg_clear(&c);

    /* the root is created (parents too); a regular file as root is invalid */
    char *dir = tu_mkdtemp("tgt-open");
    char *deep = hb_asprintf("%s/not/yet/there", dir);
    t = open_local(deep, "ctx-1");
    assert_string_equal(t->owner, "ctx-1");
    assert_true(t->parallel >= 1);
    assert_string_equal(t->ops->scheme, "file");
    assert_int_equal(t->ops->ping(t, &e), 0);
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    hb_target_close(t);
    hb_target_close(NULL);

    char *file = hb_asprintf("%s/plain", dir);
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    char *url = hb_asprintf("file://%s", file);
    hb_target_cfg_init(&c);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, url, &e), 0);
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_INVALID);
    assert_null(t);
    /* "/" is refused: its tmp/ would be the system's */
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "file:///", &e), 0);
    assert_int_equal(hb_target_open(&t, &c, "o", NULL, &e), HARVBK_E_INVALID);
    /* owners become file names: refused when unsafe */
    hb_free(c.url);
    c.url = hb_asprintf("file://%s", deep);
    assert_int_equal(hb_target_open(&t, &c, "../evil", NULL, &e), HARVBK_E_INVALID);
    hb_target_cfg_clear(&c);
    hb_free(url);
    hb_free(file);
    hb_free(deep);
    tu_rmrf(dir);
    free(dir);
}

/* ---- local backend ---- */

typedef struct listing {
    char keys[64][128];
    uint64_t sizes[64];
    int64_t mtimes[64];
    int n;
    int stop_after;
} listing;

static int collect(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    listing *l = ud;
    if (l->n < 64) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        l->sizes[l->n] = size;
        l->mtimes[l->n] = mtime;
    }
    l->n++;
    if (l->stop_after && l->n == l->stop_after)
        return 7;
    return 0;
}

static bool listed(const listing *l, const char *key)
{
    for (int i = 0; i < l->n && i < 64; i++)
        if (!strcmp(l->keys[i], key))
            return true;
    return false;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_local_put_get_head_del(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-basic");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    uint8_t data[70000];
    tu_fill_random(data, sizeof data, 11);

    assert_int_equal(hb_target_put(t, "chunks/ab/cd/abcd", data, sizeof data, &e), 0);
    assert_int_equal(hb_target_get(t, "chunks/ab/cd/abcd", &b, &e), 0);
    assert_int_equal(b.len, sizeof data);
    assert_memory_equal(b.data, data, sizeof data);
    uint64_t size = 0;
    assert_int_equal(hb_target_head(t, "chunks/ab/cd/abcd", &size, &e), 0);
    assert_int_equal(size, sizeof data);

    /* replace, top-level key, empty object */
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/abcd", "new", 3, &e), 0);
    assert_int_equal(hb_target_get(t, "chunks/ab/cd/abcd", &b, &e), 0);
    assert_int_equal(b.len, 3);
    assert_string_equal((char *)b.data, "new");
    assert_int_equal(hb_target_put(t, "config.json", "{}", 2, &e), 0);
    assert_int_equal(hb_target_put(t, "empty", NULL, 0, &e), 0);
    assert_int_equal(hb_target_get(t, "empty", &b, &e), 0);
    assert_int_equal(b.len, 0);

    /* files land where the layout says, private (a store without a config) */
    char *p = hb_asprintf("%s/chunks/ab/cd/abcd", dir);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    mode_t um = umask(022);
    umask(um);
    assert_int_equal(st.st_mode & 0777, 0600 & ~um);
    hb_free(p);

    /* absent objects */
    hb_err_clear(&e);
    assert_int_equal(hb_target_get(t, "manifests/none", &b, &e), HARVBK_E_NOTFOUND);
    char *want = hb_asprintf("file://%s: manifests/none: ", dir);
    assert_memory_equal(e.msg, want, strlen(want));
    hb_free(want);
    assert_int_equal(hb_target_head(t, "manifests/none", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_head(t, "chunks", &size, &e), HARVBK_E_NOTFOUND); /* a dir */
    assert_int_equal(hb_target_get(t, "chunks/ab", &b, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_get(t, "config.json/x", &b, &e), HARVBK_E_NOTFOUND);

    /* delete: present, absent, many */
    assert_int_equal(hb_target_del(t, "chunks/ab/cd/abcd", &e), 0);
    assert_int_equal(hb_target_head(t, "chunks/ab/cd/abcd", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_del(t, "chunks/ab/cd/abcd", &e), 0);
    assert_int_equal(hb_target_del(t, "chunks/ab", &e), 0); /* a directory is no object */
    const char *many[] = { "config.json", "empty", "never-existed" };
    assert_int_equal(hb_target_del_many(t, many, 3, &e), 0);
    assert_int_equal(hb_target_head(t, "config.json", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_head(t, "empty", &size, &e), HARVBK_E_NOTFOUND);

    /* the tmp area is empty after successful puts */
    char *tmp = hb_asprintf("%s/tmp", dir);
    assert_int_equal(count_dir(tmp), 0);
    hb_free(tmp);

    /* an object cannot also be a directory */
    assert_int_equal(hb_target_put(t, "x", "1", 1, &e), 0);
    assert_int_equal(hb_target_put(t, "x/y", "2", 1, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_target_put(t, "d/e", "1", 1, &e), 0);
    assert_int_equal(hb_target_put(t, "d", "2", 1, &e), HARVBK_E_INVALID);
    tmp = hb_asprintf("%s/tmp", dir);
    assert_int_equal(count_dir(tmp), 0);
    hb_free(tmp);

    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

static void test_local_refuses_bad_keys(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-keys");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    const char *bad[] = { "",         "../x",  "a/../../x", "/abs",  "a//b", "a/",
                          "./a",      "a/.",   "..",        "a\\b",  "tmp/x", "tmp",
                          "a/\x01/b" };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad); i++) {
        hb_err_clear(&e);
        assert_int_equal(hb_target_put(t, bad[i], "x", 1, &e), HARVBK_E_INVALID);
        assert_int_equal(hb_target_get(t, bad[i], &b, &e), HARVBK_E_INVALID);
        assert_int_equal(t->ops->put(t, bad[i], "x", 1, &e), HARVBK_E_INVALID);
    }
    assert_int_equal(hb_target_put(t, NULL, "x", 1, &e), HARVBK_E_INVALID);
    assert_false(hb_key_valid(NULL));
    assert_true(hb_key_valid("a/b.c/..d/e..f"));
    assert_true(hb_key_valid("tmpx/y"));
    char long_key[1100];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_false(hb_key_valid(long_key));
    /* nothing escaped the root */
    char *parent_x = hb_asprintf("%s/../x", dir);
    struct stat st;
    assert_int_not_equal(stat(parent_x, &st), 0);
    hb_free(parent_x);
    /* list prefixes */
    listing l = { 0 };
    assert_int_equal(hb_target_list(t, "../", collect, &l, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_target_list(t, "/a", collect, &l, &e), HARVBK_E_INVALID);
    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

static void test_local_list_filters_by_prefix_recursively(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-list");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    const char *keys[] = { "backups/ns1/vm1/manifest.json", "backups/ns1/vm1/idx/disk0",
                           "backups/ns1/vm10/manifest.json", "backups/ns2/vm1/manifest.json",
                           "chunks/00/11/0011aa", "chunks/00/12/0012bb", "config.json",
                           "backupsX" };
    for (size_t i = 0; i < HB_ARRAY_LEN(keys); i++)
        assert_int_equal(hb_target_put(t, keys[i], keys[i], strlen(keys[i]), &e), 0);
    /* a stray temporary is never listed */
    char *stray = hb_asprintf("%s/tmp/other-1-ab", dir);
    assert_int_equal(tu_write_file(stray, "t", 1), 0);

    listing l = { 0 };
    assert_int_equal(hb_target_list(t, "", collect, &l, &e), 0);
    assert_int_equal(l.n, (int)HB_ARRAY_LEN(keys));
    for (size_t i = 0; i < HB_ARRAY_LEN(keys); i++)
        assert_true(listed(&l, keys[i]));
    for (int i = 0; i < l.n; i++) {
        assert_int_equal(l.sizes[i], strlen(l.keys[i]));
        assert_true(l.mtimes[i] > 1700000000);
    }

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "backups/ns1/", collect, &l, &e), 0);
    assert_int_equal(l.n, 3);
    assert_true(listed(&l, "backups/ns1/vm1/idx/disk0"));

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "backups/ns1/vm1/", collect, &l, &e), 0);
    assert_int_equal(l.n, 2);
    assert_false(listed(&l, "backups/ns1/vm10/manifest.json"));

    memset(&l, 0, sizeof l); /* partial last segment */
    assert_int_equal(hb_target_list(t, "backups/ns1/vm1", collect, &l, &e), 0);
    assert_int_equal(l.n, 3);

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "backups", collect, &l, &e), 0);
    assert_int_equal(l.n, 5);
    assert_true(listed(&l, "backupsX"));

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "chunks/", collect, &l, &e), 0);
    assert_int_equal(l.n, 2);

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "chunks/00/12/0012bb", collect, &l, &e), 0);
    assert_int_equal(l.n, 1);

    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "nothing/here/", collect, &l, &e), 0);
    assert_int_equal(l.n, 0);

    memset(&l, 0, sizeof l); /* the callback stops the listing with its value */
    l.stop_after = 2;
    assert_int_equal(hb_target_list(t, "", collect, &l, &e), 7);
    assert_int_equal(l.n, 2);

    hb_free(stray);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

typedef struct order_check {
    char last[160];
    int n, bad_order, bad_size;
} order_check;

static int check_order(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    order_check *o = ud;
    if (o->n && strcmp(o->last, key) >= 0)
        o->bad_order++;
    if (size != strlen(key))
        o->bad_size++;
    snprintf(o->last, sizeof o->last, "%s", key);
    o->n++;
    return 0;
}

/* A directory whose entries take many getdents64 buffers: each object is
 * listed once, in order, with its size; subdirectories among them are
 * descended into. */
static void test_local_list_large_directory(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-list-big");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    assert_int_equal(hb_target_put(t, "backups/many/seed", "backups/many/seed", 17, &e), 0);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char key[160], *path;
        snprintf(key, sizeof key, "backups/many/obj-%05d-%s", (i * 7919) % N,
                 "padding-so-that-each-entry-takes-more-room-in-the-buffer");
        path = hb_asprintf("%s/%s", dir, key);
        assert_int_equal(tu_write_file(path, key, strlen(key)), 0);
        hb_free(path);
    }
    assert_int_equal(hb_target_put(t, "backups/many/sub/inner", "backups/many/sub/inner", 22, &e),
                     0);
    order_check o;
    memset(&o, 0, sizeof o);
    assert_int_equal(hb_target_list(t, "backups/many/", check_order, &o, &e), 0);
    assert_int_equal(o.n, N + 2);
    assert_int_equal(o.bad_order, 0);
    assert_int_equal(o.bad_size, 0);
    assert_string_equal(o.last, "backups/many/sub/inner");

    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

static mode_t mode_of(const char *dir, const char *rel)
{
    char *p = hb_asprintf("%s/%s", dir, rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    hb_free(p);
    return st.st_mode & 0777;
}

/* What the target adds takes the group's and others' read access of the
 * store's config: none for a new store (whatever the umask), 0644 / 0755 as
 * an earlier version made them, 0640 / 0750; a link there counts as no
 * config; private_files (the snapshot store) stays private. */
static void test_local_modes_follow_the_store_config(void **state)
{
    (void)state;
    mode_t old = umask(0);
    char *dir = tu_mkdtemp("tgt-modes");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    assert_int_equal(hb_target_put(t, HB_STORE_CONFIG_NAME, "{}", 2, &e), 0);
    assert_int_equal(hb_target_put(t, "chunks/00/11/0011aa", "x", 1, &e), 0);
    hb_target_close(t);
    assert_int_equal(mode_of(dir, HB_STORE_CONFIG_NAME), 0600);
    assert_int_equal(mode_of(dir, "chunks/00/11/0011aa"), 0600);
    assert_int_equal(mode_of(dir, "chunks/00/11"), 0700);
    assert_int_equal(mode_of(dir, "tmp"), 0700);

    static const struct {
        mode_t cfg, file, dir;
        bool priv;
    } cases[] = {
        { 0644, 0644, 0755, false },
        { 0640, 0640, 0750, false },
        { 0604, 0604, 0705, false },
        { 0600, 0600, 0700, false },
        { 0644, 0600, 0700, true },
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(cases); i++) {
        char *cfgp = hb_asprintf("%s/%s", dir, HB_STORE_CONFIG_NAME);
        assert_int_equal(chmod(cfgp, cases[i].cfg), 0);
        hb_free(cfgp);
        hb_target_cfg cfg;
        hb_target_cfg_init(&cfg);
        char *url = hb_asprintf("file://%s", dir);
        assert_int_equal(hb_target_cfg_set(&cfg, HARVBK_TARGET_URL, url, &e), 0);
        hb_free(url);
        cfg.private_files = cases[i].priv;
        assert_int_equal(hb_target_open(&t, &cfg, "ctx-a", NULL, &e), 0);
        char key[96], sub[32];
        snprintf(sub, sizeof sub, "backups/n%zu", i);
        snprintf(key, sizeof key, "%s/manifest.json", sub);
        assert_int_equal(hb_target_put(t, key, "m", 1, &e), 0);
        hb_target_close(t);
        hb_target_cfg_clear(&cfg);
        assert_int_equal(mode_of(dir, key), cases[i].file);
        assert_int_equal(mode_of(dir, sub), cases[i].dir);
    }

    /* a link in the config's place grants nothing */
    char *cfgp = hb_asprintf("%s/%s", dir, HB_STORE_CONFIG_NAME);
    char *other = hb_asprintf("%s/elsewhere", dir);
    assert_int_equal(tu_write_file(other, "{}", 2), 0);
    assert_int_equal(chmod(other, 0644), 0);
    assert_int_equal(unlink(cfgp), 0);
    assert_int_equal(symlink(other, cfgp), 0);
    t = open_local(dir, "ctx-a");
    assert_int_equal(hb_target_put(t, "backups/l/manifest.json", "m", 1, &e), 0);
    hb_target_close(t);
    assert_int_equal(mode_of(dir, "backups/l/manifest.json"), 0600);
    assert_int_equal(mode_of(dir, "backups/l"), 0700);
    hb_free(cfgp);
    hb_free(other);
    umask(old);
    tu_rmrf(dir);
    free(dir);
}

static void set_old(const char *path, int64_t age)
{
    struct timeval tv[2];
    tv[0].tv_sec = tv[1].tv_sec = (time_t)(hb_now() - age);
    tv[0].tv_usec = tv[1].tv_usec = 0;
    assert_int_equal(utimes(path, tv), 0);
}

static void test_local_cleanup_removes_stale_temporaries(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-clean");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    const char *mine[] = { "ctx-a-0-deadbeef", "ctx-a-17-0a" };
    const char *others[] = { "ctx-ab-1-00", "ctx-a-x-00", "ctx-b-3-ff" };
    for (size_t i = 0; i < HB_ARRAY_LEN(mine); i++) {
        char *p = hb_asprintf("%s/tmp/%s", dir, mine[i]);
        assert_int_equal(tu_write_file(p, "x", 1), 0);
        hb_free(p);
    }
    for (size_t i = 0; i < HB_ARRAY_LEN(others); i++) {
        char *p = hb_asprintf("%s/tmp/%s", dir, others[i]);
        assert_int_equal(tu_write_file(p, "x", 1), 0);
        hb_free(p);
    }
    char *old = hb_asprintf("%s/tmp/crashed-9-01", dir);
    assert_int_equal(tu_write_file(old, "x", 1), 0);
    set_old(old, 7200);
    /* an old file that is not one of our temporaries is never touched */
    char *foreign = hb_asprintf("%s/tmp/notes.txt", dir);
    assert_int_equal(tu_write_file(foreign, "x", 1), 0);
    set_old(foreign, 7200);

    char *tmp = hb_asprintf("%s/tmp", dir);
    assert_int_equal(count_dir(tmp), 7);
    assert_int_equal(t->ops->cleanup(t, "ctx-a", 3600, &e), 0);
    assert_int_equal(count_dir(tmp), 4); /* the other owners' fresh files stay */
    for (size_t i = 0; i < HB_ARRAY_LEN(others); i++) {
        char *p = hb_asprintf("%s/tmp/%s", dir, others[i]);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        hb_free(p);
    }
    struct stat st;
    assert_int_not_equal(stat(old, &st), 0);

    assert_int_equal(stat(foreign, &st), 0);
    hb_free(foreign);

    /* negative age: owner only; no tmp dir at all: fine */
    assert_int_equal(t->ops->cleanup(t, "ctx-b", -1, &e), 0);
    assert_int_equal(count_dir(tmp), 3);
    hb_err e2;
    assert_int_equal(hb_rm_rf(tmp, &e2), 0);
    assert_int_equal(t->ops->cleanup(t, "ctx-a", 0, &e), 0);
    /* put re-creates tmp/ on demand */
    assert_int_equal(hb_target_put(t, "leases/gc/x", "1", 1, &e), 0);
    assert_int_equal(count_dir(tmp), 0);

    hb_free(tmp);
    hb_free(old);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

static void test_local_recovers_when_directory_removed(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-gone");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_target_put(t, "a/b/c", "1", 1, &e), 0);
    char *a = hb_asprintf("%s/a", dir);
    assert_int_equal(hb_rm_rf(a, &e), 0);
    /* the directory cache remembers a/b; the put must still succeed */
    assert_int_equal(hb_target_put(t, "a/b/d", "2", 1, &e), 0);
    assert_int_equal(hb_target_get(t, "a/b/d", &b, &e), 0);
    assert_string_equal((char *)b.data, "2");
    hb_free(a);
    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

/* A root directory replaced while the target is open (moved away and made
 * again here; a mount over it is the same to the target): objects would be
 * placed in the new directory by path but synced on the old one's
 * filesystem. A put or barrier fails with HARVBK_E_IO instead of saying
 * durable; opened again, the target works. */
static void test_local_root_replaced_while_open(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-replaced");
    char *root = hb_asprintf("%s/root", dir);
    char *moved = hb_asprintf("%s/root.old", dir);
    hb_target *t = open_local(root, "ctx-a");
    hb_err e;
    assert_int_equal(hb_target_put(t, "a/one", "1", 1, &e), 0);
    uint64_t tok = hb_target_sync_token(t);
    assert_int_equal(hb_target_put_deferred(t, "chunks/aa/obj1", "22", 2, &e), 0);

    assert_int_equal(rename(root, moved), 0);
    assert_int_equal(mkdir(root, 0700), 0);
    hb_err_clear(&e);
    int src = hb_target_sync(t, tok, &e);
    if (src != HARVBK_E_IO)
        fail_msg("sync: %d %s", src, e.msg);
    assert_non_null(strstr(e.msg, "was replaced while in use"));
    hb_err_clear(&e);
    assert_int_equal(hb_target_put(t, "a/two", "2", 1, &e), HARVBK_E_IO);
    assert_non_null(strstr(e.msg, "was replaced while in use"));
    /* removed altogether: the same */
    assert_int_equal(hb_rm_rf(root, &e), 0);
    hb_err_clear(&e);
    assert_int_equal(hb_target_sync(t, hb_target_sync_token(t), &e), HARVBK_E_IO);
    hb_target_close(t);

    /* opened again on the new directory: puts and barriers succeed */
    assert_int_equal(mkdir(root, 0700), 0);
    t = open_local(root, "ctx-a");
    tok = hb_target_sync_token(t);
    assert_int_equal(hb_target_put(t, "a/three", "3", 1, &e), 0);
    assert_int_equal(hb_target_put_deferred(t, "chunks/bb/obj2", "44", 2, &e), 0);
    assert_int_equal(hb_target_sync(t, tok, &e), 0);
    uint64_t size = 0;
    assert_int_equal(hb_target_head(t, "chunks/bb/obj2", &size, &e), 0);
    assert_int_equal(size, 2);
    hb_target_close(t);
    hb_free(root);
    hb_free(moved);
    tu_rmrf(dir);
    free(dir);
}

typedef struct put_thread {
    hb_target *t;
    int id;
    int failures;
} put_thread;

enum { PUTS_PER_THREAD = 200 };

static void *put_worker(void *p)
{
    put_thread *pt = p;
    for (int i = 0; i < PUTS_PER_THREAD; i++) {
        char key[64], val[64];
        snprintf(key, sizeof key, "chunks/%02x/%02x/t%d-%d", (i * 7 + pt->id) % 256, i % 3,
                 pt->id, i);
        snprintf(val, sizeof val, "value %d %d", pt->id, i);
        hb_err e;
        if (hb_target_put(pt->t, key, val, strlen(val), &e) != 0)
            pt->failures++;
    }
    return NULL;
}

static void test_local_concurrent_puts_all_readable(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-conc");
    hb_target *t = open_local(dir, "ctx-a");
    put_thread pt[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        pt[i] = (put_thread){ t, i, 0 };
        pthread_create(&th[i], NULL, put_worker, &pt[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(pt[i].failures, 0);
    }
    hb_buf b = HB_BUF_INIT;
    hb_err e;
    for (int id = 0; id < 4; id++) {
        for (int i = 0; i < PUTS_PER_THREAD; i++) {
            char key[64], val[64];
            snprintf(key, sizeof key, "chunks/%02x/%02x/t%d-%d", (i * 7 + id) % 256, i % 3, id,
                     i);
            snprintf(val, sizeof val, "value %d %d", id, i);
            assert_int_equal(hb_target_get(t, key, &b, &e), 0);
            assert_string_equal((char *)b.data, val);
        }
    }
    listing l = { 0 };
    assert_int_equal(hb_target_list(t, "chunks/", collect, &l, &e), 0);
    assert_int_equal(l.n, 4 * PUTS_PER_THREAD);
    char *tmp = hb_asprintf("%s/tmp", dir);
    assert_int_equal(count_dir(tmp), 0);
    hb_free(tmp);
    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

static void test_local_ping_reports_missing_root(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-ping");
    char *root = hb_asprintf("%s/root", dir);
    hb_target *t = open_local(root, "ctx-a");
    hb_err e;
    assert_int_equal(t->ops->ping(t, &e), 0);
    assert_int_equal(hb_rm_rf(root, &e), 0);
    hb_err_clear(&e);
    assert_int_equal(t->ops->ping(t, &e), HARVBK_E_TARGET);
    assert_non_null(strstr(e.msg, "does not exist"));
    hb_target_close(t);
    hb_free(root);
    tu_rmrf(dir);
    free(dir);
}


typedef struct fifo_get {
    hb_target *t;
    const char *key;
    int rc;
    hb_err e;
} fifo_get;

static void *fifo_get_main(void *p)
{
    fifo_get *g = p;
    hb_buf b = HB_BUF_INIT;
    g->rc = hb_target_get(g->t, g->key, &b, &g->e);
    hb_buf_free(&b);
    return NULL;
}

/* A target directory may hold things no writer of ours creates. A FIFO at a
 * key must read as "no such object" at once: opening it for reading would
 * block until some writer appears, hanging a restore that no cancel can stop. */
static void test_local_get_of_a_fifo_does_not_hang(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-fifo");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/x", "1", 1, &e), 0);
    char *fp = hb_asprintf("%s/chunks/ab/cd/fifo", dir);
    assert_int_equal(mkfifo(fp, 0644), 0);
    fifo_get g = { t, "chunks/ab/cd/fifo", 1, { 0, "" } };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fifo_get_main, &g), 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    int jr = pthread_timedjoin_np(th, NULL, &dl);
    if (jr == ETIMEDOUT) {
        /* unblock the reader so the test can fail cleanly */
        int w = open(fp, O_WRONLY | O_NONBLOCK);
        if (w >= 0)
            close(w);
        pthread_join(th, NULL);
    }
    assert_int_equal(jr, 0);
    assert_int_equal(g.rc, HARVBK_E_NOTFOUND);
    uint64_t size;
    assert_int_equal(hb_target_head(t, "chunks/ab/cd/fifo", &size, &e), HARVBK_E_NOTFOUND);
    hb_free(fp);
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}


/* hb_target_get_max: an object larger than the caller's bound is refused
 * from its size without being read, by the backend's get_max() or, for a
 * backend without one, by head() + get(). */
static void test_get_max_refuses_larger_objects_unread(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-getmax");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    uint8_t data[100];
    tu_fill_random(data, sizeof data, 5);
    assert_int_equal(hb_target_put(t, "a/obj", data, sizeof data, &e), 0);
    hb_target_ops no_get_max = *t->ops;
    no_get_max.get_max = NULL;
    const hb_target_ops *own = t->ops;
    for (int pass = 0; pass < 2; pass++) {
        t->ops = pass ? &no_get_max : own;
        hb_buf b = HB_BUF_INIT;
        assert_int_equal(hb_target_get_max(t, "a/obj", &b, 100, &e), 0);
        assert_int_equal(b.len, 100);
        assert_memory_equal(b.data, data, 100);
        hb_buf_free(&b);
        hb_err_clear(&e);
        assert_int_equal(hb_target_get_max(t, "a/obj", &b, 99, &e), HARVBK_E_CORRUPT);
        assert_int_equal(e.code, HARVBK_E_CORRUPT);
        assert_non_null(strstr(e.msg, "a/obj"));
        assert_non_null(strstr(e.msg, "100 bytes"));
        assert_int_equal(b.len, 0);
        assert_true(b.cap < 100); /* nothing was read */
        assert_int_equal(hb_target_get_max(t, "a/none", &b, 99, &e), HARVBK_E_NOTFOUND);
        assert_int_equal(hb_target_get_max(t, "a/../obj", &b, 99, &e), HARVBK_E_INVALID);
        hb_buf_free(&b);
    }
    t->ops = own;
    hb_target_close(t);
    tu_rmrf(dir);
    free(dir);
}

/* Deferred puts: invisible until the barrier, then durable and visible; a
 * barrier that cannot place an object drops it and fails every writer whose
 * token predates the loss; the queue bound runs the barrier by itself; close
 * removes what was never synced. */
/* A symbolic link planted in the store (a directory component, a leaf, tmp/)
 * is never followed: list, get, head, put, del and cleanup stay inside the
 * root, whatever the link points at. */
static bool exists_nofollow(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_local_never_follows_symlinks(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-link");
    char *out = tu_mkdtemp("tgt-link-outside");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    uint64_t size = 0;
    /* the outside directory: files a store walk must never touch */
    const char *outside[] = { "sentinel", "manifest.json", "disk-0.idx", "sub/deep/file",
                              "ctx-a-1-ab" };
    char *p = hb_asprintf("%s/sub/deep", out);
    assert_int_equal(hb_mkdir_p(p, 0755, &e), 0);
    hb_free(p);
    for (size_t i = 0; i < HB_ARRAY_LEN(outside); i++) {
        p = hb_asprintf("%s/%s", out, outside[i]);
        assert_int_equal(tu_write_file(p, "outside", 7), 0);
        hb_free(p);
    }
    assert_int_equal(hb_target_put(t, "backups/default/real/manifest.json", "{}", 2, &e), 0);
    /* a directory link inside the store, one at the top, a leaf link */
    char *l1 = hb_asprintf("%s/backups/default/x", dir);
    char *l2 = hb_asprintf("%s/linkdir", dir);
    char *l3 = hb_asprintf("%s/backups/default/real/leaf-link", dir);
    char *sentinel = hb_asprintf("%s/sentinel", out);
    assert_int_equal(symlink(out, l1), 0);
    assert_int_equal(symlink(out, l2), 0);
    assert_int_equal(symlink(sentinel, l3), 0);

    /* listings do not report anything behind a link */
    listing l = { 0 };
    assert_int_equal(hb_target_list(t, "", collect, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_true(listed(&l, "backups/default/real/manifest.json"));
    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "backups/default/x/", collect, &l, &e), 0);
    assert_int_equal(l.n, 0);
    memset(&l, 0, sizeof l);
    assert_int_equal(hb_target_list(t, "linkdir/sub/", collect, &l, &e), 0);
    assert_int_equal(l.n, 0);

    /* get, head, put and del through a linked directory are refused */
    const char *through[] = { "backups/default/x/sentinel", "backups/default/x/manifest.json",
                              "linkdir/sub/deep/file", "backups/default/real/leaf-link" };
    for (size_t i = 0; i < HB_ARRAY_LEN(through); i++) {
        hb_err_clear(&e);
        assert_int_equal(hb_target_get(t, through[i], &b, &e), HARVBK_E_CORRUPT);
        assert_non_null(strstr(e.msg, "symbolic link"));
        assert_int_equal(hb_target_head(t, through[i], &size, &e), HARVBK_E_CORRUPT);
        if (i < 3) {
            assert_int_equal(hb_target_del(t, through[i], &e), HARVBK_E_CORRUPT);
            assert_non_null(strstr(e.msg, "symbolic link"));
        }
    }
    const char *many[] = { "backups/default/x/disk-0.idx", "linkdir/sentinel" };
    assert_int_not_equal(hb_target_del_many(t, many, 2, &e), 0);
    assert_int_equal(hb_target_put(t, "backups/default/x/new", "n", 1, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_put(t, "linkdir/sub/deep/new", "n", 1, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_put(t, "linkdir/newdir/new", "n", 1, &e), HARVBK_E_CORRUPT);
    /* a leaf link is deleted as a link (never its target) */
    assert_int_equal(hb_target_del(t, "backups/default/real/leaf-link", &e), 0);
    assert_false(exists_nofollow(l3));

    /* tmp/ replaced by a link: no temporary is written or removed outside */
    char *tmp = hb_asprintf("%s/tmp", dir);
    assert_int_equal(hb_rm_rf(tmp, &e), 0);
    assert_int_equal(symlink(out, tmp), 0);
    assert_int_not_equal(hb_target_put(t, "chunks/ab/cd/abcd", "c", 1, &e), 0);
    uint64_t tok = hb_target_sync_token(t);
    int r = hb_target_put_deferred(t, "chunks/ab/cd/abce", "c", 1, &e);
    if (r == 0)
        r = hb_target_sync(t, tok, &e);
    assert_int_not_equal(r, 0);
    (void)t->ops->cleanup(t, "ctx-a", 0, &e);
    assert_int_equal(count_dir(out), 5); /* sub/ holds the fifth file */

    /* nothing outside changed, the links themselves are still there */
    for (size_t i = 0; i < HB_ARRAY_LEN(outside); i++) {
        p = hb_asprintf("%s/%s", out, outside[i]);
        assert_true(exists_nofollow(p));
        hb_free(p);
    }
    p = hb_asprintf("%s/new", out);
    assert_false(exists_nofollow(p));
    hb_free(p);
    p = hb_asprintf("%s/sub/deep/new", out);
    assert_false(exists_nofollow(p));
    hb_free(p);
    p = hb_asprintf("%s/newdir", out);
    assert_false(exists_nofollow(p));
    hb_free(p);
    assert_true(exists_nofollow(l1));
    assert_true(exists_nofollow(l2));

    hb_free(tmp);
    hb_free(l1);
    hb_free(l2);
    hb_free(l3);
    hb_free(sentinel);
    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    tu_rmrf(out);
    free(dir);
    free(out);
}

/* openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) available to this process? */
static bool have_openat2(void)
{
#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_BENEATH)
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    if (fd < 0)
        return false;
    close((int)fd);
    return true;
#else
    return false;
#endif
}

/* The one-call resolution (openat2) refuses links like the walk: a linked
 * directory inside the store, also one the directory cache knew as a real
 * directory, and a leaf link; gets, heads and puts through them fail with
 * HARVBK_E_CORRUPT and nothing outside is read or written. Plain keys are
 * resolved in one call (beneath counter), refusals fall back to the walk. */
static void test_local_openat2_refuses_symlinked_directories(void **state)
{
    (void)state;
    if (!have_openat2()) {
        print_message("openat2 not available here: only the walk is tested\n");
        skip();
    }
    char *dir = tu_mkdtemp("tgt-oa2");
    char *out = tu_mkdtemp("tgt-oa2-outside");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    uint64_t size = 0, beneath0, walks0, beneath1, walks1;
    char *p = hb_asprintf("%s/gh", out);
    assert_int_equal(hb_mkdir_p(p, 0755, &e), 0);
    hb_free(p);
    p = hb_asprintf("%s/gh/obj", out);
    assert_int_equal(tu_write_file(p, "outside", 7), 0);
    hb_free(p);

    /* plain keys: one openat2, no walk */
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/x", "x1", 2, &e), 0);
    assert_true(hb_target_local_resolve_stats(t, &beneath0, &walks0));
    assert_int_equal(hb_target_get(t, "chunks/ab/cd/x", &b, &e), 0);
    assert_int_equal(b.len, 2);
    assert_int_equal(hb_target_head(t, "chunks/ab/cd/x", &size, &e), 0);
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/y", "y1", 2, &e), 0); /* known dirs */
    assert_true(hb_target_local_resolve_stats(t, &beneath1, &walks1));
    assert_true(beneath1 >= beneath0 + 3);
    assert_int_equal(walks1, walks0);

    /* a linked directory at any level, and a leaf link */
    char *l1 = hb_asprintf("%s/chunks/ef", dir);
    char *l2 = hb_asprintf("%s/chunks/ab/zz", dir);
    char *l3 = hb_asprintf("%s/chunks/ab/cd/leaf", dir);
    char *target_obj = hb_asprintf("%s/gh/obj", out);
    assert_int_equal(symlink(out, l1), 0);
    assert_int_equal(symlink(out, l2), 0);
    assert_int_equal(symlink(target_obj, l3), 0);
    const char *through[] = { "chunks/ef/gh/obj", "chunks/ab/zz/gh/obj", "chunks/ab/cd/leaf" };
    for (size_t i = 0; i < HB_ARRAY_LEN(through); i++) {
        hb_err_clear(&e);
        hb_target_local_resolve_stats(t, &beneath0, &walks0);
        assert_int_equal(hb_target_get(t, through[i], &b, &e), HARVBK_E_CORRUPT);
        assert_non_null(strstr(e.msg, "symbolic link"));
        hb_target_local_resolve_stats(t, &beneath1, &walks1);
        if (i < 2) {
            assert_int_equal(beneath1, beneath0); /* openat2 refused ... */
            assert_true(walks1 > walks0);         /* ... and the walk said why */
        } else {
            /* the leaf: openat2 of the whole key refused; its (real)
             * directory opened in one call, the leaf refused by O_NOFOLLOW */
            assert_int_equal(beneath1, beneath0 + 1);
            assert_int_equal(walks1, walks0);
        }
        hb_err_clear(&e);
        assert_int_equal(hb_target_head(t, through[i], &size, &e), HARVBK_E_CORRUPT);
        assert_non_null(strstr(e.msg, "symbolic link"));
    }
    assert_int_equal(hb_target_put(t, "chunks/ef/gh/new", "n", 1, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_put(t, "chunks/ab/zz/gh/new", "n", 1, &e), HARVBK_E_CORRUPT);
    /* a dangling link is a link too; a missing key is simply not found */
    char *dang = hb_asprintf("%s/chunks/ab/dang", dir);
    assert_int_equal(symlink("/nonexistent-harvbk-test", dang), 0);
    hb_free(dang);
    hb_err_clear(&e);
    assert_int_equal(hb_target_get(t, "chunks/ab/dang/x", &b, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "symbolic link"));
    assert_int_equal(hb_target_get(t, "chunks/ab/dang", &b, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_head(t, "chunks/ab/dang/x", &size, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_get(t, "chunks/99/88/none", &b, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_get(t, "chunks/ab/cd/none", &b, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_head(t, "chunks/99/88/none", &size, &e), HARVBK_E_NOTFOUND);

    /* a directory the cache knows (it created chunks/ab/cd) replaced by a
     * link: the one-call open refuses it too */
    char *cd = hb_asprintf("%s/chunks/ab/cd", dir);
    assert_int_equal(hb_rm_rf(cd, &e), 0);
    assert_int_equal(symlink(out, cd), 0);
    p = hb_asprintf("%s/gh", out);
    char *cd2 = hb_asprintf("%s/chunks/ab/cd/gh", dir);
    hb_free(p);
    hb_target_local_resolve_stats(t, &beneath0, &walks0);
    hb_err_clear(&e);
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/z", "z", 1, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "symbolic link"));
    hb_target_local_resolve_stats(t, &beneath1, &walks1);
    assert_true(walks1 > walks0); /* the known directory's one-call open was refused */
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/gh/z", "z", 1, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "symbolic link"));
    uint64_t tok = hb_target_sync_token(t);
    int r = hb_target_put_deferred(t, "chunks/ab/cd/gh/w", "w", 1, &e);
    if (r == 0)
        r = hb_target_sync(t, tok, &e);
    assert_int_equal(r, HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_get(t, "chunks/ab/cd/gh/obj", &b, &e), HARVBK_E_CORRUPT);

    /* the same refusals with openat2 switched off (the walk alone) */
    hb_target_local_use_openat2(t, false);
    hb_target_local_resolve_stats(t, &beneath0, &walks0);
    assert_int_equal(hb_target_get(t, "chunks/ef/gh/obj", &b, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_put(t, "chunks/ab/cd/gh/v", "v", 1, &e), HARVBK_E_CORRUPT);
    assert_int_equal(hb_target_put(t, "chunks/12/34/ok", "ok", 2, &e), 0);
    assert_int_equal(hb_target_get(t, "chunks/12/34/ok", &b, &e), 0);
    hb_target_local_resolve_stats(t, &beneath1, &walks1);
    assert_int_equal(beneath1, beneath0);
    assert_true(walks1 > walks0);

    /* nothing outside was written: still gh/ and gh/obj only */
    assert_int_equal(count_dir(out), 1);
    p = hb_asprintf("%s/gh", out);
    assert_int_equal(count_dir(p), 1);
    hb_free(p);

    hb_free(cd);
    hb_free(cd2);
    hb_free(l1);
    hb_free(l2);
    hb_free(l3);
    hb_free(target_obj);
    hb_buf_free(&b);
    hb_target_close(t);
    tu_rmrf(dir);
    tu_rmrf(out);
    free(dir);
    free(out);
}

static void test_local_deferred_puts_and_barrier(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-deferred");
    hb_target *t = open_local(dir, "ctx-a");
    hb_err e;
    hb_buf b = HB_BUF_INIT;
    uint64_t size, barriers, syncs;
    size_t pending;
    uint8_t data[5000];
    tu_fill_random(data, sizeof data, 3);
    char *tmpdir = hb_asprintf("%s/tmp", dir);

    uint64_t tok = hb_target_sync_token(t);
    assert_int_equal(hb_target_put_deferred(t, "chunks/aa/obj1", data, sizeof data, &e), 0);
    assert_int_equal(hb_target_put_deferred(t, "chunks/bb/obj2", data, 10, &e), 0);
    assert_true(hb_target_local_stats(t, &barriers, &syncs, &pending));
    assert_int_equal(pending, 2);
    assert_int_equal(barriers, 0);
    assert_int_equal(hb_target_head(t, "chunks/aa/obj1", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(count_dir(tmpdir), 2); /* only temporaries so far */
    assert_int_equal(hb_target_sync(t, tok, &e), 0);
    assert_true(hb_target_local_stats(t, &barriers, &syncs, &pending));
    assert_int_equal(pending, 0);
    assert_int_equal(barriers, 1);
    assert_int_equal(syncs, 2);
    assert_int_equal(count_dir(tmpdir), 0);
    assert_int_equal(hb_target_get(t, "chunks/aa/obj1", &b, &e), 0);
    assert_int_equal(b.len, sizeof data);
    assert_memory_equal(b.data, data, sizeof data);
    assert_int_equal(hb_target_head(t, "chunks/bb/obj2", &size, &e), 0);
    assert_int_equal(size, 10);
    /* an empty barrier still syncs once (objects others placed) */
    assert_int_equal(hb_target_sync(t, tok, &e), 0);
    assert_true(hb_target_local_stats(t, &barriers, &syncs, &pending));
    assert_int_equal(syncs, 3);

    /* a barrier that cannot place an object: "x" is an object, so "x/y"
     * cannot be created; the object is dropped, both writers fail */
    assert_int_equal(hb_target_put(t, "x", "1", 1, &e), 0);
    uint64_t tok_a = hb_target_sync_token(t), tok_b = hb_target_sync_token(t);
    assert_int_equal(hb_target_put_deferred(t, "x/y", "2", 1, &e), 0);
    assert_int_equal(hb_target_put_deferred(t, "chunks/cc/obj3", "3", 1, &e), 0);
    hb_err_clear(&e);
    assert_true(hb_target_sync(t, tok_a, &e) < 0);
    assert_non_null(strstr(e.msg, "x/y"));
    hb_err_clear(&e);
    assert_int_equal(hb_target_sync(t, tok_b, &e), HARVBK_E_IO);
    assert_non_null(strstr(e.msg, "could not be made durable"));
    assert_int_equal(hb_target_head(t, "chunks/cc/obj3", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(count_dir(tmpdir), 0);
    /* a writer that starts afterwards is not affected */
    uint64_t tok_c = hb_target_sync_token(t);
    assert_int_equal(hb_target_put_deferred(t, "chunks/cc/obj3", "3", 1, &e), 0);
    assert_int_equal(hb_target_sync(t, tok_c, &e), 0);
    assert_int_equal(hb_target_head(t, "chunks/cc/obj3", &size, &e), 0);

    /* the queue bound runs a barrier from put_deferred itself */
    assert_true(hb_target_local_stats(t, &barriers, &syncs, &pending));
    uint64_t before = barriers;
    for (unsigned i = 0; i < 300; i++) {
        char key[64];
        snprintf(key, sizeof key, "chunks/dd/o%u", i);
        assert_int_equal(hb_target_put_deferred(t, key, &i, sizeof i, &e), 0);
    }
    assert_true(hb_target_local_stats(t, &barriers, &syncs, &pending));
    assert_int_equal(barriers, before + 1);
    assert_true(pending < 300 && pending > 0);
    assert_int_equal(hb_target_head(t, "chunks/dd/o0", &size, &e), 0);

    /* close drops what was never synced */
    hb_target_close(t);
    assert_int_equal(count_dir(tmpdir), 0);
    char *last = hb_asprintf("%s/chunks/dd/o299", dir);
    assert_int_equal(access(last, F_OK), -1);
    hb_free(last);

    hb_buf_free(&b);
    hb_free(tmpdir);
    tu_rmrf(dir);
    free(dir);
}

/* Bytes of the file at path the page cache holds (mincore), -1 if unknown. */
static long long cached_bytes(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    long long n = -1;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        long pg = sysconf(_SC_PAGESIZE);
        size_t pages = ((size_t)st.st_size + (size_t)pg - 1) / (size_t)pg;
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *vec = malloc(pages);
        if (m != MAP_FAILED && vec && mincore(m, (size_t)st.st_size, vec) == 0) {
            n = 0;
            for (size_t i = 0; i < pages; i++)
                n += (vec[i] & 1) ? pg : 0;
        }
        free(vec);
        if (m != MAP_FAILED)
            munmap(m, (size_t)st.st_size);
    }
    close(fd);
    return n;
}

/* Drop the page cache of path (its clean pages). */
static void drop_cached(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fdatasync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

/* The restore's hint: prefetch starts reading an object into the page
 * cache (the read that follows finds it there); a missing key, a bad key and
 * a symbolic link planted in the store are ignored, and the link's target
 * outside the store is not read. */
static void test_local_prefetch_reads_ahead(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-prefetch");
    struct statfs sf;
    if (statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC) {
        fprintf(stderr, "skipped: tmpfs keeps every page (HARVBK_TEST_TMP on a disk runs it)\n");
        tu_rmrf(dir);
        free(dir);
        skip();
    }
    hb_target *t = open_local(dir, "ctx-pf");
    hb_err e;
    enum { SZ = 4 << 20 };
    uint8_t *data = malloc(SZ);
    tu_fill_random(data, SZ, 22);
    assert_int_equal(hb_target_put(t, "chunks/pf/obj", data, SZ, &e), 0);
    char *p = hb_asprintf("%s/chunks/pf/obj", dir);
    drop_cached(p);
    assert_true(cached_bytes(p) < SZ);
    hb_target_prefetch(t, "chunks/pf/obj");
    long long c = 0;
    for (int w = 0; w < 500 && (c = cached_bytes(p)) < SZ; w++) /* bounded: 5 s */
        usleep(10 * 1000);
    assert_int_equal(c, SZ);
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_target_get(t, "chunks/pf/obj", &b, &e), 0);
    assert_int_equal(b.len, SZ);
    assert_memory_equal(b.data, data, SZ);
    hb_buf_free(&b);

    /* ignored: missing, invalid, a link out of the store */
    hb_target_prefetch(t, "chunks/pf/missing");
    hb_target_prefetch(t, "../outside");
    hb_target_prefetch(t, "");
    char *outside = hb_asprintf("%s.outside", dir);
    FILE *f = fopen(outside, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, SZ, f), SZ);
    fclose(f);
    drop_cached(outside);
    char *link = hb_asprintf("%s/chunks/pf/link", dir);
    assert_int_equal(symlink(outside, link), 0);
    hb_target_prefetch(t, "chunks/pf/link");
    usleep(200 * 1000);
    /* not read: a followed link would bring all of it in. (Not 0: under
     * valgrind, which reads the head of every file mapped, cached_bytes'
     * own mmap brings in a few pages.) */
    assert_true(cached_bytes(outside) < SZ / 4);
    unlink(outside);
    hb_free(link);
    hb_free(outside);
    hb_free(p);
    hb_target_close(t);
    free(data);
    tu_rmrf(dir);
    free(dir);
}

/* Deferred puts wake the pre-flusher every HB_LOCAL_PREFLUSH_BYTES written:
 * its device flushes are a head start for the barrier, which still decides what is
 * durable (nothing is in place before the sync). Closing a target right
 * after its puts joins the thread and drops the temporaries. */
static void test_local_preflush_beside_deferred_puts(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-preflush");
    char *tmpdir = hb_asprintf("%s/tmp", dir);
    hb_target *t = open_local(dir, "ctx-pf");
    hb_err e;
    size_t n = 1u << 20;
    uint8_t *data = malloc(n);
    tu_fill_random(data, n, 11);
    /* 1 MiB puts: one interval and a quarter, then one interval and one put */
    unsigned every = (unsigned)(HB_LOCAL_PREFLUSH_BYTES / n);
    unsigned nput = every + every / 4, nclose = every + 1;
    uint64_t tok = hb_target_sync_token(t);
    assert_int_equal(hb_target_local_preflushes(t), 0);
    for (unsigned i = 0; i < nput; i++) {
        char key[64];
        snprintf(key, sizeof key, "chunks/pf/o%u", i);
        data[0] = (uint8_t)i;
        assert_int_equal(hb_target_put_deferred(t, key, data, n, &e), 0);
    }
    /* the thread runs on its own: wait for it (bounded, 10 s); one flush per
     * interval since the last one began: exactly one (the next would need
     * two intervals written) */
    uint64_t flushes = 0;
    for (int w = 0; w < 1000 && (flushes = hb_target_local_preflushes(t)) < 1; w++)
        usleep(10 * 1000);
    assert_int_equal(flushes, 1);
    uint64_t size;
    assert_int_equal(hb_target_head(t, "chunks/pf/o0", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_sync(t, tok, &e), 0);
    for (unsigned i = 0; i < nput; i++) {
        char key[64];
        hb_buf b = HB_BUF_INIT;
        snprintf(key, sizeof key, "chunks/pf/o%u", i);
        data[0] = (uint8_t)i;
        assert_int_equal(hb_target_get(t, key, &b, &e), 0);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, data, n);
        hb_buf_free(&b);
    }
    assert_int_equal(count_dir(tmpdir), 0);
    hb_target_close(t);

    /* puts, then a close at once (the thread may be in its flush) */
    t = open_local(dir, "ctx-pf2");
    for (unsigned i = 0; i < nclose; i++) { /* past one interval: a flush starts */
        char key[64];
        snprintf(key, sizeof key, "chunks/pf/p%u", i);
        assert_int_equal(hb_target_put_deferred(t, key, data, n, &e), 0);
    }
    hb_target_close(t);
    assert_int_equal(count_dir(tmpdir), 0);
    char *never = hb_asprintf("%s/chunks/pf/p0", dir);
    assert_int_equal(access(never, F_OK), -1);
    hb_free(never);

    free(data);
    hb_free(tmpdir);
    tu_rmrf(dir);
    free(dir);
}

/* Concurrent writers on one target, each syncing its own deferred puts
 * while the others' puts fill batches and run barriers: when a writer's
 * sync() returns 0, every object it put is in place (a batch another
 * writer took from the queue before this sync is finished first), and
 * nothing is left in tmp/ at the end. */
#define CW_THREADS 4
#define CW_PER_THREAD 700 /* > 2 batches each */

typedef struct cw_arg {
    hb_target *t;
    unsigned id;
    int rc, missing;
} cw_arg;

static void *cw_writer(void *p)
{
    cw_arg *a = p;
    hb_err e;
    uint64_t tok = hb_target_sync_token(a->t);
    for (unsigned i = 0; i < CW_PER_THREAD && a->rc == 0; i++) {
        char key[64];
        unsigned v = a->id * 100000 + i;
        snprintf(key, sizeof key, "chunks/%02x/w%u-%u", i % 7, a->id, i);
        a->rc = hb_target_put_deferred(a->t, key, &v, sizeof v, &e);
    }
    if (a->rc == 0)
        a->rc = hb_target_sync(a->t, tok, &e);
    for (unsigned i = 0; i < CW_PER_THREAD && a->rc == 0; i++) {
        char key[64];
        uint64_t size = 0;
        hb_buf b = HB_BUF_INIT;
        unsigned v = a->id * 100000 + i, got = 0;
        snprintf(key, sizeof key, "chunks/%02x/w%u-%u", i % 7, a->id, i);
        if (hb_target_head(a->t, key, &size, &e) != 0 || size != sizeof v ||
            hb_target_get(a->t, key, &b, &e) != 0 || b.len != sizeof v)
            a->missing++;
        else if (memcpy(&got, b.data, sizeof got), got != v)
            a->missing++;
        hb_buf_free(&b);
    }
    return NULL;
}

static void test_local_concurrent_writers_sync(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tgt-cw");
    char *tmpdir = hb_asprintf("%s/tmp", dir);
    hb_target *t = open_local(dir, "ctx-cw");
    uint64_t lost_before = hb_target_sync_token(t);
    cw_arg args[CW_THREADS];
    pthread_t th[CW_THREADS];
    for (unsigned i = 0; i < CW_THREADS; i++) {
        args[i] = (cw_arg){ t, i, 0, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, cw_writer, &args[i]), 0);
    }
    for (unsigned i = 0; i < CW_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].rc, 0);
        assert_int_equal(args[i].missing, 0);
    }
    assert_int_equal(count_dir(tmpdir), 0);
    assert_int_equal(hb_target_sync_token(t), lost_before); /* nothing dropped */
    uint64_t barriers;
    assert_true(hb_target_local_stats(t, &barriers, NULL, NULL));
    assert_true(barriers >= CW_THREADS * CW_PER_THREAD / 256);
    hb_target_close(t);
    hb_free(tmpdir);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cfg_url_schemes_are_validated),
        cmocka_unit_test(test_cfg_values_are_validated),
        cmocka_unit_test(test_cfg_json_round_trip_and_secret_policy),
        cmocka_unit_test(test_cfg_from_json_rejects_bad_documents),
        cmocka_unit_test(test_cfg_display_hides_credentials),
        cmocka_unit_test(test_public_target_config_accessors),
        cmocka_unit_test(test_open_dispatches_on_scheme),
        cmocka_unit_test(test_local_put_get_head_del),
        cmocka_unit_test(test_local_refuses_bad_keys),
        cmocka_unit_test(test_local_list_filters_by_prefix_recursively),
        cmocka_unit_test(test_local_list_large_directory),
        cmocka_unit_test(test_local_modes_follow_the_store_config),
        cmocka_unit_test(test_local_cleanup_removes_stale_temporaries),
        cmocka_unit_test(test_local_recovers_when_directory_removed),
        cmocka_unit_test(test_local_root_replaced_while_open),
        cmocka_unit_test(test_local_concurrent_puts_all_readable),
        cmocka_unit_test(test_local_ping_reports_missing_root),
        cmocka_unit_test(test_local_get_of_a_fifo_does_not_hang),
        cmocka_unit_test(test_get_max_refuses_larger_objects_unread),
        cmocka_unit_test(test_local_deferred_puts_and_barrier),
        cmocka_unit_test(test_local_concurrent_writers_sync),
        cmocka_unit_test(test_local_preflush_beside_deferred_puts),
        cmocka_unit_test(test_local_prefetch_reads_ahead),
        cmocka_unit_test(test_local_never_follows_symlinks),
        cmocka_unit_test(test_local_openat2_refuses_symlinked_directories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
