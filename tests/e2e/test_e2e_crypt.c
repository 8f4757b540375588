/*
 * tests/e2e/test_e2e_crypt.c - encryption at rest through the public API
 * (harvbk/key.h) on a file:// target and the local snapshot store:
 *   - backup and restore round trips (full, incremental, verify, gc) byte for
 *     byte, with nothing of the data or the VM's metadata readable in the store;
 *   - a wrong or missing key: HARVBK_E_KEY before anything is read or written
 *     (the target's files and the restore directory stay as they were);
 *   - key rotation: add a key, switch to it, remove the old one; restores
 *     still work, the old key no longer opens the store, no chunk changed;
 *   - the ciphertext of a chunk of known plaintext holds no run of it;
 *   - two chunk objects of the same length swapped: detected by verify and
 *     restore;
 *   - key and passphrase files that group or others may read: refused with a
 *     clear message; the state directory never holds a key;
 *   - an encrypted snapshot store (settings version 2, session key).
 */
#include "e2e.h"

#include <harvbk.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct world {
    char *root, *state, *target, *work, *keys;
    char *key1, *key2, *pass;   /* key files (0600) */
    harvbk_ctx *ctx;
} world;

static const char marker[] = "TOP-SECRET-MARKER-0123456789-plaintext";
static const char meta_secret[] = "{\"spec\":{\"password\":\"hunter2-metadata-secret\"}}";

static void write_private(const char *path, const void *data, size_t len, mode_t mode)
{
    e2e_write_file(path, data, len);
    assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    w->root = e2e_mkdtemp("crypt");
    w->state = e2e_path(w->root, "state");
    w->target = e2e_path(w->root, "target");
    w->work = e2e_path(w->root, "work");
    w->keys = e2e_path(w->root, "keys");
    assert_int_equal(mkdir(w->work, 0755), 0);
    assert_int_equal(mkdir(w->keys, 0700), 0);
    w->key1 = e2e_path(w->keys, "k1.key");
    w->key2 = e2e_path(w->keys, "k2.key");
    w->pass = e2e_path(w->keys, "pass.txt");
    uint8_t k[32];
    e2e_fill_random(k, sizeof k, 101);
    write_private(w->key1, k, sizeof k, 0600);
    e2e_fill_random(k, sizeof k, 102);
    write_private(w->key2, k, sizeof k, 0600);
    write_private(w->pass, "correct horse battery staple\n", 29, 0600);
    assert_int_equal(harvbk_ctx_open(&w->ctx, w->state, NULL), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    harvbk_ctx_free(w->ctx);
    e2e_rmrf(w->root);
    free(w->root);
    free(w->state);
    free(w->target);
    free(w->work);
    free(w->keys);
    free(w->key1);
    free(w->key2);
    free(w->pass);
    free(w);
    return 0;
}

/* Set the target: file://dir, 64 KiB chunks, codec, key settings (NULL: not set). */
static int set_target(harvbk_ctx *ctx, const char *dir, const char *codec, bool encrypt,
                      const char *key_file, const char *pass_file, const harvbk_key *session)
{
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = e2e_strf("file://%s", dir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    if (codec)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CODEC, codec), 0);
    if (encrypt)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_ENCRYPT, "1"), 0);
    if (key_file)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_KEY_FILE, key_file), 0);
    if (pass_file)
        assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_PASSPHRASE_FILE, pass_file),
                         0);
    if (session)
        assert_int_equal(harvbk_target_config_set_key(cfg, session), 0);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    harvbk_target_config_free(cfg);
    free(url);
    return rc;
}

static harvbk_vm *make_vm(const char *name, const char *disk)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", name), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "root", disk), 0);
    assert_int_equal(harvbk_vm_set_metadata(vm, meta_secret, strlen(meta_secret)), 0);
    return vm;
}

static int wait_op(harvbk_op *op, char *msg, size_t size)
{
    int rc = harvbk_op_wait(op);
    if (rc && msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    return rc;
}

static int backup(harvbk_ctx *ctx, const char *vmname, const char *disk, const char *name,
                  char *msg, size_t size)
{
    harvbk_vm *vm = make_vm(vmname, disk);
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, vm, name, NULL);
    harvbk_vm_free(vm);
    if (rc) {
        if (msg)
            snprintf(msg, size, "%s", harvbk_error_last());
        return rc;
    }
    return wait_op(op, msg, size);
}

static int restore(harvbk_ctx *ctx, const char *name, const char *newvm, const char *dir,
                   bool snapshot, char *msg, size_t size)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = newvm;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = snapshot ? harvbk_snapshot_restore(&op, ctx, "default", name, &ro)
                      : harvbk_restore_create(&op, ctx, "default", name, &ro);
    if (rc) {
        if (msg)
            snprintf(msg, size, "%s", harvbk_error_last());
        return rc;
    }
    return wait_op(op, msg, size);
}

