/*
 * test_e2e_quota.c - snapshot space quotas through the harvbk CLI: after a
 * random sequence of snapshot creates and deletes of three VMs in two
 * namespaces, the usage `quota show` reports equals an independent recount
 * made from the store's files (manifests, indexes, chunk sizes); a snapshot or
 * backup is refused with HARVBK_E_QUOTA when the usage is at or over a limit;
 * a snapshot whose new data would go over a limit fails mid-way, removes what
 * it wrote, and leaves the usage and the store's chunks as they were.
 * HARVBK_E2E_SEED fixes the random sequence (the seed used is printed).
 */
#include "e2e_snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * E2E_KiB)
#define DISK (4 * E2E_MiB)

typedef struct fx {
    e2e_world w;
    char *store;
    char *disks[4];     /* vm1: 0, 1; vm2: 2; vm3: 3 */
    unsigned seed;
} fx;

static const char *const VMS[3] = { "nsa/vm1", "nsa/vm2", "nsb/vm3" };

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "quota", "", CHUNK);
    e2e_ok(f->w.state, "snapshot", "store", "--chunk-size", "64K", NULL);
    f->store = e2e_path(f->w.state, "snapshot-store");
    const char *s = getenv("HARVBK_E2E_SEED");
    f->seed = s && *s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL) ^ (unsigned)getpid();
    print_message("quota test: HARVBK_E2E_SEED=%u\n", f->seed);
    srand(f->seed);
    for (int i = 0; i < 4; i++) {
        char *n = e2e_strf("disk%d.img", i);
        f->disks[i] = e2e_path(f->w.work, n);
        free(n);
        e2e_make_random(f->disks[i], DISK, 10 + (uint64_t)i);
    }
    /* vm2's disk starts as a copy of vm1's first: shared chunks across VMs */
    e2e_copy_file(f->disks[0], f->disks[2]);
    char *a = e2e_strf("a=%s", f->disks[0]), *b = e2e_strf("b=%s", f->disks[1]);
    char *c = e2e_strf("a=%s", f->disks[2]), *d = e2e_strf("a=%s", f->disks[3]);
    e2e_ok(f->w.state, "vm", "add", VMS[0], "--disk", a, "--disk", b, NULL);
    e2e_ok(f->w.state, "vm", "add", VMS[1], "--disk", c, NULL);
    e2e_ok(f->w.state, "vm", "add", VMS[2], "--disk", d, NULL);
    free(a);
    free(b);
    free(c);
    free(d);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    e2e_kill_children();
    e2e_world_free(&f->w);
    free(f->store);
    for (int i = 0; i < 4; i++)
        free(f->disks[i]);
    free(f);
    return 0;
}

/* Every namespace's and VM's reported usage equals the recount. */
static void check_usage(const fx *f, const char *when)
{
    static const char *const nss[2] = { "nsa", "nsb" };
    for (int i = 0; i < 2; i++) {
        uint64_t got = quota_usage_cli(f->w.state, nss[i], NULL, NULL);
        uint64_t want = recount_usage(f->store, nss[i], NULL, NULL);
        if (got != want)
            fail_msg("%s: namespace %s: quota show says %llu, the recount %llu", when, nss[i],
                     (unsigned long long)got, (unsigned long long)want);
    }
    for (int i = 0; i < 3; i++) {
        char ns[16], vm[16];
        sscanf(VMS[i], "%15[^/]/%15s", ns, vm);
        uint64_t got = quota_usage_cli(f->w.state, ns, vm, NULL);
        uint64_t want = recount_usage(f->store, ns, vm, NULL);
        if (got != want)
            fail_msg("%s: VM %s: quota show says %llu, the recount %llu", when, VMS[i],
                     (unsigned long long)got, (unsigned long long)want);
    }
}

