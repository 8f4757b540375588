/* tests/unit/test_schedule.c - schedules on a file:// target, driven by a fake
 * clock (harvbk/schedule.h, docs/SCHEDULES.md):
 *   every validation rule with its own error code and a message naming the
 *   value;
 *   a week-scale life: nothing before the first firing, runs named after the
 *   planned time, retention, no catch-up after downtime (one run, missed
 *   counted), failures counted, automatic suspension at max failure, resume
 *   deleting the failed entries first;
 *   a firing skipped while the previous one still runs (another context);
 *   a stuck run cancelled at its deadline and counted as a failure;
 *   two processes calling run_due at once never create an entry twice;
 *   a process killed -9 mid-run leaves the schedule consistent;
 *   a pass's progress sums the bytes of all its runs, ended ones too;
 *   maintenance mode: refused while an operation runs (also another
 *   process's), then refusing new work, resuming exactly what it suspended. */
#include "testutil.h"

#include <harvbk.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DISK (2u * 1024u * 1024u)
#define H(h) (1893456000000LL + (int64_t)(h)*3600000LL) /* 2030-01-01 + h hours, UTC */

enum { MODE_OK = 0, MODE_FAIL = 1, MODE_BLOCK = 2, MODE_SLOW = 3 };
static atomic_int g_mode;
static atomic_int g_release;
static atomic_int g_blocked; /* a read is blocked */
static atomic_int g_slow_reads; /* reads made in MODE_SLOW */

static int vol_read(void *buf, size_t len, uint64_t off, void *payload)
{
    (void)payload;
    int mode = atomic_load(&g_mode);
    if (mode == MODE_FAIL)
        return -1;
    if (mode == MODE_SLOW) { /* a stuck disk: every read takes 300 ms */
        atomic_store(&g_blocked, 1);
        atomic_fetch_add(&g_slow_reads, 1);
        usleep(300000);
    }
    if (mode == MODE_BLOCK) {
        atomic_store(&g_blocked, 1);
        for (int i = 0; i < 1500 && !atomic_load(&g_release); i++)
            usleep(10000);
    }
    tu_fill_random(buf, len, off / 65536 + 7);
    return 0;
}

static int resolve(harvbk_vm **out, const char *ns, const char *name, void *payload)
{
    (void)payload;
    harvbk_vm *vm = NULL;
    int rc = harvbk_vm_new(&vm, ns, name);
    if (rc == 0)
        rc = harvbk_vm_add_volume_callbacks(vm, "disk0", DISK, vol_read, NULL, NULL);
    *out = vm;
    return rc;
}

static int blocking_progress(uint64_t done, uint64_t total, void *payload)
{
    (void)done;
    (void)total;
    (void)payload;
    atomic_store(&g_blocked, 1);
    for (int i = 0; i < 1500 && !atomic_load(&g_release); i++)
        usleep(10000);
    return 0;
}

typedef struct env {
    char *root, *state, *tdir;
    harvbk_ctx *ctx;
} env;

/* The catalog holds the VM with a file volume; the resolver of the runs
 * supplies it with a callback volume (what a controller would do). */
static void register_vm(harvbk_ctx *ctx, const char *ns, const char *name)
{
    char path[] = "/tmp/harvbk-sched-disk-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 65536), 0);
    close(fd);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, ns, name), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", path), 0);
    assert_int_equal(harvbk_vm_register(ctx, vm), 0);
    harvbk_vm_free(vm);
    unlink(path);
}

static void env_open(env *v, const char *tag)
{
    memset(v, 0, sizeof *v);
    atomic_store(&g_mode, MODE_OK);
    atomic_store(&g_release, 0);
    atomic_store(&g_blocked, 0);
    atomic_store(&g_slow_reads, 0);
    v->root = tu_mkdtemp(tag);
    v->state = tu_path2(v->root, "state");
    v->tdir = tu_path2(v->root, "target");
    assert_int_equal(harvbk_ctx_open(&v->ctx, v->state, NULL), 0);
    tu_set_file_target(v->ctx, v->tdir);
    register_vm(v->ctx, "default", "vm1");
    register_vm(v->ctx, "default", "vm2");
    register_vm(v->ctx, "default", "vm3");
}

static void env_close(env *v)
{
    harvbk_ctx_free(v->ctx);
    tu_rmrf(v->root);
    free(v->root);
    free(v->state);
    free(v->tdir);
}

static harvbk_schedule_options sopts(const char *vm, const char *cron, int64_t now)
{
    harvbk_schedule_options o;
    harvbk_schedule_options_init(&o, HARVBK_SCHEDULE_OPTIONS_VERSION);
    o.type = HARVBK_SCHEDULE_BACKUP;
    o.vm_name = vm;
    o.cron = cron;
    o.now_ms = now;
    return o;
}

static void assert_refused(harvbk_ctx *ctx, int rc, int code, const char *needle)
{
    char msg[600];
    harvbk_ctx_errmsg_copy(ctx, msg, sizeof msg);
    if (rc != code || (needle && !strstr(msg, needle)))
        fail_msg("expected %s naming \"%s\", got %s: %s", harvbk_error_name(code),
                 needle ? needle : "", harvbk_error_name(rc), msg);
}

