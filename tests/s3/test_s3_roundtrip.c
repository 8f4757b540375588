/* tests/s3/test_s3_roundtrip.c - backups on the real S3 test server (s3rver
 * behind the botocore-verifying proxy), path style and virtual-hosted style,
 * over HTTP and over HTTPS with the test CA, with a prefix holding spaces,
 * '+', '%' and UTF-8:
 *   full backup -> every distinct non-zero chunk stored once;
 *   incremental -> exactly the changed chunks uploaded;
 *   restore of both -> byte-identical; verify;
 *   another context (cluster) on the same target lists and restores;
 *   delete both + gc -> nothing left under the prefix but the store config;
 *   the secret appears in no log line, no message and no state file.
 * Also: HTTPS without the CA is refused with a TLS error naming the endpoint,
 * a wrong secret is refused (HARVBK_E_PERM, SignatureDoesNotMatch), and a
 * session secret (harvbk_ctx_set_target_secret) is never written. */
#include "s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define CHUNK (256u * 1024u)
#define IMAGE_SIZE (12u * MiB)

static void roundtrip(const s3t_mode *m)
{
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir(m->name);
    char *state = s3t_path(dir, "state"), *state2 = s3t_path(dir, "state2");
    char *img = s3t_path(dir, "disk.img"), *orig = s3t_path(dir, "disk.orig");
    char *prefix = s3t_prefix(m->name);
    char msg[1024];

    s3t_make_image(img, IMAGE_SIZE, 7);
    s3t_copy(img, orig);

    harvbk_ctx *ctx = s3t_ctx(state);
    harvbk_target_config *cfg = s3t_config(m, prefix, true);
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
    s3t_set_target_ok(ctx, cfg);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);

    /* full */
    harvbk_vm *vm = s3t_vm("default", "web", img);
    int rc = s3t_backup(ctx, vm, "full", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("full backup: %s: %s", harvbk_error_name(rc), msg);
    assert_int_equal(s3t_backup_state(ctx, "default", "full"), HARVBK_STATE_READY);
    s3t_objs chunks1;
    s3t_list(cfg, "chunks/", &chunks1);
    size_t distinct = s3t_distinct_chunks(img, CHUNK);
    assert_true(distinct > 10);
    assert_int_equal(chunks1.n, distinct);

    /* incremental: 3 chunks changed */
    s3t_write_random_at(img, 0 * CHUNK + 100, 1000, 101);
    s3t_write_random_at(img, 17 * CHUNK, CHUNK, 102);
    s3t_write_random_at(img, 40 * CHUNK + CHUNK - 10, 10, 103);
    rc = s3t_backup(ctx, vm, "incr", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("incremental backup: %s: %s", harvbk_error_name(rc), msg);
    s3t_objs chunks2;
    s3t_list(cfg, "chunks/", &chunks2);
    uint64_t new_bytes = 0;
    assert_int_equal(s3t_objs_minus(&chunks2, &chunks1, &new_bytes), 3);
    assert_int_equal(chunks2.n, chunks1.n + 3);
    /* what the backup reports as uploaded: the 3 new chunks, its index and
     * its manifest (whose own size it can only estimate) */
    uint64_t idx_size = 64 + 32ull * ((IMAGE_SIZE + CHUNK - 1) / CHUNK);
    uint64_t up = s3t_backup_uploaded(ctx, "default", "incr");
    uint64_t man = s3t_size(cfg, "backups/default/incr/manifest.json");
    assert_in_range(up, new_bytes + idx_size, new_bytes + idx_size + man + 64);

    /* restores are byte-identical; verify passes */
    char *r1 = s3t_path(dir, "r1"), *r2 = s3t_path(dir, "r2");
    assert_int_equal(mkdir(r1, 0755), 0);
    assert_int_equal(mkdir(r2, 0755), 0);
    rc = s3t_restore(ctx, "default", "full", "web-full", r1, msg, sizeof msg);
    if (rc)
        fail_msg("restore full: %s: %s", harvbk_error_name(rc), msg);
    rc = s3t_restore(ctx, "default", "incr", "web-incr", r2, msg, sizeof msg);
    if (rc)
        fail_msg("restore incr: %s: %s", harvbk_error_name(rc), msg);
    char *r1f = s3t_path(r1, "disk0.raw"), *r2f = s3t_path(r2, "disk0.raw");
    s3t_assert_same_file(r1f, orig);
    s3t_assert_same_file(r2f, img);
    rc = s3t_verify(ctx, "default", "incr", msg, sizeof msg);
    if (rc)
        fail_msg("verify: %s: %s", harvbk_error_name(rc), msg);

    /* another cluster on the same target sees and restores the backups */
    harvbk_ctx *ctx2 = s3t_ctx(state2);
    s3t_set_target_ok(ctx2, cfg);
    harvbk_backup_list *bl = NULL;
    assert_int_equal(harvbk_backup_list_get(&bl, ctx2), 0);
    assert_int_equal(harvbk_backup_list_count(bl), 2);
    harvbk_backup_list_free(bl);
    char *r3 = s3t_path(dir, "r3");
    assert_int_equal(mkdir(r3, 0755), 0);
    rc = s3t_restore(ctx2, "default", "incr", "web-other", r3, msg, sizeof msg);
    if (rc)
        fail_msg("restore in the other context: %s: %s", harvbk_error_name(rc), msg);
    char *r3f = s3t_path(r3, "disk0.raw");
    s3t_assert_same_file(r3f, img);
    harvbk_ctx_free(ctx2);

    /* delete both, gc: only the store config stays under the prefix (gc keeps
     * chunks not older than its start, in whole seconds: let one pass) */
    usleep(1100 * 1000);
    assert_int_equal(harvbk_backup_delete(ctx, "default", "full"), 0);
    assert_int_equal(harvbk_backup_delete(ctx, "default", "incr"), 0);
    uint64_t removed = 0;
    rc = s3t_gc(ctx, &removed, msg, sizeof msg);
    if (rc)
        fail_msg("gc: %s: %s", harvbk_error_name(rc), msg);
    assert_int_equal(removed, chunks2.n);
    s3t_objs all;
    s3t_list(cfg, "", &all);
    for (size_t i = 0; i < all.n; i++)
        fprintf(stderr, "left: %s\n", all.v[i].key);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.v[0].key, "harvbk-store.json");

    /* the secret never left the library in clear */
    assert_true(s3t_log_lines() > 0);
    assert_false(s3t_log_contains(env->secret));
    assert_null(strstr(harvbk_ctx_errmsg(ctx), env->secret));
    assert_false(s3t_tree_contains(state, env->secret));
    assert_false(s3t_tree_contains(state2, env->secret));

    s3t_objs_free(&all);
    s3t_objs_free(&chunks1);
    s3t_objs_free(&chunks2);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    s3t_rmrf(dir);
    free(r1f);
    free(r2f);
    free(r3f);
    free(r1);
    free(r2);
    free(r3);
    free(prefix);
    free(img);
    free(orig);
    free(state);
    free(state2);
    free(dir);
}

