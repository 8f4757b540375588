/*
 * test_e2e_schedule.c - schedules and maintenance mode through the harvbk
 * CLI, on a file:// target in a temporary state directory:
 *  - `schedule create` refusals (exit 1, the library's error name on stderr)
 *    and usage errors (exit 2); `show`/`list` in text and JSON;
 *  - `schedule run-due --now ...` at fake times: nothing before the first
 *    firing, a Ready backup NAME-YYYYMMDD-HHMM at it, retention of the newest
 *    N, missed firings counted, suspend/resume, failed runs (exit 1) and the
 *    automatic suspension after max failure;
 *  - `maintenance enter/status/exit`: new operations refused with
 *    HARVBK_E_MAINTENANCE, schedules suspended with reason "maintenance" and
 *    resumed on exit; entering refused (HARVBK_E_BUSY) while a backup runs,
 *    or waiting for it with --wait;
 *  - `harvbk run` fires a due schedule and stops cleanly on SIGTERM/SIGINT.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    e2e_world w;
    char *disk1, *disk2;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "schedule", "", 65536);
    f->disk1 = e2e_path(f->w.work, "disk1.img");
    f->disk2 = e2e_path(f->w.work, "disk2.img");
    e2e_make_random(f->disk1, 256 * E2E_KiB, 1);
    e2e_make_random(f->disk2, 256 * E2E_KiB, 2);
    char *d1 = e2e_strf("root=%s", f->disk1), *d2 = e2e_strf("root=%s", f->disk2);
    e2e_ok(f->w.state, "vm", "add", "default/vm1", "--disk", d1, NULL);
    e2e_ok(f->w.state, "vm", "add", "default/vm2", "--disk", d2, NULL);
    e2e_ok(f->w.state, "vm", "add", "default/vm3", "--disk", d2, NULL);
    e2e_ok(f->w.state, "vm", "add", "other/vm9", "--disk", d2, NULL);
    free(d1);
    free(d2);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    e2e_kill_children();
    if (f) {
        e2e_world_free(&f->w);
        free(f->disk1);
        free(f->disk2);
        free(f);
    }
    return 0;
}

/* ---------------------------------------------------------------- helpers */

/* Run; assert exit 1 (a library refusal) with `name` on a single stderr line. */
static void refused(const char *state, const char *name, const char *const *args)
{
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    e2e_assert_exit(&r, 1);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, name);
    e2e_res_free(&r);
}

static void usage_error(const char *state, const char *const *args)
{
    e2e_res r;
    e2e_runv(&r, state, 0, args);
    e2e_assert_exit(&r, 2);
    e2e_assert_err_has(&r, "--help");
    e2e_res_free(&r);
}

/* `schedule show NAME --json`, asserted to succeed. */
static cJSON *sched_show(const char *state, const char *name)
{
    e2e_res r;
    e2e_run(&r, state, "schedule", "show", name, "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    if (!j || !cJSON_IsObject(j)) {
        e2e_res_print(&r);
        fail_msg("schedule show --json printed no JSON object");
    }
    e2e_res_free(&r);
    return j;
}

static bool json_bool(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v))
        fail_msg("JSON key '%s' is not a boolean", key);
    return cJSON_IsTrue(v);
}

static const cJSON *json_item(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        fail_msg("JSON key '%s' is missing", key);
    return v;
}

/* `schedule run-due --now NOW`: its run, exit code asserted. */
static void run_due(const char *state, const char *now, int want_exit, e2e_res *out)
{
    e2e_res r;
    e2e_run(&r, state, "schedule", "run-due", "--now", now, NULL);
    e2e_assert_exit(&r, want_exit);
    if (out)
        *out = r;
    else
        e2e_res_free(&r);
}

/* Backup NS/NAME exists (any state)? */
static bool backup_exists(const char *state, const char *ns_name)
{
    e2e_res r;
    cJSON *j = e2e_show_json(state, ns_name, &r);
    bool ok = j != NULL;
    if (!ok && !e2e_icontains(r.err, "HARVBK_E_NOTFOUND") && !e2e_icontains(r.err, "not found")) {
        e2e_res_print(&r);
        fail_msg("backup show %s failed otherwise than 'not found'", ns_name);
    }
    cJSON_Delete(j);
    e2e_res_free(&r);
    return ok;
}

static size_t backup_count(const char *state)
{
    cJSON *l = e2e_list_json(state);
    size_t n = (size_t)cJSON_GetArraySize(l);
    cJSON_Delete(l);
    return n;
}

