/* tests/s3/test_s3_faults.c - the S3 target under faults injected by the
 * test proxy (tests/s3/proxy.py control endpoint):
 *   10% of requests failing (500, 503 SlowDown, 429, dropped connections,
 *   resets, answers lost after the server acted) -> backup, restore and
 *   verify still complete, bytes identical;
 *   the server refusing connections / hanging -> the backup fails with
 *   HARVBK_E_TARGET naming the endpoint within the configured timeout, and the
 *   Ready backup made before is still Ready and restorable;
 *   a backup interrupted by failures is never Ready (no manifest), and
 *   running it again uploads exactly the chunks that were missing.
 * Must not run concurrently with other tests using the same proxy (the fault
 * configuration is global): ctest RESOURCE_LOCK. */
#include "s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define CHUNK (256u * 1024u)

static const char *NO_FAULTS = "{\"fail_rate\":0}";

static int reset_faults(void **state)
{
    (void)state;
    s3t_control("", NO_FAULTS);
    return 0;
}

/* A world: scratch dir, state dir, image, a context with the target set. */
typedef struct world {
    char *dir, *state, *img, *orig, *prefix;
    harvbk_ctx *ctx;
    harvbk_target_config *cfg;
    harvbk_vm *vm;
} world;

static void world_init(world *w, const char *tag, uint64_t size, unsigned timeout_ms)
{
    w->dir = s3t_tmpdir(tag);
    w->state = s3t_path(w->dir, "state");
    w->img = s3t_path(w->dir, "disk.img");
    w->orig = s3t_path(w->dir, "disk.orig");
    w->prefix = s3t_prefix(tag);
    s3t_make_image(w->img, size, 11);
    s3t_copy(w->img, w->orig);
    s3t_mode m = { tag, false, false };
    w->cfg = s3t_config(&m, w->prefix, true);
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(w->cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
    if (timeout_ms) {
        snprintf(num, sizeof num, "%u", timeout_ms);
        assert_int_equal(harvbk_target_config_set(w->cfg, HARVBK_TARGET_TIMEOUT_MS, num), 0);
    }
    w->ctx = s3t_ctx(w->state);
    s3t_set_target_ok(w->ctx, w->cfg);
    w->vm = s3t_vm("default", "db", w->img);
}

static void world_free(world *w)
{
    const s3env *env = s3t_env();
    assert_false(s3t_log_contains(env->secret));
    assert_false(s3t_tree_contains(w->state, env->secret));
    harvbk_vm_free(w->vm);
    harvbk_target_config_free(w->cfg);
    harvbk_ctx_free(w->ctx);
    s3t_rmrf(w->dir);
    free(w->dir);
    free(w->state);
    free(w->img);
    free(w->orig);
    free(w->prefix);
}

static void restore_same(world *w, const char *backup, const char *newvm, const char *expect)
{
    char msg[1024];
    char *rd = s3t_path(w->dir, newvm);
    assert_int_equal(mkdir(rd, 0755), 0);
    int rc = s3t_restore(w->ctx, "default", backup, newvm, rd, msg, sizeof msg);
    if (rc)
        fail_msg("restore %s: %s: %s", backup, harvbk_error_name(rc), msg);
    char *f = s3t_path(rd, "disk0.raw");
    s3t_assert_same_file(f, expect);
    free(f);
    free(rd);
}

static void test_ten_percent_failures_backup_restore_verify(void **state)
{
    (void)state;
    world w;
    world_init(&w, "faults10", 24 * MiB, 0);
    char msg[1024];
    s3t_control("/stats/reset", "");
    s3t_control("", "{\"fail_rate\":0.1,\"seed\":4242,\"kinds\":[\"500\",\"503\",\"429\","
                    "\"drop\",\"drop_after\",\"reset\"]}");
    int rc = s3t_backup(w.ctx, w.vm, "b1", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup under faults: %s: %s", harvbk_error_name(rc), msg);
    assert_int_equal(s3t_backup_state(w.ctx, "default", "b1"), HARVBK_STATE_READY);
    restore_same(&w, "b1", "db-copy", w.orig);
    rc = s3t_verify(w.ctx, "default", "b1", msg, sizeof msg);
    if (rc)
        fail_msg("verify under faults: %s: %s", harvbk_error_name(rc), msg);
    uint64_t injected = s3t_stat("injected"), requests = s3t_stat("requests");
    fprintf(stderr, "%llu faults injected in %llu requests\n", (unsigned long long)injected,
            (unsigned long long)requests);
    assert_true(requests > 100);
    assert_true(injected >= requests / 20); /* about 10% did fail */
    s3t_control("", NO_FAULTS);
    /* what the store holds is complete without faults too */
    s3t_objs chunks;
    s3t_list(w.cfg, "chunks/", &chunks);
    assert_int_equal(chunks.n, s3t_distinct_chunks(w.orig, CHUNK));
    s3t_objs_free(&chunks);
    world_free(&w);
}

static void test_unreachable_server_fails_within_timeout(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    const unsigned timeout_ms = 3000;
    world w;
    world_init(&w, "down", 4 * MiB, timeout_ms);
    char msg[1024];
    int rc = s3t_backup(w.ctx, w.vm, "before", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup: %s: %s", harvbk_error_name(rc), msg);

    const char *modes[] = { "refuse", "hang", "close" };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char json[128], name[32];
        snprintf(json, sizeof json, "{\"down\":\"%s\"}", modes[i]);
        snprintf(name, sizeof name, "while-%s", modes[i]);
        s3t_control("", json);
        s3t_write_random_at(w.img, 0, 4096, 900 + i);
        uint64_t t0 = s3t_now_ms();
        rc = s3t_backup(w.ctx, w.vm, name, NULL, NULL, msg, sizeof msg);
        uint64_t took = s3t_now_ms() - t0;
        fprintf(stderr, "server %s: %s after %llu ms: %s\n", modes[i], harvbk_error_name(rc),
                (unsigned long long)took, msg);
        assert_int_equal(rc, HARVBK_E_TARGET);
        assert_non_null(strstr(msg, env->endpoint));
        assert_null(strstr(msg, env->secret));
        /* within the timeout (a hung server: one timeout after the last byte,
         * rounded up to a second by libcurl), plus the operation's own work */
        assert_true(took < timeout_ms + s3t_slack_ms());
        t0 = s3t_now_ms();
        rc = harvbk_ctx_check_target(w.ctx);
        took = s3t_now_ms() - t0;
        assert_int_equal(rc, HARVBK_E_TARGET);
        assert_true(took < timeout_ms + s3t_slack_ms());
        s3t_control("", NO_FAULTS);
        assert_true(s3t_backup_state(w.ctx, "default", name) != HARVBK_STATE_READY);
        assert_int_equal(s3t_head(w.cfg, "backups/default/before/manifest.json"), 0);
    }
    /* nothing Ready was lost */
    assert_int_equal(harvbk_ctx_check_target(w.ctx), 0);
    assert_int_equal(s3t_backup_state(w.ctx, "default", "before"), HARVBK_STATE_READY);
    restore_same(&w, "before", "db-before", w.orig);
    rc = s3t_verify(w.ctx, "default", "before", msg, sizeof msg);
    if (rc)
        fail_msg("verify: %s: %s", harvbk_error_name(rc), msg);
    /* and the target works again */
    rc = s3t_backup(w.ctx, w.vm, "after", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup after the outage: %s: %s", harvbk_error_name(rc), msg);
    restore_same(&w, "after", "db-after", w.img);
    world_free(&w);
}

static void test_interrupted_backup_is_never_ready_and_rerun_uploads_the_rest(void **state)
{
    (void)state;
    world w;
    world_init(&w, "interrupt", 24 * MiB, 0);
    char msg[1024];
    size_t total = s3t_distinct_chunks(w.img, CHUNK);
    /* Every chunk PUT after the first half fails (always: retries too). A
     * fixed point of the run, not a moment: the progress hook that tripped
     * it before fired once all chunks were up when the machine was loaded
     * (hooks run at most every 100 ms on their own thread). */
    size_t half = total / 2;
    char faults[256];
    snprintf(faults, sizeof faults,
             "{\"fail_rate\":1,\"kinds\":[\"500\"],\"only_methods\":[\"PUT\"],"
             "\"only_paths\":[\"/chunks/\"],\"pass_first\":%zu}",
             half);
    s3t_control("", faults);
    int rc = s3t_backup(w.ctx, w.vm, "nightly", NULL, NULL, msg, sizeof msg);
    s3t_control("", NO_FAULTS);
    fprintf(stderr, "interrupted backup: %s: %s\n", harvbk_error_name(rc), msg);
    assert_int_equal(rc, HARVBK_E_TARGET);
    assert_true(strstr(msg, "HTTP 500") != NULL);
    assert_true(s3t_backup_state(w.ctx, "default", "nightly") != HARVBK_STATE_READY);
    assert_int_equal(s3t_head(w.cfg, "backups/default/nightly/manifest.json"),
                     HARVBK_E_NOTFOUND);
    harvbk_backup_list *bl = NULL;
    assert_int_equal(harvbk_backup_list_get(&bl, w.ctx), 0);
    for (size_t i = 0; i < harvbk_backup_list_count(bl); i++)
        assert_int_not_equal(harvbk_backup_info_state(harvbk_backup_list_at(bl, i)),
                             HARVBK_STATE_READY);
    harvbk_backup_list_free(bl);
    s3t_objs before;
    s3t_list(w.cfg, "chunks/", &before);
    fprintf(stderr, "%zu of %zu chunks were stored before the failure\n", before.n, total);
    assert_true(half > 0);
    assert_int_equal(before.n, half);

    /* again, same name: only what is missing goes up */
    rc = s3t_backup(w.ctx, w.vm, "nightly", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("re-run: %s: %s", harvbk_error_name(rc), msg);
    assert_int_equal(s3t_backup_state(w.ctx, "default", "nightly"), HARVBK_STATE_READY);
    s3t_objs after;
    s3t_list(w.cfg, "chunks/", &after);
    assert_int_equal(after.n, total);
    uint64_t new_bytes = 0;
    assert_int_equal(s3t_objs_minus(&after, &before, &new_bytes), total - before.n);
    uint64_t idx = 64 + 32ull * ((24u * MiB + CHUNK - 1) / CHUNK);
    uint64_t up = s3t_backup_uploaded(w.ctx, "default", "nightly");
    uint64_t man = s3t_size(w.cfg, "backups/default/nightly/manifest.json");
    assert_in_range(up, new_bytes + idx, new_bytes + idx + man + 64);
    restore_same(&w, "nightly", "db-nightly", w.orig);
    rc = s3t_verify(w.ctx, "default", "nightly", msg, sizeof msg);
    if (rc)
        fail_msg("verify: %s: %s", harvbk_error_name(rc), msg);
    s3t_objs_free(&before);
    s3t_objs_free(&after);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_ten_percent_failures_backup_restore_verify, reset_faults),
        cmocka_unit_test_teardown(test_unreachable_server_fails_within_timeout, reset_faults),
        cmocka_unit_test_teardown(
            test_interrupted_backup_is_never_ready_and_rerun_uploads_the_rest, reset_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
