/*
 * tests/s3/test_s3_sync.c - the synced backup catalog on the real S3 test
 * server (docs/CATALOG.md), every request signature-checked by the proxy:
 *   - two clusters (state directories) on one s3:// target: sync, list and
 *     cross-restore (bytes equal), forget vs delete, gone then forgotten, a
 *     missing index, hostile names, a damaged catalog (sync_scenario.h);
 *   - a read-only target refuses backup/delete/gc and writes nothing;
 *   - the server down (proxy "refuse"): list answers from the catalog with
 *     its age, a delete is deferred and finished by the next sync;
 *   - what a sync costs: LIST requests plus one GET per new manifest, and
 *     no GET at all when nothing changed (counted by the proxy).
 */
#include "s3test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/sync_scenario.h"

static const s3t_mode g_mode = { "sync", false, false };

typedef struct s3_world {
    char *dir, *prefix;
} s3_world;

static harvbk_target_config *s3_cfg(void *ud, bool read_only)
{
    s3_world *sw = ud;
    harvbk_target_config *cfg = s3t_config(&g_mode, sw->prefix, true);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_STORE_SECRET, "1"), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_TIMEOUT_MS, "2000"), 0);
    if (read_only)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_READ_ONLY, "1"), 0);
    return cfg;
}

static void s3_outage(void *ud, bool down)
{
    (void)ud;
    s3t_control("", down ? "{\"down\":\"refuse\"}" : "{\"fail_rate\":0}");
}

static void world(s3_world *sw, sync_world *w, const char *tag)
{
    sw->dir = s3t_tmpdir(tag);
    sw->prefix = s3t_prefix(tag);
    *w = (sync_world){ sw->dir, s3_cfg, s3_outage, sw };
}

static void world_free(s3_world *sw)
{
    s3t_rmrf(sw->dir);
    free(sw->dir);
    free(sw->prefix);
}

static int reset_faults(void **state)
{
    (void)state;
    s3t_control("", "{\"fail_rate\":0}");
    return 0;
}

static void test_s3_two_clusters_sync_and_cross_restore(void **state)
{
    (void)state;
    s3_world sw;
    sync_world w;
    world(&sw, &w, "sync-two");
    sync_scenario_two_clusters(&w);
    world_free(&sw);
}

static void test_s3_read_only_target(void **state)
{
    (void)state;
    s3_world sw;
    sync_world w;
    world(&sw, &w, "sync-ro");
    sync_scenario_read_only(&w);
    world_free(&sw);
}

static void test_s3_server_down_lists_from_catalog_and_defers_delete(void **state)
{
    (void)state;
    s3_world sw;
    sync_world w;
    world(&sw, &w, "sync-down");
    sync_scenario_outage(&w);
    world_free(&sw);
}

/* A sync is LIST requests plus one GET per new manifest: 12 backups of
 * another cluster cost 12 GETs once, then no GET at all. */
static void test_s3_sync_requests(void **state)
{
    (void)state;
    s3_world sw;
    sync_world w;
    world(&sw, &w, "sync-req");
    harvbk_ctx *a = sc_ctx(&w, "a", false);
    harvbk_ctx *b = sc_ctx(&w, "b", false);
    char *d = sc_disk(&w, "d.raw", 256 * 1024 + 3, 9);
    enum { N = 12 };
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        assert_int_equal(sc_backup(a, d, name), 0);
    }
    s3t_control("/stats/reset", "{}");
    assert_int_equal(sc_sync(b, HARVBK_SYNC_IMPORTED), N);
    uint64_t gets = s3t_stat("by_method.GET"), reqs = s3t_stat("requests");
    print_message("first sync of %d new backups: %llu requests, %llu GET (LIST included)\n", N,
                  (unsigned long long)reqs, (unsigned long long)gets);
    assert_true(gets >= N + 1);
    assert_true(reqs <= N + 3); /* N manifest GETs + one LIST page (+ slack) */
    s3t_control("/stats/reset", "{}");
    assert_int_equal(sc_sync(b, HARVBK_SYNC_MANIFEST_READS), 0);
    reqs = s3t_stat("requests");
    print_message("second sync: %llu requests\n", (unsigned long long)reqs);
    assert_true(reqs <= 2);
    /* listing from the catalog makes no request */
    s3t_control("/stats/reset", "{}");
    assert_true(sc_listed(b, "r3", NULL, NULL, NULL));
    assert_int_equal(s3t_stat("requests"), 0);
    harvbk_ctx_free(a);
    harvbk_ctx_free(b);
    free(d);
    world_free(&sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_s3_two_clusters_sync_and_cross_restore, reset_faults),
        cmocka_unit_test_teardown(test_s3_read_only_target, reset_faults),
        cmocka_unit_test_teardown(test_s3_server_down_lists_from_catalog_and_defers_delete,
                                  reset_faults),
        cmocka_unit_test_teardown(test_s3_sync_requests, reset_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
