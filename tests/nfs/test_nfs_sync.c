/*
 * tests/nfs/test_nfs_sync.c - the synced backup catalog on the real NFS
 * server (docs/CATALOG.md): two clusters (state directories) on one nfs://
 * target sync, list and cross-restore; forget vs delete; gone; a missing
 * index; hostile names; a damaged catalog; a read-only target. The
 * scenarios are tests/unit/sync_scenario.h (shared with file:// and S3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync_scenario.h"

typedef struct nfs_world {
    char *root, *url;
} nfs_world;

static harvbk_target_config *nfs_cfg(void *ud, bool read_only)
{
    nfs_world *nw = ud;
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, nw->url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    if (read_only)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_READ_ONLY, "1"), 0);
    return cfg;
}

static void world(nfs_world *nw, sync_world *w, const char *tag)
{
    const char *url = getenv("HARVBK_TEST_NFS_URL");
    if (!url || !*url)
        fail_msg("HARVBK_TEST_NFS_URL is not set (run through tests/nfs/in-netns.sh)");
    const char *base = getenv("HARVBK_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    nw->root = malloc(strlen(base) + strlen(tag) + 16);
    sprintf(nw->root, "%s/%s-XXXXXX", base, tag);
    assert_non_null(mkdtemp(nw->root));
    nw->url = malloc(strlen(url) + 64);
    sprintf(nw->url, "%s/%s-%ld-%ld", url, tag, (long)getpid(), (long)time(NULL));
    *w = (sync_world){ nw->root, nfs_cfg, NULL, nw };
}

static void world_free(nfs_world *nw)
{
    char *cmd = malloc(strlen(nw->root) + 16);
    sprintf(cmd, "rm -rf '%s'", nw->root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", nw->root);
    free(cmd);
    free(nw->root);
    free(nw->url);
}

static void test_nfs_two_clusters_sync_and_cross_restore(void **state)
{
    (void)state;
    nfs_world nw;
    sync_world w;
    world(&nw, &w, "nfs-sync");
    sync_scenario_two_clusters(&w);
    world_free(&nw);
}

static void test_nfs_read_only_target(void **state)
{
    (void)state;
    nfs_world nw;
    sync_world w;
    world(&nw, &w, "nfs-sync-ro");
    sync_scenario_read_only(&w);
    world_free(&nw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfs_two_clusters_sync_and_cross_restore),
        cmocka_unit_test(test_nfs_read_only_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
