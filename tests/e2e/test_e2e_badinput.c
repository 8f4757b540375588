/*
 * test_e2e_badinput.c - wrong input to the harvbk CLI: invalid names, missing
 * or unreadable disks, bad target URLs, no target, duplicates, restores that
 * would overwrite something, usage errors. Each must fail with a clear message
 * and a non-zero exit (usage errors: 2), never crash, and change nothing.
 */
#include "e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_S "262144"

static const char NAME64[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 64 */
static const char NAME63[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; /* 63 */

/* Bad DNS-1123 labels, and what the message must mention. */
static const struct {
    const char *name;
    const char *mention; /* NULL: the name itself */
} BAD[] = {
    { "../x", NULL },  { "A", NULL },     { "", "name" }, { NAME64, NULL },
    { "a_b", NULL },   { "-ab", NULL },   { "ab-", NULL }, { "a.b", NULL },
    { "a b", NULL },
};
#define NBAD (sizeof BAD / sizeof *BAD)

typedef struct fx {
    e2e_world w;
    char *img;
} fx;

/* World with a target, VM ns1/vm1 (disk "disk") and Ready backup ns1/b1. */
static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "bad", "", 262144);
    f->img = e2e_path(f->w.work, "disk.img");
    e2e_make_random(f->img, 1024 * 1024 + 3, 1);
    char *d = e2e_strf("disk=%s", f->img);
    e2e_ok(f->w.state, "vm", "add", "ns1/vm1", "--disk", d, NULL);
    e2e_ok(f->w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    free(d);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (f) {
        e2e_world_free(&f->w);
        free(f->img);
        free(f);
    }
    return 0;
}

static char *vm_list(const fx *f)
{
    e2e_res r;
    e2e_run(&r, f->w.state, "vm", "list", NULL);
    e2e_assert_ok(&r);
    char *s = strdup(r.out);
    e2e_res_free(&r);
    return s;
}

static char *backup_list(const fx *f)
{
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "list", "--json", NULL);
    e2e_assert_ok(&r);
    char *s = strdup(r.out);
    e2e_res_free(&r);
    return s;
}

static void assert_bad_name_msg(const e2e_res *r, size_t i)
{
    e2e_assert_fails(r);
    e2e_assert_err_has(r, BAD[i].mention ? BAD[i].mention : BAD[i].name);
}

/* ---------------------------------------------------------------- names */

static void test_bad_names_vm_add(void **state)
{
    fx *f = *state;
    char *before = vm_list(f);
    char *d = e2e_strf("disk=%s", f->img);
    for (size_t i = 0; i < NBAD; i++) {
        print_message("vm add with name \"%s\"\n", BAD[i].name);
        e2e_res r;
        char *nsvm = e2e_strf("ns1/%s", BAD[i].name);
        e2e_run(&r, f->w.state, "vm", "add", nsvm, "--disk", d, NULL);
        assert_bad_name_msg(&r, i);
        e2e_res_free(&r);
        free(nsvm);
        /* as the namespace */
        if (strcmp(BAD[i].name, "../x") != 0) {
            nsvm = e2e_strf("%s/vm9", BAD[i].name);
            e2e_run(&r, f->w.state, "vm", "add", nsvm, "--disk", d, NULL);
            assert_bad_name_msg(&r, i);
            e2e_res_free(&r);
            free(nsvm);
        }
        /* as the volume name */
        char *dv = e2e_strf("%s=%s", BAD[i].name, f->img);
        e2e_run(&r, f->w.state, "vm", "add", "ns1/vm9", "--disk", dv, NULL);
        assert_bad_name_msg(&r, i);
        e2e_res_free(&r);
        free(dv);
    }
    /* nothing was registered */
    char *after = vm_list(f);
    assert_string_equal(before, after);
    /* the limits themselves are fine: 63 characters is a valid label */
    char *nsvm = e2e_strf("ns1/%s", NAME63);
    e2e_ok(f->w.state, "vm", "add", nsvm, "--disk", d, NULL);
    free(nsvm);
    free(before);
    free(after);
    free(d);
}