static uint64_t chunk_dir_bytes(const fx *f)
{
    size_t n = 0;
    char **v = e2e_chunk_files(f->store, &n);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = e2e_path(f->store, v[i]);
        sum += (uint64_t)e2e_file_size(p);
        free(p);
    }
    e2e_strv_free(v);
    return sum;
}

static void mutate(const fx *f, int vm)
{
    int first = vm == 0 ? 0 : vm + 1, last = vm == 0 ? 1 : vm + 1;
    for (int d = first; d <= last; d++) {
        int k = rand() % 4; /* 0: unchanged, else that many random chunks */
        for (int i = 0; i < k; i++)
            e2e_write_random_at(f->disks[d], (uint64_t)(rand() % (DISK / CHUNK)) * CHUNK,
                                (uint64_t)(1 + rand() % 3) * 1000, (uint64_t)rand());
    }
}

static void test_usage_equals_recount_after_random_sequence(void **state)
{
    fx *f = *state;
    char *names[64];
    int owner[64];
    int n = 0, serial = 0;
    check_usage(f, "empty");
    for (int step = 0; step < 26; step++) {
        bool create = n == 0 || (n < 12 && rand() % 3 != 0);
        if (create) {
            int vm = rand() % 3;
            mutate(f, vm);
            char ns[16], vmn[16];
            sscanf(VMS[vm], "%15[^/]/%15s", ns, vmn);
            char *name = e2e_strf("q%d", serial++);
            e2e_ok(f->w.state, "snapshot", "create", VMS[vm], "--name", name, NULL);
            names[n] = e2e_strf("%s/%s", ns, name);
            owner[n] = vm;
            n++;
            free(name);
        } else {
            int k = rand() % n;
            e2e_ok(f->w.state, "snapshot", "delete", names[k], NULL);
            free(names[k]);
            names[k] = names[n - 1];
            owner[k] = owner[n - 1];
            n--;
        }
        char when[64];
        snprintf(when, sizeof when, "after step %d (%s)", step, create ? "create" : "delete");
        check_usage(f, when);
    }
    /* the space the store holds is exactly what the snapshots reference
     * (deletes gave the rest back) */
    uint64_t all = recount_usage(f->store, "nsa", NULL, NULL) +
                   recount_usage(f->store, "nsb", NULL, NULL);
    uint64_t on_disk = chunk_dir_bytes(f);
    assert_true(on_disk <= all); /* nsa and nsb may share nothing here; <= in any case */
    assert_true(on_disk > 0 || n == 0);
    print_message("  %d snapshots left, %llu bytes of chunks\n", n, (unsigned long long)on_disk);
    for (int i = 0; i < n; i++) {
        e2e_ok(f->w.state, "snapshot", "delete", names[i], NULL);
        free(names[i]);
    }
    check_usage(f, "after deleting everything");
    assert_int_equal(chunk_dir_bytes(f), 0);
    (void)owner;
}