static int verify(harvbk_ctx *ctx, const char *name, char *msg, size_t size)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_verify(&op, ctx, "default", name, NULL);
    if (rc) {
        if (msg)
            snprintf(msg, size, "%s", harvbk_error_last());
        return rc;
    }
    return wait_op(op, msg, size);
}

/* expr returns a code and leaves its message in the test's `msg` */
#define OK(expr)                                                                           \
    do {                                                                                   \
        int rc_ = (expr);                                                                  \
        if (rc_)                                                                           \
            fail_msg("%s: %s: %s", #expr, harvbk_error_name(rc_), msg);                    \
    } while (0)

/* A disk: random data, text with the marker in it, zeros (hole chunks). */
static void make_disk(const char *path, uint64_t seed)
{
    e2e_make_random(path, 16 * 65536, seed);
    for (int i = 0; i < 40; i++)
        e2e_pwrite_file(path, 4 * 65536 + (uint64_t)i * 200, marker, sizeof marker - 1);
    uint8_t *z = calloc(1, 2 * 65536);
    e2e_pwrite_file(path, 8 * 65536, z, 2 * 65536);
    free(z);
}

static bool tree_has(const char *dir, const void *needle, size_t n)
{
    size_t count = 0;
    char **files = e2e_list_files(dir, &count);
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        char *p = e2e_path(dir, files[i]);
        size_t len = 0;
        char *b = e2e_read_file(p, &len);
        if (b && memmem(b, len, needle, n))
            found = true;
        free(b);
        free(p);
    }
    e2e_strv_free(files);
    return found;
}

/* ---- round trip ---- */