static void test_bad_names_backup_create(void **state)
{
    fx *f = *state;
    char *before = backup_list(f);
    for (size_t i = 0; i < NBAD; i++) {
        print_message("backup create --name \"%s\"\n", BAD[i].name);
        e2e_res r;
        e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", BAD[i].name, NULL);
        assert_bad_name_msg(&r, i);
        e2e_res_free(&r);
    }
    char *after = backup_list(f);
    assert_string_equal(before, after);
    /* nothing written to the store under a bad name */
    char *bdir = e2e_path(f->w.target, "backups");
    size_t n = 0;
    char **files = e2e_list_files(bdir, &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        if (strncmp(files[i], "ns1/b1/", 7) != 0)
            fail_msg("unexpected object backups/%s", files[i]);
    e2e_strv_free(files);
    free(bdir);
    free(before);
    free(after);
}

static void test_bad_names_restore(void **state)
{
    fx *f = *state;
    char *before = vm_list(f);
    char *dir = e2e_path(f->w.work, "rdir");
    mkdir(dir, 0755);
    for (size_t i = 0; i < NBAD; i++) {
        print_message("restore --new-vm ns1/\"%s\"\n", BAD[i].name);
        e2e_res r;
        char *nv = e2e_strf("ns1/%s", BAD[i].name);
        e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", nv, "--into", dir, NULL);
        assert_bad_name_msg(&r, i);
        e2e_res_free(&r);
        free(nv);
    }
    /* and a bad backup name */
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/B_1", "--new-vm", "ns1/ok", "--into", dir, NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "B_1");
    e2e_res_free(&r);
    assert_int_equal(e2e_count_files(dir), 0);
    char *after = vm_list(f);
    assert_string_equal(before, after);
    free(before);
    free(after);
    free(dir);
}

/* ---------------------------------------------------------------- disks */

/* A VM whose disk cannot be read: vm add refuses it, or the backup fails
 * with a message naming the path; no Ready backup results. */
static void bad_disk(fx *f, const char *vmname, const char *path)
{
    char *nsvm = e2e_strf("ns1/%s", vmname);
    char *d = e2e_strf("disk=%s", path);
    e2e_res r;
    e2e_run(&r, f->w.state, "vm", "add", nsvm, "--disk", d, NULL);
    if (r.exited && r.code == 0) {
        e2e_res_free(&r);
        e2e_run(&r, f->w.state, "backup", "create", nsvm, "--name", "bad-disk", NULL);
        e2e_assert_fails(&r);
        e2e_assert_err_has(&r, path);
        e2e_res_free(&r);
        char *st = e2e_backup_state(f->w.state, "ns1/bad-disk");
        if (strcmp(st, "Ready") == 0)
            fail_msg("a backup of unreadable %s is Ready", path);
        free(st);
        /* clean up for the next variant */
        e2e_run(&r, f->w.state, "backup", "delete", "ns1/bad-disk", NULL);
        assert_true(r.exited);
        e2e_res_free(&r);
    } else {
        e2e_assert_fails(&r);
        e2e_assert_err_has(&r, path);
        e2e_res_free(&r);
    }
    free(nsvm);
    free(d);
}

static void test_missing_disk(void **state)
{
    fx *f = *state;
    char *p = e2e_path(f->w.work, "does-not-exist.img");
    bad_disk(f, "miss", p);
    free(p);
}

static void test_disk_is_directory(void **state)
{
    fx *f = *state;
    char *p = e2e_path(f->w.work, "a-directory");
    mkdir(p, 0755);
    bad_disk(f, "dirdisk", p);
    free(p);
}

static void test_disk_under_a_file(void **state)
{
    fx *f = *state;
    char *file = e2e_path(f->w.work, "plainfile");
    e2e_write_file(file, "x", 1);
    char *p = e2e_path(file, "disk.img"); /* ENOTDIR */
    bad_disk(f, "notdir", p);
    free(p);
    free(file);
}

/* The disk file disappears after vm add: the backup fails cleanly. */
static void test_disk_removed_after_add(void **state)
{
    fx *f = *state;
    char *p = e2e_path(f->w.work, "gone.img");
    e2e_make_random(p, 300000, 5);
    char *d = e2e_strf("disk=%s", p);
    e2e_ok(f->w.state, "vm", "add", "ns1/gone", "--disk", d, NULL);
    unlink(p);
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "create", "ns1/gone", "--name", "gone1", NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, p);
    e2e_res_free(&r);
    char *st = e2e_backup_state(f->w.state, "ns1/gone1");
    assert_string_not_equal(st, "Ready");
    free(st);
    free(d);
    free(p);
}