static void assert_backup_ready(const char *state, const char *ns_name, const char *sched)
{
    cJSON *j = e2e_show_json(state, ns_name, NULL);
    if (!j)
        fail_msg("backup %s does not exist", ns_name);
    assert_string_equal(e2e_json_str(j, "state"), "Ready");
    const char *s = e2e_json_str(j, "schedule");
    assert_non_null(s);
    assert_string_equal(s, sched);
    cJSON_Delete(j);
}

/* History item i of a `schedule show --json`. */
static const cJSON *hist_at(const cJSON *j, int i)
{
    const cJSON *h = json_item(j, "history");
    assert_true(cJSON_IsArray(h));
    const cJSON *it = cJSON_GetArrayItem(h, i);
    if (!it)
        fail_msg("history has no item %d (%d items)", i, cJSON_GetArraySize(h));
    return it;
}

/* ------------------------------------------------------------------ tests */

static void test_create_refusals_show_list(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
#define A(...) ((const char *const[]){"schedule", "create", __VA_ARGS__, NULL})
    refused(S, "HARVBK_E_CRON", A("s1", "--type", "backup", "--vm", "default/vm1", "--cron",
                                  "61 * * * *"));
    refused(S, "HARVBK_E_CRON", A("s1", "--type", "backup", "--vm", "default/vm1", "--cron",
                                  "0 0 30 2 *"));
    refused(S, "HARVBK_E_INTERVAL", A("s1", "--type", "backup", "--vm", "default/vm1",
                                      "--cron", "*/30 * * * *"));
    refused(S, "HARVBK_E_RETAIN", A("s1", "--type", "backup", "--vm", "default/vm1", "--cron",
                                    "0 * * * *", "--retain", "1"));
    refused(S, "HARVBK_E_RETAIN", A("s1", "--type", "backup", "--vm", "default/vm1", "--cron",
                                    "0 * * * *", "--retain", "0"));
    refused(S, "HARVBK_E_RETAIN", A("s1", "--type", "backup", "--vm", "default/vm1", "--cron",
                                    "0 * * * *", "--retain", "251"));
    refused(S, "HARVBK_E_MAX_FAILURE", A("s1", "--type", "backup", "--vm", "default/vm1",
                                         "--cron", "0 * * * *", "--max-failure", "8",
                                         "--retain", "8"));
    refused(S, "HARVBK_E_MAX_FAILURE", A("s1", "--type", "backup", "--vm", "default/vm1",
                                         "--cron", "0 * * * *", "--max-failure", "1"));
    refused(S, "HARVBK_E_NOTFOUND", A("s1", "--type", "backup", "--vm", "default/nosuchvm",
                                      "--cron", "0 * * * *"));
    /* the VM must be in the schedule's namespace */
    refused(S, "HARVBK_E_INVALID", A("s1", "--type", "backup", "--vm", "other/vm9", "--cron",
                                     "0 * * * *"));
    /* usage errors: exit 2 */
    usage_error(S, A("s1", "--vm", "default/vm1", "--cron", "0 * * * *"));
    usage_error(S, A("s1", "--type", "tape", "--vm", "default/vm1", "--cron", "0 * * * *"));
    usage_error(S, A("s1", "--type", "backup", "--cron", "0 * * * *"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1"));
    usage_error(S, A("S_1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *"));
    usage_error(S, A("a-very-long-schedule-name-that-is-fifty-characters", "--type", "backup",
                     "--vm", "default/vm1", "--cron", "0 * * * *"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *",
                     "--retain", "x"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *",
                     "--now", "2030-01-01 01:00:00"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *",
                     "--now", "2030-02-30T01:00:00Z"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *",
                     "--now", "2030-01-01T01:00:00+02:00"));
    usage_error(S, A("s1", "--type", "backup", "--vm", "default/vm1", "--cron", "0 * * * *",
                     "--deadline", "0"));
    /* nothing was created */
    e2e_res r;
    e2e_run(&r, S, "schedule", "list", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *l = cJSON_Parse(r.out);
    assert_true(cJSON_IsArray(l));
    assert_int_equal(cJSON_GetArraySize(l), 0);
    cJSON_Delete(l);
    e2e_res_free(&r);

    e2e_run(&r, S, "schedule", "create", "s1", "--type", "backup", "--vm", "default/vm1",
            "--cron", "0 * * * *", "--retain", "5", "--max-failure", "3", "--deadline", "600",
            "--now", "2030-01-01T00:00:00Z", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "default/s1"));
    assert_non_null(strstr(r.out, "2030-01-01T01:00:00Z")); /* its next run */
    e2e_res_free(&r);
    /* one schedule per VM; names are unique */
    refused(S, "HARVBK_E_VM_SCHEDULED", A("s1b", "--type", "snapshot", "--vm", "vm1", "--cron",
                                          "30 * * * *"));
    refused(S, "HARVBK_E_EXISTS", A("default/s1", "--type", "backup", "--vm", "default/vm2",
                                    "--cron", "30 * * * *"));
    /* the same interval less than 10 minutes apart */
    refused(S, "HARVBK_E_SCHEDULE_CONFLICT", A("s3", "--type", "backup", "--vm", "vm3",
                                               "--cron", "5 * * * *", "--now",
                                               "2030-01-01T00:00:00Z"));
    /* --skip-interval-check: accepted and recorded */
    e2e_ok(S, "schedule", "create", "default/s2", "--type", "snapshot", "--vm", "default/vm2",
           "--cron", "*/30 * * * *", "--skip-interval-check", "--now", "2030-01-01T00:00:00Z",
           NULL);
#undef A

    cJSON *j = sched_show(S, "s1"); /* NAME alone: namespace default */
    static const char *const keys[] = {
        "name", "namespace", "type", "vm", "cron", "retain", "max_failure", "suspended",
        "suspend_reason", "consecutive_failures", "next_run", "history", "skip_interval_check"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        json_item(j, keys[i]);
    assert_string_equal(e2e_json_str(j, "name"), "s1");
    assert_string_equal(e2e_json_str(j, "namespace"), "default");
    assert_string_equal(e2e_json_str(j, "type"), "backup");
    assert_string_equal(e2e_json_str(j, "vm"), "default/vm1");
    assert_string_equal(e2e_json_str(j, "cron"), "0 * * * *");
    assert_int_equal(e2e_json_u64(j, "retain"), 5);
    assert_int_equal(e2e_json_u64(j, "max_failure"), 3);
    assert_int_equal(e2e_json_u64(j, "deadline_s"), 600);
    assert_int_equal(e2e_json_u64(j, "consecutive_failures"), 0);
    assert_false(json_bool(j, "suspended"));
    assert_false(json_bool(j, "skip_interval_check"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "");
    assert_string_equal(e2e_json_str(j, "next_run"), "2030-01-01T01:00:00Z");
    assert_string_equal(e2e_json_str(j, "created"), "2030-01-01T00:00:00Z");
    assert_int_equal(cJSON_GetArraySize(json_item(j, "history")), 0);
    cJSON_Delete(j);
    j = sched_show(S, "default/s2");
    assert_true(json_bool(j, "skip_interval_check"));
    assert_string_equal(e2e_json_str(j, "type"), "snapshot");
    assert_string_equal(e2e_json_str(j, "cron"), "*/30 * * * *");
    assert_string_equal(e2e_json_str(j, "next_run"), "2030-01-01T00:30:00Z");
    cJSON_Delete(j);

    /* list --json: both, sorted */
    e2e_run(&r, S, "schedule", "list", "--json", NULL);
    e2e_assert_ok(&r);
    l = cJSON_Parse(r.out);
    assert_true(cJSON_IsArray(l));
    assert_int_equal(cJSON_GetArraySize(l), 2);
    assert_string_equal(e2e_json_str(cJSON_GetArrayItem(l, 0), "name"), "s1");
    assert_string_equal(e2e_json_str(cJSON_GetArrayItem(l, 1), "name"), "s2");
    cJSON_Delete(l);
    e2e_res_free(&r);
    /* text forms */
    e2e_run(&r, S, "schedule", "list", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "default/s1"));
    assert_non_null(strstr(r.out, "default/s2"));
    assert_non_null(strstr(r.out, "2030-01-01T01:00:00Z"));
    e2e_res_free(&r);
    e2e_run(&r, S, "schedule", "show", "s1", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "next run:"));
    assert_true(e2e_icontains(r.out, "default/vm1"));
    assert_true(e2e_icontains(r.out, "active"));
    e2e_res_free(&r);

    /* edit: a snapshot schedule too; refusals as at create */
    e2e_ok(S, "schedule", "edit", "s2", "--retain", "6", NULL);
    j = sched_show(S, "s2");
    assert_int_equal(e2e_json_u64(j, "retain"), 6);
    cJSON_Delete(j);
    refused(S, "HARVBK_E_RETAIN",
            (const char *const[]){"schedule", "edit", "s1", "--retain", "300", NULL});
    refused(S, "HARVBK_E_INTERVAL",
            (const char *const[]){"schedule", "edit", "s1", "--cron", "*/20 * * * *", NULL});
    refused(S, "HARVBK_E_NOTFOUND",
            (const char *const[]){"schedule", "edit", "nope", "--retain", "5", NULL});
    usage_error(S, (const char *const[]){"schedule", "edit", "s1", NULL});
    e2e_ok(S, "schedule", "edit", "s1", "--cron", "15 */2 * * *", "--deadline", "next", NULL);
    j = sched_show(S, "s1");
    assert_string_equal(e2e_json_str(j, "cron"), "15 */2 * * *");
    assert_true(cJSON_IsNull(json_item(j, "deadline_s")));
    cJSON_Delete(j);

    /* delete */
    e2e_ok(S, "schedule", "delete", "s2", NULL);
    refused(S, "HARVBK_E_NOTFOUND", (const char *const[]){"schedule", "show", "s2", NULL});
    refused(S, "HARVBK_E_NOTFOUND", (const char *const[]){"schedule", "delete", "s2", NULL});
}

static void test_run_due_at_fake_times(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
    /* retain 3 (retain 2 admits no max failure: it must be >= 2 and < retain) */
    e2e_ok(S, "schedule", "create", "hourly", "--type", "backup", "--vm", "default/vm1",
           "--cron", "0 * * * *", "--retain", "3", "--max-failure", "2", "--now",
           "2030-01-01T00:00:00Z", NULL);

    /* before the first firing: nothing */
    e2e_res r;
    run_due(S, "2030-01-01T00:59:00Z", 0, &r);
    assert_true(e2e_icontains(r.out, "no schedule is due"));
    e2e_res_free(&r);
    assert_int_equal(backup_count(S), 0);

    /* at it: backup hourly-20300101-0100, Ready, made by the schedule */
    run_due(S, "2030-01-01T01:00:00Z", 0, &r);
    assert_int_equal(e2e_line_count(r.out), 1);
    assert_non_null(strstr(r.out, "default/hourly"));
    assert_non_null(strstr(r.out, "hourly-20300101-0100"));
    assert_non_null(strstr(r.out, "Ready"));
    e2e_res_free(&r);
    assert_backup_ready(S, "default/hourly-20300101-0100", "hourly");
    /* the same time again: handled already */
    run_due(S, "2030-01-01T01:30:00Z", 0, &r);
    assert_true(e2e_icontains(r.out, "no schedule is due"));
    e2e_res_free(&r);
    assert_int_equal(backup_count(S), 1);

    /* three more firings: the oldest goes (retain 3) */
    run_due(S, "2030-01-01T02:00:00Z", 0, NULL);
    run_due(S, "2030-01-01T03:00:00.500Z", 0, NULL);
    assert_true(backup_exists(S, "default/hourly-20300101-0100"));
    run_due(S, "2030-01-01T04:00:00+00:00", 0, NULL);
    assert_false(backup_exists(S, "default/hourly-20300101-0100"));
    assert_backup_ready(S, "default/hourly-20300101-0200", "hourly");
    assert_backup_ready(S, "default/hourly-20300101-0300", "hourly");
    assert_backup_ready(S, "default/hourly-20300101-0400", "hourly");
    assert_int_equal(backup_count(S), 3);

    cJSON *j = sched_show(S, "hourly");
    assert_int_equal(cJSON_GetArraySize(json_item(j, "history")), 4);
    static const char *const entries[] = {"hourly-20300101-0100", "hourly-20300101-0200",
                                          "hourly-20300101-0300", "hourly-20300101-0400"};
    for (int i = 0; i < 4; i++) {
        const cJSON *it = hist_at(j, i);
        assert_string_equal(e2e_json_str(it, "entry"), entries[i]);
        assert_string_equal(e2e_json_str(it, "state"), "Ready");
        assert_string_equal(e2e_json_str(it, "error"), "");
        char planned[32];
        snprintf(planned, sizeof planned, "2030-01-01T0%d:00:00Z", i + 1);
        assert_string_equal(e2e_json_str(it, "planned"), planned);
        assert_int_equal(json_bool(it, "deleted"), i == 0);
    }
    assert_string_equal(e2e_json_str(j, "last_run"), "2030-01-01T04:00:00Z");
    assert_string_equal(e2e_json_str(j, "next_run"), "2030-01-01T05:00:00Z");
    cJSON_Delete(j);

    /* downtime: only the latest firing runs, the missed ones are counted */
    run_due(S, "2030-01-01T07:10:00Z", 0, &r);
    assert_non_null(strstr(r.out, "hourly-20300101-0700"));
    e2e_res_free(&r);
    assert_false(backup_exists(S, "default/hourly-20300101-0500"));
    assert_false(backup_exists(S, "default/hourly-20300101-0200"));
    j = sched_show(S, "hourly");
    const cJSON *h = json_item(j, "history");
    const cJSON *last = cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1);
    assert_string_equal(e2e_json_str(last, "entry"), "hourly-20300101-0700");
    assert_int_equal(e2e_json_u64(last, "missed"), 2);
    cJSON_Delete(j);

    /* suspended: run-due does nothing */
    e2e_ok(S, "schedule", "suspend", "hourly", NULL);
    j = sched_show(S, "hourly");
    assert_true(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "suspended by user");
    assert_true(cJSON_IsNull(json_item(j, "next_run")));
    cJSON_Delete(j);
    e2e_run(&r, S, "schedule", "show", "hourly", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "suspended (suspended by user)"));
    e2e_res_free(&r);
    run_due(S, "2030-01-01T08:00:00Z", 0, &r);
    assert_true(e2e_icontains(r.out, "no schedule is due"));
    e2e_res_free(&r);
    assert_false(backup_exists(S, "default/hourly-20300101-0800"));
    e2e_ok(S, "schedule", "suspend", "hourly", NULL); /* a no-op */
    e2e_ok(S, "schedule", "resume", "hourly", NULL);
    j = sched_show(S, "hourly");
    assert_false(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "");
    cJSON_Delete(j);
    run_due(S, "2030-01-01T08:00:00Z", 0, NULL);
    assert_backup_ready(S, "default/hourly-20300101-0800", "hourly");

    /* failures: the disk is gone; exit 1, the run's error on stderr; after
     * max failure (2) the schedule suspends itself */
    char *moved = e2e_strf("%s.away", f->disk1);
    assert_int_equal(rename(f->disk1, moved), 0);
    run_due(S, "2030-01-01T09:00:00Z", 1, &r);
    assert_non_null(strstr(r.out, "hourly-20300101-0900"));
    assert_non_null(strstr(r.out, "Error"));
    assert_non_null(strstr(r.out, "HARVBK_E_"));
    e2e_assert_err_has(&r, "hourly-20300101-0900");
    e2e_res_free(&r);
    j = sched_show(S, "hourly");
    assert_int_equal(e2e_json_u64(j, "consecutive_failures"), 1);
    assert_false(json_bool(j, "suspended"));
    h = json_item(j, "history");
    last = cJSON_GetArrayItem(h, cJSON_GetArraySize(h) - 1);
    assert_string_equal(e2e_json_str(last, "state"), "Error");
    assert_true(strlen(e2e_json_str(last, "error")) > 0);
    cJSON_Delete(j);
    run_due(S, "2030-01-01T10:00:00Z", 1, NULL);
    j = sched_show(S, "hourly");
    assert_int_equal(e2e_json_u64(j, "consecutive_failures"), 2);
    assert_true(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "max failure reached");
    cJSON_Delete(j);
    run_due(S, "2030-01-01T11:00:00Z", 0, NULL); /* suspended: nothing */
    /* resuming deletes the failed runs' entries and resets the count */
    assert_int_equal(rename(moved, f->disk1), 0);
    free(moved);
    e2e_ok(S, "schedule", "resume", "hourly", NULL);
    j = sched_show(S, "hourly");
    assert_int_equal(e2e_json_u64(j, "consecutive_failures"), 0);
    assert_false(json_bool(j, "suspended"));
    cJSON_Delete(j);
    assert_false(backup_exists(S, "default/hourly-20300101-0900"));
    assert_false(backup_exists(S, "default/hourly-20300101-1000"));
    run_due(S, "2030-01-01T12:00:00Z", 0, NULL);
    assert_backup_ready(S, "default/hourly-20300101-1200", "hourly");
    assert_backup_ready(S, "default/hourly-20300101-0800", "hourly");
    assert_backup_ready(S, "default/hourly-20300101-0700", "hourly");
    assert_false(backup_exists(S, "default/hourly-20300101-0400"));

    /* --now must be an RFC 3339 UTC time */
    usage_error(S, (const char *const[]){"schedule", "run-due", "--now", "tomorrow", NULL});
    usage_error(S, (const char *const[]){"schedule", "run-due", "--now", "2030-13-01T00:00:00Z",
                                         NULL});
    usage_error(S, (const char *const[]){"schedule", "run-due", "--now",
                                         "2030-01-01T00:00:00", NULL});
}

