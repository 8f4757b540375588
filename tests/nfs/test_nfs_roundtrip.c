/*
 * tests/nfs/test_nfs_roundtrip.c - the NFS target against a real nfs-ganesha
 * (tests/nfs/nfsenv.sh), through the public API: full and incremental
 * backups, byte-identical restores, verify, delete + gc leaving no orphan,
 * an independent NFS client (nfs-ls/nfs-cp from libnfs-utils) reading what
 * the library wrote, and the store copied off the export opened as file://.
 *
 * Every test uses its own store directory below the export, so they are
 * independent; the server-side directory (HARVBK_TEST_NFS_EXPORT_DIR) is
 * where the store's files are checked.
 */
#include "nfstest.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct world {
    const nfst_env *env;
    char *work;      /* local scratch: state, images, restores */
    char *sub;       /* the store's directory below the export ("rt-xxxx") */
    char *url;       /* env->url + "/" + sub */
    char *store_dir; /* server side: export_dir/sub */
    harvbk_ctx *ctx;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->env = nfst_get_env();
    w->work = nfst_mkdtemp("rt");
    const char *slash = strrchr(w->work, '/');
    w->sub = nfst_strf("stores/%s", slash + 1);
    w->url = nfst_strf("%s/%s", w->env->url, w->sub);
    w->store_dir = nfst_strf("%s/%s", w->env->export_dir, w->sub);
    char *st = nfst_strf("%s/state", w->work);
    w->ctx = nfst_ctx_ok(st, w->url, 0);
    free(st);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    harvbk_ctx_free(w->ctx);
    nfst_rmrf(w->work);
    nfst_rmrf(w->store_dir);
    free(w->work);
    free(w->sub);
    free(w->url);
    free(w->store_dir);
    free(w);
    return 0;
}

/* A backup of path as VM default/vm through ctx (fails the test otherwise). */
static void backup_in(harvbk_ctx *ctx, const char *vm, const char *path, const char *name)
{
    char *msg = NULL;
    int rc = nfst_backup(ctx, "default", vm, path, name, &msg);
    if (rc)
        fail_msg("backup %s: %s: %s", name, harvbk_error_name(rc), msg);
    free(msg);
    assert_int_equal(nfst_backup_state(ctx, "default", name), HARVBK_STATE_READY);
}

static void backup_ok(world *w, const char *vm, const char *path, const char *name)
{
    backup_in(w->ctx, vm, path, name);
}

static void restore_same(world *w, harvbk_ctx *ctx, const char *name, const char *orig)
{
    static unsigned seq;
    seq++;
    char *dir = nfst_strf("%s/restore-%s-%u", w->work, name, seq);
    char *vm = nfst_strf("copy-%s-%u", name, seq);
    char *msg = NULL;
    int rc = nfst_restore(ctx, "default", name, vm, dir, &msg);
    if (rc)
        fail_msg("restore %s: %s: %s", name, harvbk_error_name(rc), msg);
    char *out = nfst_strf("%s/root.raw", dir);
    nfst_assert_same_file(orig, out);
    free(out);
    free(msg);
    free(vm);
    free(dir);
}

static void verify_ok(world *w, const char *name)
{
    char *msg = NULL;
    int rc = nfst_verify(w->ctx, "default", name, &msg);
    if (rc)
        fail_msg("verify %s: %s: %s", name, harvbk_error_name(rc), msg);
    free(msg);
}

/* The chunk files of the store are exactly `want` (sorted ids). */
static void assert_chunks(world *w, char **want, size_t nwant)
{
    size_t n = 0;
    char **have = nfst_store_chunks(w->store_dir, &n, NULL);
    if (n != nwant)
        fail_msg("the store holds %zu chunk files, expected %zu", n, nwant);
    for (size_t i = 0; i < n; i++)
        if (strcmp(have[i], want[i]) != 0)
            fail_msg("chunk file %s is not one of the expected chunks (%s)", have[i], want[i]);
    nfst_free_strv(have, n);
}