static harvbk_schedule *get(harvbk_ctx *c, const char *name);

static void test_validation(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-valid");
    harvbk_ctx *c = v.ctx;
    harvbk_schedule_options o = sopts("vm1", "61 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_CRON, "61");
    o = sopts("vm1", "0 0 30 2 *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_CRON, "0 0 30 2 *");
    o = sopts("vm1", "", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_CRON, NULL);
    o = sopts("vm1", "*/30 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_INTERVAL,
                   "*/30 * * * *");
    o = sopts("vm1", "0 * * * *", H(0));
    o.retain = 1;
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_RETAIN, "1");
    o.retain = 251;
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_RETAIN, "251");
    o.retain = 0;
    o.max_failure = 1;
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_MAX_FAILURE, "1");
    o.retain = 8;
    o.max_failure = 8;
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_MAX_FAILURE,
                   "retain 8");
    o = sopts("nosuchvm", "0 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_NOTFOUND,
                   "nosuchvm");
    o = sopts("vm1", "0 * * * *", H(0));
    o.vm_namespace = "other";
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_INVALID, "other");
    o = sopts("vm1", "0 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "Bad_Name", &o), HARVBK_E_INVALID,
                   NULL);
    assert_refused(c, harvbk_schedule_create(c, "default",
                                             "a123456789a123456789a123456789a123456789a123456789",
                                             &o),
                   HARVBK_E_INVALID, "longer than 49");

    /* the one that works, then the rules that involve other schedules */
    assert_int_equal(harvbk_schedule_create(c, "default", "s", &o), 0);
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_EXISTS, "s");
    o = sopts("vm1", "30 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s2", &o), HARVBK_E_VM_SCHEDULED,
                   "vm1");
    o = sopts("vm2", "5 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s2", &o),
                   HARVBK_E_SCHEDULE_CONFLICT, "default/s");
    o = sopts("vm2", "5 */2 * * *", H(0)); /* another interval */
    assert_int_equal(harvbk_schedule_create(c, "default", "s2", &o), 0);
    o = sopts("vm3", "15 * * * *", H(0)); /* same interval, 15 minutes apart */
    assert_int_equal(harvbk_schedule_create(c, "default", "s3", &o), 0);
    assert_int_equal(harvbk_schedule_delete(c, "default", "s3"), 0);
    o = sopts("vm3", "*/20 * * * *", H(0)); /* the flag skips both checks and is recorded */
    o.flags = HARVBK_SCHEDULE_SKIP_INTERVAL_CHECK;
    assert_int_equal(harvbk_schedule_create(c, "default", "s3", &o), 0);
    harvbk_schedule *s = NULL;
    assert_int_equal(harvbk_schedule_get(&s, c, "default", "s3"), 0);
    assert_int_equal(harvbk_schedule_skip_interval_check(s), 1);
    assert_int_equal(harvbk_schedule_retain(s), HARVBK_SCHEDULE_RETAIN_DEFAULT);
    assert_int_equal(harvbk_schedule_max_failure(s), HARVBK_SCHEDULE_MAX_FAILURE_DEFAULT);
    assert_int_equal(harvbk_schedule_next_run(s), H(0) + 20 * 60000);
    char *json = NULL;
    assert_int_equal(harvbk_schedule_to_json(s, &json), 0);
    const char *keys[] = {"\"name\":\"s3\"", "\"namespace\":\"default\"", "\"type\":\"backup\"",
                          "\"vm\":\"default/vm3\"", "\"cron\":\"*/20 * * * *\"", "\"retain\":8",
                          "\"max_failure\":4", "\"suspended\":false", "\"suspend_reason\":\"\"",
                          "\"consecutive_failures\":0", "\"next_run\":\"2030-01-01T00:20:00Z\"",
                          "\"history\":[]", "\"skip_interval_check\":true"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strstr(json, keys[i]))
            fail_msg("%s lacks %s", json, keys[i]);
    harvbk_string_free(json);
    harvbk_schedule_free(s);

    /* update: the same checks; the VM and the type cannot change */
    o = sopts(NULL, NULL, H(0));
    o.retain = 3;
    o.max_failure = 3;
    assert_refused(c, harvbk_schedule_update(c, "default", "s", &o), HARVBK_E_MAX_FAILURE, "3");
    o = sopts("vm2", NULL, H(0));
    assert_refused(c, harvbk_schedule_update(c, "default", "s", &o), HARVBK_E_INVALID, "vm1");
    o = sopts(NULL, "10 * * * *", H(0));
    assert_int_equal(harvbk_schedule_update(c, "default", "s", &o), 0);
    o = sopts(NULL, "*/30 * * * *", H(0));
    assert_refused(c, harvbk_schedule_update(c, "default", "s2", &o), HARVBK_E_INTERVAL,
                   "*/30 * * * *");
    o = sopts(NULL, "12 * * * *", H(0)); /* 2 minutes after s's '10 * * * *' */
    assert_refused(c, harvbk_schedule_update(c, "default", "s2", &o),
                   HARVBK_E_SCHEDULE_CONFLICT, "default/s ('10 * * * *'");
    o = sopts(NULL, "25 * * * *", H(0));
    assert_int_equal(harvbk_schedule_update(c, "default", "s2", &o), 0);
    o = sopts(NULL, "missing", H(0));
    assert_refused(c, harvbk_schedule_update(c, "default", "nope", &o), HARVBK_E_NOTFOUND, NULL);

    /* retain 3 alone: the default max failure follows it down to 2; an update
     * with default options keeps a snapshot schedule's type */
    register_vm(c, "default", "vm4");
    o = sopts("vm4", "40 */3 * * *", H(0));
    o.type = HARVBK_SCHEDULE_SNAPSHOT;
    o.retain = 3;
    assert_int_equal(harvbk_schedule_create(c, "default", "snap", &o), 0);
    s = get(c, "snap");
    assert_int_equal(harvbk_schedule_max_failure(s), 2);
    harvbk_schedule_free(s);
    o = sopts(NULL, NULL, H(0));
    o.retain = 5;
    assert_int_equal(harvbk_schedule_update(c, "default", "snap", &o), 0);
    s = get(c, "snap");
    assert_int_equal(harvbk_schedule_type_of(s), HARVBK_SCHEDULE_SNAPSHOT);
    assert_int_equal(harvbk_schedule_retain(s), 5);
    harvbk_schedule_free(s);
    assert_int_equal(harvbk_schedule_delete(c, "default", "snap"), 0);

    harvbk_schedule_list *l = NULL;
    assert_int_equal(harvbk_schedule_list_get(&l, c), 0);
    assert_int_equal(harvbk_schedule_list_count(l), 3);
    assert_string_equal(harvbk_schedule_name(harvbk_schedule_list_at(l, 0)), "s");
    assert_string_equal(harvbk_schedule_cron(harvbk_schedule_list_at(l, 0)), "10 * * * *");
    harvbk_schedule_list_free(l);
    env_close(&v);
}

