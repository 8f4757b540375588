/*
 * tests/nfs/test_nfs_crypt.c - encryption at rest on a real nfs-ganesha
 * (tests/nfs/nfsenv.sh), through the public API (docs/FORMAT.md section 10):
 *   full + incremental backups restore byte for byte, verify passes, a second
 *   cluster with the same key file restores; no file of the store on the
 *   server holds the disk's text or the VM's metadata;
 *   a wrong key: HARVBK_E_KEY with every file of the store unchanged;
 *   key rotation (add a key file, switch, remove the first): restores work,
 *   the old key is refused, no chunk file changed;
 *   two chunk files of the same length swapped on the server: verify fails
 *   with HARVBK_E_CHUNK.
 */
#include "nfstest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char marker[] = "NFS-CRYPT-MARKER-plaintext-0123456789";
static const char meta[] = "{\"spec\":{\"password\":\"nfs-metadata-secret\"}}";

static void write_key(const char *path, uint64_t seed)
{
    uint8_t k[40];
    for (int i = 0; i < 40; i++)
        k[i] = (uint8_t)(seed * 131 + (uint64_t)i * 17);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(k, 1, sizeof k, f), sizeof k);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
}

static int set_target(harvbk_ctx *ctx, const char *url, const char *key_file)
{
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "4194304"), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CODEC, "none"), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_KEY_FILE, key_file), 0);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    harvbk_target_config_free(cfg);
    return rc;
}

static int backup(harvbk_ctx *ctx, const char *disk, const char *name, char **msg)
{
    harvbk_vm *v = NULL;
    assert_int_equal(harvbk_vm_new(&v, "default", "web"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v, "root", disk), 0);
    assert_int_equal(harvbk_vm_set_metadata(v, meta, strlen(meta)), 0);
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, v, name, NULL);
    harvbk_vm_free(v);
    if (rc) {
        *msg = nfst_strf("%s", harvbk_error_last());
        return rc;
    }
    rc = harvbk_op_wait(op);
    char m[1024] = "";
    harvbk_op_errmsg_copy(op, m, sizeof m);
    *msg = nfst_strf("%s", m);
    harvbk_op_free(op);
    return rc;
}