static void test_snapshot_schedule(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
    e2e_ok(S, "schedule", "create", "snaps", "--type", "snapshot", "--vm", "vm2", "--cron",
           "@daily", "--now", "2030-01-01T12:00:00Z", NULL);
    run_due(S, "2030-01-02T00:00:00Z", 0, NULL);
    e2e_res r;
    e2e_run(&r, S, "snapshot", "show", "default/snaps-20300102-0000", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_string_equal(e2e_json_str(j, "state"), "Ready");
    cJSON_Delete(j);
    e2e_res_free(&r);
    assert_int_equal(backup_count(S), 0); /* nothing in the target */
}

static void test_maintenance_mode(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
    e2e_ok(S, "schedule", "create", "m1", "--type", "backup", "--vm", "vm1", "--cron",
           "0 * * * *", "--now", "2030-01-01T00:00:00Z", NULL);
    e2e_ok(S, "schedule", "create", "m2", "--type", "backup", "--vm", "vm2", "--cron",
           "30 * * * *", "--now", "2030-01-01T00:00:00Z", NULL);
    e2e_ok(S, "schedule", "suspend", "m2", NULL); /* suspended by the user: stays so */

    e2e_res r;
    e2e_run(&r, S, "maintenance", "status", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_false(json_bool(j, "active"));
    assert_true(cJSON_IsNull(json_item(j, "since")));
    assert_true(cJSON_IsArray(json_item(j, "suspended_schedules")));
    assert_int_equal(cJSON_GetArraySize(json_item(j, "suspended_schedules")), 0);
    assert_true(cJSON_IsArray(json_item(j, "operations")));
    assert_int_equal(cJSON_GetArraySize(json_item(j, "operations")), 0);
    cJSON_Delete(j);
    e2e_res_free(&r);
    e2e_run(&r, S, "maintenance", "status", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "not active"));
    e2e_res_free(&r);

    e2e_run(&r, S, "maintenance", "enter", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "default/m1"));
    e2e_res_free(&r);

    e2e_run(&r, S, "maintenance", "status", "--json", NULL);
    e2e_assert_ok(&r);
    j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_true(json_bool(j, "active"));
    assert_true(cJSON_IsString(json_item(j, "since")));
    const cJSON *sus = json_item(j, "suspended_schedules");
    assert_int_equal(cJSON_GetArraySize(sus), 1);
    assert_string_equal(cJSON_GetArrayItem(sus, 0)->valuestring, "default/m1");
    cJSON_Delete(j);
    e2e_res_free(&r);
    e2e_run(&r, S, "maintenance", "status", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "active since"));
    assert_non_null(strstr(r.out, "default/m1"));
    e2e_res_free(&r);

    /* new operations are refused */
    refused(S, "HARVBK_E_MAINTENANCE", (const char *const[]){"backup", "create", "default/vm1",
                                                            "--name", "manual", NULL});
    refused(S, "HARVBK_E_MAINTENANCE", (const char *const[]){"snapshot", "create", "default/vm1",
                                                            "--name", "manual", NULL});
    refused(S, "HARVBK_E_MAINTENANCE",
            (const char *const[]){"schedule", "run-due", "--now", "2030-01-01T01:00:00Z", NULL});
    refused(S, "HARVBK_E_MAINTENANCE",
            (const char *const[]){"schedule", "create", "m3", "--type", "backup", "--vm", "vm3",
                                  "--cron", "@daily", NULL});
    refused(S, "HARVBK_E_MAINTENANCE", (const char *const[]){"schedule", "resume", "m2", NULL});
    j = sched_show(S, "m1");
    assert_true(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "maintenance");
    cJSON_Delete(j);
    j = sched_show(S, "m2");
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "suspended by user");
    cJSON_Delete(j);
    /* reads stay allowed; entering again is a no-op */
    e2e_ok(S, "schedule", "list", NULL);
    e2e_ok(S, "backup", "list", NULL);
    e2e_run(&r, S, "maintenance", "enter", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "already"));
    e2e_res_free(&r);

    e2e_run(&r, S, "maintenance", "exit", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "default/m1"));
    e2e_res_free(&r);
    j = sched_show(S, "m1");
    assert_false(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "next_run"), "2030-01-01T01:00:00Z");
    cJSON_Delete(j);
    j = sched_show(S, "m2"); /* the user's suspension is left alone */
    assert_true(json_bool(j, "suspended"));
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "suspended by user");
    cJSON_Delete(j);
    e2e_run(&r, S, "maintenance", "status", "--json", NULL);
    e2e_assert_ok(&r);
    j = cJSON_Parse(r.out);
    assert_false(json_bool(j, "active"));
    cJSON_Delete(j);
    e2e_res_free(&r);
    e2e_run(&r, S, "maintenance", "exit", NULL); /* a no-op */
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "not active"));
    e2e_res_free(&r);
    e2e_ok(S, "backup", "create", "default/vm1", "--name", "manual", NULL);
    run_due(S, "2030-01-01T01:00:00Z", 0, NULL);
    assert_backup_ready(S, "default/m1-20300101-0100", "m1");
    usage_error(S, (const char *const[]){"maintenance", "enter", "--wait", "soon", NULL});
    usage_error(S, (const char *const[]){"maintenance", "pause", NULL});
}