static void test_target_needed(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("sched-target");
    char *st = tu_path2(root, "state"), *tdir = tu_path2(root, "target");
    harvbk_ctx *c = NULL;
    assert_int_equal(harvbk_ctx_open(&c, st, NULL), 0);
    register_vm(c, "default", "vm1");
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));
    assert_refused(c, harvbk_schedule_create(c, "default", "s", &o), HARVBK_E_NOTARGET, NULL);
    o.type = HARVBK_SCHEDULE_SNAPSHOT; /* snapshots need no target */
    assert_int_equal(harvbk_schedule_create(c, "default", "snaps", &o), 0);
    assert_int_equal(harvbk_schedule_delete(c, "default", "snaps"), 0);
    tu_set_file_target(c, tdir);
    o.type = HARVBK_SCHEDULE_BACKUP;
    assert_int_equal(harvbk_schedule_create(c, "default", "s", &o), 0);
    assert_int_equal(harvbk_schedule_suspend(c, "default", "s"), 0);
    tu_rmrf(tdir); /* the target's store is gone: unreachable */
    assert_refused(c, harvbk_schedule_resume(c, "default", "s"), HARVBK_E_TARGET, "resume");
    harvbk_schedule *s = NULL;
    assert_int_equal(harvbk_schedule_get(&s, c, "default", "s"), 0);
    assert_int_equal(harvbk_schedule_suspended(s), 1);
    assert_string_equal(harvbk_schedule_suspend_reason(s), "suspended by user");
    assert_int_equal(harvbk_schedule_next_run(s), -1);
    harvbk_schedule_free(s);
    harvbk_ctx_free(c);
    tu_rmrf(root);
    free(root);
    free(st);
    free(tdir);
}

