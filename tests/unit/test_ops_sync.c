/*
 * tests/unit/test_ops_sync.c - the synced backup catalog on a file:// target
 * (docs/CATALOG.md); the scenarios are shared with the S3 and NFS tests
 * (sync_scenario.h). Also: the catalog file's own edge cases.
 */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <time.h>

#include "sync_scenario.h"
#include "ops/ops.h"
#include "state/synced.h"

#include <signal.h>
#include <sys/wait.h>

typedef struct file_world {
    char *root, *tdir, *aside;
} file_world;

static harvbk_target_config *file_cfg(void *ud, bool read_only)
{
    file_world *fw = ud;
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = malloc(strlen(fw->tdir) + 8);
    sprintf(url, "file://%s", fw->tdir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    if (read_only)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_READ_ONLY, "1"), 0);
    free(url);
    return cfg;
}

/* The directory moved away: the store "vanished" (HARVBK_E_TARGET). */
static void file_outage(void *ud, bool down)
{
    file_world *fw = ud;
    if (down)
        assert_int_equal(rename(fw->tdir, fw->aside), 0);
    else {
        /* opening the local target re-creates its root and tmp/ directories
         * (empty): no file may have been written there */
        char *cmd = malloc(2 * strlen(fw->tdir) + 96);
        sprintf(cmd, "test -z \"$(find '%s' -mindepth 1 ! -type d)\" && rm -rf '%s'", fw->tdir,
                fw->tdir);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        assert_int_equal(rename(fw->aside, fw->tdir), 0);
    }
}

static void world(file_world *fw, sync_world *w, const char *tag)
{
    fw->root = tu_mkdtemp(tag);
    assert_non_null(fw->root);
    fw->tdir = tu_path2(fw->root, "target");
    fw->aside = tu_path2(fw->root, "target-away");
    *w = (sync_world){ fw->root, file_cfg, file_outage, fw };
}

static void world_free(file_world *fw)
{
    tu_rmrf(fw->root);
    free(fw->root);
    free(fw->tdir);
    free(fw->aside);
}

static void test_two_clusters_sync_restore_forget_delete_gone_index(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-two");
    sync_scenario_two_clusters(&w);
    world_free(&fw);
}

static void test_read_only_target_refuses_writes_and_writes_nothing(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-ro");
    sync_scenario_read_only(&w);
    world_free(&fw);
}

static void test_unreachable_target_lists_from_catalog_and_defers_delete(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-out");
    sync_scenario_outage(&w);
    world_free(&fw);
}

/* The read-only setting is persisted with the target and survives a reopen;
 * refresh_interval drives hb_sync_if_due (tested through the public view:
 * synced_at moves only when a sync ran). */
static void test_read_only_persisted(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-ropers");
    harvbk_ctx *a = sc_ctx(&w, "s", false);
    harvbk_ctx_free(a);
    a = sc_ctx(&w, "r", true);
    harvbk_ctx_free(a);
    char *sd = tu_path2(fw.root, "r");
    assert_int_equal(harvbk_ctx_open(&a, sd, NULL), 0);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_ctx_get_target(a, &cfg), 0);
    char buf[8];
    assert_int_equal(harvbk_target_config_get(cfg, HARVBK_TARGET_READ_ONLY, buf, sizeof buf,
                                              NULL),
                     0);
    assert_string_equal(buf, "1");
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(a);
    /* written as version 2: a library without the setting refuses it */
    char *tj = tu_path2(sd, "target.json");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "grep -q '\"version\":2,' '%s' && grep -q '\"read_only\":true' '%s'",
             tj, tj);
    assert_int_equal(system(cmd), 0);
    free(tj);
    free(sd);
    world_free(&fw);
}