static void test_refusal_and_midway_abort_leave_usage(void **state)
{
    fx *f = *state;
    e2e_ok(f->w.state, "snapshot", "create", VMS[0], "--name", "base", NULL);
    uint64_t u = quota_usage_cli(f->w.state, "nsa", "vm1", NULL);
    uint64_t uns = quota_usage_cli(f->w.state, "nsa", NULL, NULL);
    assert_true(u > 0);
    size_t n0 = 0;
    char **chunks0 = e2e_chunk_files(f->store, &n0);

    /* at the limit: refused at once, snapshots and backups */
    char lim[32];
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)u);
    e2e_ok(f->w.state, "quota", "set", "--vm", "nsa/vm1", lim, NULL);
    uint64_t limit = 0;
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", "vm1", &limit), u);
    assert_int_equal(limit, u);
    e2e_res r;
    e2e_run(&r, f->w.state, "snapshot", "create", VMS[0], "--name", "over", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_QUOTA"));
    assert_true(e2e_icontains(r.err, "at or over"));
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "backup", "create", VMS[0], "--name", "over", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "quota"));
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "snapshot", "show", "nsa/over", NULL);
    e2e_assert_fails(&r); /* refused before anything existed */
    e2e_res_free(&r);
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", "vm1", NULL), u);
    /* vm2 of the same namespace is not limited by vm1's quota */
    e2e_ok(f->w.state, "snapshot", "create", VMS[1], "--name", "other", NULL);
    e2e_ok(f->w.state, "snapshot", "delete", "nsa/other", NULL);

    /* room for a few chunks, but the VM's whole first disk changed: the
     * snapshot stops mid-way, removes what it wrote */
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)(u + 3 * CHUNK));
    e2e_ok(f->w.state, "quota", "set", "--vm", "nsa/vm1", lim, NULL);
    e2e_make_random(f->disks[0], DISK, 999);
    e2e_run(&r, f->w.state, "snapshot", "create", VMS[0], "--name", "big", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_QUOTA"));
    e2e_res_free(&r);
    char *st = snap_state(f->w.state, "nsa/big");
    assert_string_equal(st, "Error");
    free(st);
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", "vm1", NULL), u);
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", NULL, NULL), uns);
    size_t n1 = 0;
    char **chunks1 = e2e_chunk_files(f->store, &n1);
    assert_int_equal(n0, n1);
    for (size_t i = 0; i < n0; i++)
        assert_string_equal(chunks0[i], chunks1[i]);
    e2e_strv_free(chunks1);
    char *idx = e2e_strf("%s/snapshots/nsa/big", f->store);
    assert_int_equal(e2e_count_files(idx), 0);
    free(idx);
    char *tmp = e2e_path(f->store, "tmp");
    assert_int_equal(e2e_count_files(tmp), 0);
    free(tmp);
    check_usage(f, "after the aborted snapshot");

    /* the same with a namespace limit */
    e2e_ok(f->w.state, "quota", "clear", "--vm", "nsa/vm1", NULL);
    snprintf(lim, sizeof lim, "%llu", (unsigned long long)(uns + CHUNK));
    e2e_ok(f->w.state, "quota", "set", "--namespace", "nsa", lim, NULL);
    e2e_run(&r, f->w.state, "snapshot", "create", VMS[0], "--name", "big", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_QUOTA"));
    assert_true(e2e_icontains(r.err, "namespace nsa"));
    e2e_res_free(&r);
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", NULL, NULL), uns);
    chunks1 = e2e_chunk_files(f->store, &n1);
    assert_int_equal(n0, n1);
    e2e_strv_free(chunks1);
    /* other namespaces are free */
    e2e_ok(f->w.state, "snapshot", "create", VMS[2], "--name", "free", NULL);

    /* with room, the same snapshot works; a failed one of that name is replaced */
    e2e_ok(f->w.state, "quota", "clear", "--namespace", "nsa", NULL);
    e2e_ok(f->w.state, "snapshot", "create", VMS[0], "--name", "big", NULL);
    assert_true(quota_usage_cli(f->w.state, "nsa", "vm1", NULL) > u);
    check_usage(f, "after the snapshot with room");

    /* show / clear / usage errors */
    e2e_run(&r, f->w.state, "quota", "show", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "nsa/vm1"));
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "quota", "clear", "--vm", "nsa/vm1", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_NOTFOUND"));
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "quota", "set", "--vm", "nsa/vm1", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "quota", "set", "--vm", "nsa/vm1", "--namespace", "nsa", "5", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "quota", "set", "--namespace", "nsa", "12Q", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_ok(f->w.state, "quota", "set", "--namespace", "nsa", "10G", NULL);
    assert_int_equal(quota_usage_cli(f->w.state, "nsa", NULL, &limit) > 0, 1);
    assert_int_equal(limit, 10ull << 30);
    e2e_strv_free(chunks0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_equals_recount_after_random_sequence),
        cmocka_unit_test(test_refusal_and_midway_abort_leave_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
