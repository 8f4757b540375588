/* tests/unit/test_store_crypt.c - encryption at rest in the store layer
 * (docs/FORMAT.md section 10), on a real file:// target: the primitives,
 * key files, creating and opening encrypted stores (right, wrong and missing
 * keys), keyed chunk ids, ciphertext that holds no plaintext, tampering with
 * any byte of a chunk, index or manifest (and swapping objects), key slots
 * added and removed without touching a chunk, and what a 1.0 reader sees. */
#include "testutil.h"

#include "core/crypt.h"
#include "core/hb.h"
#include "store/store.h"
#include "target/config.h"
#include "target/target.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CS (64u * 1024u)

static const char fox[] = "The quick brown fox jumps over the lazy dog. ";

static hb_key *raw_key(uint64_t seed)
{
    uint8_t b[32];
    tu_fill_random(b, sizeof b, seed);
    hb_key *k = NULL;
    hb_err e = { 0 };
    assert_int_equal(hb_key_new(&k, HB_KEY_RAW, b, sizeof b, &e), 0);
    return k;
}

static hb_key *pass_key(const char *p)
{
    hb_key *k = NULL;
    hb_err e = { 0 };
    assert_int_equal(hb_key_new(&k, HB_KEY_PASSPHRASE, p, strlen(p), &e), 0);
    return k;
}

/* Open the store in dir: encrypt wanted (or implied by key), key may be NULL. */
static hb_store *open_st(const char *dir, const hb_key *key, bool encrypt, bool create, int codec,
                         hb_store_crypt *reuse, int *rc_out, hb_err *e)
{
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    cfg.url = malloc(strlen(dir) + 16);
    sprintf(cfg.url, "file://%s", dir);
    cfg.codec = codec;
    cfg.chunk_size = CS;
    cfg.encrypt = encrypt;
    assert_int_equal(hb_key_dup(&cfg.key, key), 0);
    hb_target *t = NULL;
    hb_store *st = NULL;
    int rc = hb_target_open(&t, &cfg, "test-owner", NULL, e);
    if (rc == 0)
        rc = hb_store_open_key(&st, t, &cfg, create, reuse, e);
    hb_target_cfg_clear(&cfg);
    *rc_out = rc;
    return st;
}

static hb_store *open_ok(const char *dir, const hb_key *key, int codec)
{
    hb_err e = { 0 };
    int rc = -1;
    hb_store *st = open_st(dir, key, false, true, codec, NULL, &rc, &e);
    if (rc)
        fail_msg("open %s: %s", dir, e.msg);
    return st;
}

static char *read_file(const char *dir, const char *rel, size_t *n)
{
    char *p = tu_path2(dir, rel);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    b[len] = '\0';
    fclose(f);
    free(p);
    *n = (size_t)len;
    return b;
}

static void write_at(const char *dir, const char *rel, const void *b, size_t n)
{
    char *p = tu_path2(dir, rel);
    assert_int_equal(tu_write_file(p, b, n), 0);
    free(p);
}

/* ---- primitives and key files ---- */