/* The catalog file round-trips and is written atomically (no temporary left). */
static void test_catalog_file_roundtrip(void **state)
{
    (void)state;
    char *root = tu_mkdtemp("sync-file");
    hb_synced c;
    hb_synced_init(&c);
    c.target = strdup("file:///x");
    c.store_id = strdup("id");
    c.synced_at_ms = 1234;
    const char *names[] = { "zz", "aa", "mm" };
    for (int i = 0; i < 3; i++) {
        hb_synced_entry x = { 0 };
        x.ns = strdup("default");
        x.name = strdup(names[i]);
        x.vm_ns = strdup("default");
        x.vm_name = strdup("vm");
        x.writer = strdup("w");
        x.error = strdup("");
        x.fp = (hb_synced_fp){ 10 + i, 100 };
        assert_int_equal(hb_synced_put(&c, &x), 0);
    }
    assert_int_equal(hb_synced_tomb_put(&c, "default", "gone", (hb_synced_fp){ 5, 6 }, 7), 0);
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_synced_save(root, &c, &e), 0);
    hb_synced d;
    assert_int_equal(hb_synced_load(root, &d, &e), 0);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.v[0].name, "aa");
    assert_string_equal(d.v[2].name, "zz");
    assert_int_equal(d.nt, 1);
    assert_int_equal(d.synced_at_ms, 1234);
    assert_non_null(hb_synced_find(&d, "default", "mm"));
    assert_true(hb_synced_fp_same(d.v[1].fp, (hb_synced_fp){ 12, 100 }));
    assert_false(hb_synced_fp_same(d.v[1].fp, (hb_synced_fp){ 12, 101 }));
    assert_true(hb_synced_fp_same((hb_synced_fp){ 12, 0 }, (hb_synced_fp){ 12, 101 }));
    hb_synced_clear(&d);
    hb_synced_clear(&c);
    /* only the catalog and its lock are left */
    char *cmd = malloc(strlen(root) + 64);
    sprintf(cmd, "test $(ls -A '%s/catalog' | wc -l) -le 2", root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    tu_rmrf(root);
    free(root);
}

/* hb_sync_if_due (the schedule runner's hook): refresh_interval 0 = never
 * periodic; otherwise a sync once the interval has passed since the last one. */
static void test_sync_if_due_honours_refresh_interval(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-due");
    harvbk_ctx *a = sc_ctx(&w, "a", false);
    hb_err e;
    hb_err_clear(&e);
    int64_t next = -1;
    assert_int_equal(hb_sync_if_due(a, hb_now_ms(), &next, &e), 0);
    assert_int_equal(next, 0); /* interval 0: on demand only */
    harvbk_ctx_free(a);

    /* interval 1 s */
    char *sd = tu_path2(fw.root, "a");
    assert_int_equal(harvbk_ctx_open(&a, sd, NULL), 0);
    harvbk_target_config *cfg = file_cfg(&fw, false);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_REFRESH_INTERVAL, "1"), 0);
    assert_int_equal(harvbk_ctx_set_target(a, cfg), 0); /* syncs */
    harvbk_target_config_free(cfg);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, a), 0);
    int64_t t1 = harvbk_backup_list_synced_at(l);
    harvbk_backup_list_free(l);
    assert_true(t1 > 0);
    assert_int_equal(hb_sync_if_due(a, t1 + 10, &next, &e), 0);
    assert_int_equal(next, t1 + 1000); /* not due yet: nothing ran */
    assert_int_equal(harvbk_backup_list_get(&l, a), 0);
    assert_int_equal(harvbk_backup_list_synced_at(l), t1);
    harvbk_backup_list_free(l);
    usleep(1100 * 1000);
    int64_t now = hb_now_ms();
    assert_int_equal(hb_sync_if_due(a, now, &next, &e), 0);
    assert_int_equal(next, now + 1000);
    assert_int_equal(harvbk_backup_list_get(&l, a), 0);
    assert_true(harvbk_backup_list_synced_at(l) > t1);
    harvbk_backup_list_free(l);
    /* unreachable: the error, and a retry within the interval */
    assert_int_equal(rename(fw.tdir, fw.aside), 0);
    harvbk_ctx_free(a);
    assert_int_equal(harvbk_ctx_open(&a, sd, NULL), 0);
    now = hb_now_ms() + 5000;
    hb_err_clear(&e);
    assert_int_equal(hb_sync_if_due(a, now, &next, &e), HARVBK_E_TARGET);
    assert_int_equal(next, now + 1000);
    harvbk_ctx_free(a);
    free(sd);
    world_free(&fw);
}

