/* tests/s3/test_s3_schedule.c - backup schedules on the S3 test server:
 *   creating or resuming a backup schedule is refused while the target is
 *   unreachable (the proxy hangs or refuses), within a bounded time set by the
 *   target's timeout, and works once it is back;
 *   fake-clock passes make Ready backups named after their planned time that
 *   restore byte for byte, and retention removes their objects from the bucket.
 * ctest-timeout: 600 */
#include "s3test.h"

#include <harvbk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64u * 1024u)
#define IMAGE_SIZE (16u * CHUNK)
#define H(h) (1893456000000LL + (int64_t)(h)*3600000LL) /* 2030-01-01 + h hours, UTC */

static const char *NO_FAULTS = "{\"fail_rate\":0}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static harvbk_target_config *config(const char *prefix)
{
    s3t_mode m = { "path", false, false };
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_TIMEOUT_MS, "2000"), 0);
    return cfg;
}

static harvbk_schedule_options sopts(const char *vm, const char *cron, int64_t now)
{
    harvbk_schedule_options o;
    harvbk_schedule_options_init(&o, HARVBK_SCHEDULE_OPTIONS_VERSION);
    o.type = HARVBK_SCHEDULE_BACKUP;
    o.vm_name = vm;
    o.cron = cron;
    o.now_ms = now;
    o.retain = 3;
    o.max_failure = 2;
    return o;
}

static void test_unreachable_target_refuses_create_and_resume(void **state)
{
    (void)state;
    s3t_control("", NO_FAULTS);
    char *dir = s3t_tmpdir("sched-down");
    char *prefix = s3t_prefix("sched-down");
    char *st = s3t_path(dir, "state"), *disk = s3t_path(dir, "d.img");
    s3t_make_image(disk, IMAGE_SIZE, 5);
    harvbk_target_config *cfg = config(prefix);
    harvbk_ctx *c = s3t_ctx(st);
    s3t_set_target_ok(c, cfg);
    harvbk_vm *vm = s3t_vm("default", "vm1", disk);
    assert_int_equal(harvbk_vm_register(c, vm), 0);
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));

    const char *modes[] = {"{\"down\":\"hang\"}", "{\"down\":\"refuse\"}"};
    for (int i = 0; i < 2; i++) {
        s3t_control("", modes[i]);
        double t0 = now_s();
        int rc = harvbk_schedule_create(c, "default", "s", &o);
        double took = now_s() - t0;
        char msg[600];
        harvbk_ctx_errmsg_copy(c, msg, sizeof msg);
        print_message("down %s: %s after %.1f s: %s\n", modes[i], harvbk_error_name(rc), took,
                      msg);
        assert_int_equal(rc, HARVBK_E_TARGET);
        assert_non_null(strstr(msg, "unreachable"));
        assert_true(took < 30.0); /* bounded by the 2 s timeout (and its retries) */
        harvbk_schedule *s = NULL;
        assert_int_equal(harvbk_schedule_get(&s, c, "default", "s"), HARVBK_E_NOTFOUND);
    }
    s3t_control("", "{\"down\":false}");
    assert_int_equal(harvbk_schedule_create(c, "default", "s", &o), 0);
    assert_int_equal(harvbk_schedule_suspend(c, "default", "s"), 0);
    s3t_control("", "{\"down\":\"refuse\"}");
    assert_int_equal(harvbk_schedule_resume(c, "default", "s"), HARVBK_E_TARGET);
    s3t_control("", "{\"down\":false}");
    assert_int_equal(harvbk_schedule_resume(c, "default", "s"), 0);
    s3t_control("", NO_FAULTS);

    harvbk_vm_free(vm);
    harvbk_ctx_free(c);
    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(dir);
    free(prefix);
    free(st);
    free(disk);
}

static size_t pass(harvbk_ctx *c, int64_t now, int *state0)
{
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_schedule_run_due(&op, c, now, NULL), 0);
    if (!op)
        return 0;
    assert_int_equal(harvbk_op_wait(op), 0);
    size_t n = harvbk_schedule_run_count(op);
    if (n && state0)
        harvbk_schedule_run_at(op, 0, NULL, NULL, NULL, NULL, state0, NULL, NULL);
    harvbk_op_free(op);
    return n;
}

static void test_fake_clock_backups_restore_and_retention(void **state)
{
    (void)state;
    s3t_control("", NO_FAULTS);
    char *dir = s3t_tmpdir("sched-run");
    char *prefix = s3t_prefix("sched-run");
    char *st = s3t_path(dir, "state"), *disk = s3t_path(dir, "d.img");
    s3t_make_image(disk, IMAGE_SIZE, 6);
    harvbk_target_config *cfg = config(prefix);
    harvbk_ctx *c = s3t_ctx(st);
    s3t_set_target_ok(c, cfg);
    harvbk_vm *vm = s3t_vm("default", "vm1", disk);
    assert_int_equal(harvbk_vm_register(c, vm), 0);
    harvbk_schedule_options o = sopts("vm1", "0 */6 * * *", H(0));
    assert_int_equal(harvbk_schedule_create(c, "default", "six", &o), 0);
    for (int h = 6; h <= 24; h += 6) {
        int s0 = 0;
        assert_int_equal(pass(c, H(h), &s0), 1);
        assert_int_equal(s0, HARVBK_SCHEDULE_RUN_READY);
    }
    /* retain 3: the 06:00 backup is gone from the bucket, 12:00 to 00:00 stay */
    s3t_objs objs;
    char under[256];
    snprintf(under, sizeof under, "backups/default/six-20300101-0600/");
    s3t_list(cfg, under, &objs);
    assert_int_equal(objs.n, 0);
    s3t_objs_free(&objs);
    assert_int_equal(s3t_backup_state(c, "default", "six-20300101-0600"), -1); /* not found */
    assert_int_equal(s3t_backup_state(c, "default", "six-20300101-1200"), HARVBK_STATE_READY);
    char msg[512];
    char *rdir = s3t_path(dir, "restored");
    assert_int_equal(mkdir(rdir, 0755), 0);
    int rc = s3t_restore(c, "default", "six-20300101-1800", "copy", rdir, msg, sizeof msg);
    if (rc)
        fail_msg("restore: %s: %s", harvbk_error_name(rc), msg);
    char *copy = s3t_path(rdir, "disk0.raw");
    s3t_assert_same_file(copy, disk);
    free(copy);
    free(rdir);

    harvbk_vm_free(vm);
    harvbk_ctx_free(c);
    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(dir);
    free(prefix);
    free(st);
    free(disk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unreachable_target_refuses_create_and_resume),
        cmocka_unit_test(test_fake_clock_backups_restore_and_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
