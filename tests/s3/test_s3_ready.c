/* tests/s3/test_s3_ready.c - "Ready means restorable" on the real S3 test
 * server (every request's signature verified by the proxy):
 *   two clusters create the same backup at the same instant: exactly one is
 *   Ready, the other fails with HARVBK_E_EXISTS, and the winner's backup
 *   verifies and restores the winner's disk; nothing but the manifest and
 *   the index stays under the name;
 *   chunks lost from the bucket are stored again by the next backup, and
 *   checking which chunks the bucket holds costs a listing, not a HEAD per
 *   chunk (the figures are printed).
 * ctest-timeout: 900 */
#include "s3boto.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64u * 1024u)
#define IMAGE_SIZE (48u * CHUNK)

static harvbk_target_config *config(const char *prefix)
{
    s3t_mode m = { "path", false, false };
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    char num[32];
    snprintf(num, sizeof num, "%u", CHUNK);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, num), 0);
    return cfg;
}

typedef struct racer {
    harvbk_ctx *ctx;
    harvbk_vm *vm;
    const char *name;
    pthread_barrier_t *bar;
    int rc;
    char msg[1024];
} racer;

static void *race_main(void *p)
{
    racer *r = p;
    pthread_barrier_wait(r->bar);
    r->rc = s3t_backup(r->ctx, r->vm, r->name, NULL, NULL, r->msg, sizeof r->msg);
    return NULL;
}

static void test_same_name_from_two_clusters_exactly_one_wins(void **state)
{
    (void)state;
    char *dir = s3t_tmpdir("ready-race");
    char *prefix = s3t_prefix("ready-race");
    char *sa = s3t_path(dir, "a"), *sb = s3t_path(dir, "b");
    char *da = s3t_path(dir, "a.img"), *db = s3t_path(dir, "b.img");
    s3t_make_image(da, IMAGE_SIZE, 11);
    s3t_make_image(db, IMAGE_SIZE, 12);
    harvbk_target_config *cfg = config(prefix);
    harvbk_ctx *a = s3t_ctx(sa), *b = s3t_ctx(sb);
    s3t_set_target_ok(a, cfg);
    s3t_set_target_ok(b, cfg);
    harvbk_vm *va = s3t_vm("default", "web", da), *vb = s3t_vm("default", "web", db);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    for (int round = 0; round < 4; round++) {
        char name[32], msg[1024];
        snprintf(name, sizeof name, "race-%d", round);
        racer ra = { a, va, name, &bar, -1, "" }, rb = { b, vb, name, &bar, -1, "" };
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race_main, &ra);
        pthread_create(&tb, NULL, race_main, &rb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        if (!((ra.rc == 0 && rb.rc == HARVBK_E_EXISTS) || (rb.rc == 0 && ra.rc == HARVBK_E_EXISTS)))
            fail_msg("round %d: cluster a: %s (%s), cluster b: %s (%s)", round,
                     harvbk_error_name(ra.rc), ra.msg, harvbk_error_name(rb.rc), rb.msg);
        int rc = s3t_verify(b, "default", name, msg, sizeof msg);
        if (rc)
            fail_msg("verify %s: %s", name, msg);
        char *rdir = s3t_path(dir, name);
        assert_int_equal(mkdir(rdir, 0755), 0);
        char newvm[48];
        snprintf(newvm, sizeof newvm, "r-%s", name);
        rc = s3t_restore(a, "default", name, newvm, rdir, msg, sizeof msg);
        if (rc)
            fail_msg("restore %s: %s", name, msg);
        char *got = s3t_path(rdir, "disk0.raw");
        s3t_assert_same_file(got, ra.rc == 0 ? da : db);
        free(got);
        free(rdir);
        char under[64];
        snprintf(under, sizeof under, "backups/default/%s/", name);
        s3t_objs objs;
        s3t_list(cfg, under, &objs);
        for (size_t i = 0; i < objs.n; i++)
            fprintf(stderr, "under %s: %s\n", name, objs.v[i].key);
        assert_int_equal(objs.n, 2); /* manifest + index, no claim left */
        s3t_objs_free(&objs);
    }
    pthread_barrier_destroy(&bar);
    harvbk_vm_free(va);
    harvbk_vm_free(vb);
    harvbk_ctx_free(a);
    harvbk_ctx_free(b);
    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(dir);
    free(prefix);
    free(sa);
    free(sb);
    free(da);
    free(db);
}

static void test_lost_chunks_are_stored_again_with_one_listing(void **state)
{
    (void)state;
    char *dir = s3t_tmpdir("ready-lost");
    char *prefix = s3t_prefix("ready-lost");
    char *st = s3t_path(dir, "state"), *img = s3t_path(dir, "disk.img");
    s3t_make_image(img, IMAGE_SIZE, 13);
    harvbk_target_config *cfg = config(prefix);
    harvbk_ctx *ctx = s3t_ctx(st);
    s3t_set_target_ok(ctx, cfg);
    harvbk_vm *vm = s3t_vm("default", "web", img);
    char msg[1024];
    int rc = s3t_backup(ctx, vm, "b1", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("b1: %s", msg);

    /* an unchanged VM again: what does checking the previous chunks cost? */
    s3t_control("/stats/reset", "{}");
    rc = s3t_backup(ctx, vm, "b2", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("b2: %s", msg);
    uint64_t heads = s3t_stat("by_method.HEAD"), gets = s3t_stat("by_method.GET");
    uint64_t puts = s3t_stat("by_method.PUT"), req = s3t_stat("requests");
    size_t distinct = s3t_distinct_chunks(img, CHUNK);
    fprintf(stderr, "incremental of an unchanged VM (%zu chunks): %llu requests (HEAD %llu, "
            "GET %llu incl. listings, PUT %llu)\n", distinct, (unsigned long long)req,
            (unsigned long long)heads, (unsigned long long)gets, (unsigned long long)puts);
    assert_true(heads <= 4);        /* no HEAD per chunk */
    assert_true(req < distinct / 2 + 20); /* a constant, not a request per chunk */

    /* lose three chunks of b2: b3 stores them again */
    s3t_objs chunks;
    s3t_list(cfg, "chunks/", &chunks);
    assert_true(chunks.n >= 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s3t_delete(cfg, chunks.v[i].key), 0);
    rc = s3t_verify(ctx, "default", "b2", msg, sizeof msg);
    assert_int_equal(rc, HARVBK_E_CHUNK);
    rc = s3t_backup(ctx, vm, "b3", NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("b3: %s", msg);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s3t_head(cfg, chunks.v[i].key), 0);
    rc = s3t_verify(ctx, "default", "b3", msg, sizeof msg);
    if (rc)
        fail_msg("verify b3: %s", msg);
    rc = s3t_verify(ctx, "default", "b2", msg, sizeof msg); /* healed too */
    if (rc)
        fail_msg("verify b2: %s", msg);
    s3t_objs_free(&chunks);
    harvbk_vm_free(vm);
    harvbk_ctx_free(ctx);
    harvbk_target_config_free(cfg);
    s3t_rmrf(dir);
    free(dir);
    free(prefix);
    free(st);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_name_from_two_clusters_exactly_one_wins),
        cmocka_unit_test(test_lost_chunks_are_stored_again_with_one_listing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