/* A live "gc" lease of another cluster: a backup waits (holding its writer
 * lease) while it is there (as in test_e2e_signal.c). */
static char *plant_gc_lease(fx *f)
{
    char *locks = e2e_path(f->w.target, "locks");
    mkdir(locks, 0755);
    char *lease = e2e_path(locks, "gc-another-cluster.json");
    char *text = e2e_strf("{\"role\":\"gc\",\"owner\":\"another-cluster\",\"heartbeat\":%lld,"
                          "\"pid\":1,\"host\":\"elsewhere\"}",
                          (long long)time(NULL));
    e2e_write_file(lease, text, strlen(text));
    free(text);
    free(locks);
    return lease;
}

/* Start `backup create default/vm1 --name NAME` and wait until it is listed
 * as an operation in progress. */
static void start_blocked_backup(fx *f, e2e_proc *p, const char *name)
{
    const char *args[] = {"backup", "create", "default/vm1", "--name", name, NULL};
    assert_int_equal(e2e_spawnv(p, f->w.state, args), 0);
    uint64_t t0 = e2e_now_ms();
    for (;;) {
        e2e_res r;
        e2e_run(&r, f->w.state, "maintenance", "status", "--json", NULL);
        e2e_assert_ok(&r);
        cJSON *j = cJSON_Parse(r.out);
        e2e_res_free(&r);
        int n = cJSON_GetArraySize(json_item(j, "operations"));
        cJSON_Delete(j);
        if (n > 0)
            break;
        if (!e2e_proc_alive(p) || e2e_now_ms() - t0 > e2e_scaled_ms(30000))
            fail_msg("the backup never showed as an operation in progress");
        e2e_sleep_ms(50);
    }
}