/* kill -9 at random moments of syncs that rewrite a catalog of 300 backups:
 * the catalog always loads, whole (the previous or the new one).
 *
 * The target of state directory b is set before the first child starts, and
 * the random delay before each kill starts only once the child has opened
 * its context and entered its loop (it says so through a pipe). A kill that
 * comes before the target is saved would leave b without a target, so that
 * the final sync fails, and under load (a slow fsync) process start-up
 * alone can take longer than the shortest delay. */
static void test_kill_during_sync_leaves_a_whole_catalog(void **state)
{
    (void)state;
    file_world fw;
    sync_world w;
    world(&fw, &w, "sync-kill");
    harvbk_ctx *a = sc_ctx(&w, "a", false);
    char *d = sc_disk(&w, "k.raw", 70000, 5);
    assert_int_equal(sc_backup(a, d, "k0"), 0);
    harvbk_ctx_free(a);
    /* 299 more manifests + indexes copied under new names */
    for (int i = 1; i < 300; i++) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s/backups/default/k%d' && cp '%s/backups/default/k0/disk0.idx' "
                 "'%s/backups/default/k%d/' && sed 's/\"name\":\"k0\"/\"name\":\"k%d\"/' "
                 "'%s/backups/default/k0/manifest.json' > '%s/backups/default/k%d/manifest.json'",
                 fw.tdir, i, fw.tdir, fw.tdir, i, i, fw.tdir, fw.tdir, i);
        assert_int_equal(system(cmd), 0);
    }
    char *sd = tu_path2(fw.root, "b");
    harvbk_ctx *b = sc_ctx(&w, "b", false); /* the target of b, and its first catalog */
    harvbk_ctx_free(b);
    for (int round = 0; round < 12; round++) {
        int ready[2];
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(ready[0]);
            harvbk_ctx *c = NULL;
            if (harvbk_ctx_open(&c, sd, NULL) != 0)
                _exit(2);
            if (write(ready[1], "r", 1) != 1)
                _exit(3);
            close(ready[1]);
            for (;;) {
                /* forget some, sync them back (every sync rewrites the file) */
                harvbk_backup_forget(c, "default", "k7");
                char p[4096];
                snprintf(p, sizeof p, "%s/catalog/backups.json", sd);
                unlink(p); /* a sync from nothing: 300 reads and a big write */
                harvbk_target_sync(c, NULL);
            }
        }
        close(ready[1]);
        char r;
        ssize_t got = read(ready[0], &r, 1); /* 0: the child died before its loop */
        close(ready[0]);
        if (got == 1)
            usleep((useconds_t)(rand() % 250000)); /* a random moment of its loop */
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (got != 1)
            fail_msg("round %d: the child did not reach its loop (status 0x%x)", round, st);
        hb_synced c;
        hb_err e;
        hb_err_clear(&e);
        int rc = hb_synced_load(sd, &c, &e);
        if (rc)
            fail_msg("round %d: the catalog does not load: %s", round, e.msg);
        assert_true(c.n == 0 || c.n >= 299); /* absent, or a whole sync */
        hb_synced_clear(&c);
    }
    /* the next sync (another process) sees a complete catalog: all 300, less
     * k7 when the last kill came between its forget and the sync that would
     * have brought it back (a forgotten backup stays forgotten) */
    hb_synced last;
    hb_err le;
    assert_int_equal(hb_synced_load(sd, &last, &le), 0);
    size_t forgotten = 0;
    for (size_t i = 0; i < last.nt; i++)
        forgotten += strcmp(last.t[i].name, "k7") == 0;
    hb_synced_clear(&last);
    b = NULL;
    assert_int_equal(harvbk_ctx_open(&b, sd, NULL), 0);
    sc_sync(b, 0);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, b), 0);
    assert_int_equal(harvbk_backup_list_count(l), 300 - forgotten);
    harvbk_backup_list_free(l);
    harvbk_ctx_free(b);
    free(sd);
    free(d);
    world_free(&fw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_file_roundtrip),
        cmocka_unit_test(test_two_clusters_sync_restore_forget_delete_gone_index),
        cmocka_unit_test(test_read_only_target_refuses_writes_and_writes_nothing),
        cmocka_unit_test(test_unreachable_target_lists_from_catalog_and_defers_delete),
        cmocka_unit_test(test_read_only_persisted),
        cmocka_unit_test(test_sync_if_due_honours_refresh_interval),
        cmocka_unit_test(test_kill_during_sync_leaves_a_whole_catalog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