/* One pass at now; returns the op's run count; states/codes of runs in out. */
static size_t pass(harvbk_ctx *c, int64_t now, int *states, int *codes, char entries[][64])
{
    harvbk_schedule_run_options ro;
    harvbk_schedule_run_options_init(&ro, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
    ro.resolve_cb = resolve;
    harvbk_op *op = NULL;
    int rc = harvbk_schedule_run_due(&op, c, now, &ro);
    if (rc) {
        char m[512];
        harvbk_ctx_errmsg_copy(c, m, sizeof m);
        fail_msg("run_due: %s", m);
    }
    if (!op)
        return 0;
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_string_equal(harvbk_op_kind(op), "schedule");
    size_t n = harvbk_schedule_run_count(op);
    for (size_t i = 0; i < n; i++) {
        const char *entry = NULL;
        int st = 0, code = 0;
        int64_t planned = 0;
        const char *msg = NULL;
        assert_int_equal(
            harvbk_schedule_run_at(op, i, NULL, NULL, &entry, &planned, &st, &code, &msg), 0);
        assert_non_null(msg);
        if (st == HARVBK_SCHEDULE_RUN_ERROR && !msg[0])
            fail_msg("run %s failed without a message", entry);
        if (planned <= 0 || planned > now)
            fail_msg("run %s planned at %lld, pass at %lld", entry, (long long)planned, (long long)now);
        if (states)
            states[i] = st;
        if (codes)
            codes[i] = code;
        if (entries)
            snprintf(entries[i], 64, "%s", entry);
    }
    harvbk_op_free(op);
    return n;
}

static int entry_state(harvbk_ctx *c, const char *name)
{
    harvbk_backup_info *in = NULL;
    int rc = harvbk_backup_get(&in, c, "default", name);
    if (rc)
        return rc;
    int st = harvbk_backup_info_state(in);
    harvbk_backup_info_free(in);
    return st;
}

static void expect_entries(harvbk_ctx *c, const char *const *present, const char *const *absent)
{
    for (; present && *present; present++)
        if (entry_state(c, *present) != HARVBK_STATE_READY)
            fail_msg("%s should be Ready: %d", *present, entry_state(c, *present));
    for (; absent && *absent; absent++)
        if (entry_state(c, *absent) != HARVBK_E_NOTFOUND)
            fail_msg("%s should not exist: %d", *absent, entry_state(c, *absent));
}

static harvbk_schedule *get(harvbk_ctx *c, const char *name)
{
    harvbk_schedule *s = NULL;
    assert_int_equal(harvbk_schedule_get(&s, c, "default", name), 0);
    return s;
}

static void test_life(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-life");
    harvbk_ctx *c = v.ctx;
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0) + 30 * 60000); /* 00:30 */
    o.retain = 3;
    o.max_failure = 2;
    assert_int_equal(harvbk_schedule_create(c, "default", "hourly", &o), 0);
    int64_t next = 0;
    assert_int_equal(harvbk_schedule_next_due(c, H(0) + 40 * 60000, &next), 0);
    assert_int_equal(next, H(1));
    assert_int_equal(pass(c, H(1) - 1, NULL, NULL, NULL), 0); /* not yet */

    int st[4], code[4];
    char ent[4][64];
    for (int h = 1; h <= 4; h++) {
        assert_int_equal(pass(c, H(h), st, code, ent), 1);
        assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_READY);
        char want[64];
        snprintf(want, sizeof want, "hourly-20300101-%02d00", h);
        assert_string_equal(ent[0], want);
    }
    assert_int_equal(pass(c, H(4) + 60000, NULL, NULL, NULL), 0); /* handled */
    /* retention 3: the 01:00 one is gone */
    const char *p1[] = {"hourly-20300101-0200", "hourly-20300101-0300", "hourly-20300101-0400",
                        NULL};
    const char *a1[] = {"hourly-20300101-0100", NULL};
    expect_entries(c, p1, a1);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, c, "default", "hourly-20300101-0400"), 0);
    assert_string_equal(harvbk_backup_info_schedule(in), "hourly");
    harvbk_backup_info_free(in);

    /* downtime 05:00..07:30: one run, for 07:00, with 2 missed */
    assert_int_equal(pass(c, H(7) + 30 * 60000, st, code, ent), 1);
    assert_string_equal(ent[0], "hourly-20300101-0700");
    harvbk_schedule *s = get(c, "hourly");
    size_t n = harvbk_schedule_history_count(s);
    unsigned missed = 99;
    int64_t planned = 0;
    assert_int_equal(harvbk_schedule_history_at(s, n - 1, NULL, &planned, NULL, NULL, NULL,
                                                &missed, NULL),
                     0);
    assert_int_equal(missed, 2);
    assert_int_equal(planned, H(7));
    assert_int_equal(harvbk_schedule_next_run(s), H(8));
    harvbk_schedule_free(s);

    /* two failures: suspended with "max failure reached" */
    atomic_store(&g_mode, MODE_FAIL);
    assert_int_equal(pass(c, H(8), st, code, ent), 1);
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_ERROR);
    s = get(c, "hourly");
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 1);
    assert_int_equal(harvbk_schedule_suspended(s), 0);
    harvbk_schedule_free(s);
    assert_int_equal(pass(c, H(9), st, code, ent), 1);
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_ERROR);
    s = get(c, "hourly");
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 2);
    assert_int_equal(harvbk_schedule_suspended(s), 1);
    assert_string_equal(harvbk_schedule_suspend_reason(s), "max failure reached");
    harvbk_schedule_free(s);
    assert_int_equal(entry_state(c, "hourly-20300101-0800"), HARVBK_STATE_ERROR);
    assert_int_equal(harvbk_backup_get(&in, c, "default", "hourly-20300101-0800"), 0);
    assert_string_equal(harvbk_backup_info_schedule(in), "hourly"); /* from the record */
    harvbk_backup_info_free(in);
    assert_int_equal(entry_state(c, "hourly-20300101-0900"), HARVBK_STATE_ERROR);
    assert_int_equal(pass(c, H(10), NULL, NULL, NULL), 0); /* suspended */
    int64_t nd = 0;
    assert_int_equal(harvbk_schedule_next_due(c, H(10), &nd), 0);
    assert_int_equal(nd, -1);

    /* resume: the failed entries go first, the count is reset */
    atomic_store(&g_mode, MODE_OK);
    assert_int_equal(harvbk_schedule_resume(c, "default", "hourly"), 0);
    const char *a2[] = {"hourly-20300101-0800", "hourly-20300101-0900", NULL};
    expect_entries(c, NULL, a2);
    s = get(c, "hourly");
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 0);
    assert_int_equal(harvbk_schedule_suspended(s), 0);
    harvbk_schedule_free(s);
    /* 10:00 was missed while suspended: one run at 11:00 for 11:00 */
    assert_int_equal(pass(c, H(11), st, code, ent), 1);
    assert_string_equal(ent[0], "hourly-20300101-1100");
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_READY);
    const char *p3[] = {"hourly-20300101-0400", "hourly-20300101-0700", "hourly-20300101-1100",
                        NULL};
    const char *a3[] = {"hourly-20300101-0200", "hourly-20300101-0300", NULL};
    expect_entries(c, p3, a3);

    /* a failure then a success: the failed entry is deleted by retention */
    atomic_store(&g_mode, MODE_FAIL);
    assert_int_equal(pass(c, H(12), st, code, ent), 1);
    atomic_store(&g_mode, MODE_OK);
    assert_int_equal(pass(c, H(13), st, code, ent), 1);
    const char *p4[] = {"hourly-20300101-0700", "hourly-20300101-1100", "hourly-20300101-1300",
                        NULL};
    const char *a4[] = {"hourly-20300101-1200", "hourly-20300101-0400", NULL};
    expect_entries(c, p4, a4);

    /* an entry a verify (or restore) reads is kept, and deleted next time */
    harvbk_op_options vo;
    harvbk_op_options_init(&vo, HARVBK_OP_OPTIONS_VERSION);
    vo.progress_cb = blocking_progress;
    harvbk_op *vop = NULL;
    atomic_store(&g_release, 0);
    atomic_store(&g_blocked, 0);
    assert_int_equal(harvbk_backup_verify(&vop, c, "default", "hourly-20300101-0700", &vo), 0);
    while (!atomic_load(&g_blocked))
        usleep(10000);
    assert_int_equal(pass(c, H(14), st, code, ent), 1);
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_READY);
    const char *p5[] = {"hourly-20300101-0700", "hourly-20300101-1100", "hourly-20300101-1300",
                        "hourly-20300101-1400", NULL};
    expect_entries(c, p5, NULL);
    atomic_store(&g_release, 1);
    assert_int_equal(harvbk_op_wait(vop), 0);
    harvbk_op_free(vop);
    assert_int_equal(pass(c, H(15), st, code, ent), 1);
    const char *p6[] = {"hourly-20300101-1300", "hourly-20300101-1400", "hourly-20300101-1500",
                        NULL};
    const char *a6[] = {"hourly-20300101-0700", "hourly-20300101-1100", NULL};
    expect_entries(c, p6, a6);
    env_close(&v);
}

