/*
 * test_e2e_signal.c - SIGTERM / SIGINT to a running `harvbk backup create`:
 * the CLI cancels the operation (harvbk_op_cancel), waits until the library
 * has stopped and exits within seconds with the documented status 130; the
 * backup is recorded as Error (never Ready) and the writer lease it held in
 * the target is gone, so a gc runs right after.
 *
 * The backup is kept running without a large disk: a live "gc" lease of
 * another cluster is planted in the target, and a backup waits (polling,
 * up to a minute) while one is live, holding its own writer lease.
 */
#include "e2e.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_S "262144"

typedef struct fx {
    e2e_world w;
    char *img, *locks, *gc_lease;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "signal", "", 262144);
    f->img = e2e_path(f->w.work, "disk.img");
    e2e_make_random(f->img, 2 * E2E_MiB + 7, 3);
    char *d = e2e_strf("disk=%s", f->img);
    e2e_ok(f->w.state, "vm", "add", "ns1/vm1", "--disk", d, NULL);
    free(d);
    f->locks = e2e_path(f->w.target, "locks");
    mkdir(f->locks, 0755);
    f->gc_lease = e2e_path(f->locks, "gc-another-cluster.json");
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    e2e_kill_children();
    if (f) {
        e2e_world_free(&f->w);
        free(f->img);
        free(f->locks);
        free(f->gc_lease);
        free(f);
    }
    return 0;
}

/* A gc of another cluster, alive (fresh heartbeat). */
static void plant_gc_lease(fx *f)
{
    char *text = e2e_strf("{\"role\":\"gc\",\"owner\":\"another-cluster\",\"heartbeat\":%lld,"
                          "\"pid\":1,\"host\":\"elsewhere\"}",
                          (long long)time(NULL));
    e2e_write_file(f->gc_lease, text, strlen(text));
    free(text);
}

static size_t writer_leases(fx *f)
{
    size_t n = 0, w = 0;
    char **l = e2e_list_files(f->locks, &n);
    for (size_t i = 0; i < n; i++)
        w += strncmp(l[i], "writer-", 7) == 0;
    e2e_strv_free(l);
    return w;
}

static void signal_running_backup(fx *f, int sig, const char *name)
{
    plant_gc_lease(f);
    const char *args[] = { "backup", "create", "ns1/vm1", "--name", name, NULL };
    e2e_proc p;
    assert_int_equal(e2e_spawnv(&p, f->w.state, args), 0);
    /* running: its writer lease is published, it waits for the "gc" */
    uint64_t t0 = e2e_now_ms();
    while (writer_leases(f) == 0 && e2e_proc_alive(&p) &&
           e2e_now_ms() - t0 < e2e_scaled_ms(30000))
        e2e_sleep_ms(20);
    assert_true(e2e_proc_alive(&p));
    assert_int_equal(writer_leases(f), 1);
    e2e_sleep_ms(300); /* well inside the wait */
    assert_true(e2e_proc_alive(&p));

    assert_int_equal(kill(p.pid, sig), 0);
    uint64_t ts = e2e_now_ms();
    e2e_res r;
    e2e_proc_wait(&p, &r, 10000);
    uint64_t took = e2e_now_ms() - ts;
    if (r.timed_out)
        fail_msg("%s: still running 10 s after signal %d (killed)", r.cmdline, sig);
    print_message("signal %d: exited after %llu ms\n", sig, (unsigned long long)took);
    e2e_assert_exit(&r, 130);
    e2e_assert_err_has(&r, "cancelled");
    e2e_assert_err_has(&r, sig == SIGINT ? "interrupted" : "terminated");
    e2e_res_free(&r);

    /* not Ready: recorded as Error (cancelled) */
    char *nn = e2e_strf("ns1/%s", name);
    cJSON *j = e2e_show_json(f->w.state, nn, NULL);
    assert_non_null(j);
    assert_string_equal(e2e_json_str(j, "state"), "Error");
    const char *err = e2e_json_str(j, "error");
    assert_non_null(err);
    assert_true(e2e_icontains(err, "cancel"));
    cJSON_Delete(j);
    free(nn);
    /* its writer lease is gone; once the other gc is gone too, gc runs */
    assert_int_equal(writer_leases(f), 0);
    unlink(f->gc_lease);
    e2e_ok(f->w.state, "gc", NULL);
}

static void test_sigterm_cancels_backup(void **state)
{
    fx *f = *state;
    signal_running_backup(f, SIGTERM, "bterm");
    /* the name can be used again, and the backup then completes */
    e2e_ok(f->w.state, "backup", "create", "ns1/vm1", "--name", "bterm", NULL);
    char *st = e2e_backup_state(f->w.state, "ns1/bterm");
    assert_string_equal(st, "Ready");
    free(st);
}

static void test_sigint_cancels_backup(void **state)
{
    fx *f = *state;
    signal_running_backup(f, SIGINT, "bint");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sigterm_cancels_backup),
        T(test_sigint_cancels_backup),
    };
    return cmocka_run_group_tests_name("e2e_signal", tests, NULL, NULL);
}