/* No temporaries left in the store's tmp/. */
static void assert_no_temporaries(world *w)
{
    char *tmp = nfst_strf("%s/tmp", w->store_dir);
    size_t n = 0;
    char **v = nfst_list_files(tmp, &n, NULL);
    if (n)
        fail_msg("%zu temporaries left in %s (first: %s)", n, tmp, v[0]);
    nfst_free_strv(v, n);
    free(tmp);
}

static char **merge_ids(char **a, size_t na, char **b, size_t nb, size_t *n)
{
    char **v = malloc((na + nb + 1) * sizeof *v);
    assert_non_null(v);
    size_t k = 0;
    for (size_t i = 0; i < na; i++)
        v[k++] = nfst_strf("%s", a[i]);
    for (size_t i = 0; i < nb; i++) {
        bool dup = false;
        for (size_t j = 0; j < na && !dup; j++)
            dup = !strcmp(b[i], a[j]);
        if (!dup)
            v[k++] = nfst_strf("%s", b[i]);
    }
    for (size_t i = 1; i < k; i++) /* insertion sort, small */
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *n = k;
    return v;
}

/* Full backup, incremental backup that uploads only the changed chunks,
 * restores byte-identical, verify, delete + gc down to nothing. */
static void test_full_incremental_gc(void **state)
{
    world *w = *state;
    char *img = nfst_strf("%s/disk.img", w->work);
    const int zeros[] = { 2, -1 };
    nfst_write_disk(img, 6ull * NFST_CHUNK + 123457, 1, zeros);
    char *img1 = nfst_strf("%s/disk-v1.img", w->work);
    assert_int_equal(nfst_sh(NULL, "cp '%s' '%s'", img, img1), 0);
    size_t n1 = 0;
    char **ids1 = nfst_chunk_ids(img, &n1);
    assert_int_equal(n1, 6); /* 7 chunks, one all zero (never stored) */

    backup_ok(w, "web", img, "b1");
    assert_chunks(w, ids1, n1);
    char *manifest = nfst_strf("%s/backups/default/b1/manifest.json", w->store_dir);
    struct stat st;
    assert_int_equal(stat(manifest, &st), 0);
    verify_ok(w, "b1");
    restore_same(w, w->ctx, "b1", img);

    /* incremental: two chunks change; exactly two new chunk files appear and
     * no existing one is rewritten (same inode) */
    size_t nb = 0;
    uint64_t *inos_before = NULL;
    char **before = nfst_store_chunks(w->store_dir, &nb, &inos_before);
    nfst_touch_chunk(img, 0, 77);
    nfst_touch_chunk(img, 4, 78);
    backup_ok(w, "web", img, "b2");
    size_t n2 = 0;
    char **ids2 = nfst_chunk_ids(img, &n2);
    size_t nall = 0;
    char **all = merge_ids(ids1, n1, ids2, n2, &nall);
    assert_int_equal(nall, n1 + 2);
    assert_chunks(w, all, nall);
    size_t na = 0;
    uint64_t *inos_after = NULL;
    char **after = nfst_store_chunks(w->store_dir, &na, &inos_after);
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < na; j++)
            if (!strcmp(before[i], after[j]) && inos_before[i] != inos_after[j])
                fail_msg("chunk %s was uploaded again by the incremental backup", before[i]);
    verify_ok(w, "b2");
    restore_same(w, w->ctx, "b2", img);
    restore_same(w, w->ctx, "b1", img1); /* the first backup is intact */
    assert_no_temporaries(w);

    /* delete b1 + gc: exactly b2's chunks remain */
    assert_int_equal(harvbk_backup_delete(w->ctx, "default", "b1"), 0);
    assert_int_equal(stat(manifest, &st), -1);
    sleep(2); /* gc keeps chunks written in the second it starts */
    char *msg = NULL;
    int rc = nfst_gc(w->ctx, &msg);
    if (rc)
        fail_msg("gc: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    assert_chunks(w, ids2, n2);
    restore_same(w, w->ctx, "b2", img);

    /* delete b2 + gc: no chunk left */
    assert_int_equal(harvbk_backup_delete(w->ctx, "default", "b2"), 0);
    rc = nfst_gc(w->ctx, &msg);
    if (rc)
        fail_msg("gc: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    assert_chunks(w, NULL, 0);
    assert_no_temporaries(w);

    nfst_free_strv(before, nb);
    nfst_free_strv(after, na);
    free(inos_before);
    free(inos_after);
    nfst_free_strv(ids1, n1);
    nfst_free_strv(ids2, n2);
    nfst_free_strv(all, nall);
    free(manifest);
    free(img);
    free(img1);
}

/* An independent NFS client (nfs-ls, nfs-cp of Debian's libnfs-utils) sees
 * the store the library wrote and reads the same bytes as the server holds. */
static void test_independent_client(void **state)
{
    world *w = *state;
    char *img = nfst_strf("%s/disk.img", w->work);
    nfst_write_disk(img, 3ull * NFST_CHUNK + 4096, 2, NULL);
    backup_ok(w, "db", img, "ind");
    size_t n = 0;
    char **ids = nfst_chunk_ids(img, &n);
    assert_int_equal(n, 4);

    char *out = NULL;
    int rc = nfst_sh(&out, "nfs-ls -R '%s/%s'", "nfs://127.0.0.1/export", w->sub);
    if (rc != 0)
        fail_msg("nfs-ls failed (%d): %s", rc, out);
    assert_non_null(strstr(out, "manifest.json"));
    assert_non_null(strstr(out, "harvbk-store.json"));
    assert_non_null(strstr(out, "root.idx"));
    for (size_t i = 0; i < n; i++)
        if (!strstr(out, ids[i]))
            fail_msg("nfs-ls does not list chunk %s:\n%s", ids[i], out);
    free(out);

    const char *files[3] = { "backups/default/ind/manifest.json", "harvbk-store.json", NULL };
    char *chunk = nfst_strf("chunks/%.2s/%.2s/%s", ids[0], ids[0] + 2, ids[0]);
    files[2] = chunk;
    for (int i = 0; i < 3; i++) {
        char *local = nfst_strf("%s/nfscp-%d", w->work, i);
        rc = nfst_sh(&out, "nfs-cp 'nfs://127.0.0.1/export/%s/%s' '%s'", w->sub, files[i], local);
        if (rc != 0)
            fail_msg("nfs-cp %s failed (%d): %s", files[i], rc, out);
        free(out);
        char *server = nfst_strf("%s/%s", w->store_dir, files[i]);
        nfst_assert_same_file(server, local);
        free(server);
        free(local);
    }
    free(chunk);
    nfst_free_strv(ids, n);
    free(img);
}

/* The store copied byte for byte off the export into a local directory is
 * the same store: a fresh context opens it as file:// and restores from it. */
static void test_copy_to_file_target(void **state)
{
    world *w = *state;
    char *img = nfst_strf("%s/disk.img", w->work);
    const int zeros[] = { 1, -1 };
    nfst_write_disk(img, 5ull * NFST_CHUNK + 999, 3, zeros);
    backup_ok(w, "app", img, "c1");
    nfst_touch_chunk(img, 3, 99);
    backup_ok(w, "app", img, "c2");

    char *local = nfst_strf("%s/copied-store", w->work);
    char *out = NULL;
    int rc = nfst_sh(&out, "cp -a '%s' '%s'", w->store_dir, local);
    if (rc != 0)
        fail_msg("cp: %s", out);
    free(out);
    char *state_dir = nfst_strf("%s/state-file", w->work);
    char *url = nfst_strf("file://%s", local);
    harvbk_ctx *ctx = nfst_ctx_ok(state_dir, url, 0);
    assert_int_equal(nfst_backup_state(ctx, "default", "c1"), HARVBK_STATE_READY);
    assert_int_equal(nfst_backup_state(ctx, "default", "c2"), HARVBK_STATE_READY);
    restore_same(w, ctx, "c2", img);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_verify(&op, ctx, "default", "c1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    harvbk_ctx_free(ctx);
    free(state_dir);
    free(url);
    free(local);
    free(img);
}

/* Objects of every size class round-trip through the URL forms: the store
 * root given as a directory that already exists (mounted directly) and as
 * one that does not (created below the export). */
static void test_existing_and_new_root(void **state)
{
    world *w = *state;
    char *img = nfst_strf("%s/disk.img", w->work);
    nfst_write_disk(img, 2ull * NFST_CHUNK + 1, 4, NULL);
    backup_ok(w, "x", img, "e1");
    /* a second context on the same, now existing, directory */
    char *st2 = nfst_strf("%s/state2", w->work);
    harvbk_ctx *ctx = nfst_ctx_ok(st2, w->url, 0);
    assert_int_equal(nfst_backup_state(ctx, "default", "e1"), HARVBK_STATE_READY);
    restore_same(w, ctx, "e1", img);
    harvbk_ctx_free(ctx);
    /* a deeper new directory with the portmapper skipped */
    char *st3 = nfst_strf("%s/state3", w->work);
    char *url3 = nfst_strf("%s/deep/er?nfsport=2049&mountport=20048", w->url);
    ctx = nfst_ctx_ok(st3, url3, 0);
    backup_in(ctx, "x", img, "e2");
    char *m = nfst_strf("%s/deep/er/backups/default/e2/manifest.json", w->store_dir);
    struct stat sb;
    assert_int_equal(stat(m, &sb), 0);
    restore_same(w, ctx, "e2", img);
    harvbk_ctx_free(ctx);
    free(m);
    free(url3);
    free(st3);
    free(st2);
    free(img);
}


static int g_open_entries;

static int count_open(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)type;
    if (ftw->level > 0 && (sb->st_mode & 077)) {
        print_error("%s has mode %03o\n", path, (unsigned)(sb->st_mode & 0777));
        g_open_entries++;
    }
    return 0;
}

static mode_t mode_at(const char *dir, const char *rel)
{
    char *p = nfst_strf("%s/%s", dir, rel);
    struct stat sb;
    assert_int_equal(lstat(p, &sb), 0);
    free(p);
    return sb.st_mode & 0777;
}

/* A new store is private on the server (files 0600, directories 0700). A
 * store whose config others may read (as an earlier version made it, 0644)
 * gets what a backup adds readable as well (0644 / 0755). The second store is
 * made on the server's side (file://) and opened up there before the server
 * has looked at it: the server caches attributes it served. */
static void test_modes_follow_the_store_config(void **state)
{
    world *w = *state;
    char *img = nfst_strf("%s/disk.img", w->work);
    nfst_write_disk(img, 2ull * NFST_CHUNK + 1, 4, NULL);
    backup_ok(w, "x", img, "p1");
    g_open_entries = 0;
    assert_int_equal(nftw(w->store_dir, count_open, 16, FTW_PHYS), 0);
    assert_int_equal(g_open_entries, 0);
    assert_int_equal(mode_at(w->store_dir, "backups/default/p1/manifest.json"), 0600);

    char *dir2 = nfst_strf("%s-shared", w->store_dir);
    char *furl = nfst_strf("file://%s", dir2);
    char *st2 = nfst_strf("%s/state2", w->work);
    harvbk_ctx *ctx = nfst_ctx_ok(st2, furl, 0);
    backup_in(ctx, "x", img, "p1");
    harvbk_ctx_free(ctx);
    char *cfg = nfst_strf("%s/harvbk-store.json", dir2);
    assert_int_equal(chmod(cfg, 0644), 0);

    char *st3 = nfst_strf("%s/state3", w->work);
    char *url3 = nfst_strf("%s-shared", w->url);
    ctx = nfst_ctx_ok(st3, url3, 0);
    nfst_write_disk(img, 2ull * NFST_CHUNK + 1, 5, NULL);
    backup_in(ctx, "x", img, "p2");
    assert_int_equal(mode_at(dir2, "backups/default/p2/manifest.json"), 0644);
    assert_int_equal(mode_at(dir2, "backups/default/p2"), 0755);
    assert_int_equal(mode_at(dir2, "backups/default/p1/manifest.json"), 0600);
    restore_same(w, ctx, "p2", img);
    harvbk_ctx_free(ctx);
    nfst_rmrf(dir2);
    free(url3);
    free(st3);
    free(cfg);
    free(st2);
    free(furl);
    free(dir2);
    free(img);
}

/* Two clusters create the same backup at the same instant over NFS: exactly
 * one is Ready (and restores its own disk), the other fails with
 * HARVBK_E_EXISTS; only the manifest and the index stay under the name. */
typedef struct racer {
    harvbk_ctx *ctx;
    const char *img, *name;
    pthread_barrier_t *bar;
    int rc;
    char *msg;
} racer;

static void *race_main(void *p)
{
    racer *r = p;
    pthread_barrier_wait(r->bar);
    r->rc = nfst_backup(r->ctx, "default", "web", r->img, r->name, &r->msg);
    return NULL;
}

static void test_same_name_from_two_clusters_exactly_one_wins(void **state)
{
    world *w = *state;
    char *ia = nfst_strf("%s/a.img", w->work), *ib = nfst_strf("%s/b.img", w->work);
    nfst_write_disk(ia, 6ull * NFST_CHUNK, 21, NULL);
    nfst_write_disk(ib, 6ull * NFST_CHUNK, 22, NULL);
    char *sb = nfst_strf("%s/state-b", w->work), *msg = NULL;
    harvbk_ctx *b = NULL;
    int rc = nfst_ctx(&b, sb, w->url, 0, &msg);
    if (rc)
        fail_msg("second cluster: %s", msg);
    free(msg);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    for (int round = 0; round < 4; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%d", round);
        racer ra = { w->ctx, ia, name, &bar, -1, NULL }, rb = { b, ib, name, &bar, -1, NULL };
        pthread_t ta, tb;
        pthread_create(&ta, NULL, race_main, &ra);
        pthread_create(&tb, NULL, race_main, &rb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        if (!((ra.rc == 0 && rb.rc == HARVBK_E_EXISTS) || (rb.rc == 0 && ra.rc == HARVBK_E_EXISTS)))
            fail_msg("round %d: cluster a: %s (%s), cluster b: %s (%s)", round,
                     harvbk_error_name(ra.rc), ra.msg ? ra.msg : "", harvbk_error_name(rb.rc),
                     rb.msg ? rb.msg : "");
        free(ra.msg);
        free(rb.msg);
        rc = nfst_verify(b, "default", name, &msg);
        if (rc)
            fail_msg("verify %s: %s", name, msg);
        free(msg);
        restore_same(w, b, name, ra.rc == 0 ? ia : ib);
        char *edir = nfst_strf("%s/backups/default/%s", w->store_dir, name);
        size_t n = 0;
        char **files = nfst_list_files(edir, &n, NULL);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "under %s: %s\n", name, files[i]);
        assert_int_equal(n, 2); /* manifest + index, no claim left */
        nfst_free_strv(files, n);
        free(edir);
    }
    pthread_barrier_destroy(&bar);
    harvbk_ctx_free(b);
    free(sb);
    free(ia);
    free(ib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_incremental_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_independent_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_to_file_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_and_new_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes_follow_the_store_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_name_from_two_clusters_exactly_one_wins, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