static void *run_pass_thread(void *arg)
{
    harvbk_ctx *c = arg;
    pass(c, H(1), NULL, NULL, NULL);
    return NULL;
}

static void test_skip_and_deadline(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-skip");
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));
    o.deadline_s = 2;
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "s", &o), 0);
    atomic_store(&g_mode, MODE_SLOW); /* 32 reads of 300 ms: about 10 s */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_pass_thread, v.ctx), 0);
    while (!atomic_load(&g_blocked))
        usleep(10000);
    /* another context (another cluster controller on the same state dir) */
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, v.state, NULL), 0);
    int st[2], code[2];
    char ent[2][64];
    assert_int_equal(pass(c2, H(2), st, code, ent), 1);
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_SKIPPED);
    assert_string_equal(ent[0], "");
    /* the stuck run hits its 2 s deadline (it would take about 10 s) */
    pthread_join(th, NULL);
    /* cancelled, not waited out: fewer than the volume's 32 reads were made
     * (a count, not a wall-clock bound, so a loaded machine cannot fail it) */
    assert_true(atomic_load(&g_slow_reads) < 32);
    harvbk_schedule *s = get(v.ctx, "s");
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 1);
    size_t n = harvbk_schedule_history_count(s);
    assert_int_equal(n, 2);
    const char *entry = NULL, *err = NULL;
    int hs = 0, hc = 0;
    harvbk_schedule_history_at(s, 0, &entry, NULL, &hs, &hc, &err, NULL, NULL);
    assert_string_equal(entry, "s-20300101-0100");
    assert_int_equal(hs, HARVBK_SCHEDULE_RUN_ERROR);
    assert_int_equal(hc, HARVBK_E_TIMEOUT);
    assert_non_null(strstr(err, "deadline of 2 s"));
    harvbk_schedule_history_at(s, 1, &entry, NULL, &hs, NULL, NULL, NULL, NULL);
    assert_int_equal(hs, HARVBK_SCHEDULE_RUN_SKIPPED);
    harvbk_schedule_free(s);
    atomic_store(&g_release, 1);
    harvbk_ctx_free(c2);
    env_close(&v);
}