static void test_path_style_http(void **state)
{
    (void)state;
    s3t_mode m = { "path-http", false, false };
    roundtrip(&m);
}

static void test_virtual_hosted_http(void **state)
{
    (void)state;
    s3t_mode m = { "vhost-http", false, true };
    roundtrip(&m);
}

static void test_path_style_https_with_ca(void **state)
{
    (void)state;
    s3t_mode m = { "path-https", true, false };
    roundtrip(&m);
}

static void test_virtual_hosted_https_with_ca(void **state)
{
    (void)state;
    s3t_mode m = { "vhost-https", true, true };
    roundtrip(&m);
}

static void test_https_without_ca_is_refused(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir("noca");
    char *prefix = s3t_prefix("noca");
    harvbk_ctx *ctx = s3t_ctx(dir);
    s3t_mode m = { "noca", true, false };
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CA_CERT_FILE, NULL), 0);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    assert_int_equal(rc, HARVBK_E_TARGET);
    const char *msg = harvbk_ctx_errmsg(ctx);
    fprintf(stderr, "message: %s\n", msg);
    assert_non_null(strstr(msg, "TLS"));
    assert_non_null(strstr(msg, env->endpoint_tls));
    assert_null(strstr(msg, env->secret));
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    s3t_rmrf(dir);
    free(prefix);
    free(dir);
}