static void test_maintenance_busy_and_wait(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
    e2e_ok(S, "schedule", "create", "b1", "--type", "backup", "--vm", "vm2", "--cron",
           "0 * * * *", "--now", "2030-01-01T00:00:00Z", NULL);
    char *lease = plant_gc_lease(f);
    e2e_proc p;
    start_blocked_backup(f, &p, "busy1");

    e2e_res r;
    e2e_run(&r, S, "maintenance", "status", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    const cJSON *ops = json_item(j, "operations");
    assert_int_equal(cJSON_GetArraySize(ops), 1);
    const cJSON *op = cJSON_GetArrayItem(ops, 0);
    assert_string_equal(e2e_json_str(op, "kind"), "backup");
    assert_non_null(strstr(e2e_json_str(op, "what"), "busy1"));
    assert_int_equal(e2e_json_u64(op, "pid"), (uint64_t)p.pid);
    assert_true(cJSON_IsString(json_item(op, "started")));
    cJSON_Delete(j);
    e2e_res_free(&r);
    e2e_run(&r, S, "maintenance", "status", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "busy1"));
    e2e_res_free(&r);

    /* refused at once, and after a wait; nothing changes */
    refused(S, "HARVBK_E_BUSY", (const char *const[]){"maintenance", "enter", NULL});
    uint64_t t0 = e2e_now_ms();
    e2e_run(&r, S, "maintenance", "enter", "--wait", "1", NULL);
    uint64_t took = e2e_now_ms() - t0;
    e2e_assert_exit(&r, 1);
    e2e_assert_err_has(&r, "HARVBK_E_BUSY");
    e2e_assert_err_has(&r, "busy1"); /* names the operation */
    assert_true(e2e_icontains(r.out, "waiting up to 1 s"));
    assert_true(took >= 900);
    e2e_res_free(&r);
    j = sched_show(S, "b1");
    assert_false(json_bool(j, "suspended"));
    cJSON_Delete(j);
    e2e_run(&r, S, "maintenance", "status", "--json", NULL);
    j = cJSON_Parse(r.out);
    assert_false(json_bool(j, "active"));
    cJSON_Delete(j);
    e2e_res_free(&r);

    /* waiting for it: the backup ends (Ready) once the other gc is gone,
     * then maintenance mode is entered */
    const char *args[] = {"maintenance", "enter", "--wait", "60", NULL};
    e2e_proc pm;
    assert_int_equal(e2e_spawnv(&pm, S, args), 0);
    e2e_sleep_ms(500);
    assert_true(e2e_proc_alive(&pm));
    unlink(lease);
    e2e_proc_wait(&p, &r, e2e_scaled_ms(60000));
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    e2e_proc_wait(&pm, &r, e2e_scaled_ms(60000));
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "waiting up to 60 s"));
    assert_true(e2e_icontains(r.out, "busy1"));
    assert_true(e2e_icontains(r.out, "maintenance mode entered"));
    e2e_res_free(&r);
    char *st = e2e_backup_state(S, "default/busy1");
    assert_string_equal(st, "Ready");
    free(st);
    j = sched_show(S, "b1");
    assert_string_equal(e2e_json_str(j, "suspend_reason"), "maintenance");
    cJSON_Delete(j);
    e2e_ok(S, "maintenance", "exit", NULL);
    free(lease);
}