/* The disk path became a FIFO after vm add (nothing writes to it): the backup
 * must not hang in open(), but fail at once naming the volume and the path;
 * nothing is Ready and no writer lease is left to block gc. */
static void test_disk_became_fifo(void **state)
{
    fx *f = *state;
    char *p = e2e_path(f->w.work, "fifo.img");
    e2e_make_random(p, 300000, 6);
    char *d = e2e_strf("disk=%s", p);
    e2e_ok(f->w.state, "vm", "add", "ns1/fifo", "--disk", d, NULL);
    unlink(p);
    assert_int_equal(mkfifo(p, 0600), 0);
    e2e_res r;
    const char *args[] = { "backup", "create", "ns1/fifo", "--name", "fifo1", NULL };
    uint64_t t0 = e2e_now_ms();
    e2e_runv(&r, f->w.state, 30000, args);
    if (r.timed_out)
        fail_msg("backup of a FIFO disk still running after %llu ms (killed)",
                 (unsigned long long)(e2e_now_ms() - t0));
    e2e_assert_exit(&r, 1);
    e2e_assert_err_has(&r, p);
    e2e_assert_err_has(&r, "disk");
    e2e_assert_err_has(&r, "not a regular file or block device");
    e2e_res_free(&r);
    char *st = e2e_backup_state(f->w.state, "ns1/fifo1");
    assert_string_not_equal(st, "Ready");
    free(st);
    char *locks = e2e_path(f->w.target, "locks");
    size_t n = 0;
    char **l = e2e_list_files(locks, &n);
    for (size_t i = 0; i < n; i++)
        if (strncmp(l[i], "writer-", 7) == 0)
            fail_msg("writer lease %s left in %s", l[i], locks);
    e2e_strv_free(l);
    free(locks);
    e2e_ok(f->w.state, "gc", NULL);
    free(d);
    free(p);
}

/* ---------------------------------------------------------------- targets */

static void test_unknown_scheme(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "ftp", NULL, 0);
    e2e_res r;
    e2e_run(&r, w.state, "target", "set", "ftp://x", NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "ftp");
    e2e_res_free(&r);
    e2e_run(&r, w.state, "target", "set", "garbage", NULL);
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    e2e_run(&r, w.state, "target", "set", "", NULL);
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    /* no target got configured */
    e2e_run(&r, w.state, "target", "show", NULL);
    assert_true(r.exited);
    assert_null(strstr(r.out, "ftp://"));
    e2e_res_free(&r);
    e2e_world_free(&w);
}

static void test_relative_file_url(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "relurl", NULL, 0);
    char *name = e2e_strf("e2e-rel-%d", (int)getpid());
    char *urls[3];
    urls[0] = e2e_strf("file:%s/store", name);      /* no slashes at all */
    urls[1] = e2e_strf("file://%s/%s", name, name); /* "relative" authority */
    urls[2] = e2e_strf("file://./%s", name);
    for (int i = 0; i < 3; i++) {
        print_message("target set %s\n", urls[i]);
        e2e_res r;
        e2e_run(&r, w.state, "target", "set", urls[i], NULL);
        e2e_assert_fails(&r);
        e2e_res_free(&r);
    }
    /* nothing created at the root of the filesystem by a misparse */
    char *rootp = e2e_strf("/%s", name);
    bool polluted = e2e_exists(rootp);
    if (polluted)
        e2e_rmrf_force(rootp);
    assert_false(polluted);
    free(rootp);
    for (int i = 0; i < 3; i++)
        free(urls[i]);
    free(name);
    e2e_world_free(&w);
}

static void test_bad_target_options(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "topt", NULL, 0);
    char *url = e2e_strf("file://%s", w.target);
    e2e_res r;
    e2e_run(&r, w.state, "target", "set", url, "--codec", "bzip9", NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "bzip9");
    e2e_res_free(&r);
    static const char *sizes[] = { "1000", "0", "-4096", "abc", "134217728", "32768" };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        e2e_run(&r, w.state, "target", "set", url, "--chunk-size", sizes[i], NULL);
        e2e_assert_fails(&r);
        e2e_res_free(&r);
    }
    /* nothing was created in the target by the refused attempts */
    assert_int_equal(e2e_count_files(w.target), 0);
    free(url);
    e2e_world_free(&w);
}

