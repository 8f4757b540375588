/* tests/s3/test_s3_hostile.c - a hostile S3 store (the real S3 test server;
 * objects replaced in the bucket through the target layer, as anyone with
 * write access to the bucket could), plaintext:
 *   a manifest whose volume name is "../evil": HARVBK_E_CORRUPT, nothing
 *   written in or beside the restore directory;
 *   a chunk object far larger than any chunk (4 MiB for 64 KiB chunks): the
 *   GET is refused on its Content-Length (HARVBK_E_CHUNK "more than"), never
 *   buffered;
 *   a chunk whose header lies about its raw length: HARVBK_E_CHUNK;
 *   with everything put back, the backup restores byte for byte.
 * The file-target cases of every class are in tests/e2e/test_e2e_hostile.c. */
#include "s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64u * 1024u)
#define IMAGE_SIZE (6u * CHUNK - 100u)

static void get_obj(const harvbk_target_config *cfg, const char *key, hb_buf *out)
{
    hb_target *t = NULL;
    hb_err e = { 0 };
    assert_int_equal(hb_target_open(&t, &cfg->cfg, "hostile-test", NULL, &e), 0);
    assert_int_equal(hb_target_get(t, key, out, &e), 0);
    hb_target_close(t);
}

static void put_obj(const harvbk_target_config *cfg, const char *key, const void *data,
                    size_t len)
{
    hb_target *t = NULL;
    hb_err e = { 0 };
    assert_int_equal(hb_target_open(&t, &cfg->cfg, "hostile-test", NULL, &e), 0);
    assert_int_equal(hb_target_put(t, key, data, len, &e), 0);
    hb_target_close(t);
}

static size_t count_entries(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 | wc -l", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    unsigned long n = 0;
    assert_int_equal(fscanf(p, "%lu", &n), 1);
    pclose(p);
    return (size_t)n;
}

/* A restore into a fresh directory fails with `code` (and `needle`), leaves
 * it empty, and nothing appears beside it. */
static void restore_refused(harvbk_ctx *ctx, const char *dir, const char *tag, int code,
                            const char *needle)
{
    char *r = s3t_path(dir, tag);
    assert_int_equal(mkdir(r, 0755), 0);
    size_t beside = count_entries(dir);
    char msg[1024] = "";
    char vm[64];
    snprintf(vm, sizeof vm, "web-%s", tag);
    int rc = s3t_restore(ctx, "default", "b1", vm, r, msg, sizeof msg);
    if (rc != code || (needle && !strstr(msg, needle)))
        fail_msg("restore (%s): %s: %s; expected %s%s%s", tag, harvbk_error_name(rc), msg,
                 harvbk_error_name(code), needle ? " mentioning " : "", needle ? needle : "");
    assert_int_equal(count_entries(r), 0);
    assert_int_equal(count_entries(dir), beside);
    harvbk_vm *v = NULL;
    assert_int_equal(harvbk_vm_lookup(&v, ctx, "default", vm), HARVBK_E_NOTFOUND);
    free(r);
}

static void test_s3_hostile_manifest_and_chunks(void **state)
{
    (void)state;
    static const s3t_mode m = { "hostile", false, false };
    char *dir = s3t_tmpdir("hostile");
    char *st = s3t_path(dir, "state"), *img = s3t_path(dir, "disk.img");
    char *work = s3t_path(dir, "work");
    char *prefix = s3t_prefix("hostile");
    char msg[1024];
    assert_int_equal(mkdir(work, 0755), 0);
    s3t_make_image(img, IMAGE_SIZE, 21);

    harvbk_ctx *ctx = s3t_ctx(st);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
    s3t_set_target_ok(ctx, cfg);
    harvbk_vm *vm = s3t_vm("default", "web", img);
    int rc = s3t_backup(ctx, vm, "b1", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup: %s: %s", harvbk_error_name(rc), msg);

    /* the manifest names "../evil" instead of "disk0" */
    const char *mkey = "backups/default/b1/manifest.json";
    hb_buf orig = HB_BUF_INIT;
    get_obj(cfg, mkey, &orig);
    char *text = strndup((const char *)orig.data, orig.len);
    char *at = strstr(text, "\"name\":\"disk0\"");
    assert_non_null(at);
    size_t pre = (size_t)(at - text);
    char *bad = malloc(orig.len + 16);
    memcpy(bad, text, pre);
    size_t n = pre;
    n += (size_t)sprintf(bad + n, "\"name\":\"../evil\"");
    strcpy(bad + n, at + strlen("\"name\":\"disk0\""));
    put_obj(cfg, mkey, bad, strlen(bad));
    restore_refused(ctx, work, "names", HARVBK_E_CORRUPT, "not a valid name");
    free(bad);
    put_obj(cfg, mkey, orig.data, orig.len);

    /* the first chunk object: 4 MiB, then a header that lies */
    s3t_objs chunks;
    s3t_list(cfg, "chunks/", &chunks);
    assert_true(chunks.n >= 6);
    const char *ckey = chunks.v[0].key;
    hb_buf cobj = HB_BUF_INIT;
    get_obj(cfg, ckey, &cobj);
    assert_true(cobj.len > 32);
    size_t big = 4u << 20;
    uint8_t *huge = calloc(1, big);
    memcpy(huge, cobj.data, cobj.len);
    put_obj(cfg, ckey, huge, big);
    free(huge);
    restore_refused(ctx, work, "huge", HARVBK_E_CHUNK, "more than");
    uint8_t *lie = malloc(cobj.len);
    memcpy(lie, cobj.data, cobj.len);
    lie[8] = lie[9] = lie[10] = lie[11] = 0xff; /* raw length 2^32 - 1 */
    put_obj(cfg, ckey, lie, cobj.len);
    restore_refused(ctx, work, "lie", HARVBK_E_CHUNK, "corrupt");
    free(lie);
    put_obj(cfg, ckey, cobj.data, cobj.len);

    /* all put back: byte for byte again */
    char *ok = s3t_path(work, "ok");
    assert_int_equal(mkdir(ok, 0755), 0);
    if ((rc = s3t_restore(ctx, "default", "b1", "web-ok", ok, msg, sizeof msg)))
        fail_msg("restore: %s: %s", harvbk_error_name(rc), msg);
    char *out = s3t_path(ok, "disk0.raw");
    s3t_assert_same_file(img, out);

    free(out);
    free(ok);
    s3t_objs_free(&chunks);
    hb_buf_free(&cobj);
    hb_buf_free(&orig);
    free(text);
    harvbk_vm_free(vm);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(ctx);
    s3t_rmrf(dir);
    free(dir);
    free(st);
    free(img);
    free(work);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_hostile_manifest_and_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