/* Wait until stdout of p contains needle (bounded). */
static void wait_output(e2e_proc *p, const char *needle, unsigned ms)
{
    uint64_t t0 = e2e_now_ms();
    for (;;) {
        char *out = e2e_read_file(p->out_path, NULL);
        bool has = out && strstr(out, needle);
        free(out);
        if (has)
            return;
        if (!e2e_proc_alive(p) || e2e_now_ms() - t0 > e2e_scaled_ms(ms))
            fail_msg("'%s' never printed '%s'", p->cmdline, needle);
        e2e_sleep_ms(50);
    }
}

/* Ready backups whose name starts with prefix. */
static int ready_with_prefix(const char *state, const char *prefix)
{
    cJSON *l = e2e_list_json(state);
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, l)
    {
        const char *name = e2e_json_str(it, "name"), *st = e2e_json_str(it, "state");
        n += name && st && strncmp(name, prefix, strlen(prefix)) == 0 &&
             strcmp(st, "Ready") == 0;
    }
    cJSON_Delete(l);
    return n;
}

static void stop_runner(e2e_proc *p, int sig)
{
    assert_int_equal(kill(p->pid, sig), 0);
    uint64_t t0 = e2e_now_ms();
    e2e_res r;
    e2e_proc_wait(p, &r, e2e_scaled_ms(10000));
    uint64_t took = e2e_now_ms() - t0;
    if (r.timed_out)
        fail_msg("harvbk run still running 10 s after signal %d (killed)", sig);
    print_message("harvbk run: exited %llu ms after signal %d\n", (unsigned long long)took, sig);
    e2e_assert_exit(&r, 130);
    assert_true(e2e_icontains(r.out, sig == SIGINT ? "interrupted" : "terminated"));
    assert_true(e2e_icontains(r.out, "stopped"));
    e2e_res_free(&r);
}