static void test_backup_without_target(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "notarget", NULL, 0);
    char *img = e2e_path(w.work, "d.img");
    e2e_make_random(img, 100000, 3);
    char *d = e2e_strf("disk=%s", img);
    e2e_ok(w.state, "vm", "add", "ns1/vm1", "--disk", d, NULL);
    e2e_res r;
    e2e_run(&r, w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "target");
    e2e_res_free(&r);
    e2e_run(&r, w.state, "backup", "list", NULL);
    assert_true(r.exited);
    assert_null(strstr(r.out, "b1"));
    e2e_res_free(&r);
    e2e_run(&r, w.state, "gc", NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "target");
    e2e_res_free(&r);
    free(d);
    free(img);
    e2e_world_free(&w);
}

/* ---------------------------------------------------------------- conflicts */

static void test_duplicate_backup_name(void **state)
{
    fx *f = *state;
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "b1");
    e2e_res_free(&r);
    /* the original is intact */
    char *st = e2e_backup_state(f->w.state, "ns1/b1");
    assert_string_equal(st, "Ready");
    free(st);
    e2e_ok(f->w.state, "backup", "verify", "ns1/b1", NULL);
    char *dir = e2e_path(f->w.work, "dup");
    mkdir(dir, 0755);
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/dup-r", "--into", dir, NULL);
    char *out = e2e_path(dir, "disk.raw");
    e2e_assert_same_file(f->img, out);
    free(out);
    free(dir);
}

static void test_restore_existing_vm(void **state)
{
    fx *f = *state;
    char *dir = e2e_path(f->w.work, "exvm");
    mkdir(dir, 0755);
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/vm1", "--into", dir, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "vm1");
    e2e_res_free(&r);
    assert_int_equal(e2e_count_files(dir), 0);
    /* the existing VM still points at its disk */
    e2e_run(&r, f->w.state, "vm", "list", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "vm1"));
    e2e_res_free(&r);
    free(dir);
}

static void test_restore_over_existing_file(void **state)
{
    fx *f = *state;
    char *dir = e2e_path(f->w.work, "exfile");
    mkdir(dir, 0755);
    char *out = e2e_path(dir, "disk.raw");
    const char *keep = "precious data that must survive\n";
    e2e_write_file(out, keep, strlen(keep));
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/over", "--into", dir, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "disk.raw");
    e2e_res_free(&r);
    size_t len = 0;
    char *now = e2e_read_file(out, &len);
    assert_non_null(now);
    assert_int_equal(len, strlen(keep));
    assert_memory_equal(now, keep, len);
    free(now);
    assert_int_equal(e2e_count_files(dir), 1);
    /* the VM was not registered: the same name can be used for a good restore */
    char *dir2 = e2e_path(f->w.work, "exfile2");
    mkdir(dir2, 0755);
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/over", "--into", dir2, NULL);
    char *out2 = e2e_path(dir2, "disk.raw");
    e2e_assert_same_file(f->img, out2);
    free(out2);
    free(dir2);
    free(out);
    free(dir);
}

static void test_restore_missing_things(void **state)
{
    fx *f = *state;
    char *dir = e2e_path(f->w.work, "miss");
    mkdir(dir, 0755);
    e2e_res r;
    /* unknown backup */
    e2e_run(&r, f->w.state, "restore", "ns1/nope", "--new-vm", "ns1/m1", "--into", dir, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "nope");
    e2e_res_free(&r);
    /* --into a directory that does not exist: refused, or created and right */
    char *nodir = e2e_path(f->w.work, "no/such/dir");
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/m2", "--into", nodir, NULL);
    assert_true(r.exited);
    if (r.code == 0) {
        char *o = e2e_path(nodir, "disk.raw");
        e2e_assert_same_file(f->img, o);
        free(o);
    } else {
        e2e_assert_fails(&r);
    }
    e2e_res_free(&r);
    /* --into a path that is a regular file */
    char *plain = e2e_path(f->w.work, "plain-file");
    e2e_write_file(plain, "x", 1);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/m3", "--into", plain, NULL);
    e2e_assert_fails_1line(&r);
    e2e_res_free(&r);
    assert_int_equal(e2e_file_size(plain), 1);
    free(plain);
    /* backup show / verify / delete of an unknown backup */
    e2e_run(&r, f->w.state, "backup", "show", "ns1/nope", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "nope");
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "backup", "verify", "ns1/nope", NULL);
    e2e_assert_fails_1line(&r);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "backup", "delete", "ns1/nope", NULL);
    e2e_assert_fails_1line(&r);
    e2e_res_free(&r);
    /* backup of an unknown VM */
    e2e_run(&r, f->w.state, "backup", "create", "ns1/novm", "--name", "x1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "novm");
    e2e_res_free(&r);
    assert_int_equal(e2e_count_files(dir), 0);
    free(nodir);
    free(dir);
}