/* Two processes call run_due on one state directory at the same instant. */
static void test_two_processes(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-2proc");
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "a", &o), 0);
    o = sopts("vm2", "20 * * * *", H(0));
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "b", &o), 0);
    for (int round = 1; round <= 4; round++) {
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                char b;
                close(go[1]);
                harvbk_ctx *c = NULL;
                if (harvbk_ctx_open(&c, v.state, NULL) != 0)
                    _exit(3);
                if (read(go[0], &b, 1) != 0)
                    _exit(4);
                harvbk_schedule_run_options ro;
                harvbk_schedule_run_options_init(&ro, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
                ro.resolve_cb = resolve;
                harvbk_op *op = NULL;
                int rc = harvbk_schedule_run_due(&op, c, H(round) + 30 * 60000, &ro);
                if (op)
                    harvbk_op_wait(op);
                harvbk_op_free(op);
                harvbk_ctx_free(c);
                _exit(rc == 0 ? 0 : 5);
            }
        }
        close(go[0]);
        usleep(100000);
        close(go[1]); /* both start at once */
        for (int k = 0; k < 2; k++) {
            int ws = 0;
            waitpid(kids[k], &ws, 0);
            assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        }
        /* each schedule: exactly one history item for this firing, Ready */
        const char *names[] = {"a", "b"};
        for (int k = 0; k < 2; k++) {
            harvbk_schedule *s = get(v.ctx, names[k]);
            size_t n = harvbk_schedule_history_count(s);
            assert_int_equal(n, (size_t)round);
            int hs = 0;
            const char *entry = NULL;
            int64_t planned = 0;
            harvbk_schedule_history_at(s, n - 1, &entry, &planned, &hs, NULL, NULL, NULL, NULL);
            assert_int_equal(hs, HARVBK_SCHEDULE_RUN_READY);
            assert_int_equal(planned, H(round) + (k ? 20 * 60000 : 0));
            assert_int_equal(entry_state(v.ctx, entry), HARVBK_STATE_READY);
            harvbk_schedule_free(s);
        }
    }
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 8);
    harvbk_backup_list_free(l);
    env_close(&v);
}

/* A process killed -9 while its run writes: the next pass settles it. */
static void test_crash_mid_run(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-crash");
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "s", &o), 0);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t kid = fork();
    if (kid == 0) {
        close(ready[0]);
        atomic_store(&g_mode, MODE_BLOCK);
        harvbk_ctx *c = NULL;
        if (harvbk_ctx_open(&c, v.state, NULL) != 0)
            _exit(3);
        harvbk_schedule_run_options ro;
        harvbk_schedule_run_options_init(&ro, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
        ro.resolve_cb = resolve;
        harvbk_op *op = NULL;
        if (harvbk_schedule_run_due(&op, c, H(1), &ro) != 0 || !op)
            _exit(4);
        while (!atomic_load(&g_blocked))
            usleep(10000);
        if (write(ready[1], "x", 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    close(ready[1]);
    char b;
    assert_int_equal(read(ready[0], &b, 1), 1);
    close(ready[0]);
    /* meanwhile: the firing is InProgress, listed as an operation */
    harvbk_op_list *ol = NULL;
    assert_int_equal(harvbk_op_list_get(&ol, v.ctx), 0);
    assert_true(harvbk_op_list_count(ol) >= 2); /* the pass and its backup */
    int64_t pid = 0;
    const char *kind = NULL;
    bool saw_backup = false;
    for (size_t i = 0; i < harvbk_op_list_count(ol); i++) {
        harvbk_op_list_at(ol, i, &kind, NULL, &pid, NULL);
        assert_int_equal(pid, kid);
        saw_backup |= strcmp(kind, "backup") == 0;
    }
    assert_true(saw_backup);
    harvbk_op_list_free(ol);
    assert_refused(v.ctx, harvbk_maintenance_enter(v.ctx, 0), HARVBK_E_BUSY, "backup default/s-");
    int active = 1;
    assert_int_equal(harvbk_maintenance_status(v.ctx, &active, NULL), 0);
    assert_int_equal(active, 0);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    assert_int_equal(harvbk_op_list_get(&ol, v.ctx), 0);
    assert_int_equal(harvbk_op_list_count(ol), 0); /* the dead process's are gone */
    harvbk_op_list_free(ol);
    /* the next open settles the interrupted run, before any pass */
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, v.state, NULL), 0);
    harvbk_schedule *s0 = get(c2, "s");
    int s0st = 0, s0code = 0;
    assert_int_equal(harvbk_schedule_history_count(s0), 1);
    harvbk_schedule_history_at(s0, 0, NULL, NULL, &s0st, &s0code, NULL, NULL, NULL);
    assert_int_equal(s0st, HARVBK_SCHEDULE_RUN_ERROR);
    assert_int_equal(s0code, HARVBK_E_INTERRUPTED);
    assert_int_equal(harvbk_schedule_consecutive_failures(s0), 1);
    harvbk_schedule_free(s0);
    harvbk_ctx_free(c2);

    int st[2], code[2];
    char ent[2][64];
    assert_int_equal(pass(v.ctx, H(2), st, code, ent), 1);
    assert_int_equal(st[0], HARVBK_SCHEDULE_RUN_READY);
    harvbk_schedule *s = get(v.ctx, "s");
    assert_int_equal(harvbk_schedule_history_count(s), 2);
    int hs = 0, hc = 0;
    harvbk_schedule_history_at(s, 0, NULL, NULL, &hs, &hc, NULL, NULL, NULL);
    assert_int_equal(hs, HARVBK_SCHEDULE_RUN_ERROR);
    assert_int_equal(hc, HARVBK_E_INTERRUPTED);
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 0); /* the success reset it */
    harvbk_schedule_free(s);
    /* the interrupted entry was deleted by the success's retention */
    assert_int_equal(entry_state(v.ctx, "s-20300101-0100"), HARVBK_E_NOTFOUND);
    env_close(&v);
}