static void test_run_foreground_and_signals(void **state)
{
    fx *f = *state;
    const char *S = f->w.state;
    /* counting from two hours ago: a firing of the last hour is due at once */
    time_t past = time(NULL) - 2 * 3600;
    struct tm tm;
    gmtime_r(&past, &tm);
    char now[32];
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    e2e_ok(S, "schedule", "create", "live", "--type", "backup", "--vm", "vm1", "--cron",
           "0 * * * *", "--retain", "3", "--max-failure", "2", "--now", now, NULL);

    const char *args[] = {"run", NULL};
    e2e_proc p;
    assert_int_equal(e2e_spawnv(&p, S, args), 0);
    wait_output(&p, "runner started", 30000);
    uint64_t t0 = e2e_now_ms();
    while (ready_with_prefix(S, "live-") == 0) {
        if (!e2e_proc_alive(&p) || e2e_now_ms() - t0 > e2e_scaled_ms(60000))
            fail_msg("harvbk run made no Ready backup of schedule 'live'");
        e2e_sleep_ms(100);
    }
    stop_runner(&p, SIGTERM);
    cJSON *j = sched_show(S, "live");
    const cJSON *it = hist_at(j, 0);
    assert_string_equal(e2e_json_str(it, "state"), "Ready");
    /* two firings in the last two hours (three if a full hour passed since
     * the create): the latest ran, the earlier were missed */
    assert_true(e2e_json_u64(it, "missed") >= 1);
    cJSON_Delete(j);

    /* nothing due: SIGINT stops it as well */
    assert_int_equal(e2e_spawnv(&p, S, args), 0);
    wait_output(&p, "runner started", 30000);
    e2e_sleep_ms(300);
    stop_runner(&p, SIGINT);
    assert_true(ready_with_prefix(S, "live-") >= 1); /* 2 if a full hour passed meanwhile */
    usage_error(S, (const char *const[]){"run", "now", NULL});
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_refusals_show_list),
        T(test_run_due_at_fake_times),
        T(test_snapshot_schedule),
        T(test_maintenance_mode),
        T(test_maintenance_busy_and_wait),
        T(test_run_foreground_and_signals),
    };
    return cmocka_run_group_tests_name("e2e_schedule", tests, NULL, NULL);
}