static void test_bad_changed_ranges(void **state)
{
    fx *f = *state;
    char *rf = e2e_path(f->w.work, "ranges.txt");
    static const char *bad[] = { "disk abc 10\n", "disk 0\n", "disk -5 10\n",
                                 "disk 18446744073709551615 10\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        print_message("changed ranges: %s", bad[i]);
        e2e_write_file(rf, bad[i], strlen(bad[i]));
        char *name = e2e_strf("cr%zu", i);
        e2e_res r;
        e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", name,
                "--changed-ranges", rf, NULL);
        e2e_assert_fails(&r);
        e2e_res_free(&r);
        char *nn = e2e_strf("ns1/%s", name);
        char *st = e2e_backup_state(f->w.state, nn);
        assert_string_not_equal(st, "Ready");
        free(st);
        free(nn);
        free(name);
    }
    /* a ranges file that does not exist */
    char *nof = e2e_path(f->w.work, "no-ranges.txt");
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", "crx", "--changed-ranges",
            nof, NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "no-ranges.txt");
    e2e_res_free(&r);
    free(nof);
    free(rf);
}

#if defined(__SANITIZE_ADDRESS__)
#define E2E_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define E2E_ASAN 1
#endif
#endif

/* Run the CLI with its address space bounded (1 GiB more than this process
 * has), so that a CLI reading its input without bound fails the test instead
 * of eating the machine's memory. Not under ASan or a wrapper (valgrind):
 * they need far more address space. */
static void run_bounded(e2e_res *r, const char *state, unsigned timeout_ms,
                        const char *const *args)
{
    struct rlimit old;
    bool set = false;
#ifndef E2E_ASAN
    long pages = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (fp) {
        if (fscanf(fp, "%ld", &pages) != 1)
            pages = 0;
        fclose(fp);
    }
    if (pages > 0 && !getenv("HARVBK_CLI_WRAPPER") && getrlimit(RLIMIT_AS, &old) == 0) {
        rlim_t want = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
        if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > want) {
            struct rlimit lim = { want, old.rlim_max };
            set = setrlimit(RLIMIT_AS, &lim) == 0; /* inherited by the child */
        }
    }
#endif
    e2e_proc p;
    int rc = e2e_spawnv(&p, state, args);
    if (set)
        setrlimit(RLIMIT_AS, &old);
    assert_int_equal(rc, 0);
    e2e_proc_wait(&p, r, timeout_ms);
}

/* A changed-ranges "file" that never ends a line (/dev/zero) is refused at
 * once, without reading it all into memory. */
static void test_changed_ranges_dev_zero(void **state)
{
    fx *f = *state;
    const char *args[] = { "backup", "create", "ns1/vm1", "--name", "crz", "--changed-ranges",
                           "/dev/zero", NULL };
    uint64_t t0 = e2e_now_ms();
    e2e_res r;
    run_bounded(&r, f->w.state, 20000, args);
    if (r.timed_out)
        fail_msg("--changed-ranges /dev/zero still running after %llu ms (killed)",
                 (unsigned long long)(e2e_now_ms() - t0));
    e2e_assert_exit(&r, 2);
    e2e_assert_err_has(&r, "/dev/zero");
    e2e_assert_err_has(&r, "line 1");
    e2e_res_free(&r);
    char *st = e2e_backup_state(f->w.state, "ns1/crz");
    assert_string_equal(st, ""); /* never started */
    free(st);
}

