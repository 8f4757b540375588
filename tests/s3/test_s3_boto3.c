/* tests/s3/test_s3_boto3.c - an independent client (Debian python3-boto3,
 * tests/s3/check_boto3.py and boto3_mirror.py) sees exactly what the library
 * wrote to the real S3 test server, and the store format is the same on S3 as
 * on a local directory. Prefixes hold spaces, '+', '%' and UTF-8.
 *
 *   backups (full + incremental) through the library, path style over HTTP
 *   and virtual-hosted style over HTTPS with the test CA ->
 *     boto3's listing (paginated, also 7 keys a page) has exactly the keys
 *     the library lists (hb_target_list): harvbk-store.json, per backup its
 *     manifest and volume index, and one chunks/aa/bb/<id> per distinct
 *     non-zero chunk; every size and SHA-256 boto3 downloads equals what the
 *     library reads back, and every chunk object decodes to data whose
 *     SHA-256 is its id;
 *     the library restores byte-identical data after boto3's downloads;
 *     the objects boto3 downloaded, put in a local directory, are a store the
 *     library lists, verifies and restores from as a file:// target;
 *     delete + gc -> boto3 sees only harvbk-store.json left.
 *   a store written by the library to a local directory and uploaded by
 *   boto3 is a store the library lists, verifies and restores from on S3.
 * ctest-timeout: 900 */
#include "s3boto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define CHUNK (256u * 1024u)
#define IMAGE_SIZE (12u * MiB)

static void set_chunk_size(harvbk_target_config *cfg)
{
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
}

static harvbk_target_config *file_config(const char *dir)
{
    harvbk_target_config *c = NULL;
    assert_int_equal(harvbk_target_config_new(&c), 0);
    char *url = NULL;
    if (asprintf(&url, "file://%s", dir) < 0)
        abort();
    assert_int_equal(harvbk_target_config_set(c, HARVBK_TARGET_URL, url), 0);
    free(url);
    set_chunk_size(c);
    return c;
}