static void test_wrong_secret_is_refused(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir("badsecret");
    char *prefix = s3t_prefix("badsecret");
    harvbk_ctx *ctx = s3t_ctx(dir);
    s3t_mode m = { "badsecret", false, false };
    harvbk_target_config *cfg = s3t_config(&m, prefix, false);
    assert_int_equal(
        harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, "not-the-secret-123"), 0);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    assert_int_equal(rc, HARVBK_E_PERM);
    const char *msg = harvbk_ctx_errmsg(ctx);
    fprintf(stderr, "message: %s\n", msg);
    assert_non_null(strstr(msg, "SignatureDoesNotMatch"));
    assert_non_null(strstr(msg, env->endpoint));
    assert_null(strstr(msg, "not-the-secret-123"));
    assert_false(s3t_log_contains("not-the-secret-123"));
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    s3t_rmrf(dir);
    free(prefix);
    free(dir);
}

/* The secret is given per session and never written; a stored one is 0600. */
static void test_session_secret_is_never_written(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    char *dir = s3t_tmpdir("session");
    char *st = s3t_path(dir, "state");
    char *prefix = s3t_prefix("session");
    s3t_mode m = { "session", false, false };
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    harvbk_ctx *ctx = s3t_ctx(st);
    s3t_set_target_ok(ctx, cfg);
    harvbk_ctx_free(ctx);
    char *tj = s3t_path(st, "target.json");
    struct stat sb;
    assert_int_equal(stat(tj, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_false(s3t_tree_contains(st, env->secret));

    /* a later process: no secret, then the session secret */
    ctx = s3t_ctx(st);
    harvbk_backup_list *bl = NULL;
    /* the list answers from the synced catalog (no secret needed); talking
     * to the target (a sync) needs the secret */
    int rc = harvbk_backup_list_get(&bl, ctx);
    assert_int_equal(rc, 0);
    harvbk_backup_list_free(bl);
    bl = NULL;
    assert_int_equal(harvbk_target_sync(ctx, NULL), HARVBK_E_INVALID);
    assert_non_null(strstr(harvbk_ctx_errmsg(ctx), "secret"));
    assert_int_equal(harvbk_ctx_set_target_secret(ctx, "bad secret"), HARVBK_E_INVALID);
    assert_int_equal(harvbk_ctx_set_target_secret(ctx, env->secret), 0);
    rc = harvbk_backup_list_get(&bl, ctx);
    if (rc)
        fail_msg("list with the session secret: %s", harvbk_ctx_errmsg(ctx));
    assert_int_equal(harvbk_backup_list_count(bl), 0);
    harvbk_backup_list_free(bl);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    /* a wrong session secret replaces it (and the open store is reopened) */
    assert_int_equal(harvbk_ctx_set_target_secret(ctx, "wrong-secret-abc"), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), HARVBK_E_PERM);
    assert_int_equal(harvbk_ctx_set_target_secret(ctx, env->secret), 0);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    harvbk_ctx_free(ctx);
    assert_false(s3t_tree_contains(st, env->secret));

    /* asked to store it: in target.json, mode 0600 */
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_STORE_SECRET, "1"), 0);
    ctx = s3t_ctx(st);
    s3t_set_target_ok(ctx, cfg);
    harvbk_ctx_free(ctx);
    assert_int_equal(stat(tj, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(s3t_tree_contains(tj, env->secret));
    ctx = s3t_ctx(st);
    assert_int_equal(harvbk_ctx_check_target(ctx), 0);
    harvbk_ctx_free(ctx);
    /* no target: the call says so */
    char *st3 = s3t_path(dir, "state3");
    ctx = s3t_ctx(st3);
    assert_int_equal(harvbk_ctx_set_target_secret(ctx, env->secret), HARVBK_E_NOTARGET);
    harvbk_ctx_free(ctx);

    assert_false(s3t_log_contains(env->secret));
    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(st3);
    free(tj);
    free(prefix);
    free(st);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_style_http),
        cmocka_unit_test(test_virtual_hosted_http),
        cmocka_unit_test(test_path_style_https_with_ca),
        cmocka_unit_test(test_virtual_hosted_https_with_ca),
        cmocka_unit_test(test_https_without_ca_is_refused),
        cmocka_unit_test(test_wrong_secret_is_refused),
        cmocka_unit_test(test_session_secret_is_never_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