static void test_roundtrip_file_target(void **state)
{
    world *w = *state;
    /* codec none: without encryption the marker would be in the chunks verbatim */
    assert_int_equal(set_target(w->ctx, w->target, "none", true, w->key1, NULL, NULL), 0);
    char *disk = e2e_path(w->work, "disk.img");
    make_disk(disk, 1);
    char *copy1 = e2e_path(w->work, "disk-b1.img");
    e2e_copy_file(disk, copy1);
    char msg[1024] = "";
    OK(backup(w->ctx, "vm1", disk, "b1", msg, sizeof msg));
    /* incremental: one chunk changed */
    e2e_write_random_at(disk, 2 * 65536 + 100, 5000, 77);
    OK(backup(w->ctx, "vm1", disk, "b2", msg, sizeof msg));
    OK(verify(w->ctx, "b1", msg, sizeof msg));
    OK(verify(w->ctx, "b2", msg, sizeof msg));
    char *r1 = e2e_path(w->work, "r1"), *r2 = e2e_path(w->work, "r2");
    OK(restore(w->ctx, "b1", "copy1", r1, false, msg, sizeof msg));
    OK(restore(w->ctx, "b2", "copy2", r2, false, msg, sizeof msg));
    char *f1 = e2e_path(r1, "root.raw"), *f2 = e2e_path(r2, "root.raw");
    e2e_assert_same_file(f1, copy1);
    e2e_assert_same_file(f2, disk);
    /* dedup within the store: b2 added one chunk */
    size_t nchunks = 0;
    char **chunks = e2e_chunk_files(w->target, &nchunks);
    e2e_strv_free(chunks);
    assert_int_equal(nchunks, 14 + 1); /* 16 chunks, 2 zero; then one new */
    /* nothing readable in the store: not the data, not the metadata, not the VM */
    assert_false(tree_has(w->target, marker, 16));
    assert_false(tree_has(w->target, "hunter2", 7));
    /* (needles of 7 bytes and more: a short one may occur in ciphertext by chance) */
    assert_false(tree_has(w->target, "\"vm_name\"", 9));
    assert_true(tree_has(w->target, "aes-256-gcm", 11));
    /* the state directory holds the key file's path, never the key */
    size_t klen = 0;
    char *kb = e2e_read_file(w->key1, &klen);
    assert_false(tree_has(w->state, kb, 16));
    assert_true(tree_has(w->state, w->key1, strlen(w->key1)));
    free(kb);
    /* keys: one key file slot, unlocked, in use; a fingerprint */
    harvbk_store_keys *k = NULL;
    assert_int_equal(harvbk_store_keys_get(w->ctx, HARVBK_STORE_TARGET, &k), 0);
    assert_int_equal(harvbk_store_keys_encrypted(k), 1);
    assert_int_equal(strlen(harvbk_store_keys_fingerprint(k)), 32);
    assert_int_equal(harvbk_store_keys_unlocked(k), 1);
    assert_int_equal(harvbk_store_keys_count(k), 1);
    assert_string_equal(harvbk_store_keys_kind(k, 0), "key-file");
    assert_int_equal(harvbk_store_keys_in_use(k, 0), 1);
    assert_true(harvbk_store_keys_created(k, 0) > 0);
    harvbk_store_keys_free(k);
    /* delete b1, gc: chunks only b1 had go, b2 still restores */
    assert_int_equal(harvbk_backup_delete(w->ctx, "default", "b1"), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_gc(&op, w->ctx, NULL), 0);
    OK(wait_op(op, msg, sizeof msg));
    char *r3 = e2e_path(w->work, "r3"), *f3 = e2e_path(r3, "root.raw");
    OK(restore(w->ctx, "b2", "copy3", r3, false, msg, sizeof msg));
    e2e_assert_same_file(f3, disk);
    /* a second cluster with the same key file sees and restores b2 */
    char *st2 = e2e_path(w->root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    assert_int_equal(set_target(c2, w->target, NULL, false, w->key1, NULL, NULL), 0);
    char *r4 = e2e_path(w->work, "r4"), *f4 = e2e_path(r4, "root.raw");
    OK(restore(c2, "b2", "copy4", r4, false, msg, sizeof msg));
    e2e_assert_same_file(f4, disk);
    harvbk_ctx_free(c2);
    free(st2);
    free(r4);
    free(f4);
    free(r3);
    free(f3);
    free(disk);
    free(copy1);
    free(r1);
    free(r2);
    free(f1);
    free(f2);
}

/* ---- wrong and missing keys ---- */

static void test_wrong_or_missing_key_touches_nothing(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL), 0);
    char *disk = e2e_path(w->work, "disk.img");
    make_disk(disk, 2);
    char msg[1024] = "";
    OK(backup(w->ctx, "vm1", disk, "b1", msg, sizeof msg));
    size_t n0 = 0;
    char **before = e2e_list_files(w->target, &n0);

    /* another cluster: a wrong key file, a passphrase, no key at all */
    char *st2 = e2e_path(w->root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    assert_int_equal(set_target(c2, w->target, NULL, false, w->key2, NULL, NULL), HARVBK_E_KEY);
    assert_non_null(strstr(harvbk_error_last(), "wrong key"));
    assert_int_equal(set_target(c2, w->target, NULL, false, NULL, w->pass, NULL), HARVBK_E_KEY);
    assert_int_equal(set_target(c2, w->target, NULL, false, NULL, NULL, NULL), HARVBK_E_KEY);
    assert_non_null(strstr(harvbk_error_last(), "is encrypted"));
    assert_non_null(strstr(harvbk_error_last(), "no key"));
    harvbk_ctx_free(c2);

    /* this cluster, its key file now holding another key: every operation
     * fails with HARVBK_E_KEY when it starts */
    size_t klen = 0;
    char *k1 = e2e_read_file(w->key1, &klen), *k2 = e2e_read_file(w->key2, &klen);
    write_private(w->key1, k2, klen, 0600);
    harvbk_ctx_free(w->ctx);
    assert_int_equal(harvbk_ctx_open(&w->ctx, w->state, NULL), 0);
    assert_int_equal(backup(w->ctx, "vm1", disk, "b2", msg, sizeof msg), HARVBK_E_KEY);
    assert_non_null(strstr(msg, "wrong key"));
    char *rdir = e2e_path(w->work, "restore");
    assert_int_equal(restore(w->ctx, "b1", "copy", rdir, false, msg, sizeof msg), HARVBK_E_KEY);
    assert_false(e2e_exists(rdir));
    assert_int_equal(verify(w->ctx, "b1", msg, sizeof msg), HARVBK_E_KEY);
    assert_int_equal(harvbk_ctx_check_target(w->ctx), HARVBK_E_KEY);
    /* not a byte of the store changed, nothing was added (no lease, no claim) */
    size_t n1 = 0;
    char **after = e2e_list_files(w->target, &n1);
    assert_int_equal(n0, n1);
    for (size_t i = 0; i < n0; i++)
        assert_string_equal(before[i], after[i]);
    e2e_strv_free(after);
    /* the session key overrides the key file: the right key again */
    harvbk_key *key = NULL;
    assert_int_equal(harvbk_key_from_bytes(&key, k1, 32), 0);
    assert_int_equal(harvbk_ctx_set_target_key(w->ctx, key), 0);
    harvbk_key_free(key);
    assert_int_equal(harvbk_ctx_check_target(w->ctx), 0);
    OK(restore(w->ctx, "b1", "copy", rdir, false, msg, sizeof msg));
    char *f = e2e_path(rdir, "root.raw");
    e2e_assert_same_file(f, disk);
    free(f);
    write_private(w->key1, k1, 32, 0600);
    free(k1);
    free(k2);
    e2e_strv_free(before);
    free(rdir);
    free(st2);
    free(disk);
}

/* Encryption configured, but the location holds a plaintext store: refused
 * (a store is never encrypted in place, and never silently not encrypted). */