static void test_gcm_hmac_hkdf(void **state)
{
    (void)state;
    uint8_t key[32], nonce[12], tag[16], buf[1000], back[1000], pt[1000];
    tu_fill_random(key, sizeof key, 1);
    tu_fill_random(nonce, sizeof nonce, 2);
    tu_fill_random(pt, sizeof pt, 3);
    assert_int_equal(hb_gcm_seal(key, nonce, "ab", 2, "cd", 2, pt, sizeof pt, buf, tag), 0);
    assert_memory_not_equal(buf, pt, sizeof pt);
    /* the additional data is one stream: "ab"+"cd" == "a"+"bcd" */
    assert_int_equal(hb_gcm_open(key, nonce, "a", 1, "bcd", 3, buf, sizeof buf, tag, back), 0);
    assert_memory_equal(back, pt, sizeof pt);
    /* in place */
    memcpy(back, buf, sizeof buf);
    assert_int_equal(hb_gcm_open(key, nonce, "abcd", 4, NULL, 0, back, sizeof back, tag, back), 0);
    assert_memory_equal(back, pt, sizeof pt);
    /* any change: other data, a flipped ciphertext bit, a flipped tag bit */
    assert_int_equal(hb_gcm_open(key, nonce, "abce", 4, NULL, 0, buf, sizeof buf, tag, back),
                     HARVBK_E_CHUNK);
    buf[500] ^= 1;
    assert_int_equal(hb_gcm_open(key, nonce, "abcd", 4, NULL, 0, buf, sizeof buf, tag, back),
                     HARVBK_E_CHUNK);
    buf[500] ^= 1;
    tag[0] ^= 0x80;
    assert_int_equal(hb_gcm_open(key, nonce, "abcd", 4, NULL, 0, buf, sizeof buf, tag, back),
                     HARVBK_E_CHUNK);

    /* RFC 4231 test case 2: HMAC-SHA-256("Jefe", "what do ya want for nothing?") */
    uint8_t mac[32];
    char hex[65];
    hb_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, mac);
    hb_hex(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 5869 test case 1 */
    uint8_t ikm[22], salt[13], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (int i = 0; i < 13; i++)
        salt[i] = (uint8_t)i;
    /* info 0xf0..0xf9 is not text; our labels are: check determinism and
     * separation instead, plus scrypt's RFC 7914 vector */
    assert_int_equal(hb_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, "a", okm, 32), 0);
    uint8_t okm2[32];
    assert_int_equal(hb_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, "a", okm2, 32), 0);
    assert_memory_equal(okm, okm2, 32);
    assert_int_equal(hb_hkdf_sha256(ikm, sizeof ikm, salt, sizeof salt, "b", okm2, 32), 0);
    assert_memory_not_equal(okm, okm2, 32);
    uint8_t sc[64];
    assert_int_equal(hb_scrypt("password", 8, (const uint8_t *)"NaCl", 4, 1024, 8, 16, sc, 64),
                     0);
    char schex[129];
    hb_hex(sc, 64, schex);
    assert_string_equal(schex, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
                               "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
}