/* A line longer than the limit is an error naming the file and the line,
 * never the end of the file: the valid ranges after it must not be dropped
 * silently (the backup would keep stale bytes for them). */
static void test_changed_ranges_overlong_line(void **state)
{
    fx *f = *state;
    char *rf = e2e_path(f->w.work, "long-ranges.txt");
    static const size_t lens[] = { 4097, 10000, 1 << 20 };
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        print_message("changed ranges: line 2 of %zu bytes\n", lens[k]);
        size_t n = lens[k];
        char *text = malloc(n + 64);
        size_t off = (size_t)sprintf(text, "disk 0 4096\n# ");
        memset(text + off, 'x', n - 2);
        off += n - 2;
        off += (size_t)sprintf(text + off, "\ndisk 262144 4096\n");
        e2e_write_file(rf, text, off);
        free(text);
        char *name = e2e_strf("crl%zu", k);
        const char *args[] = { "backup", "create", "ns1/vm1", "--name", name, "--changed-ranges",
                               rf, NULL };
        e2e_res r;
        run_bounded(&r, f->w.state, 60000, args);
        e2e_assert_exit(&r, 2);
        e2e_assert_err_has(&r, "long-ranges.txt");
        e2e_assert_err_has(&r, "line 2");
        e2e_res_free(&r);
        char *nn = e2e_strf("ns1/%s", name);
        char *st = e2e_backup_state(f->w.state, nn);
        assert_string_not_equal(st, "Ready");
        free(st);
        free(nn);
        free(name);
    }
    /* a line of exactly the limit (4096 bytes and its newline) is fine */
    {
        size_t n = 4096;
        char *text = malloc(n + 64);
        size_t off = (size_t)sprintf(text, "disk 0 4096\n# ");
        memset(text + off, 'x', n - 2);
        off += n - 2;
        off += (size_t)sprintf(text + off, "\ndisk 262144 4096\n");
        e2e_write_file(rf, text, off);
        free(text);
        e2e_ok(f->w.state, "backup", "create", "ns1/vm1", "--name", "crlok", "--changed-ranges",
               rf, NULL);
    }
    free(rf);
}

/* ---------------------------------------------------------------- usage */

static void test_usage(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "usage", NULL, 0);
    e2e_res r;
    /* no command at all */
    e2e_run(&r, w.state, NULL);
    e2e_assert_exit(&r, 2);
    /* points at the usage: prints it, or says where to find it */
    assert_true(e2e_icontains(r.err, "usage") || e2e_icontains(r.err, "--help"));
    e2e_res_free(&r);
    /* unknown command */
    e2e_run(&r, w.state, "frobnicate", NULL);
    e2e_assert_exit(&r, 2);
    assert_true(r.err_len > 0);
    e2e_res_free(&r);
    /* unknown subcommand, missing arguments, unknown option */
    e2e_run(&r, w.state, "backup", "frobnicate", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, w.state, "backup", "create", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    e2e_run(&r, w.state, "vm", "add", "ns1/x", NULL);
    assert_true(r.exited && r.code != 0);
    e2e_res_free(&r);
    e2e_run(&r, w.state, "backup", "list", "--no-such-option", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    /* --state without a value */
    e2e_run(&r, NULL, "--state", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    /* NS/NAME without a slash */
    e2e_run(&r, w.state, "backup", "show", "noslash", NULL);
    assert_true(r.exited && r.code != 0);
    e2e_res_free(&r);
    e2e_world_free(&w);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bad_names_vm_add),
        T(test_bad_names_backup_create),
        T(test_bad_names_restore),
        T(test_missing_disk),
        T(test_disk_is_directory),
        T(test_disk_under_a_file),
        T(test_disk_removed_after_add),
        T(test_disk_became_fifo),
        cmocka_unit_test(test_unknown_scheme),
        cmocka_unit_test(test_relative_file_url),
        cmocka_unit_test(test_bad_target_options),
        cmocka_unit_test(test_backup_without_target),
        T(test_duplicate_backup_name),
        T(test_restore_existing_vm),
        T(test_restore_over_existing_file),
        T(test_restore_missing_things),
        T(test_bad_changed_ranges),
        T(test_changed_ranges_dev_zero),
        T(test_changed_ranges_overlong_line),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests_name("e2e_badinput", tests, NULL, NULL);
}