static void test_maintenance(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-maint");
    harvbk_ctx *c = v.ctx;
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", H(0));
    assert_int_equal(harvbk_schedule_create(c, "default", "a", &o), 0);
    o = sopts("vm2", "0 */2 * * *", H(0));
    assert_int_equal(harvbk_schedule_create(c, "default", "b", &o), 0);
    assert_int_equal(harvbk_schedule_suspend(c, "default", "b"), 0); /* by the user */

    /* a backup of this process runs: enter waits for it */
    atomic_store(&g_mode, MODE_BLOCK);
    harvbk_vm *vm = NULL;
    resolve(&vm, "default", "vm3", NULL);
    harvbk_op *bop = NULL;
    assert_int_equal(harvbk_backup_create(&bop, c, vm, "manual", NULL), 0);
    while (!atomic_load(&g_blocked))
        usleep(10000);
    assert_refused(c, harvbk_maintenance_enter(c, 1), HARVBK_E_BUSY, "manual");
    atomic_store(&g_release, 1);
    assert_int_equal(harvbk_op_wait(bop), 0);
    harvbk_op_free(bop);
    atomic_store(&g_mode, MODE_OK);
    assert_int_equal(harvbk_maintenance_enter(c, 5), 0);
    int active = 0;
    int64_t since = 0;
    assert_int_equal(harvbk_maintenance_status(c, &active, &since), 0);
    assert_int_equal(active, 1);
    assert_true(since > 0);
    harvbk_schedule *s = get(c, "a");
    assert_int_equal(harvbk_schedule_suspended(s), 1);
    assert_string_equal(harvbk_schedule_suspend_reason(s), "maintenance");
    harvbk_schedule_free(s);

    /* new work is refused, in another context too; reads and verify work */
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, v.state, NULL), 0);
    bop = NULL;
    assert_refused(c2, harvbk_backup_create(&bop, c2, vm, "m2", NULL), HARVBK_E_MAINTENANCE,
                   "maintenance mode");
    assert_refused(c2, harvbk_snapshot_create(&bop, c2, vm, "s2", NULL), HARVBK_E_MAINTENANCE,
                   NULL);
    assert_refused(c2, harvbk_backup_delete(c2, "default", "manual"), HARVBK_E_MAINTENANCE, NULL);
    harvbk_restore_options ro;
    harvbk_restore_options_init(&ro, HARVBK_RESTORE_OPTIONS_VERSION);
    char *dir = tu_path2(v.root, "restored");
    mkdir(dir, 0755);
    ro.new_vm_namespace = "default";
    ro.new_vm_name = "copy";
    ro.target_dir = dir;
    assert_refused(c2, harvbk_restore_create(&bop, c2, "default", "manual", &ro),
                   HARVBK_E_MAINTENANCE, NULL);
    harvbk_op *gop = NULL;
    assert_refused(c2, harvbk_gc(&gop, c2, NULL), HARVBK_E_MAINTENANCE, NULL);
    harvbk_op *pop = NULL;
    assert_refused(c2, harvbk_schedule_run_due(&pop, c2, H(5), NULL), HARVBK_E_MAINTENANCE,
                   NULL);
    harvbk_op *vop = NULL;
    assert_int_equal(harvbk_backup_verify(&vop, c2, "default", "manual", NULL), 0);
    assert_int_equal(harvbk_op_wait(vop), 0);
    harvbk_op_free(vop);
    assert_int_equal(entry_state(c2, "manual"), HARVBK_STATE_READY);
    char *json = NULL;
    assert_int_equal(harvbk_maintenance_status_json(c2, &json), 0);
    assert_non_null(strstr(json, "\"active\":true"));
    assert_non_null(strstr(json, "\"suspended_schedules\":[\"default/a\"]"));
    assert_non_null(strstr(json, "\"operations\":[]"));
    harvbk_string_free(json);

    /* exit resumes exactly what enter suspended */
    assert_int_equal(harvbk_maintenance_exit(c2), 0);
    s = get(c, "a");
    assert_int_equal(harvbk_schedule_suspended(s), 0);
    harvbk_schedule_free(s);
    s = get(c, "b");
    assert_int_equal(harvbk_schedule_suspended(s), 1);
    assert_string_equal(harvbk_schedule_suspend_reason(s), "suspended by user");
    harvbk_schedule_free(s);
    assert_int_equal(harvbk_backup_delete(c2, "default", "manual"), 0);
    assert_int_equal(harvbk_maintenance_exit(c2), 0); /* a no-op now */
    harvbk_vm_free(vm);
    free(dir);
    harvbk_ctx_free(c2);
    env_close(&v);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The runner thread on the system clock: a firing already due runs at once;
 * stopping it mid-run cancels the run, recorded as Cancelled (no failure). */
/* The pass's progress sums the bytes of all its runs, also of runs that ended
 * (and were freed) between two reports: the last call says 3 disks of 3. */