static void test_secure_memory_and_keys(void **state)
{
    (void)state;
    uint8_t *p = hb_secure_alloc(100);
    assert_non_null(p);
    assert_true(hb_is_zero(p, 100));
    memset(p, 0xaa, 100);
    hb_secure_free(p, 100);
    hb_err e = { 0 };
    hb_key *k = NULL;
    assert_int_equal(hb_key_new(&k, HB_KEY_RAW, "short", 5, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "32"));
    assert_int_equal(hb_key_new(&k, HB_KEY_PASSPHRASE, "", 0, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_key_new(&k, HB_KEY_PASSPHRASE, "a\0b", 3, &e), HARVBK_E_INVALID);
    assert_null(k);
    k = pass_key("correct horse");
    hb_key *d = NULL;
    assert_int_equal(hb_key_dup(&d, k), 0);
    assert_int_equal(d->kind, HB_KEY_PASSPHRASE);
    assert_int_equal(d->len, 13);
    assert_memory_equal(d->data, "correct horse", 13);
    hb_key_free(d);
    hb_key_free(k);
    hb_key_free(NULL);
}

/* Key and passphrase files: private ones are read; a file group or others
 * may read (or write) is refused with a message saying what to do. */
static void test_key_files_must_be_private(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("keyfile");
    char *kf = tu_path2(dir, "store.key"), *pf = tu_path2(dir, "pass.txt");
    uint8_t raw[48];
    tu_fill_random(raw, sizeof raw, 7);
    assert_int_equal(tu_write_file(kf, raw, sizeof raw), 0);
    assert_int_equal(tu_write_file(pf, "s3cret pass\r\nsecond line\n", 25), 0);
    hb_err e = { 0 };
    hb_key *k = NULL;
    for (int i = 0; i < 3; i++) {
        mode_t bad[] = { 0640, 0604, 0620 };
        assert_int_equal(chmod(kf, bad[i]), 0);
        assert_int_equal(hb_key_load_file(&k, HB_KEY_RAW, kf, &e), HARVBK_E_PERM);
        assert_null(k);
        assert_non_null(strstr(e.msg, "group or others"));
        assert_non_null(strstr(e.msg, "chmod 600"));
        assert_non_null(strstr(e.msg, kf));
    }
    assert_int_equal(chmod(kf, 0600), 0);
    assert_int_equal(hb_key_load_file(&k, HB_KEY_RAW, kf, &e), 0);
    assert_int_equal(k->len, sizeof raw);
    assert_memory_equal(k->data, raw, sizeof raw);
    hb_key_free(k);
    /* a passphrase file: its first line, without "\r" */
    assert_int_equal(chmod(pf, 0644), 0);
    assert_int_equal(hb_key_load_file(&k, HB_KEY_PASSPHRASE, pf, &e), HARVBK_E_PERM);
    assert_int_equal(chmod(pf, 0400), 0);
    assert_int_equal(hb_key_load_file(&k, HB_KEY_PASSPHRASE, pf, &e), 0);
    assert_int_equal(k->len, 11);
    assert_memory_equal(k->data, "s3cret pass", 11);
    hb_key_free(k);
    /* too short a key file; an absent one; a directory */
    assert_int_equal(tu_write_file(kf, "0123456789", 10), 0);
    assert_int_equal(chmod(kf, 0600), 0);
    assert_int_equal(hb_key_load_file(&k, HB_KEY_RAW, kf, &e), HARVBK_E_INVALID);
    char *none = tu_path2(dir, "absent.key");
    assert_int_equal(hb_key_load_file(&k, HB_KEY_RAW, none, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(hb_key_load_file(&k, HB_KEY_RAW, dir, &e), HARVBK_E_INVALID);
    free(none);
    free(kf);
    free(pf);
    tu_rmrf(dir);
    free(dir);
}

/* ---- encrypted stores ---- */

static void test_create_reopen_wrong_and_missing_key(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-open");
    hb_key *k1 = raw_key(1), *k2 = raw_key(2), *pw = pass_key("pw");
    hb_store *st = open_ok(dir, k1, -1);
    assert_non_null(st->crypt);
    char fp[HB_STORE_FP_HEX + 1];
    strcpy(fp, hb_store_crypt_fingerprint(st->crypt));
    assert_int_equal(strlen(fp), 32);
    assert_int_equal(strlen(st->key_slot), 16);
    hb_store_close(st);

    /* the config says what it is */
    size_t n;
    char *cfg = read_file(dir, "harvbk-store.json", &n);
    cJSON *root = cJSON_Parse(cfg);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "format_major")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(root, "format_minor")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(root, "encryption")->valuestring, "aes-256-gcm");
    assert_string_equal(cJSON_GetObjectItem(root, "chunk_id")->valuestring, "hmac-sha256");
    assert_string_equal(cJSON_GetObjectItem(root, "key_fingerprint")->valuestring, fp);
    cJSON *keys = cJSON_GetObjectItem(root, "keys");
    assert_int_equal(cJSON_GetArraySize(keys), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(keys, 0), "kdf")->valuestring,
                        "hkdf-sha256");
    cJSON_Delete(root);
    /* nothing of the key itself is in the config */
    assert_null(memmem(cfg, n, k1->data, 8));
    free(cfg);

    /* the same key opens it, with the same fingerprint */
    st = open_ok(dir, k1, -1);
    assert_string_equal(hb_store_crypt_fingerprint(st->crypt), fp);
    hb_store_close(st);
    /* a wrong key, a passphrase, no key at all: HARVBK_E_KEY, clearly */
    hb_err e = { 0 };
    int rc;
    assert_null(open_st(dir, k2, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    assert_non_null(strstr(e.msg, "wrong key"));
    assert_null(open_st(dir, pw, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    assert_non_null(strstr(e.msg, "passphrase"));
    assert_null(open_st(dir, NULL, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    assert_non_null(strstr(e.msg, "no key"));
    assert_non_null(strstr(e.msg, fp));
    /* the store key unlocked once is reused: no key needed then */
    st = open_ok(dir, k1, -1);
    hb_store_crypt *c = hb_store_crypt_ref(st->crypt);
    hb_store_close(st);
    st = open_st(dir, NULL, false, false, -1, c, &rc, &e);
    assert_int_equal(rc, 0);
    assert_ptr_equal(st->crypt, c);
    hb_store_close(st);

    /* encryption wanted but the store is plaintext: refused */
    char *plain = tu_mkdtemp("enc-plain");
    st = open_ok(plain, NULL, -1);
    assert_null(st->crypt);
    hb_store_close(st);
    assert_null(open_st(plain, k1, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    assert_non_null(strstr(e.msg, "not encrypted"));
    assert_null(open_st(plain, NULL, true, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    /* and an encrypted store wanted without a key: nothing is created */
    char *fresh = tu_mkdtemp("enc-nokey");
    assert_null(open_st(fresh, NULL, true, true, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    char *cfgpath = tu_path2(fresh, "harvbk-store.json");
    struct stat sb;
    assert_int_equal(stat(cfgpath, &sb), -1);
    free(cfgpath);

    hb_store_crypt_unref(c);
    hb_key_free(k1);
    hb_key_free(k2);
    hb_key_free(pw);
    tu_rmrf(dir);
    tu_rmrf(plain);
    tu_rmrf(fresh);
    free(dir);
    free(plain);
    free(fresh);
}

/* Chunk ids are keyed (dedup within the store still works), chunks come
 * back byte for byte, and the ciphertext of a chunk of known plaintext holds
 * no run of it, whatever the codec. */
static void test_chunks_keyed_and_no_plaintext_run(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-chunk");
    hb_key *k = raw_key(3);
    static const int codecs[] = { HB_CODEC_NONE, HB_CODEC_ZSTD, HB_CODEC_LZ4, HB_CODEC_GZIP };
    uint8_t *raw = malloc(CS), *back = malloc(CS);
    for (size_t i = 0; i < CS; i++)
        raw[i] = (uint8_t)fox[i % (sizeof fox - 1)];
    raw[7] = (uint8_t)'0'; /* not the all-zero chunk */
    for (size_t ci = 0; ci < HB_ARRAY_LEN(codecs); ci++) {
        hb_store *st = open_ok(dir, k, codecs[ci]);
        raw[0] = (uint8_t)('A' + ci); /* one chunk per codec */
        uint8_t id[32], sha[32];
        hb_store_chunk_id(st, raw, CS, id);
        hb_sha256(raw, CS, sha);
        assert_memory_not_equal(id, sha, 32);
        uint8_t id2[32];
        hb_store_chunk_id(st, raw, CS, id2);
        assert_memory_equal(id, id2, 32); /* deterministic: dedup works */
        hb_buf scratch = HB_BUF_INIT;
        hb_err e = { 0 };
        uint64_t stored = 0;
        assert_int_equal(hb_store_chunk_put(st, id, raw, CS, &scratch, &stored, &e), 0);
        assert_int_equal(hb_store_chunk_exists(st, id, &e), 1);
        size_t got = 0;
        assert_int_equal(hb_store_chunk_get(st, id, back, CS, &got, &scratch, &e), 0);
        assert_int_equal(got, CS);
        assert_memory_equal(back, raw, CS);
        /* the object: flag set, nonce in the header, no plaintext run */
        char key[HB_CHUNK_KEY_LEN];
        hb_chunk_key(id, key);
        size_t n;
        char *obj = read_file(dir, key, &n);
        assert_int_equal(n, stored);
        assert_int_equal((uint8_t)obj[5], 1);
        assert_false(hb_is_zero(obj + 16, 12));
        assert_true(hb_is_zero(obj + 28, 4));
        for (size_t w = 0; w + 12 <= sizeof fox - 1; w++)
            assert_null(memmem(obj + 32, n - 32, fox + w, 12));
        assert_null(memmem(obj, n, "quick", 5));
        free(obj);
        hb_buf_free(&scratch);
        hb_store_close(st);
    }
    free(raw);
    free(back);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

/* Any byte of a chunk object changed, or two chunk objects of the same length
 * swapped, is detected; nothing of them is returned. */
static void test_chunk_tamper_and_swap(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-tamper");
    hb_key *k = raw_key(4);
    hb_store *st = open_ok(dir, k, HB_CODEC_NONE);
    uint8_t *a = malloc(CS), *b = malloc(CS), *back = malloc(CS);
    tu_fill_random(a, CS, 10);
    tu_fill_random(b, CS, 11);
    uint8_t ida[32], idb[32];
    hb_store_chunk_id(st, a, CS, ida);
    hb_store_chunk_id(st, b, CS, idb);
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_store_chunk_put(st, ida, a, CS, &scratch, NULL, &e), 0);
    assert_int_equal(hb_store_chunk_put(st, idb, b, CS, &scratch, NULL, &e), 0);
    char ka[HB_CHUNK_KEY_LEN], kb[HB_CHUNK_KEY_LEN];
    hb_chunk_key(ida, ka);
    hb_chunk_key(idb, kb);
    size_t na, nb;
    char *oa = read_file(dir, ka, &na), *ob = read_file(dir, kb, &nb);
    assert_int_equal(na, nb);
    /* swap: each object at the other's key */
    write_at(dir, ka, ob, nb);
    write_at(dir, kb, oa, na);
    assert_int_equal(hb_store_chunk_get(st, ida, back, CS, NULL, &scratch, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, "authentication failed"));
    assert_int_equal(hb_store_chunk_get(st, idb, back, CS, NULL, &scratch, &e), HARVBK_E_CHUNK);
    /* every byte position of a (header, nonce, payload, tag), one at a time */
    size_t positions[] = { 4, 5, 8, 12, 16, 27, 32, 33, 1000, na / 2, na - 17, na - 16, na - 1 };
    for (size_t i = 0; i < HB_ARRAY_LEN(positions); i++) {
        oa[positions[i]] ^= 0x01;
        write_at(dir, ka, oa, na);
        int rc = hb_store_chunk_get(st, ida, back, CS, NULL, &scratch, &e);
        assert_true(rc == HARVBK_E_CHUNK || rc == HARVBK_E_FORMAT);
        oa[positions[i]] ^= 0x01;
    }
    write_at(dir, ka, oa, na);
    assert_int_equal(hb_store_chunk_get(st, ida, back, CS, NULL, &scratch, &e), 0);
    assert_memory_equal(back, a, CS);
    /* a plaintext chunk object planted at a key of the encrypted store */
    hb_buf plain = HB_BUF_INIT;
    assert_int_equal(hb_chunk_encode(HB_CODEC_NONE, 0, a, CS, &plain, &e), 0);
    write_at(dir, ka, plain.data, plain.len);
    assert_int_equal(hb_store_chunk_get(st, ida, back, CS, NULL, &scratch, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, "not encrypted"));
    hb_buf_free(&plain);
    free(oa);
    free(ob);
    free(a);
    free(b);
    free(back);
    hb_buf_free(&scratch);
    hb_store_close(st);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

static void make_entry(hb_store *st, const char *name, uint64_t seed)
{
    hb_manifest m;
    hb_manifest_init(&m);
    m.kind = strdup("backup");
    m.ns = strdup("default");
    m.name = strdup(name);
    m.vm_ns = strdup("default");
    m.vm_name = strdup("secret-vm");
    m.writer = strdup("5b0c2d1e-0000-4000-8000-000000000001");
    m.created = 1764000000;
    m.completed = 1764000100;
    m.chunk_size = CS;
    m.logical_bytes = 3 * (uint64_t)CS;
    hb_buf_append(&m.metadata, "{\"password\":\"hunter2\"}", 22);
    m.nvols = 1;
    m.vols = calloc(1, sizeof *m.vols);
    m.vols[0].name = strdup("disk-0");
    hb_index ix;
    assert_int_equal(hb_index_init(&ix, 3 * (uint64_t)CS, CS), 0);
    for (uint64_t i = 0; i < ix.count; i++)
        tu_fill_random(hb_index_id(&ix, i), 32, seed + i);
    hb_err e = { 0 };
    uint64_t bytes = 0;
    assert_int_equal(
        hb_store_index_write(st, HB_KIND_BACKUPS, "default", name, &m.vols[0], &ix, &bytes, &e),
        0);
    assert_int_equal(bytes, 64 + 3 * 32 + (st->crypt ? HB_ENVELOPE_OVERHEAD : 0));
    assert_int_equal(hb_store_manifest_write(st, HB_KIND_BACKUPS, &m, &e), 0);
    hb_index_clear(&ix);
    hb_manifest_clear(&m);
}

static int read_entry(hb_store *st, const char *name, hb_err *e)
{
    hb_manifest m;
    int rc = hb_store_manifest_read(st, HB_KIND_BACKUPS, "default", name, &m, e);
    if (rc)
        return rc;
    hb_index ix;
    rc = hb_store_index_read(st, HB_KIND_BACKUPS, &m, &m.vols[0], &ix, e);
    if (rc == 0)
        hb_index_clear(&ix);
    hb_manifest_clear(&m);
    return rc;
}

/* Indexes and manifests are sealed: their content is not readable in the
 * store, any changed byte is detected, and so is an object moved to another
 * entry's key (two manifests or two indexes swapped). */
static void test_index_manifest_sealed(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-meta");
    hb_key *k = raw_key(5);
    hb_store *st = open_ok(dir, k, -1);
    make_entry(st, "bk-1", 100);
    make_entry(st, "bk-2", 200);
    hb_err e = { 0 };
    assert_int_equal(read_entry(st, "bk-1", &e), 0);
    const char *m1 = "backups/default/bk-1/manifest.json", *m2 = "backups/default/bk-2/manifest.json";
    const char *i1 = "backups/default/bk-1/disk-0.idx", *i2 = "backups/default/bk-2/disk-0.idx";
    size_t n1, n2, x1, x2;
    char *mo1 = read_file(dir, m1, &n1), *mo2 = read_file(dir, m2, &n2);
    char *io1 = read_file(dir, i1, &x1), *io2 = read_file(dir, i2, &x2);
    assert_memory_equal(mo1, "HBE1", 4);
    assert_memory_equal(io1, "HBE1", 4);
    assert_null(memmem(mo1, n1, "secret-vm", 9));
    assert_null(memmem(mo1, n1, "hunter2", 7));
    assert_null(memmem(mo1, n1, "disk-0", 6));
    assert_null(memmem(io1, x1, "HBI1", 4));
    /* one changed byte anywhere in a manifest */
    size_t pos[] = { 0, 4, 8, 16, 31, 32, n1 / 2, n1 - 1 };
    for (size_t i = 0; i < HB_ARRAY_LEN(pos); i++) {
        mo1[pos[i]] ^= 0x20;
        write_at(dir, m1, mo1, n1);
        int rc = read_entry(st, "bk-1", &e);
        assert_true(rc == HARVBK_E_CORRUPT || rc == HARVBK_E_FORMAT);
        mo1[pos[i]] ^= 0x20;
    }
    write_at(dir, m1, mo1, n1);
    assert_int_equal(read_entry(st, "bk-1", &e), 0);
    /* manifests swapped (same length: same content shape) */
    assert_int_equal(n1, n2);
    write_at(dir, m1, mo2, n2);
    assert_int_equal(read_entry(st, "bk-1", &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "authentication"));
    write_at(dir, m1, mo1, n1);
    /* one changed byte in an index, and indexes swapped */
    io1[x1 - 3] ^= 1;
    write_at(dir, i1, io1, x1);
    assert_int_equal(read_entry(st, "bk-1", &e), HARVBK_E_CORRUPT);
    io1[x1 - 3] ^= 1;
    write_at(dir, i1, io2, x2);
    assert_int_equal(read_entry(st, "bk-1", &e), HARVBK_E_CORRUPT);
    write_at(dir, i1, io1, x1);
    assert_int_equal(read_entry(st, "bk-1", &e), 0);
    /* a plaintext manifest planted in the encrypted store */
    hb_store_close(st);
    char *plain = tu_mkdtemp("enc-meta-plain");
    hb_store *ps = open_ok(plain, NULL, -1);
    make_entry(ps, "bk-1", 100);
    hb_store_close(ps);
    size_t pn;
    char *pm = read_file(plain, m1, &pn);
    st = open_ok(dir, k, -1);
    write_at(dir, m1, pm, pn);
    assert_int_equal(read_entry(st, "bk-1", &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "not encrypted"));
    free(pm);
    tu_rmrf(plain);
    free(plain);
    free(mo1);
    free(mo2);
    free(io1);
    free(io2);
    hb_store_close(st);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

/* What a reader of format 1.0 sees in an encrypted store: a config whose
 * chunk_id and encryption values it refuses with HARVBK_E_FORMAT
 * (FORMAT.md section 3: any value but "sha256"/"none"), and chunks whose
 * encrypted flag its chunk reader refuses with HARVBK_E_FORMAT. */
static void test_format_1_0_reader_refuses(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-10");
    hb_key *k = raw_key(6);
    hb_store *st = open_ok(dir, k, -1);
    uint8_t raw[1000];
    tu_fill_random(raw, sizeof raw, 12);
    uint8_t id[32];
    hb_store_chunk_id(st, raw, sizeof raw, id);
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_store_chunk_put(st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
    hb_store_close(st);
    size_t n;
    char *cfg = read_file(dir, "harvbk-store.json", &n);
    cJSON *root = cJSON_Parse(cfg);
    /* the 1.0 rules, as the 1.0 library applies them (store.c of 1.0) */
    const char *cid = cJSON_GetObjectItem(root, "chunk_id")->valuestring;
    const char *enc = cJSON_GetObjectItem(root, "encryption")->valuestring;
    assert_true(strcmp(cid, "sha256") != 0);
    assert_true(strcmp(enc, "none") != 0);
    assert_int_equal(cJSON_GetObjectItem(root, "format_major")->valueint, 1);
    cJSON_Delete(root);
    free(cfg);
    /* the chunk reader without a key (1.0's, unchanged for plaintext) */
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    char *obj = read_file(dir, key, &n);
    uint8_t back[1000];
    assert_int_equal(hb_chunk_decode(obj, n, id, back, sizeof back, NULL, &e), HARVBK_E_FORMAT);
    assert_non_null(strstr(e.msg, "encrypted"));
    free(obj);
    hb_buf_free(&scratch);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

/* Key slots: add a passphrase, open with it, remove the first key (refused
 * while it is the one in use and while it is the last), and no chunk,
 * index or manifest changes meanwhile. */
static void test_key_slots_add_remove(void **state)
{
    (void)state;
    hb_scrypt_log2n = 10; /* fast: the test checks the slots, not the cost */
    char *dir = tu_mkdtemp("enc-slots");
    hb_key *k1 = raw_key(7), *k2 = raw_key(8), *pw = pass_key("a long passphrase");
    hb_store *st = open_ok(dir, k1, -1);
    char slot1[17];
    strcpy(slot1, st->key_slot);
    uint8_t raw[5000];
    tu_fill_random(raw, sizeof raw, 13);
    uint8_t id[32];
    hb_store_chunk_id(st, raw, sizeof raw, id);
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_store_chunk_put(st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
    make_entry(st, "bk-1", 300);
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    size_t n0, m0;
    char *obj0 = read_file(dir, key, &n0);
    char *man0 = read_file(dir, "backups/default/bk-1/manifest.json", &m0);

    char idp[17] = "", idk2[17] = "";
    assert_int_equal(hb_store_key_add(st, pw, idp, &e), 0);
    assert_int_equal(strlen(idp), 16);
    assert_int_equal(hb_store_key_add(st, k2, idk2, &e), 0);
    /* the same key twice: refused */
    assert_int_equal(hb_store_key_add(st, pw, NULL, &e), HARVBK_E_EXISTS);
    assert_int_equal(hb_store_key_add(st, k1, NULL, &e), HARVBK_E_EXISTS);
    hb_keyring r;
    assert_int_equal(hb_store_keyring_read(st->t, &r, &e), 0);
    assert_true(r.encrypted);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.slots[1].kdf, HB_KDF_SCRYPT);
    assert_int_equal(r.slots[1].n, 1024);
    size_t slot = 99;
    assert_int_equal(hb_keyring_match(&r, pw, &slot, &e), 0);
    assert_int_equal(slot, 1);
    hb_keyring_clear(&r);
    /* the key in use cannot be removed; an unknown id is not found */
    assert_int_equal(hb_store_key_remove(st, slot1, &e), HARVBK_E_STATE);
    assert_int_equal(hb_store_key_remove(st, "0123456789abcdef", &e), HARVBK_E_NOTFOUND);
    hb_store_close(st);

    /* open with the passphrase, remove the first key and the second */
    int rc;
    st = open_st(dir, pw, false, false, -1, NULL, &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(st->key_slot, idp);
    assert_int_equal(read_entry(st, "bk-1", &e), 0);
    assert_int_equal(hb_store_key_remove(st, slot1, &e), 0);
    assert_int_equal(hb_store_key_remove(st, idk2, &e), 0);
    /* the last one stays */
    assert_int_equal(hb_store_key_remove(st, idp, &e), HARVBK_E_STATE);
    hb_store_close(st);
    assert_null(open_st(dir, k1, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_KEY);
    st = open_st(dir, pw, false, false, -1, NULL, &rc, &e);
    assert_int_equal(rc, 0);
    uint8_t back[5000];
    assert_int_equal(hb_store_chunk_get(st, id, back, sizeof back, NULL, &scratch, &e), 0);
    assert_memory_equal(back, raw, sizeof raw);
    hb_store_close(st);
    /* not one byte of the chunk or the manifest changed */
    size_t n1, m1;
    char *obj1 = read_file(dir, key, &n1);
    char *man1 = read_file(dir, "backups/default/bk-1/manifest.json", &m1);
    assert_int_equal(n0, n1);
    assert_memory_equal(obj0, obj1, n0);
    assert_int_equal(m0, m1);
    assert_memory_equal(man0, man1, m0);
    free(obj0);
    free(obj1);
    free(man0);
    free(man1);
    hb_buf_free(&scratch);
    hb_key_free(k1);
    hb_key_free(k2);
    hb_key_free(pw);
    tu_rmrf(dir);
    free(dir);
    hb_scrypt_log2n = HB_SCRYPT_LOG2N_DEFAULT;
}

/* A hostile config: costs out of range, a damaged slot, a fingerprint that
 * is not the key's. Refused (HARVBK_E_CORRUPT), never used. */
static void test_hostile_key_slots(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-hostile");
    hb_key *k = raw_key(9);
    hb_store *st = open_ok(dir, k, -1);
    hb_store_close(st);
    size_t n;
    char *cfg = read_file(dir, "harvbk-store.json", &n);
    hb_err e = { 0 };
    int rc;
    /* wrapped key damaged: matches the id but does not unwrap */
    cJSON *root = cJSON_Parse(cfg);
    cJSON *slot = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "keys"), 0);
    char *w = cJSON_GetObjectItem(slot, "wrapped")->valuestring;
    w[0] = w[0] == '0' ? '1' : '0';
    char *t = cJSON_PrintUnformatted(root);
    write_at(dir, "harvbk-store.json", t, strlen(t));
    free(t);
    cJSON_Delete(root);
    assert_null(open_st(dir, k, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    /* another fingerprint */
    root = cJSON_Parse(cfg);
    cJSON_ReplaceItemInObject(root, "key_fingerprint",
                              cJSON_CreateString("00000000000000000000000000000000"));
    t = cJSON_PrintUnformatted(root);
    write_at(dir, "harvbk-store.json", t, strlen(t));
    free(t);
    cJSON_Delete(root);
    assert_null(open_st(dir, k, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    /* a passphrase slot asking for 4 GiB of memory */
    root = cJSON_Parse(cfg);
    cJSON *keys = cJSON_GetObjectItem(root, "keys");
    cJSON *bad = cJSON_Duplicate(cJSON_GetArrayItem(keys, 0), 1);
    cJSON_ReplaceItemInObject(bad, "kdf", cJSON_CreateString("scrypt"));
    cJSON_ReplaceItemInObject(bad, "id", cJSON_CreateString("0123456789abcdef"));
    cJSON_AddNumberToObject(bad, "n", 1 << 20);
    cJSON_AddNumberToObject(bad, "r", 32);
    cJSON_AddNumberToObject(bad, "p", 1);
    cJSON_AddItemToArray(keys, bad);
    t = cJSON_PrintUnformatted(root);
    write_at(dir, "harvbk-store.json", t, strlen(t));
    free(t);
    cJSON_Delete(root);
    assert_null(open_st(dir, k, false, false, -1, NULL, &rc, &e));
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "scrypt costs"));
    /* a slot of a derivation this library does not know is kept and skipped */
    root = cJSON_Parse(cfg);
    keys = cJSON_GetObjectItem(root, "keys");
    cJSON *future = cJSON_CreateObject();
    cJSON_AddStringToObject(future, "id", "fedcba9876543210");
    cJSON_AddStringToObject(future, "kdf", "argon2id");
    cJSON_InsertItemInArray(keys, 0, future);
    t = cJSON_PrintUnformatted(root);
    write_at(dir, "harvbk-store.json", t, strlen(t));
    free(t);
    cJSON_Delete(root);
    st = open_st(dir, k, false, false, -1, NULL, &rc, &e);
    assert_int_equal(rc, 0);
    hb_store_close(st);
    free(cfg);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

/* Two writers storing the same chunk (the second after its listing said
 * absent): the second put replaces the first object; the two objects differ
 * (each its own nonce) and each decrypts to the same bytes. */
static void test_chunk_put_twice(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("enc-twice");
    hb_key *k = raw_key(8);
    hb_store *st = open_ok(dir, k, -1);
    uint8_t raw[3000], back[3000], id[32];
    tu_fill_random(raw, sizeof raw, 31);
    hb_store_chunk_id(st, raw, sizeof raw, id);
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    char *obj[2];
    size_t n[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(hb_store_chunk_put(st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
        obj[i] = read_file(dir, key, &n[i]);
        size_t got = 0;
        assert_int_equal(hb_store_chunk_get(st, id, back, sizeof back, &got, &scratch, &e), 0);
        assert_int_equal(got, sizeof raw);
        assert_memory_equal(back, raw, sizeof raw);
    }
    assert_int_equal(n[0], n[1]);
    assert_true(memcmp(obj[0], obj[1], n[0]) != 0);
    free(obj[0]);
    free(obj[1]);
    hb_buf_free(&scratch);
    hb_store_close(st);
    hb_key_free(k);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gcm_hmac_hkdf),
        cmocka_unit_test(test_secure_memory_and_keys),
        cmocka_unit_test(test_key_files_must_be_private),
        cmocka_unit_test(test_create_reopen_wrong_and_missing_key),
        cmocka_unit_test(test_chunks_keyed_and_no_plaintext_run),
        cmocka_unit_test(test_chunk_tamper_and_swap),
        cmocka_unit_test(test_chunk_put_twice),
        cmocka_unit_test(test_index_manifest_sealed),
        cmocka_unit_test(test_format_1_0_reader_refuses),
        cmocka_unit_test(test_key_slots_add_remove),
        cmocka_unit_test(test_hostile_key_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
