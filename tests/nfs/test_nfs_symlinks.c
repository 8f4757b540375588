/*
 * tests/nfs/test_nfs_symlinks.c - symbolic links planted in an NFS store (on
 * the server's filesystem, below the export) are never followed: backup
 * delete, list, gc and get refuse or skip them, and nothing they point at
 * (a directory of the export outside the store) is read, listed or deleted.
 * ctest-timeout: 300
 */
#include "nfstest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool lexists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static bool listed(harvbk_ctx *ctx, const char *name)
{
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, ctx), 0);
    bool found = false;
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++)
        if (!strcmp(harvbk_backup_info_name(harvbk_backup_list_at(l, i)), name))
            found = true;
    harvbk_backup_list_free(l);
    return found;
}

static void test_planted_links_are_never_followed(void **state)
{
    (void)state;
    const nfst_env *env = nfst_get_env();
    char *work = nfst_mkdtemp("nfs-link");
    const char *slash = strrchr(work, '/');
    char *sub = nfst_strf("stores/%s", slash + 1);
    char *url = nfst_strf("%s/%s", env->url, sub);
    char *store = nfst_strf("%s/%s", env->export_dir, sub);
    /* outside the store, inside the export: what the links point at */
    char *out = nfst_strf("%s/outside-%s", env->export_dir, slash + 1);
    char *st_dir = nfst_strf("%s/state", work);
    char *disk = nfst_strf("%s/disk.img", work);
    nfst_write_disk(disk, 2 * NFST_CHUNK + 4096, 7, (const int[]){ -1 });

    harvbk_ctx *ctx = nfst_ctx_ok(st_dir, url, 0);
    char *msg = NULL;
    nfst_vm(ctx, "default", "vm-1", disk);
    int rc = nfst_backup(ctx, "default", "vm-1", disk, "real-1", &msg);
    if (rc)
        fail_msg("backup: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    msg = NULL;

    /* the outside directory: a copy of the real backup's objects, manifest and index (so it looks
     * committed), a sentinel, a subdirectory; then the links, relative so the
     * server resolves them inside the export */
    assert_int_equal(nfst_sh(NULL, "mkdir -p '%s/deep' && cp '%s/backups/default/real-1/'*.* '%s/' "
                                   "&& echo keep > '%s/sentinel' && echo keep > '%s/deep/file'",
                             out, store, out, out, out),
                     0);
    char *l_entry = nfst_strf("%s/backups/default/evil", store);
    char *l_ns = nfst_strf("%s/backups/evilns", store);
    char *target = nfst_strf("../../../../outside-%s", slash + 1);
    char *target_ns = nfst_strf("../../../outside-%s", slash + 1);
    assert_int_equal(symlink(target, l_entry), 0);
    assert_int_equal(symlink(target_ns, l_ns), 0);
    /* a leaf link in a real entry */
    char *l_leaf = nfst_strf("%s/backups/default/real-1/stray.idx", store);
    char *target_leaf = nfst_strf("../../../../../outside-%s/sentinel", slash + 1);
    assert_int_equal(symlink(target_leaf, l_leaf), 0);
    /* sanity: the links resolve to the outside directory on the server */
    char *via = nfst_strf("%s/sentinel", l_entry);
    assert_true(lexists(via));
    free(via);
    size_t nout0 = 0;
    char **files0 = nfst_list_files(out, &nout0, NULL);
    nfst_free_strv(files0, nout0);

    /* list does not report what is behind a link */
    assert_true(listed(ctx, "real-1"));
    assert_false(listed(ctx, "evil"));

    /* backup delete through the linked entry directory refuses */
    rc = harvbk_backup_delete(ctx, "default", "evil");
    assert_int_not_equal(rc, 0);
    rc = harvbk_backup_delete(ctx, "evilns", "deep");
    assert_int_not_equal(rc, 0);
    /* gc neither */
    rc = nfst_gc(ctx, &msg);
    free(msg);
    msg = NULL;

    size_t nout = 0;
    char **files = nfst_list_files(out, &nout, NULL);
    if (nout != nout0)
        fail_msg("the outside directory holds %zu files, %zu before", nout, nout0);
    nfst_free_strv(files, nout);
    char *sentinel = nfst_strf("%s/sentinel", out);
    char *manifest = nfst_strf("%s/manifest.json", out);
    assert_true(lexists(sentinel));
    assert_true(lexists(manifest));
    assert_true(lexists(l_entry));
    assert_true(lexists(l_ns));

    /* the real backup is deleted normally (the leaf link in it is no object:
     * skipped, and its target untouched) */
    rc = harvbk_backup_delete(ctx, "default", "real-1");
    if (rc)
        fail_msg("delete real-1: %s: %s", harvbk_error_name(rc), harvbk_ctx_errmsg(ctx));
    assert_false(listed(ctx, "real-1"));
    assert_true(lexists(sentinel));
    files = nfst_list_files(out, &nout, NULL);
    assert_int_equal(nout, nout0);
    nfst_free_strv(files, nout);

    harvbk_ctx_free(ctx);
    free(sentinel);
    free(manifest);
    free(l_entry);
    free(l_ns);
    free(l_leaf);
    free(target);
    free(target_ns);
    free(target_leaf);
    nfst_rmrf(out);
    nfst_rmrf(store);
    nfst_rmrf(work);
    free(out);
    free(store);
    free(url);
    free(sub);
    free(st_dir);
    free(disk);
    free(work);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_links_are_never_followed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