typedef struct pass_progress {
    atomic_ullong done, total;
    atomic_int calls;
} pass_progress;

static int record_progress(uint64_t done, uint64_t total, void *payload)
{
    pass_progress *p = payload;
    atomic_store(&p->done, done);
    atomic_store(&p->total, total);
    atomic_fetch_add(&p->calls, 1);
    return 0;
}

static void test_pass_progress(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-progress");
    const char *vms[] = {"vm1", "vm2", "vm3"}, *crons[] = {"0 * * * *", "20 * * * *", "40 * * * *"};
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i + 1);
        harvbk_schedule_options o = sopts(vms[i], crons[i], H(0));
        o.retain = 3;
        assert_int_equal(harvbk_schedule_create(v.ctx, "default", name, &o), 0);
    }
    pass_progress pp;
    atomic_init(&pp.done, 0);
    atomic_init(&pp.total, 0);
    atomic_init(&pp.calls, 0);
    harvbk_schedule_run_options ro;
    harvbk_schedule_run_options_init(&ro, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
    ro.resolve_cb = resolve;
    ro.max_parallel = 1; /* one after the other: each ends before the next starts */
    ro.progress_cb = record_progress;
    ro.progress_payload = &pp;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_schedule_run_due(&op, v.ctx, H(1) + 50 * 60000, &ro), 0);
    assert_non_null(op);
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_schedule_run_count(op), 3);
    for (size_t i = 0; i < 3; i++) {
        int st = 0;
        assert_int_equal(harvbk_schedule_run_at(op, i, NULL, NULL, NULL, NULL, &st, NULL, NULL), 0);
        assert_int_equal(st, HARVBK_SCHEDULE_RUN_READY);
    }
    uint64_t d = 0, t = 0;
    assert_int_equal(harvbk_op_progress(op, &d, &t), 0);
    harvbk_op_free(op);
    assert_true(atomic_load(&pp.calls) >= 1);
    assert_int_equal(atomic_load(&pp.done), 3ull * DISK);
    assert_int_equal(atomic_load(&pp.total), 3ull * DISK);
    assert_int_equal(d, 3ull * DISK);
    assert_int_equal(t, 3ull * DISK);
    env_close(&v);
}

static void test_runner(void **state)
{
    (void)state;
    env v;
    env_open(&v, "sched-runner");
    int64_t now = wall_ms();
    harvbk_schedule_options o = sopts("vm1", "0 * * * *", now - 2 * 3600 * 1000LL);
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "r", &o), 0);
    harvbk_schedule_run_options ro;
    harvbk_schedule_run_options_init(&ro, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
    ro.resolve_cb = resolve;
    harvbk_scheduler *sch = NULL;
    assert_int_equal(harvbk_scheduler_start(&sch, v.ctx, &ro), 0);
    harvbk_schedule *s = NULL;
    int hs = 0;
    for (int i = 0; i < 300; i++) { /* at most 30 s */
        s = get(v.ctx, "r");
        hs = 0;
        if (harvbk_schedule_history_count(s) == 1)
            harvbk_schedule_history_at(s, 0, NULL, NULL, &hs, NULL, NULL, NULL, NULL);
        harvbk_schedule_free(s);
        if (hs == HARVBK_SCHEDULE_RUN_READY)
            break;
        usleep(100000);
    }
    assert_int_equal(hs, HARVBK_SCHEDULE_RUN_READY);
    harvbk_scheduler_stop(sch);
    /* r is done with: suspended, so that it cannot fire again (real clock
     * crossing an hour) and be the run the next part sees blocked */
    assert_int_equal(harvbk_schedule_suspend(v.ctx, "default", "r"), 0);

    /* another schedule, due at once, stopped while it runs */
    o = sopts("vm2", "30 * * * *", now - 2 * 3600 * 1000LL);
    assert_int_equal(harvbk_schedule_create(v.ctx, "default", "r2", &o), 0);
    atomic_store(&g_mode, MODE_SLOW); /* the run would take about 10 s */
    atomic_store(&g_blocked, 0);
    assert_int_equal(harvbk_scheduler_start(&sch, v.ctx, &ro), 0);
    for (int i = 0; i < 300 && !atomic_load(&g_blocked); i++)
        usleep(100000);
    assert_true(atomic_load(&g_blocked));
    harvbk_scheduler_stop(sch);
    s = get(v.ctx, "r2");
    assert_int_equal(harvbk_schedule_history_count(s), 1);
    harvbk_schedule_history_at(s, 0, NULL, NULL, &hs, NULL, NULL, NULL, NULL);
    assert_int_equal(hs, HARVBK_SCHEDULE_RUN_CANCELLED);
    assert_int_equal(harvbk_schedule_consecutive_failures(s), 0);
    harvbk_schedule_free(s);
    env_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),      cmocka_unit_test(test_target_needed),
        cmocka_unit_test(test_life),            cmocka_unit_test(test_skip_and_deadline),
        cmocka_unit_test(test_two_processes),   cmocka_unit_test(test_crash_mid_run),
        cmocka_unit_test(test_maintenance),     cmocka_unit_test(test_runner),
        cmocka_unit_test(test_pass_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