static void test_plaintext_store_refused_when_encrypting(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, NULL, NULL, NULL), 0);
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL),
                     HARVBK_E_KEY);
    assert_non_null(strstr(harvbk_error_last(), "not encrypted"));
    assert_int_equal(set_target(w->ctx, w->target, NULL, true, NULL, NULL, NULL), HARVBK_E_KEY);
    /* and encryption asked without any key: no store is created */
    char *t2 = e2e_path(w->root, "t2");
    assert_int_equal(set_target(w->ctx, t2, NULL, true, NULL, NULL, NULL), HARVBK_E_KEY);
    char *cfg = e2e_path(t2, "harvbk-store.json");
    assert_false(e2e_exists(cfg));
    free(cfg);
    free(t2);
}

/* ---- key rotation ---- */

static void test_key_rotation(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL), 0);
    char *disk = e2e_path(w->work, "disk.img");
    make_disk(disk, 3);
    char msg[1024] = "";
    OK(backup(w->ctx, "vm1", disk, "b1", msg, sizeof msg));
    size_t nc0 = 0;
    char **chunks0 = e2e_chunk_files(w->target, &nc0);
    harvbk_store_keys *k = NULL;
    assert_int_equal(harvbk_store_keys_get(w->ctx, HARVBK_STORE_TARGET, &k), 0);
    char old_id[17], fp[33];
    snprintf(old_id, sizeof old_id, "%s", harvbk_store_keys_id(k, 0));
    snprintf(fp, sizeof fp, "%s", harvbk_store_keys_fingerprint(k));
    harvbk_store_keys_free(k);

    /* add key 2 and a passphrase (ids returned) */
    harvbk_key *k2 = NULL, *pw = NULL;
    assert_int_equal(harvbk_key_from_file(&k2, w->key2), 0);
    assert_int_equal(harvbk_key_from_passphrase_file(&pw, w->pass), 0);
    char id2[17] = "", idp[17] = "";
    assert_int_equal(harvbk_store_key_add(w->ctx, HARVBK_STORE_TARGET, k2, id2, sizeof id2), 0);
    assert_int_equal(harvbk_store_key_add(w->ctx, HARVBK_STORE_TARGET, pw, idp, sizeof idp), 0);
    assert_int_equal(harvbk_store_key_add(w->ctx, HARVBK_STORE_TARGET, k2, NULL, 0),
                     HARVBK_E_EXISTS);
    assert_int_equal(strlen(id2), 16);
    /* the key in use cannot go */
    assert_int_equal(harvbk_store_key_remove(w->ctx, HARVBK_STORE_TARGET, old_id),
                     HARVBK_E_STATE);
    assert_non_null(strstr(harvbk_error_last(), "opened the store with"));

    /* switch to key 2, remove key 1 */
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key2, NULL, NULL), 0);
    assert_int_equal(harvbk_store_key_remove(w->ctx, HARVBK_STORE_TARGET, old_id), 0);
    assert_int_equal(harvbk_store_keys_get(w->ctx, HARVBK_STORE_TARGET, &k), 0);
    assert_int_equal(harvbk_store_keys_count(k), 2);
    assert_string_equal(harvbk_store_keys_fingerprint(k), fp); /* the store key stays */
    for (size_t i = 0; i < 2; i++) {
        bool is2 = !strcmp(harvbk_store_keys_id(k, i), id2);
        assert_true(is2 || !strcmp(harvbk_store_keys_id(k, i), idp));
        assert_int_equal(harvbk_store_keys_in_use(k, i), is2);
        assert_string_equal(harvbk_store_keys_kind(k, i), is2 ? "key-file" : "passphrase");
    }
    harvbk_store_keys_free(k);
    /* restore with key 2; then in another cluster with the passphrase */
    char *r = e2e_path(w->work, "r"), *f = e2e_path(r, "root.raw");
    OK(restore(w->ctx, "b1", "copy", r, false, msg, sizeof msg));
    e2e_assert_same_file(f, disk);
    char *st2 = e2e_path(w->root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    assert_int_equal(set_target(c2, w->target, NULL, false, NULL, NULL, pw), 0);
    /* read back: encrypted (the session key implied it), the key left out */
    harvbk_target_config *got = NULL;
    assert_int_equal(harvbk_ctx_get_target(c2, &got), 0);
    char val[8] = "";
    assert_int_equal(harvbk_target_config_get(got, HARVBK_TARGET_ENCRYPT, val, sizeof val, NULL),
                     0);
    assert_string_equal(val, "1");
    assert_int_equal(harvbk_target_config_has_key(got), 0);
    harvbk_target_config_free(got);
    char *r2 = e2e_path(w->work, "r2"), *f2 = e2e_path(r2, "root.raw");
    OK(restore(c2, "b1", "copy2", r2, false, msg, sizeof msg));
    e2e_assert_same_file(f2, disk);
    /* the old key no longer opens the store */
    assert_int_equal(set_target(c2, w->target, NULL, false, w->key1, NULL, NULL), HARVBK_E_KEY);
    harvbk_ctx_free(c2);
    /* no chunk was touched */
    size_t nc1 = 0;
    char **chunks1 = e2e_chunk_files(w->target, &nc1);
    assert_int_equal(nc0, nc1);
    for (size_t i = 0; i < nc0; i++)
        assert_string_equal(chunks0[i], chunks1[i]);
    e2e_strv_free(chunks0);
    e2e_strv_free(chunks1);
    harvbk_key_free(k2);
    harvbk_key_free(pw);
    free(st2);
    free(r);
    free(f);
    free(r2);
    free(f2);
    free(disk);
}