static bool tree_has(const char *dir, const void *needle, size_t n)
{
    size_t count = 0;
    char **files = nfst_list_files(dir, &count, NULL);
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        char *p = nfst_strf("%s/%s", dir, files[i]);
        FILE *f = fopen(p, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long len = ftell(f);
            fseek(f, 0, SEEK_SET);
            char *b = malloc((size_t)len + 1);
            if (fread(b, 1, (size_t)len, f) == (size_t)len && memmem(b, (size_t)len, needle, n))
                found = true;
            free(b);
            fclose(f);
        }
        free(p);
    }
    nfst_free_strv(files, count);
    return found;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void test_nfs_encrypted_store(void **state)
{
    (void)state;
    const nfst_env *env = nfst_get_env();
    char *work = nfst_mkdtemp("crypt");
    const char *slash = strrchr(work, '/');
    char *sub = nfst_strf("stores/%s", slash + 1);
    char *url = nfst_strf("%s/%s", env->url, sub);
    char *store_dir = nfst_strf("%s/%s", env->export_dir, sub);
    char *k1 = nfst_strf("%s/k1.key", work), *k2 = nfst_strf("%s/k2.key", work);
    write_key(k1, 1);
    write_key(k2, 2);
    char *disk = nfst_strf("%s/disk.img", work), *orig = nfst_strf("%s/disk.orig", work);
    static const int zeros[] = { 2, -1 };
    nfst_write_disk(disk, 16 * NFST_MiB, 5, zeros);
    FILE *f = fopen(disk, "r+b");
    for (int i = 0; i < 30; i++) {
        fseek(f, (long)(3 * NFST_MiB + (uint64_t)i * 500), SEEK_SET);
        fwrite(marker, 1, sizeof marker - 1, f);
    }
    fclose(f);
    char *cmd = nfst_strf("cp --sparse=always '%s' '%s'", disk, orig);
    assert_int_equal(nfst_sh(NULL, "%s", cmd), 0);
    free(cmd);

    char *st1 = nfst_strf("%s/state", work), *st2 = nfst_strf("%s/state2", work);
    harvbk_ctx *ctx = NULL, *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&ctx, st1, NULL), 0);
    int rc = set_target(ctx, url, k1);
    if (rc)
        fail_msg("set target %s: %s: %s", url, harvbk_error_name(rc), harvbk_error_last());
    char *msg = NULL;
    rc = backup(ctx, disk, "full", &msg);
    if (rc)
        fail_msg("full backup: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    nfst_touch_chunk(disk, 1, 99);
    rc = backup(ctx, disk, "incr", &msg);
    if (rc)
        fail_msg("incremental backup: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    rc = nfst_verify(ctx, "default", "incr", &msg);
    if (rc)
        fail_msg("verify: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    char *r1 = nfst_strf("%s/r1", work), *r2 = nfst_strf("%s/r2", work);
    rc = nfst_restore(ctx, "default", "full", "copy1", r1, &msg);
    if (rc)
        fail_msg("restore full: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    rc = nfst_restore(ctx, "default", "incr", "copy2", r2, &msg);
    if (rc)
        fail_msg("restore incr: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    char *r1f = nfst_strf("%s/root.raw", r1), *r2f = nfst_strf("%s/root.raw", r2);
    nfst_assert_same_file(r1f, orig);
    nfst_assert_same_file(r2f, disk);
    /* what the server holds: nothing readable */
    assert_false(tree_has(store_dir, marker, 16));
    assert_false(tree_has(store_dir, "nfs-metadata-secret", 19));
    assert_true(tree_has(store_dir, "aes-256-gcm", 11));
    size_t nchunks = 0;
    char **chunks = nfst_store_chunks(store_dir, &nchunks, NULL);
    assert_int_equal(nchunks, 3 + 1); /* 4 chunks, one zero; then one changed */

    /* a wrong key: refused, every file of the store as it was */
    size_t n0 = 0;
    char **before = nfst_list_files(store_dir, &n0, NULL);
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    assert_int_equal(set_target(c2, url, k2), HARVBK_E_KEY);
    assert_non_null(strstr(harvbk_error_last(), "wrong key"));
    size_t n1 = 0;
    char **after = nfst_list_files(store_dir, &n1, NULL);
    assert_int_equal(n0, n1);
    for (size_t i = 0; i < n0; i++)
        assert_string_equal(before[i], after[i]);
    nfst_free_strv(before, n0);
    nfst_free_strv(after, n1);

    /* rotation: add k2, switch to it, remove k1 */
    harvbk_store_keys *keys = NULL;
    assert_int_equal(harvbk_store_keys_get(ctx, HARVBK_STORE_TARGET, &keys), 0);
    char old_id[17];
    snprintf(old_id, sizeof old_id, "%s", harvbk_store_keys_id(keys, 0));
    harvbk_store_keys_free(keys);
    harvbk_key *key2 = NULL;
    assert_int_equal(harvbk_key_from_file(&key2, k2), 0);
    assert_int_equal(harvbk_store_key_add(ctx, HARVBK_STORE_TARGET, key2, NULL, 0), 0);
    harvbk_key_free(key2);
    assert_int_equal(set_target(ctx, url, k2), 0);
    assert_int_equal(harvbk_store_key_remove(ctx, HARVBK_STORE_TARGET, old_id), 0);
    assert_int_equal(set_target(c2, url, k1), HARVBK_E_KEY);
    assert_int_equal(set_target(c2, url, k2), 0);
    char *r3 = nfst_strf("%s/r3", work), *r3f = nfst_strf("%s/root.raw", r3);
    rc = nfst_restore(c2, "default", "full", "copy3", r3, &msg);
    if (rc)
        fail_msg("restore after rotation: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    nfst_assert_same_file(r3f, orig);
    size_t nafter = 0;
    char **chunks2 = nfst_store_chunks(store_dir, &nafter, NULL);
    assert_int_equal(nafter, nchunks);
    for (size_t i = 0; i < nchunks; i++)
        assert_string_equal(chunks[i], chunks2[i]);
    nfst_free_strv(chunks2, nafter);

    /* two chunk files of the same length swapped on the server */
    size_t cn = 0;
    char **files = nfst_list_files(store_dir, &cn, NULL);
    char *pa = NULL, *pb = NULL;
    size_t la = 0, lb = 0;
    char *da = NULL, *db = NULL;
    for (size_t i = 0; i < cn && !pb; i++) {
        if (strncmp(files[i], "chunks/", 7) != 0)
            continue;
        char *p = nfst_strf("%s/%s", store_dir, files[i]);
        size_t l = 0;
        char *d = slurp(p, &l);
        if (!pa) {
            pa = p;
            da = d;
            la = l;
        } else if (l == la) {
            pb = p;
            db = d;
            lb = l;
        } else {
            free(p);
            free(d);
        }
    }
    assert_non_null(pb);
    spit(pa, db, lb);
    spit(pb, da, la);
    int v1 = nfst_verify(c2, "default", "full", &msg);
    free(msg);
    int v2 = nfst_verify(c2, "default", "incr", &msg);
    free(msg);
    assert_true(v1 == HARVBK_E_CHUNK || v2 == HARVBK_E_CHUNK);
    assert_true((v1 == 0 || v1 == HARVBK_E_CHUNK) && (v2 == 0 || v2 == HARVBK_E_CHUNK));
    spit(pa, da, la);
    spit(pb, db, lb);
    rc = nfst_verify(c2, "default", "full", &msg);
    if (rc)
        fail_msg("verify after swapping back: %s: %s", harvbk_error_name(rc), msg);
    free(msg);
    free(pa);
    free(pb);
    free(da);
    free(db);
    nfst_free_strv(files, cn);

    harvbk_ctx_free(c2);
    harvbk_ctx_free(ctx);
    nfst_free_strv(chunks, nchunks);
    nfst_rmrf(work);
    nfst_rmrf(store_dir);
    free(r1);
    free(r2);
    free(r3);
    free(r1f);
    free(r2f);
    free(r3f);
    free(st1);
    free(st2);
    free(disk);
    free(orig);
    free(k1);
    free(k2);
    free(work);
    free(sub);
    free(url);
    free(store_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfs_encrypted_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
