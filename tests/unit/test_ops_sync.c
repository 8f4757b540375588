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
#include "state/synced.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_file_roundtrip),
        cmocka_unit_test(test_two_clusters_sync_restore_forget_delete_gone_index),
        cmocka_unit_test(test_read_only_target_refuses_writes_and_writes_nothing),
        cmocka_unit_test(test_unreachable_target_lists_from_catalog_and_defers_delete),
        cmocka_unit_test(test_read_only_persisted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