/* ---- ciphertext and tampering ---- */

static void test_known_plaintext_chunk_has_no_plaintext_run(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, "none", false, w->key1, NULL, NULL), 0);
    char *disk = e2e_path(w->work, "fox.img");
    static const char fox[] = "The quick brown fox jumps over the lazy dog. ";
    char *buf = malloc(65536);
    for (size_t i = 0; i < 65536; i++)
        buf[i] = fox[i % (sizeof fox - 1)];
    e2e_write_file(disk, buf, 65536);
    char msg[1024] = "";
    OK(backup(w->ctx, "vm1", disk, "b1", msg, sizeof msg));
    size_t n = 0;
    char **chunks = e2e_chunk_files(w->target, &n);
    assert_int_equal(n, 1);
    char *p = e2e_path(w->target, chunks[0]);
    size_t len = 0;
    char *obj = e2e_read_file(p, &len);
    assert_int_equal(len, 32 + 65536 + 16);
    for (size_t i = 0; i + 8 <= sizeof fox - 1; i++)
        assert_null(memmem(obj, len, fox + i, 8));
    /* and the chunk's name is not the SHA-256 of its content */
    char sha[65];
    e2e_sha256_file_range(disk, 0, 65536, sha);
    assert_null(strstr(chunks[0], sha));
    free(obj);
    free(p);
    e2e_strv_free(chunks);
    free(buf);
    free(disk);
}

static void test_swapped_chunks_are_detected(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, "none", false, w->key1, NULL, NULL), 0);
    char *disk = e2e_path(w->work, "disk.img");
    e2e_make_random(disk, 4 * 65536, 9);
    char msg[1024] = "";
    OK(backup(w->ctx, "vm1", disk, "b1", msg, sizeof msg));
    size_t n = 0;
    char **chunks = e2e_chunk_files(w->target, &n);
    assert_int_equal(n, 4);
    char *a = e2e_path(w->target, chunks[0]), *b = e2e_path(w->target, chunks[1]);
    size_t la = 0, lb = 0;
    char *da = e2e_read_file(a, &la), *db = e2e_read_file(b, &lb);
    assert_int_equal(la, lb); /* same length: only the binding to the id tells them apart */
    e2e_write_file(a, db, lb);
    e2e_write_file(b, da, la);
    assert_int_equal(verify(w->ctx, "b1", msg, sizeof msg), HARVBK_E_CHUNK);
    assert_non_null(strstr(msg, "authentication failed"));
    char *r = e2e_path(w->work, "r");
    assert_int_equal(restore(w->ctx, "b1", "copy", r, false, msg, sizeof msg), HARVBK_E_CHUNK);
    /* swapped back: fine again */
    e2e_write_file(a, da, la);
    e2e_write_file(b, db, lb);
    OK(verify(w->ctx, "b1", msg, sizeof msg));
    /* one byte of the manifest changed: corrupt, named */
    char *man = e2e_path(w->target, "backups/default/b1/manifest.json");
    e2e_flip_byte(man, 60);
    assert_int_equal(verify(w->ctx, "b1", msg, sizeof msg), HARVBK_E_CORRUPT);
    free(man);
    free(r);
    free(da);
    free(db);
    free(a);
    free(b);
    e2e_strv_free(chunks);
    free(disk);
}

/* ---- key files ---- */

static void test_readable_key_files_are_refused(void **state)
{
    world *w = *state;
    assert_int_equal(chmod(w->key1, 0644), 0);
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL),
                     HARVBK_E_PERM);
    const char *m = harvbk_error_last();
    assert_non_null(strstr(m, w->key1));
    assert_non_null(strstr(m, "group or others"));
    assert_non_null(strstr(m, "chmod 600"));
    assert_int_equal(chmod(w->pass, 0640), 0);
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, NULL, w->pass, NULL),
                     HARVBK_E_PERM);
    harvbk_key *k = NULL;
    assert_int_equal(harvbk_key_from_file(&k, w->key1), HARVBK_E_PERM);
    assert_null(k);
    assert_int_equal(harvbk_key_from_passphrase_file(&k, w->pass), HARVBK_E_PERM);
    /* nothing was created */
    assert_false(e2e_exists(w->target) && e2e_count_files(w->target) > 0);
    assert_int_equal(chmod(w->key1, 0600), 0);
    assert_int_equal(chmod(w->pass, 0600), 0);
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL), 0);
    /* a relative key path is not a setting */
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_KEY_FILE, "k.key"),
                     HARVBK_E_INVALID);
    harvbk_target_config_free(cfg);
    /* keys given in memory: length rules */
    assert_int_equal(harvbk_key_from_bytes(&k, "short", 5), HARVBK_E_INVALID);
    assert_int_equal(harvbk_key_from_passphrase(&k, ""), HARVBK_E_INVALID);
    harvbk_key_free(NULL);
}