static void backup_ok(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name)
{
    char msg[1024];
    int rc = s3t_backup(ctx, vm, name, NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup %s: %s: %s", name, harvbk_error_name(rc), msg);
    assert_int_equal(s3t_backup_state(ctx, "default", name), HARVBK_STATE_READY);
}

static void restore_same(harvbk_ctx *ctx, const char *backup, const char *newvm,
                         const char *into, const char *expect)
{
    char msg[1024];
    assert_int_equal(mkdir(into, 0755), 0);
    int rc = s3t_restore(ctx, "default", backup, newvm, into, msg, sizeof msg);
    if (rc)
        fail_msg("restore %s: %s: %s", backup, harvbk_error_name(rc), msg);
    char *f = s3t_path(into, "disk0.raw");
    s3t_assert_same_file(f, expect);
    free(f);
}

static void verify_ok(harvbk_ctx *ctx, const char *backup)
{
    char msg[1024];
    int rc = s3t_verify(ctx, "default", backup, msg, sizeof msg);
    if (rc)
        fail_msg("verify %s: %s: %s", backup, harvbk_error_name(rc), msg);
}

static void list_has(harvbk_ctx *ctx, size_t n, const char *a, const char *b)
{
    harvbk_backup_list *bl = NULL;
    int rc = harvbk_backup_list_get(&bl, ctx);
    if (rc)
        fail_msg("backup list: %s", harvbk_ctx_errmsg(ctx));
    assert_int_equal(harvbk_backup_list_count(bl), n);
    bool fa = !a, fb = !b;
    for (size_t i = 0; i < n; i++) {
        const harvbk_backup_info *bi = harvbk_backup_list_at(bl, i);
        assert_int_equal(harvbk_backup_info_state(bi), HARVBK_STATE_READY);
        fa |= a && !strcmp(harvbk_backup_info_name(bi), a);
        fb |= b && !strcmp(harvbk_backup_info_name(bi), b);
    }
    assert_true(fa && fb);
    harvbk_backup_list_free(bl);
}

/* delete the backups, gc, and check with boto3 that only the store config is
 * left (gc keeps chunks written in its own second: let one pass) */
static void delete_and_gc(harvbk_ctx *ctx, const s3t_mode *m, const char *prefix,
                          const char *a, const char *b)
{
    char msg[1024];
    usleep(1100 * 1000);
    assert_int_equal(harvbk_backup_delete(ctx, "default", a), 0);
    if (b)
        assert_int_equal(harvbk_backup_delete(ctx, "default", b), 0);
    int rc = s3t_gc(ctx, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("gc: %s: %s", harvbk_error_name(rc), msg);
    char *slash = NULL;
    if (asprintf(&slash, "%s/", prefix) < 0)
        abort();
    cJSON *left = s3b_view(m, slash, true, 0);
    char *store = NULL;
    if (asprintf(&store, "%s/harvbk-store.json", prefix) < 0)
        abort();
    if (cJSON_GetArraySize(left) != 1 || !cJSON_GetObjectItemCaseSensitive(left, store)) {
        char *t = cJSON_PrintUnformatted(left);
        fail_msg("after delete + gc boto3 sees %s", t);
    }
    cJSON_Delete(left);
    free(store);
    free(slash);
}

/* Every key of the library's view is the store config, a manifest or index of
 * one of the two backups, or a chunk. */
static void assert_layout(const cJSON *lib, size_t chunks)
{
    static const char *const meta[] = {
        "harvbk-store.json",
        "backups/default/full/manifest.json",
        "backups/default/full/disk0.idx",
        "backups/default/incr/manifest.json",
        "backups/default/incr/disk0.idx",
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(lib, meta[i]))
            fail_msg("the store lacks %s", meta[i]);
    size_t n = (size_t)cJSON_GetArraySize(lib);
    if (n != chunks + 5) {
        char *t = cJSON_PrintUnformatted(lib);
        fail_msg("%zu objects, expected %zu chunks + 5: %.2000s", n, chunks, t);
    }
}

static void boto3_view(const s3t_mode *m)
{
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir(m->name);
    char *state = s3t_path(dir, "state"), *state2 = s3t_path(dir, "state2");
    char *img = s3t_path(dir, "disk.img"), *orig = s3t_path(dir, "disk.orig");
    char *mirror = s3t_path(dir, "mirror");
    char *prefix = s3t_prefix(m->name);
    char *slash = NULL;
    if (asprintf(&slash, "%s/", prefix) < 0)
        abort();

    s3t_make_image(img, IMAGE_SIZE, 21);
    s3t_copy(img, orig);
    size_t distinct1 = s3t_distinct_chunks(img, CHUNK);

    harvbk_ctx *ctx = s3t_ctx(state);
    harvbk_target_config *cfg = s3t_config(m, prefix, true);
    set_chunk_size(cfg);
    s3t_set_target_ok(ctx, cfg);
    harvbk_vm *vm = s3t_vm("default", "web", img);
    backup_ok(ctx, vm, "full");
    s3t_write_random_at(img, 5 * CHUNK + 17, 300, 201);
    s3t_write_random_at(img, 30 * CHUNK, CHUNK, 202);
    backup_ok(ctx, vm, "incr");

    /* the library's view: listing + every object read back */
    size_t nchunks = 0, nok = 0;
    cJSON *lib = s3b_library_view(cfg, &nchunks, &nok);
    assert_int_equal(nchunks, distinct1 + 2);
    assert_int_equal(nok, nchunks); /* every chunk decodes to its id */
    assert_layout(lib, nchunks);

    /* boto3's: the same keys, sizes and bytes */
    cJSON *boto = s3b_view(m, slash, true, 0);
    assert_int_equal(s3b_assert_views_equal(boto, lib, prefix), nchunks + 5);
    cJSON *paged = s3b_view(m, slash, false, 7); /* many pages of 7 keys */
    assert_int_equal(s3b_assert_views_equal(paged, lib, prefix), nchunks + 5);
    fprintf(stderr, "%s: boto3 and the library agree on %zu objects (%zu chunks)\n", m->name,
            nchunks + 5, nchunks);

    /* the library still restores byte for byte after boto3 read everything */
    char *r1 = s3t_path(dir, "r1");
    restore_same(ctx, "full", "web-full", r1, orig);
    verify_ok(ctx, "incr");

    /* what boto3 downloads is a store: the library reads it as file:// */
    assert_int_equal(s3b_mirror(m, prefix, mirror, true), nchunks + 5);
    cJSON *it;
    cJSON_ArrayForEach(it, lib)
    {
        char *f = s3t_path(mirror, it->string);
        FILE *fp = fopen(f, "rb");
        if (!fp)
            fail_msg("boto3 did not download %s", it->string);
        hb_buf b = HB_BUF_INIT;
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0)
            hb_buf_append(&b, tmp, n);
        fclose(fp);
        char hex[65];
        s3b_sha256_hex(b.data, b.len, hex);
        assert_string_equal(hex, cJSON_GetObjectItemCaseSensitive(it, "sha256")->valuestring);
        hb_buf_free(&b);
        free(f);
    }
    harvbk_ctx *ctx2 = s3t_ctx(state2);
    harvbk_target_config *fcfg = file_config(mirror);
    s3t_set_target_ok(ctx2, fcfg);
    list_has(ctx2, 2, "full", "incr");
    verify_ok(ctx2, "full");
    char *r2 = s3t_path(dir, "r2");
    restore_same(ctx2, "incr", "web-incr", r2, img);
    harvbk_ctx_free(ctx2);

    delete_and_gc(ctx, m, prefix, "full", "incr");

    assert_false(s3t_log_contains(env->secret));
    assert_false(s3t_tree_contains(state, env->secret));
    cJSON_Delete(lib);
    cJSON_Delete(boto);
    cJSON_Delete(paged);
    harvbk_target_config_free(fcfg);
    harvbk_target_config_free(cfg);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    s3t_rmrf(dir);
    free(r1);
    free(r2);
    free(slash);
    free(prefix);
    free(mirror);
    free(img);
    free(orig);
    free(state);
    free(state2);
    free(dir);
}

static void test_boto3_view_path_style_http(void **state)
{
    (void)state;
    s3t_mode m = { "boto3-path-http", false, false };
    boto3_view(&m);
}

static void test_boto3_view_virtual_hosted_https(void **state)
{
    (void)state;
    s3t_mode m = { "boto3-vhost-https", true, true };
    boto3_view(&m);
}

/* A local store uploaded by boto3 is a store on S3. */
static void test_local_store_uploaded_by_boto3(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    s3t_mode m = { "boto3-up", false, false };
    char *dir = s3t_tmpdir(m.name);
    char *state1 = s3t_path(dir, "state"), *state2 = s3t_path(dir, "state2");
    char *local = s3t_path(dir, "local");
    char *img = s3t_path(dir, "disk.img");
    char *prefix = s3t_prefix(m.name);

    s3t_make_image(img, 6 * MiB, 31);
    harvbk_ctx *ctx = s3t_ctx(state1);
    harvbk_target_config *fcfg = file_config(local);
    s3t_set_target_ok(ctx, fcfg);
    harvbk_vm *vm = s3t_vm("default", "db", img);
    backup_ok(ctx, vm, "local-1");
    harvbk_ctx_free(ctx);

    size_t up = s3b_mirror(&m, prefix, local, false);
    size_t distinct = s3t_distinct_chunks(img, CHUNK);
    assert_int_equal(up, distinct + 3); /* store config, manifest, index */

    harvbk_ctx *ctx2 = s3t_ctx(state2);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    s3t_set_target_ok(ctx2, cfg); /* adopts the uploaded store */
    list_has(ctx2, 1, "local-1", NULL);
    verify_ok(ctx2, "local-1");
    char *r = s3t_path(dir, "r");
    restore_same(ctx2, "local-1", "db-copy", r, img);

    size_t nchunks = 0, nok = 0;
    cJSON *lib = s3b_library_view(cfg, &nchunks, &nok);
    assert_int_equal(nchunks, distinct);
    assert_int_equal(nok, nchunks);
    char *slash = NULL;
    if (asprintf(&slash, "%s/", prefix) < 0)
        abort();
    cJSON *boto = s3b_view(&m, slash, true, 0);
    assert_int_equal(s3b_assert_views_equal(boto, lib, prefix), distinct + 3);

    delete_and_gc(ctx2, &m, prefix, "local-1", NULL);
    assert_false(s3t_log_contains(env->secret));
    cJSON_Delete(lib);
    cJSON_Delete(boto);
    harvbk_target_config_free(cfg);
    harvbk_target_config_free(fcfg);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx2);
    s3t_rmrf(dir);
    free(slash);
    free(r);
    free(prefix);
    free(img);
    free(local);
    free(state1);
    free(state2);
    free(dir);
}

static void test_no_secret_in_server_logs(void **state)
{
    (void)state;
    s3b_assert_server_logs_clean();
    assert_false(s3t_log_contains(s3t_env()->secret));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boto3_view_path_style_http),
        cmocka_unit_test(test_boto3_view_virtual_hosted_https),
        cmocka_unit_test(test_local_store_uploaded_by_boto3),
        cmocka_unit_test(test_no_secret_in_server_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