/* ---- the snapshot store ---- */

static void test_encrypted_snapshot_store(void **state)
{
    world *w = *state;
    char *sdir = e2e_path(w->root, "snaps");
    harvbk_snapshot_store_options so = HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    so.dir = sdir;
    so.chunk_size = 65536;
    so.flags = HARVBK_SNAPSHOT_STORE_ENCRYPT;
    /* encrypted without a key file: the session key */
    assert_int_equal(harvbk_snapshot_store_set(w->ctx, &so), 0);
    harvbk_key *pw = NULL;
    assert_int_equal(harvbk_key_from_passphrase(&pw, "snapshot passphrase"), 0);
    char *disk = e2e_path(w->work, "disk.img");
    make_disk(disk, 4);
    harvbk_vm *vm = make_vm("vm1", disk);
    harvbk_op *op = NULL;
    /* no key yet: refused before anything is written */
    assert_int_equal(harvbk_snapshot_create(&op, w->ctx, vm, "s1", NULL), HARVBK_E_KEY);
    char *cfgpath = e2e_path(sdir, "harvbk-store.json");
    assert_false(e2e_exists(cfgpath));
    assert_int_equal(harvbk_snapshot_store_set_key(w->ctx, pw), 0);
    char msg[1024] = "";
    assert_int_equal(harvbk_snapshot_create(&op, w->ctx, vm, "s1", NULL), 0);
    OK(wait_op(op, msg, sizeof msg));
    assert_int_equal(harvbk_snapshot_create(&op, w->ctx, vm, "s2", NULL), 0);
    OK(wait_op(op, msg, sizeof msg));
    assert_true(e2e_exists(cfgpath));
    assert_false(tree_has(sdir, marker, 16));
    assert_false(tree_has(sdir, "hunter2", 7));
    char *r = e2e_path(w->work, "rs"), *f = e2e_path(r, "root.raw");
    OK(restore(w->ctx, "s1", "snapcopy", r, true, msg, sizeof msg));
    e2e_assert_same_file(f, disk);
    harvbk_store_keys *k = NULL;
    assert_int_equal(harvbk_store_keys_get(w->ctx, HARVBK_STORE_SNAPSHOTS, &k), 0);
    assert_int_equal(harvbk_store_keys_encrypted(k), 1);
    assert_int_equal(harvbk_store_keys_unlocked(k), 1);
    assert_string_equal(harvbk_store_keys_kind(k, 0), "passphrase");
    harvbk_store_keys_free(k);
    /* a key file added to it, then used through the settings (version 2) */
    harvbk_key *k1 = NULL;
    assert_int_equal(harvbk_key_from_file(&k1, w->key1), 0);
    assert_int_equal(harvbk_store_key_add(w->ctx, HARVBK_STORE_SNAPSHOTS, k1, NULL, 0), 0);
    harvbk_key_free(k1);
    assert_int_equal(harvbk_snapshot_store_set_key(w->ctx, NULL), 0);
    so.key_file = w->key1;
    assert_int_equal(harvbk_snapshot_store_set(w->ctx, &so), 0);
    harvbk_ctx_free(w->ctx);
    assert_int_equal(harvbk_ctx_open(&w->ctx, w->state, NULL), 0);
    char *r2 = e2e_path(w->work, "rs2"), *f2 = e2e_path(r2, "root.raw");
    OK(restore(w->ctx, "s2", "snapcopy2", r2, true, msg, sizeof msg));
    e2e_assert_same_file(f2, disk);
    /* a wrong key file in the settings is refused when set */
    so.key_file = w->key2;
    assert_int_equal(harvbk_snapshot_store_set(w->ctx, &so), HARVBK_E_KEY);
    /* a plaintext store cannot be turned into an encrypted one */
    char *plain = e2e_path(w->root, "plain-snaps");
    harvbk_snapshot_store_options po = HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    harvbk_ctx *c2 = NULL;
    char *st2 = e2e_path(w->root, "state2");
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    po.dir = plain;
    assert_int_equal(harvbk_snapshot_store_set(c2, &po), 0);
    assert_int_equal(harvbk_snapshot_create(&op, c2, vm, "p1", NULL), 0);
    OK(wait_op(op, msg, sizeof msg));
    po.flags = HARVBK_SNAPSHOT_STORE_ENCRYPT;
    po.key_file = w->key1;
    assert_int_equal(harvbk_snapshot_store_set(c2, &po), HARVBK_E_STATE);
    assert_non_null(strstr(harvbk_error_last(), "not encrypted"));
    /* a version-1 options struct still works (no encryption) */
    /* (the size through a volatile: the compiler must not see the short allocation) */
    volatile size_t v1_size = offsetof(harvbk_snapshot_store_options, flags);
    harvbk_snapshot_store_options *v1 = malloc(v1_size);
    assert_int_equal(harvbk_snapshot_store_options_init(v1, 1), 0);
    v1->dir = plain;
    assert_int_equal(harvbk_snapshot_store_set(c2, v1), 0);
    free(v1);
    harvbk_ctx_free(c2);
    harvbk_vm_free(vm);
    harvbk_key_free(pw);
    free(st2);
    free(plain);
    free(r);
    free(f);
    free(r2);
    free(f2);
    free(cfgpath);
    free(disk);
    free(sdir);
}


/* Image records are sealed too: the record of an image a backup refers to
 * holds no readable field in the store, and another cluster reads it (its
 * restore names the image by its recorded display name). */
static void test_image_records_sealed(void **state)
{
    world *w = *state;
    assert_int_equal(set_target(w->ctx, w->target, NULL, false, w->key1, NULL, NULL), 0);
    harvbk_image *img = NULL;
    assert_int_equal(harvbk_image_new(&img, "default", "secret-image"), 0);
    assert_int_equal(harvbk_image_set_display_name(img, "Classified Image Display Name"), 0);
    assert_int_equal(harvbk_image_register(w->ctx, img), 0);
    harvbk_image_free(img);
    char *disk = e2e_path(w->work, "disk.img");
    e2e_make_random(disk, 2 * 65536, 21);
    harvbk_vm *vm = make_vm("vm1", disk);
    assert_int_equal(harvbk_vm_add_image(vm, "default/secret-image"), 0);
    harvbk_op *op = NULL;
    char msg[1024] = "";
    assert_int_equal(harvbk_backup_create(&op, w->ctx, vm, "b1", NULL), 0);
    OK(wait_op(op, msg, sizeof msg));
    harvbk_vm_free(vm);
    char *rec = e2e_path(w->target, "images/default/secret-image.json");
    size_t len = 0;
    char *b = e2e_read_file(rec, &len);
    assert_non_null(b);
    assert_memory_equal(b, "HBE1", 4);
    assert_null(memmem(b, len, "Classified", 10));
    free(b);
    /* another cluster without the image: the restore reads the sealed record */
    char *st2 = e2e_path(w->root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, st2, NULL), 0);
    assert_int_equal(set_target(c2, w->target, NULL, false, w->key1, NULL, NULL), 0);
    char *r = e2e_path(w->work, "r");
    assert_int_equal(restore(c2, "b1", "copy", r, false, msg, sizeof msg), HARVBK_E_IMAGE);
    assert_non_null(strstr(msg, "Classified Image Display Name"));
    /* a record planted in plaintext is refused as corrupt, not trusted */
    const char plain[] = "{\"namespace\":\"default\",\"name\":\"secret-image\"}";
    e2e_write_file(rec, plain, sizeof plain - 1);
    assert_int_equal(restore(c2, "b1", "copy", r, false, msg, sizeof msg), HARVBK_E_CORRUPT);
    harvbk_ctx_free(c2);
    free(r);
    free(st2);
    free(rec);
    free(disk);
}

/* ---- the CLI ---- */

static cJSON *key_list_json(const char *state)
{
    e2e_res r;
    e2e_run(&r, state, "target", "key", "list", "--json", NULL);
    e2e_assert_ok(&r);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    e2e_res_free(&r);
    return j;
}

static void test_cli_encrypt_rotate_and_refusals(void **state)
{
    world *w = *state;
    harvbk_ctx_free(w->ctx); /* the CLI works on the state directory alone */
    w->ctx = NULL;
    char *k = e2e_path(w->keys, "gen.key");
    e2e_ok(NULL, "target", "key", "generate", k, NULL);
    struct stat sb;
    assert_int_equal(stat(k, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 65);
    /* generate never overwrites */
    e2e_res r;
    e2e_run(&r, NULL, "target", "key", "generate", k, NULL);
    e2e_assert_fails(&r);
    e2e_res_free(&r);

    char *url = e2e_strf("file://%s", w->target);
    e2e_run(&r, w->state, "target", "set", url, "--encrypt", "--key-file", k, "--chunk-size",
            "64K", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "(encrypted)"));
    e2e_res_free(&r);
    char *disk = e2e_path(w->work, "disk.img"), *metaf = e2e_path(w->work, "meta.json");
    make_disk(disk, 5);
    e2e_write_file(metaf, meta_secret, strlen(meta_secret));
    char *diskarg = e2e_strf("root=%s", disk);
    e2e_ok(w->state, "vm", "add", "default/web", "--disk", diskarg, "--metadata", metaf, NULL);
    e2e_ok(w->state, "backup", "create", "default/web", "--name", "b1", NULL);
    assert_false(tree_has(w->target, marker, 16));
    assert_false(tree_has(w->target, "hunter2", 7));

    /* target show: encryption, the fingerprint the key list has too */
    cJSON *j = key_list_json(w->state);
    const char *fp = cJSON_GetObjectItem(j, "fingerprint")->valuestring;
    assert_int_equal(strlen(fp), 32);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "unlocked")));
    cJSON *keys = cJSON_GetObjectItem(j, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 1);
    char *old_id = strdup(cJSON_GetObjectItem(cJSON_GetArrayItem(keys, 0), "id")->valuestring);
    e2e_run(&r, w->state, "target", "show", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "aes-256-gcm"));
    assert_non_null(strstr(r.out, fp));
    assert_non_null(strstr(r.out, old_id));
    assert_non_null(strstr(r.out, "reachable:           yes"));
    e2e_res_free(&r);
    cJSON_Delete(j);

    /* rotation: add a passphrase, switch to it, remove the generated key */
    e2e_run(&r, w->state, "target", "key", "add", "--new-passphrase-file", w->pass, NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "added"));
    e2e_res_free(&r);
    e2e_run(&r, w->state, "target", "key", "remove", old_id, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "opened the store with");
    e2e_res_free(&r);
    e2e_ok(w->state, "target", "set", url, "--passphrase-file", w->pass, NULL);
    e2e_ok(w->state, "target", "key", "remove", old_id, NULL);
    j = key_list_json(w->state);
    keys = cJSON_GetObjectItem(j, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(keys, 0), "kind")->valuestring,
                        "passphrase");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(keys, 0), "in_use")));
    cJSON_Delete(j);
    char *rdir = e2e_path(w->work, "r"), *rfile = e2e_path(rdir, "root.raw");
    e2e_ok(w->state, "restore", "default/b1", "--new-vm", "default/copy", "--into", rdir, NULL);
    e2e_assert_same_file(rfile, disk);
    /* the removed key no longer opens it: given for the command, it fails
     * with a clear message and exit 1 */
    e2e_run(&r, w->state, "--key-file", k, "backup", "verify", "default/b1", NULL);
    e2e_assert_exit(&r, 1);
    e2e_assert_err_has(&r, "wrong key");
    e2e_res_free(&r);

    /* key and secret files others may read: refused, one clear line, nothing made */
    char *open_key = e2e_path(w->keys, "open.key");
    write_private(open_key, "0123456789abcdef0123456789abcdef", 32, 0644);
    char *url2 = e2e_strf("file://%s/t2", w->root);
    e2e_run(&r, w->state, "target", "set", url2, "--key-file", open_key, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "group or others");
    e2e_assert_err_has(&r, "chmod 600");
    e2e_res_free(&r);
    char *t2cfg = e2e_strf("%s/t2/harvbk-store.json", w->root);
    assert_false(e2e_exists(t2cfg));
    e2e_run(&r, w->state, "--key-file", open_key, "target", "show", NULL);
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "group or others");
    e2e_res_free(&r);
    char *secret = e2e_path(w->keys, "s3.secret");
    write_private(secret, "abcdefghijklmnopqrstuvwxyz0123456789ABCD\n", 41, 0640);
    e2e_run(&r, w->state, "target", "set", url2, "--secret-access-key-file", secret, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "group or others");
    e2e_res_free(&r);
    assert_false(e2e_exists(t2cfg));
    /* the state directory records the passphrase file's path, not the passphrase */
    assert_false(tree_has(w->state, "correct horse", 13));

    /* an encrypted snapshot store through the CLI */
    char *sdir = e2e_path(w->root, "snaps");
    e2e_run(&r, w->state, "snapshot", "store", "--dir", sdir, "--key-file", w->key1, NULL);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    e2e_ok(w->state, "snapshot", "create", "default/web", "--name", "s1", NULL);
    e2e_run(&r, w->state, "snapshot", "store", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "encryption: aes-256-gcm"));
    e2e_res_free(&r);
    assert_false(tree_has(sdir, marker, 16));
    e2e_run(&r, w->state, "target", "key", "list", "--snapshot-store", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "key-file"));
    e2e_res_free(&r);
    char *rs = e2e_path(w->work, "rs"), *rsf = e2e_path(rs, "root.raw");
    e2e_ok(w->state, "restore", "--snapshot", "default/s1", "--new-vm", "default/scopy", "--into",
           rs, NULL);
    e2e_assert_same_file(rsf, disk);

    free(rs);
    free(rsf);
    free(sdir);
    free(secret);
    free(t2cfg);
    free(url2);
    free(open_key);
    free(rdir);
    free(rfile);
    free(old_id);
    free(diskarg);
    free(disk);
    free(metaf);
    free(url);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_file_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_or_missing_key_touches_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_plaintext_store_refused_when_encrypting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_plaintext_chunk_has_no_plaintext_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_swapped_chunks_are_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readable_key_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encrypted_snapshot_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_records_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_encrypt_rotate_and_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
