/* tests/unit/test_store.c - the store layer: chunk objects, indexes,
 * manifests, store config, entries and leases, on a real file:// target. */
#include "testutil.h"

#include "core/hb.h"
#include "store/store.h"
#include "target/config.h"
#include "target/target.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CS (64u * 1024u)

/* ---- fixtures ---- */

typedef struct fx {
    char *dir;
    hb_store *st;
} fx;

static hb_store *open_store_cfg(const char *dir, int codec, uint32_t chunk_size, int *rc_out,
                                hb_err *e)
{
    hb_target_cfg cfg;
    hb_target_cfg_init(&cfg);
    cfg.url = malloc(strlen(dir) + 16);
    sprintf(cfg.url, "file://%s", dir);
    cfg.codec = codec;
    cfg.chunk_size = chunk_size;
    hb_target *t = NULL;
    hb_store *st = NULL;
    int rc = hb_target_open(&t, &cfg, "test-owner", NULL, e);
    if (rc == 0)
        rc = hb_store_open(&st, t, &cfg, e);
    hb_target_cfg_clear(&cfg);
    if (rc_out)
        *rc_out = rc;
    return st;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp("store");
    assert_non_null(f->dir);
    hb_err e = { 0 };
    int rc = -1;
    f->st = open_store_cfg(f->dir, -1, CS, &rc, &e);
    if (rc)
        fprintf(stderr, "store open: %s\n", e.msg);
    assert_int_equal(rc, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hb_store_close(f->st);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void fill_compressible(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)("harvbk-chunk-"[(i + seed) % 13] + (i / 4096) % 3);
}

/* ---- chunk objects ---- */

static void test_chunk_roundtrip_every_codec_compressible_and_random(void **state)
{
    (void)state;
    const size_t n = 200000;
    uint8_t *raw = malloc(n), *back = malloc(n);
    for (int kind = 0; kind < 2; kind++) {
        if (kind == 0)
            fill_compressible(raw, n, 3);
        else
            tu_fill_random(raw, n, 42);
        uint8_t id[HB_DIGEST_LEN];
        hb_sha256(raw, n, id);
        for (int codec = HB_CODEC_NONE; codec <= HB_CODEC_GZIP; codec++) {
            hb_buf obj = HB_BUF_INIT;
            hb_err e = { 0 };
            assert_int_equal(hb_chunk_encode(codec, 0, raw, n, &obj, &e), 0);
            assert_memory_equal(obj.data, "HBC1", 4);
            if (kind == 0 && codec != HB_CODEC_NONE) {
                assert_int_equal(obj.data[4], codec); /* compressed with the codec asked */
                assert_true(obj.len < n / 4);
            } else {
                assert_int_equal(obj.data[4], HB_CODEC_NONE); /* incompressible: stored raw */
                assert_int_equal(obj.len, HB_CHUNK_HEADER_LEN + n);
            }
            size_t got = 0;
            memset(back, 0xAA, n);
            assert_int_equal(hb_chunk_decode(obj.data, obj.len, id, back, n, &got, &e), 0);
            assert_int_equal(got, n);
            assert_memory_equal(back, raw, n);
            hb_buf_free(&obj);
        }
    }
    free(raw);
    free(back);
}

static void test_chunk_empty_and_short_roundtrip(void **state)
{
    (void)state;
    uint8_t raw[3] = { 1, 2, 3 }, back[3], id[HB_DIGEST_LEN];
    for (size_t n = 0; n <= 3; n += 3) {
        hb_sha256(raw, n, id);
        for (int codec = HB_CODEC_NONE; codec <= HB_CODEC_GZIP; codec++) {
            hb_buf obj = HB_BUF_INIT;
            hb_err e = { 0 };
            size_t got = 99;
            assert_int_equal(hb_chunk_encode(codec, 0, raw, n, &obj, &e), 0);
            assert_int_equal(hb_chunk_decode(obj.data, obj.len, id, back, sizeof back, &got, &e),
                             0);
            assert_int_equal(got, n);
            assert_memory_equal(back, raw, n);
            hb_buf_free(&obj);
        }
    }
}

static void test_chunk_key_roundtrip_and_rejects_strays(void **state)
{
    (void)state;
    uint8_t id[HB_DIGEST_LEN], back[HB_DIGEST_LEN];
    tu_fill_random(id, sizeof id, 7);
    char key[HB_CHUNK_KEY_LEN], hex[HB_DIGEST_HEX_LEN + 1];
    hb_chunk_key(id, key);
    hb_hex(id, HB_DIGEST_LEN, hex);
    char want[128];
    snprintf(want, sizeof want, "chunks/%.2s/%.2s/%s", hex, hex + 2, hex);
    assert_string_equal(key, want);
    assert_true(hb_chunk_key_parse(key, back));
    assert_memory_equal(back, id, HB_DIGEST_LEN);

    char bad[128];
    snprintf(bad, sizeof bad, "chunks/%.2s/%.2s/%s.tmp", hex, hex + 2, hex);
    assert_false(hb_chunk_key_parse(bad, back));
    snprintf(bad, sizeof bad, "chunks/00/%.2s/%s", hex + 2, hex);
    if (memcmp(hex, "00", 2) != 0)
        assert_false(hb_chunk_key_parse(bad, back)); /* directory does not match id */
    strcpy(bad, key);
    bad[20] = 'G';
    assert_false(hb_chunk_key_parse(bad, back));
    assert_false(hb_chunk_key_parse("chunks/", back));
    assert_false(hb_chunk_key_parse("harvbk-store.json", back));
}

static void test_chunk_every_flipped_byte_is_detected(void **state)
{
    (void)state;
    const size_t n = 3000;
    uint8_t raw[3000], back[3000], id[HB_DIGEST_LEN];
    fill_compressible(raw, n, 1);
    hb_sha256(raw, n, id);
    for (int codec = HB_CODEC_NONE; codec <= HB_CODEC_GZIP; codec++) {
        hb_buf obj = HB_BUF_INIT;
        hb_err e = { 0 };
        assert_int_equal(hb_chunk_encode(codec, 0, raw, n, &obj, &e), 0);
        for (size_t i = 0; i < obj.len; i++) {
            obj.data[i] ^= 0x20;
            memset(back, 0, sizeof back);
            int rc = hb_chunk_decode(obj.data, obj.len, id, back, sizeof back, NULL, &e);
            /* gzip's header carries an mtime and OS byte that do not affect
             * the data: a flip there still yields the right, verified bytes */
            bool gzip_meta = codec == HB_CODEC_GZIP && obj.data[4] == HB_CODEC_GZIP &&
                             i >= HB_CHUNK_HEADER_LEN + 4 && i <= HB_CHUNK_HEADER_LEN + 9;
            if (rc == 0 && gzip_meta)
                assert_memory_equal(back, raw, n);
            else if (i == 5)
                assert_int_equal(rc, HARVBK_E_FORMAT); /* the flags byte */
            else
                assert_int_equal(rc, HARVBK_E_CHUNK);
            obj.data[i] ^= 0x20;
        }
        hb_buf_free(&obj);
    }
}

static void test_chunk_flipped_byte_in_store_names_chunk(void **state)
{
    fx *f = *state;
    const size_t n = 50000;
    uint8_t *raw = malloc(n), *back = malloc(CS);
    fill_compressible(raw, n, 9);
    uint8_t id[HB_DIGEST_LEN];
    hb_sha256(raw, n, id);
    char hex[HB_DIGEST_HEX_LEN + 1], key[HB_CHUNK_KEY_LEN];
    hb_hex(id, HB_DIGEST_LEN, hex);
    hb_chunk_key(id, key);
    hb_buf scratch = HB_BUF_INIT, obj = HB_BUF_INIT;
    hb_err e = { 0 };
    uint64_t stored = 0;

    assert_int_equal(hb_store_chunk_exists(f->st, id, &e), 0);
    assert_int_equal(hb_store_chunk_put(f->st, id, raw, n, &scratch, &stored, &e), 0);
    assert_true(stored > HB_CHUNK_HEADER_LEN && stored < n);
    assert_int_equal(hb_store_chunk_exists(f->st, id, &e), 1);
    size_t got = 0;
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), 0);
    assert_int_equal(got, n);
    assert_memory_equal(back, raw, n);

    /* flip one byte of the stored payload */
    assert_int_equal(hb_target_get(f->st->t, key, &obj, &e), 0);
    obj.data[obj.len / 2] ^= 0x01;
    assert_int_equal(hb_target_put(f->st->t, key, obj.data, obj.len, &e), 0);
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    assert_non_null(strstr(e.msg, "is corrupt"));

    /* truncated object */
    obj.data[obj.len / 2] ^= 0x01;
    assert_int_equal(hb_target_put(f->st->t, key, obj.data, obj.len - 10, &e), 0);
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));

    /* truncated inside the header */
    assert_int_equal(hb_target_put(f->st->t, key, obj.data, 20, &e), 0);
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, hex));
    /* ... which a writer does not take for the chunk: it is replaced */
    assert_int_equal(hb_store_chunk_exists(f->st, id, &e), 0);
    assert_int_equal(hb_store_chunk_put(f->st, id, raw, n, &scratch, &stored, &e), 0);
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), 0);
    assert_memory_equal(back, raw, n);

    /* missing */
    assert_int_equal(hb_target_del(f->st->t, key, &e), 0);
    assert_int_equal(hb_store_chunk_get(f->st, id, back, CS, &got, &scratch, &e), HARVBK_E_CHUNK);
    char want[128];
    snprintf(want, sizeof want, "chunk %s is missing", hex);
    assert_non_null(strstr(e.msg, want));

    hb_buf_free(&obj);
    hb_buf_free(&scratch);
    free(raw);
    free(back);
}

static void test_chunk_unknown_flag_is_format_error(void **state)
{
    (void)state;
    uint8_t raw[1000], back[1000], id[HB_DIGEST_LEN];
    fill_compressible(raw, sizeof raw, 2);
    hb_sha256(raw, sizeof raw, id);
    hb_buf obj = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_chunk_encode(HB_CODEC_ZSTD, 0, raw, sizeof raw, &obj, &e), 0);
    obj.data[5] = 0x02;
    assert_int_equal(hb_chunk_decode(obj.data, obj.len, id, back, sizeof back, NULL, &e),
                     HARVBK_E_FORMAT);
    obj.data[5] = 0x01; /* encrypted: reserved for a later minor version */
    assert_int_equal(hb_chunk_decode(obj.data, obj.len, id, back, sizeof back, NULL, &e),
                     HARVBK_E_FORMAT);
    assert_non_null(strstr(e.msg, "encrypted"));
    hb_buf_free(&obj);
}

static void test_chunk_larger_than_buffer_is_chunk_error(void **state)
{
    (void)state;
    uint8_t raw[1000], back[1000], id[HB_DIGEST_LEN];
    fill_compressible(raw, sizeof raw, 2);
    hb_sha256(raw, sizeof raw, id);
    hb_buf obj = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_chunk_encode(HB_CODEC_LZ4, 0, raw, sizeof raw, &obj, &e), 0);
    assert_int_equal(hb_chunk_decode(obj.data, obj.len, id, back, 999, NULL, &e), HARVBK_E_CHUNK);
    /* wrong id */
    uint8_t other[HB_DIGEST_LEN];
    memcpy(other, id, sizeof other);
    other[0] ^= 1;
    assert_int_equal(hb_chunk_decode(obj.data, obj.len, other, back, sizeof back, NULL, &e),
                     HARVBK_E_CHUNK);
    hb_buf_free(&obj);
}

typedef struct thr_arg {
    int codec;
    int failures;
} thr_arg;

static void *codec_thread(void *p)
{
    thr_arg *a = p;
    const size_t n = 100000;
    uint8_t *raw = malloc(n), *back = malloc(n);
    for (int i = 0; i < 20; i++) {
        fill_compressible(raw, n, (unsigned)i);
        uint8_t id[HB_DIGEST_LEN];
        hb_sha256(raw, n, id);
        hb_buf obj = HB_BUF_INIT;
        hb_err e = { 0 };
        size_t got = 0;
        if (hb_chunk_encode(a->codec, 0, raw, n, &obj, &e) != 0 ||
            hb_chunk_decode(obj.data, obj.len, id, back, n, &got, &e) != 0 || got != n ||
            memcmp(raw, back, n) != 0)
            a->failures++;
        hb_buf_free(&obj);
    }
    free(raw);
    free(back);
    return NULL;
}

static void test_chunk_codecs_are_thread_safe(void **state)
{
    (void)state;
    pthread_t th[8];
    thr_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i].codec = 1 + i % 3;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, codec_thread, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
}

static int count_chunk(const uint8_t id[HB_DIGEST_LEN], uint64_t size, int64_t mtime, void *ud)
{
    (void)id;
    (void)mtime;
    assert_true(size > HB_CHUNK_HEADER_LEN);
    (*(int *)ud)++;
    return 0;
}

static void test_chunk_list_sees_only_chunks(void **state)
{
    fx *f = *state;
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    for (unsigned i = 0; i < 5; i++) {
        uint8_t raw[4096], id[HB_DIGEST_LEN];
        tu_fill_random(raw, sizeof raw, i + 100);
        hb_sha256(raw, sizeof raw, id);
        assert_int_equal(hb_store_chunk_put(f->st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
    }
    assert_int_equal(hb_target_put(f->st->t, "chunks/zz/stray", "x", 1, &e), 0);
    int n = 0;
    assert_int_equal(hb_store_chunk_list(f->st, count_chunk, &n, &e), 0);
    assert_int_equal(n, 5);
    hb_buf_free(&scratch);
}

/* ---- indexes ---- */

static void make_index(hb_index *ix, uint64_t size)
{
    assert_int_equal(hb_index_init(ix, size, CS), 0);
    for (uint64_t i = 0; i < ix->count; i++)
        if (i % 3 != 1)
            tu_fill_random(hb_index_id(ix, i), 32, i + 1);
}

static void test_index_roundtrip(void **state)
{
    (void)state;
    hb_index ix, back;
    make_index(&ix, 10 * (uint64_t)CS + 123);
    assert_int_equal(ix.count, 11);
    assert_int_equal(hb_index_chunk_len(&ix, 0), CS);
    assert_int_equal(hb_index_chunk_len(&ix, 10), 123);
    assert_true(hb_index_is_hole(&ix, 1));
    assert_false(hb_index_is_hole(&ix, 0));
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_index_encode(&ix, &b, &e), 0);
    assert_int_equal(b.len, 32 + 11 * 32 + 32);
    assert_memory_equal(b.data, "HBI1", 4);
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), 0);
    assert_int_equal(back.volume_size, ix.volume_size);
    assert_int_equal(back.chunk_size, ix.chunk_size);
    assert_int_equal(back.count, ix.count);
    assert_memory_equal(back.ids, ix.ids, ix.count * 32);
    hb_index_clear(&back);

    /* an empty volume */
    hb_index z;
    assert_int_equal(hb_index_init(&z, 0, CS), 0);
    assert_int_equal(z.count, 0);
    assert_int_equal(hb_index_encode(&z, &b, &e), 0);
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), 0);
    assert_int_equal(back.count, 0);
    hb_index_clear(&back);
    hb_index_clear(&z);
    hb_index_clear(&ix);
    hb_buf_free(&b);
}

static void test_index_truncated_version2_and_bad_trailer(void **state)
{
    (void)state;
    hb_index ix, back;
    make_index(&ix, 5 * (uint64_t)CS);
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_index_encode(&ix, &b, &e), 0);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(hb_index_decode(b.data, cut, &back, &e), HARVBK_E_CORRUPT);
    assert_null(back.ids);

    b.data[4] = 2; /* version 2 */
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), HARVBK_E_FORMAT);
    assert_non_null(strstr(e.msg, "newer"));
    b.data[4] = 1;

    b.data[b.len - 1] ^= 0xff; /* trailer */
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "checksum"));
    b.data[b.len - 1] ^= 0xff;

    b.data[40] ^= 0x01; /* an id */
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), HARVBK_E_CORRUPT);
    b.data[40] ^= 0x01;

    b.data[16] ^= 0x80; /* volume size disagrees with the count */
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), HARVBK_E_CORRUPT);
    b.data[16] ^= 0x80;

    b.data[0] = 'X';
    assert_int_equal(hb_index_decode(b.data, b.len, &back, &e), HARVBK_E_CORRUPT);
    hb_index_clear(&ix);
    hb_buf_free(&b);
}

/* ---- manifests ---- */

static void make_manifest(hb_manifest *m, const char *ns, const char *name)
{
    hb_manifest_init(m);
    m->kind = strdup("backup");
    m->ns = strdup(ns);
    m->name = strdup(name);
    m->vm_ns = strdup("default");
    m->vm_name = strdup("vm1");
    m->writer = strdup("5b0c2d1e-0000-4000-8000-000000000001");
    m->created = 1764000000;
    m->completed = 1764000100;
    m->chunk_size = CS;
    m->codec = HB_CODEC_LZ4;
    m->crash_consistent = true;
    m->logical_bytes = 3 * (uint64_t)CS + 5;
    m->uploaded_bytes = 12345;
    hb_buf_append(&m->metadata, "{\"spec\":{\"x\":\"\\u00e9\"}}\n\x01", 26);
    m->nimages = 2;
    m->images = calloc(2, sizeof(char *));
    m->images[0] = strdup("default/image-abc");
    m->images[1] = strdup("harvester-public/ubuntu");
    m->nvols = 2;
    m->vols = calloc(2, sizeof *m->vols);
    m->vols[0].name = strdup("disk-0");
    m->vols[0].size = 2 * (uint64_t)CS + 5;
    m->vols[0].chunks = 3;
    m->vols[0].data_chunks = 2;
    memset(m->vols[0].index_sha256, 'a', 64);
    m->vols[1].name = strdup("disk-1");
    m->vols[1].size = CS;
    m->vols[1].chunks = 1;
    m->vols[1].data_chunks = 0;
    memset(m->vols[1].index_sha256, '0', 64);
}

static void test_manifest_roundtrip(void **state)
{
    (void)state;
    hb_manifest m, back;
    make_manifest(&m, "default", "bk-1");
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_manifest_encode(&m, &b, &e), 0);
    assert_int_equal(hb_manifest_decode(b.data, b.len, &back, &e), 0);
    assert_int_equal(back.format_major, HB_FORMAT_MAJOR);
    assert_int_equal(back.format_minor, HB_FORMAT_MINOR);
    assert_string_equal(back.kind, "backup");
    assert_string_equal(back.ns, "default");
    assert_string_equal(back.name, "bk-1");
    assert_string_equal(back.vm_ns, "default");
    assert_string_equal(back.vm_name, "vm1");
    assert_string_equal(back.writer, m.writer);
    assert_int_equal(back.created, m.created);
    assert_int_equal(back.completed, m.completed);
    assert_int_equal(back.chunk_size, CS);
    assert_int_equal(back.codec, HB_CODEC_LZ4);
    assert_true(back.crash_consistent);
    assert_int_equal(back.logical_bytes, m.logical_bytes);
    assert_int_equal(back.uploaded_bytes, m.uploaded_bytes);
    assert_int_equal(back.metadata.len, m.metadata.len);
    assert_memory_equal(back.metadata.data, m.metadata.data, m.metadata.len);
    assert_int_equal(back.nimages, 2);
    assert_string_equal(back.images[1], "harvester-public/ubuntu");
    assert_int_equal(back.nvols, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(back.vols[i].name, m.vols[i].name);
        assert_int_equal(back.vols[i].size, m.vols[i].size);
        assert_int_equal(back.vols[i].chunks, m.vols[i].chunks);
        assert_int_equal(back.vols[i].data_chunks, m.vols[i].data_chunks);
        assert_string_equal(back.vols[i].index_sha256, m.vols[i].index_sha256);
    }
    /* unknown keys of a later minor version are ignored */
    char *text = strndup((char *)b.data, b.len);
    char *more = malloc(b.len + 64);
    sprintf(more, "{\"format_minor_feature\":[1,2],%s", text + 1);
    hb_manifest_clear(&back);
    assert_int_equal(hb_manifest_decode(more, strlen(more), &back, &e), 0);
    hb_manifest_clear(&back);
    free(more);
    free(text);
    hb_manifest_clear(&m);
    hb_buf_free(&b);
}

static void test_manifest_truncated_every_7th_offset_is_corrupt(void **state)
{
    (void)state;
    hb_manifest m, back;
    make_manifest(&m, "default", "bk-1");
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_manifest_encode(&m, &b, &e), 0);
    for (size_t cut = 0; cut < b.len; cut += 7) {
        /* a private heap copy so a read past the end is caught by sanitizers */
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, b.data, cut);
        assert_int_equal(hb_manifest_decode(p, cut, &back, &e), HARVBK_E_CORRUPT);
        assert_null(back.ns);
        free(p);
    }
    hb_manifest_clear(&m);
    hb_buf_free(&b);
}

/* Encode m, replace `from` with `to` in the JSON text, decode; returns rc. */
static int decode_edited(hb_manifest *m, const char *from, const char *to, hb_err *e)
{
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_manifest_encode(m, &b, e), 0);
    char *text = strndup((char *)b.data, b.len);
    char *at = strstr(text, from);
    assert_non_null(at);
    char *out = malloc(strlen(text) + strlen(to) + 1);
    sprintf(out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    hb_manifest back;
    int rc = hb_manifest_decode(out, strlen(out), &back, e);
    hb_manifest_clear(&back);
    free(out);
    free(text);
    hb_buf_free(&b);
    return rc;
}

static void test_manifest_newer_major_is_format_error(void **state)
{
    (void)state;
    hb_manifest m;
    make_manifest(&m, "default", "bk-1");
    hb_err e = { 0 };
    assert_int_equal(decode_edited(&m, "\"format_major\":1", "\"format_major\":2", &e),
                     HARVBK_E_FORMAT);
    assert_non_null(strstr(e.msg, "store format 2.x is newer than this library supports (1.x)"));
    /* a newer minor is fine */
    assert_int_equal(decode_edited(&m, "\"format_minor\":0", "\"format_minor\":7", &e), 0);
    hb_manifest_clear(&m);
}

static void test_manifest_rejects_invalid_content(void **state)
{
    (void)state;
    hb_manifest m;
    make_manifest(&m, "default", "bk-1");
    hb_err e = { 0 };
    static const struct {
        const char *from, *to;
    } cases[] = {
        { "\"name\":\"bk-1\"", "\"name\":\"../x\"" },
        { "\"namespace\":\"default\"", "\"namespace\":\"Default\"" },
        { "\"vm_name\":\"vm1\"", "\"vm_name\":\"\"" },
        { "\"name\":\"disk-1\"", "\"name\":\"disk-0\"" },          /* duplicate volume */
        { "\"name\":\"disk-1\"", "\"name\":\"a/b\"" },             /* invalid volume name */
        { "\"index_sha256\":\"aaaa", "\"index_sha256\":\"zzzz" },  /* bad hex */
        { "\"index_sha256\":\"aaaa", "\"index_sha256\":\"AAAA" },  /* not lower-case */
        { "\"chunks\":3", "\"chunks\":4" },                        /* size needs 3 */
        { "\"data_chunks\":2", "\"data_chunks\":4" },
        { "\"chunk_size\":65536", "\"chunk_size\":0" },
        { "\"codec\":\"lz4\"", "\"codec\":\"brotli\"" },
        { "\"crash_consistent\":true", "\"crash_consistent\":1" },
        { "\"created\":1764000000", "\"created\":\"yesterday\"" },
        { "\"created\":1764000000", "\"created2\":1" },            /* missing */
        { "\"metadata\":\"", "\"metadata\":\"!" },                 /* bad base64 */
        { "\"images\":[", "\"images\":[1," },
        { "\"images\":[", "\"images\":[\"\"," },                /* empty image ref */
        { "\"images\":[", "\"images\":[\"a\\nb\"," },          /* control character */
        { "\"volumes\":[", "\"volumes\":[7," },
        { "\"format_major\":1", "\"format_major\":0" },
        { "\"format_major\":1", "\"format_major\":-1" },
        { "\"format_major\":1", "\"format_major\":\"1\"" },
        /* times whose milliseconds do not fit in 64 bits */
        { "\"completed\":1764000100", "\"completed\":9000000000000000000" },
        { "\"completed\":1764000100", "\"completed\":-9000000000000000000" },
        { "\"created\":1764000000", "\"created\":-9223372036854775808" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = decode_edited(&m, cases[i].from, cases[i].to, &e);
        if (rc != HARVBK_E_CORRUPT)
            fprintf(stderr, "case %zu (%s): rc %d\n", i, cases[i].to, rc);
        assert_int_equal(rc, HARVBK_E_CORRUPT);
        assert_true(e.msg[0] != '\0');
    }
    assert_int_equal(hb_manifest_decode("[]", 2, &(hb_manifest){ 0 }, &e), HARVBK_E_CORRUPT);
    hb_manifest_clear(&m);
}

/* Encode m, apply the replacements from[i] -> to[i] (each must match) to the
 * JSON text, decode; returns rc. */
static int decode_edited_n(hb_manifest *m, const char *const *from, const char *const *to,
                           size_t n, hb_err *e)
{
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_manifest_encode(m, &b, e), 0);
    char *text = strndup((char *)b.data, b.len);
    for (size_t i = 0; i < n; i++) {
        char *at = strstr(text, from[i]);
        if (!at)
            fail_msg("'%s' not in %s", from[i], text);
        char *out = malloc(strlen(text) + strlen(to[i]) + 1);
        sprintf(out, "%.*s%s%s", (int)(at - text), text, to[i], at + strlen(from[i]));
        free(text);
        text = out;
    }
    hb_manifest back;
    int rc = hb_manifest_decode(text, strlen(text), &back, e);
    hb_manifest_clear(&back);
    free(text);
    hb_buf_free(&b);
    return rc;
}

/* Sizes a writer cannot have written: a volume beyond 2^53 bytes (list and
 * show would print a Ready backup of 8192 PiB), logical_bytes that is not
 * the sum of the volumes, uploaded_bytes beyond 2^53, a chunk size that is
 * not a power of two from 64 KiB to 64 MiB (even with consistent counts). */
static void test_manifest_rejects_absurd_sizes(void **state)
{
    (void)state;
    hb_manifest m;
    make_manifest(&m, "default", "bk-1");
    hb_err e = { 0 };
    /* the fixture: disk-0 = 2 CS + 5 (3 chunks), disk-1 = CS (1 chunk) */
    static const struct {
        const char *from[4], *to[4];
        const char *why;
    } cases[] = {
        { { "\"size\":65536,\"chunks\":1", "\"logical_bytes\":196613" },
          { "\"size\":9223372036854775808,\"chunks\":140737488355328",
            "\"logical_bytes\":9223372036854841344" },
          "volume" },
        { { "\"size\":65536,\"chunks\":1", "\"logical_bytes\":196613" },
          { "\"size\":9007199254806528,\"chunks\":137438953473",
            "\"logical_bytes\":9007199254937605" },
          "volume" },
        { { "\"logical_bytes\":196613" }, { "\"logical_bytes\":196614" }, "logical_bytes" },
        { { "\"logical_bytes\":196613" }, { "\"logical_bytes\":0" }, "logical_bytes" },
        { { "\"logical_bytes\":196613" },
          { "\"logical_bytes\":9223372036854775808" },
          "logical_bytes" },
        { { "\"uploaded_bytes\":12345" },
          { "\"uploaded_bytes\":18014398509481984" },
          "uploaded_bytes" },
        { { "\"chunk_size\":65536" }, { "\"chunk_size\":65537" }, "chunk_size" },
        { { "\"chunk_size\":65536", "\"chunks\":1", "\"chunks\":3" },
          { "\"chunk_size\":4096", "\"chunks\":16", "\"chunks\":33" },
          "chunk_size" },
        { { "\"chunk_size\":65536", "\"chunks\":1", "\"chunks\":3" },
          { "\"chunk_size\":1", "\"chunks\":65536", "\"chunks\":131077" },
          "chunk_size" },
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(cases); i++) {
        size_t n = 0;
        while (n < 4 && cases[i].from[n])
            n++;
        hb_err_clear(&e);
        int rc = decode_edited_n(&m, cases[i].from, cases[i].to, n, &e);
        if (rc != HARVBK_E_CORRUPT || !strstr(e.msg, cases[i].why))
            fail_msg("case %zu (%s): rc %d: %s", i, cases[i].to[0], rc, e.msg);
    }
    /* the limits themselves are fine: a 2^53-byte volume, a 64 MiB chunk size */
    const char *f1[] = { "\"size\":65536,\"chunks\":1", "\"logical_bytes\":196613" };
    const char *t1[] = { "\"size\":9007199254609915,\"chunks\":137438953470",
                         "\"logical_bytes\":9007199254740992" };
    if (decode_edited_n(&m, f1, t1, 2, &e) != 0)
        fail_msg("2^53: %s", e.msg);
    const char *f2[] = { "\"chunk_size\":65536", "\"chunks\":3,\"data_chunks\":2" };
    const char *t2[] = { "\"chunk_size\":67108864", "\"chunks\":1,\"data_chunks\":1" };
    assert_int_equal(decode_edited_n(&m, f2, t2, 2, &e), 0);
    /* and the writer refuses to encode what readers refuse */
    hb_buf b = HB_BUF_INIT;
    m.logical_bytes++;
    assert_int_equal(hb_manifest_encode(&m, &b, &e), HARVBK_E_INVALID);
    m.logical_bytes--;
    m.uploaded_bytes = (1ull << 53) + 1;
    assert_int_equal(hb_manifest_encode(&m, &b, &e), HARVBK_E_INVALID);
    hb_buf_free(&b);
    hb_manifest_clear(&m);
}

static void test_manifest_encode_refuses_invalid_names(void **state)
{
    (void)state;
    hb_manifest m;
    make_manifest(&m, "default", "bk-1");
    free(m.name);
    m.name = strdup("../x");
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_manifest_encode(&m, &b, &e), HARVBK_E_INVALID);
    assert_null(hb_key_manifest(HB_KIND_BACKUPS, "default", "../x"));
    assert_null(hb_key_index(HB_KIND_BACKUPS, "default", "bk", "a/b"));
    char *k = hb_key_index(HB_KIND_BACKUPS, "default", "bk", "disk-0");
    assert_string_equal(k, "backups/default/bk/disk-0.idx");
    free(k);
    k = hb_key_manifest(HB_KIND_BACKUPS, "default", "bk");
    assert_string_equal(k, "backups/default/bk/manifest.json");
    free(k);
    hb_manifest_clear(&m);
    hb_buf_free(&b);
}


/* Readers refuse a manifest larger than HB_MANIFEST_MAX unread, so a writer
 * must never commit one (the backup would be unreadable): encoding refuses. */
static void test_manifest_encode_refuses_what_readers_refuse(void **state)
{
    (void)state;
    hb_manifest m;
    make_manifest(&m, "default", "bk-1");
    hb_buf_reset(&m.metadata);
    size_t big = (size_t)HB_MANIFEST_MAX / 4 * 3 + 1; /* base64: just over the limit */
    assert_int_equal(hb_buf_reserve(&m.metadata, big + 1), 0);
    memset(m.metadata.data, 'x', big);
    m.metadata.len = big;
    hb_buf b = HB_BUF_INIT;
    hb_err e = { 0 };
    assert_int_equal(hb_manifest_encode(&m, &b, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "metadata"));
    m.metadata.len = 1024 * 1024;
    assert_int_equal(hb_manifest_encode(&m, &b, &e), 0);
    hb_manifest back;
    assert_int_equal(hb_manifest_decode(b.data, b.len, &back, &e), 0);
    assert_int_equal(back.metadata.len, 1024 * 1024);
    hb_manifest_clear(&back);
    hb_buf_free(&b);
    hb_manifest_clear(&m);
}

/* ---- store config ---- */

static void test_store_open_creates_config_and_reopen_keeps_it(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("store-open");
    hb_err e = { 0 };
    int rc;
    hb_store *st = open_store_cfg(dir, -1, 0, &rc, &e);
    assert_int_equal(rc, 0);
    assert_int_equal(st->chunk_size, HB_DEFAULT_CHUNK_SIZE);
    assert_int_equal(st->codec, HB_CODEC_ZSTD);
    assert_int_equal(strlen(st->id), 36);
    char id[37];
    strcpy(id, st->id);
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_target_get(st->t, "harvbk-store.json", &b, &e), 0);
    assert_non_null(strstr((char *)b.data, "\"format_major\":1"));
    assert_non_null(strstr((char *)b.data, "\"chunk_id\":\"sha256\""));
    assert_non_null(strstr((char *)b.data, "\"encryption\":\"none\""));
    hb_store_close(st);

    /* reopen asking for other settings: the store keeps its id and chunk
     * size; the codec for new chunks follows the configuration */
    st = open_store_cfg(dir, HB_CODEC_GZIP, 1024 * 1024, &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(st->id, id);
    assert_int_equal(st->chunk_size, HB_DEFAULT_CHUNK_SIZE);
    assert_int_equal(st->codec, HB_CODEC_GZIP);
    uint8_t raw[8192], out_id[HB_DIGEST_LEN];
    fill_compressible(raw, sizeof raw, 0);
    hb_sha256(raw, sizeof raw, out_id);
    hb_buf scratch = HB_BUF_INIT;
    assert_int_equal(hb_store_chunk_put(st, out_id, raw, sizeof raw, &scratch, NULL, &e), 0);
    assert_int_equal(scratch.data[4], HB_CODEC_GZIP);
    hb_store_close(st);
    hb_buf_free(&scratch);
    hb_buf_free(&b);
    tu_rmrf(dir);
    free(dir);
}

static void put_config(const char *dir, const char *json)
{
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/harvbk-store.json", dir);
    assert_int_equal(tu_write_file(path, json, strlen(json)), 0);
    free(path);
}

static void test_store_newer_or_malformed_config_is_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
    } cases[] = {
        { "{\"format_major\":2,\"format_minor\":0,\"store_id\":\"0b5a7e36-1111-4222-8333-"
          "444455556666\",\"chunk_size\":4194304,\"codec\":\"zstd\",\"chunk_id\":\"blake3\","
          "\"encryption\":\"x\",\"created\":1}",
          HARVBK_E_FORMAT },
        /* format 1.1 encryption without its key slots: malformed (a 1.0
         * reader refused the values themselves with HARVBK_E_FORMAT) */
        { "{\"format_major\":1,\"format_minor\":1,\"store_id\":\"0b5a7e36-1111-4222-8333-"
          "444455556666\",\"chunk_size\":4194304,\"codec\":\"zstd\",\"chunk_id\":\"hmac-sha256\","
          "\"encryption\":\"aes-256-gcm\",\"created\":1}",
          HARVBK_E_CORRUPT },
        /* keyed ids without encryption, or the reverse: not a format */
        { "{\"format_major\":1,\"format_minor\":1,\"store_id\":\"0b5a7e36-1111-4222-8333-"
          "444455556666\",\"chunk_size\":4194304,\"codec\":\"zstd\",\"chunk_id\":\"hmac-sha256\","
          "\"encryption\":\"none\",\"created\":1}",
          HARVBK_E_FORMAT },
        { "{\"format_major\":1,\"format_minor\":1,\"store_id\":\"0b5a7e36-1111-4222-8333-"
          "444455556666\",\"chunk_size\":4194304,\"codec\":\"zstd\",\"chunk_id\":\"sha256\","
          "\"encryption\":\"aes-256-gcm\",\"created\":1}",
          HARVBK_E_FORMAT },
        { "{\"format_major\":1,\"format_minor\":2,\"store_id\":\"0b5a7e36-1111-4222-8333-"
          "444455556666\",\"chunk_size\":4194304,\"codec\":\"zstd\",\"chunk_id\":\"sha256\","
          "\"encryption\":\"chacha20-poly1305\",\"created\":1}",
          HARVBK_E_FORMAT },
        { "{\"format_major\":1,\"format_minor\":0,\"store_id\":\"nope\",\"chunk_size\":4194304,"
          "\"codec\":\"zstd\",\"chunk_id\":\"sha256\",\"encryption\":\"none\",\"created\":1}",
          HARVBK_E_CORRUPT },
        { "{\"format_major\":1,\"format_minor\":0", HARVBK_E_CORRUPT },
        { "garbage", HARVBK_E_CORRUPT },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = tu_mkdtemp("store-cfg");
        put_config(dir, cases[i].json);
        hb_err e = { 0 };
        int rc;
        hb_store *st = open_store_cfg(dir, -1, 0, &rc, &e);
        assert_null(st);
        assert_int_equal(rc, cases[i].rc);
        if (i == 0)
            assert_non_null(
                strstr(e.msg, "store format 2.x is newer than this library supports (1.x)"));
        tu_rmrf(dir);
        free(dir);
    }
}

/* A store config whose chunk_size is not what any writer writes (a power of
 * two from 64 KiB to 64 MiB) is refused, not adopted by writers. */
static void test_store_config_chunk_size_out_of_range_is_refused(void **state)
{
    (void)state;
    static const uint64_t bad[] = { 1, 3, 4096, 32768, 65535, 65537, 100000, 1048577,
                                    134217728, 4294967296ull };
    for (size_t i = 0; i < HB_ARRAY_LEN(bad) + 2; i++) {
        uint64_t cs = i < HB_ARRAY_LEN(bad) ? bad[i] : i == HB_ARRAY_LEN(bad) ? 65536 : 67108864;
        char json[512];
        snprintf(json, sizeof json,
                 "{\"format_major\":1,\"format_minor\":0,\"store_id\":\"0b5a7e36-1111-4222-8333-"
                 "444455556666\",\"chunk_size\":%llu,\"codec\":\"zstd\",\"chunk_id\":\"sha256\","
                 "\"encryption\":\"none\",\"created\":1}",
                 (unsigned long long)cs);
        char *dir = tu_mkdtemp("store-cfg-cs");
        put_config(dir, json);
        hb_err e = { 0 };
        int rc;
        hb_store *st = open_store_cfg(dir, -1, 0, &rc, &e);
        if (i < HB_ARRAY_LEN(bad)) {
            assert_null(st);
            assert_int_equal(rc, HARVBK_E_CORRUPT);
            char want[128];
            snprintf(want, sizeof want,
                     "store config: chunk_size %llu is not a power of two between 65536 and "
                     "67108864",
                     (unsigned long long)cs);
            if (!strstr(e.msg, want))
                fail_msg("chunk_size %llu: %s", (unsigned long long)cs, e.msg);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(st->chunk_size, cs);
            hb_store_close(st);
        }
        tu_rmrf(dir);
        free(dir);
    }
}

/* ---- entries ---- */

typedef struct seen {
    char names[8][140];
    int n;
} seen;

static int collect_entry(const char *ns, const char *name, void *ud)
{
    seen *s = ud;
    assert_true(s->n < 8);
    snprintf(s->names[s->n++], sizeof s->names[0], "%s/%s", ns, name);
    return 0;
}

static bool seen_has(const seen *s, const char *what)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], what))
            return true;
    return false;
}

static void write_entry(hb_store *st, const char *ns, const char *name, bool commit)
{
    hb_manifest m;
    make_manifest(&m, ns, name);
    hb_err e = { 0 };
    for (size_t i = 0; i < m.nvols; i++) {
        hb_index ix;
        make_index(&ix, m.vols[i].size);
        uint64_t bytes = 0;
        assert_int_equal(hb_store_index_write(st, HB_KIND_BACKUPS, ns, name, &m.vols[i], &ix,
                                              &bytes, &e),
                         0);
        assert_int_equal(bytes, 64 + ix.count * 32);
        assert_int_equal(m.vols[i].chunks, ix.count);
        hb_index_clear(&ix);
    }
    if (commit)
        assert_int_equal(hb_store_manifest_write(st, HB_KIND_BACKUPS, &m, &e), 0);
    hb_manifest_clear(&m);
}

static void test_entry_manifest_index_list_delete(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    write_entry(f->st, "default", "bk-1", true);
    write_entry(f->st, "default", "bk-10", true);
    write_entry(f->st, "other", "bk-1", true);
    write_entry(f->st, "default", "half-done", false); /* no manifest: not committed */
    assert_int_equal(hb_target_put(f->st->t, "backups/Bad_NS/x/manifest.json", "{}", 2, &e), 0);

    seen s = { .n = 0 };
    assert_int_equal(hb_store_entry_list(f->st, HB_KIND_BACKUPS, collect_entry, &s, &e), 0);
    assert_int_equal(s.n, 3);
    assert_true(seen_has(&s, "default/bk-1"));
    assert_true(seen_has(&s, "default/bk-10"));
    assert_true(seen_has(&s, "other/bk-1"));

    /* read back, with indexes verified against the manifest */
    hb_manifest m;
    assert_int_equal(hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "bk-1", &m, &e),
                     0);
    assert_int_equal(m.nvols, 2);
    hb_index ix;
    assert_int_equal(hb_store_index_read(f->st, HB_KIND_BACKUPS, &m, &m.vols[0], &ix, &e), 0);
    hb_index want;
    make_index(&want, m.vols[0].size);
    assert_int_equal(ix.count, want.count);
    assert_memory_equal(ix.ids, want.ids, want.count * 32);
    assert_int_equal(m.vols[0].data_chunks, 2); /* entry 1 of 3 is a hole */
    hb_index_clear(&ix);
    hb_index_clear(&want);

    /* an index that does not match the manifest's checksum is corrupt */
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_target_get(f->st->t, "backups/default/bk-1/disk-0.idx", &b, &e), 0);
    b.data[40] ^= 1;
    assert_int_equal(hb_target_put(f->st->t, "backups/default/bk-1/disk-0.idx", b.data, b.len,
                                   &e),
                     0);
    assert_int_equal(hb_store_index_read(f->st, HB_KIND_BACKUPS, &m, &m.vols[0], &ix, &e),
                     HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "disk-0"));
    /* a missing index too */
    assert_int_equal(hb_target_del(f->st->t, "backups/default/bk-1/disk-1.idx", &e), 0);
    assert_int_equal(hb_store_index_read(f->st, HB_KIND_BACKUPS, &m, &m.vols[1], &ix, &e),
                     HARVBK_E_CORRUPT);
    hb_manifest_clear(&m);
    hb_buf_free(&b);

    /* missing manifest */
    assert_int_equal(hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "nope", &m, &e),
                     HARVBK_E_NOTFOUND);

    /* delete one: the others stay */
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "bk-1", &e), 0);
    uint64_t size;
    assert_int_equal(hb_target_head(f->st->t, "backups/default/bk-1/manifest.json", &size, &e),
                     HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_head(f->st->t, "backups/default/bk-1/disk-0.idx", &size, &e),
                     HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_head(f->st->t, "backups/default/bk-10/disk-0.idx", &size, &e), 0);
    s.n = 0;
    assert_int_equal(hb_store_entry_list(f->st, HB_KIND_BACKUPS, collect_entry, &s, &e), 0);
    assert_int_equal(s.n, 2);
    assert_false(seen_has(&s, "default/bk-1"));
    assert_int_equal(hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "bk-10", &m, &e),
                     0);
    hb_manifest_clear(&m);
    /* deleting again is harmless */
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "bk-1", &e), 0);
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "../x", &e),
                     HARVBK_E_INVALID);
}

/* An entry directory (or namespace directory) that is a symbolic link to a
 * directory outside the store: not listed, and deleting the entry refuses
 * instead of deleting what the link points at (recursively). */
static void test_entry_delete_never_follows_symlinks(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    write_entry(f->st, "default", "bk-1", true);
    char *out = tu_mkdtemp("store-outside");
    /* outside: a copy of a real entry (so it looks committed) and a sentinel */
    const char *files[] = { "manifest.json", "disk-0.idx", "disk-1.idx" };
    hb_buf b = HB_BUF_INIT;
    for (size_t i = 0; i < HB_ARRAY_LEN(files); i++) {
        char *key = hb_asprintf("backups/default/bk-1/%s", files[i]);
        assert_int_equal(hb_target_get(f->st->t, key, &b, &e), 0);
        char *p = hb_asprintf("%s/%s", out, files[i]);
        assert_int_equal(tu_write_file(p, b.data, b.len), 0);
        hb_free(p);
        hb_free(key);
    }
    char *sentinel = hb_asprintf("%s/sentinel", out);
    assert_int_equal(tu_write_file(sentinel, "keep", 4), 0);
    char *nsdir = hb_asprintf("%s/bk-9", out);
    assert_int_equal(mkdir(nsdir, 0755), 0);
    char *deep = hb_asprintf("%s/bk-9/manifest.json", out);
    assert_int_equal(tu_write_file(deep, "{}", 2), 0);

    char *l1 = hb_asprintf("%s/backups/default/evil", f->dir);
    char *l2 = hb_asprintf("%s/backups/evilns", f->dir);
    assert_int_equal(symlink(out, l1), 0);
    assert_int_equal(symlink(out, l2), 0);

    seen s = { .n = 0 };
    assert_int_equal(hb_store_entry_list(f->st, HB_KIND_BACKUPS, collect_entry, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_true(seen_has(&s, "default/bk-1"));

    hb_err_clear(&e);
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "evil", &e),
                     HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "symbolic link"));
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "evilns", "bk-9", &e),
                     HARVBK_E_CORRUPT);
    hb_manifest m;
    assert_int_equal(hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "evil", &m, &e),
                     HARVBK_E_CORRUPT);

    struct stat st;
    for (size_t i = 0; i < HB_ARRAY_LEN(files); i++) {
        char *p = hb_asprintf("%s/%s", out, files[i]);
        assert_int_equal(stat(p, &st), 0);
        hb_free(p);
    }
    assert_int_equal(stat(sentinel, &st), 0);
    assert_int_equal(stat(deep, &st), 0);
    assert_int_equal(lstat(l1, &st), 0);
    assert_true(S_ISLNK(st.st_mode));

    /* the real entry is still deleted normally */
    assert_int_equal(hb_store_entry_delete(f->st, HB_KIND_BACKUPS, "default", "bk-1", &e), 0);
    s.n = 0;
    assert_int_equal(hb_store_entry_list(f->st, HB_KIND_BACKUPS, collect_entry, &s, &e), 0);
    assert_int_equal(s.n, 0);

    hb_buf_free(&b);
    hb_free(sentinel);
    hb_free(nsdir);
    hb_free(deep);
    hb_free(l1);
    hb_free(l2);
    tu_rmrf(out);
    free(out);
}

static void test_manifest_at_wrong_key_is_corrupt(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    hb_manifest m;
    make_manifest(&m, "default", "bk-2");
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_manifest_encode(&m, &b, &e), 0);
    assert_int_equal(hb_target_put(f->st->t, "backups/default/bk-3/manifest.json", b.data, b.len,
                                   &e),
                     0);
    hb_manifest back;
    assert_int_equal(
        hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "bk-3", &back, &e),
        HARVBK_E_CORRUPT);
    hb_manifest_clear(&m);
    hb_buf_free(&b);
}


/* ---- hostile targets ---- */

#define HUGE_OBJECT (1ull << 40) /* 1 TiB, sparse: must never be read or allocated */

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Turn the object <dir>/<key> (created with `body` when absent; its directory
 * must exist) into a sparse file of HUGE_OBJECT bytes. */
static void make_huge(const char *dir, const char *key, const char *body)
{
    char *p = malloc(strlen(dir) + strlen(key) + 2);
    sprintf(p, "%s/%s", dir, key);
    if (access(p, F_OK) != 0)
        assert_int_equal(tu_write_file(p, body, strlen(body)), 0);
    chmod(p, 0644);
    assert_int_equal(truncate(p, (off_t)HUGE_OBJECT), 0);
    free(p);
}

/* A target may be damaged or hostile: an object far larger than its kind can
 * be (a chunk larger than the chunk size allows, an index longer than its
 * manifest says, a 1 TiB manifest, lease or store config) is refused as
 * corrupt from its size alone, without allocating or reading it. */
static void test_hostile_huge_objects_are_refused_unread(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    long rss0 = maxrss_kb();

    /* a chunk */
    uint8_t raw[1000], id[HB_DIGEST_LEN];
    tu_fill_random(raw, sizeof raw, 9);
    hb_sha256(raw, sizeof raw, id);
    hb_buf scratch = HB_BUF_INIT;
    assert_int_equal(hb_store_chunk_put(f->st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
    hb_buf_free(&scratch);
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    make_huge(f->dir, key, "");
    uint8_t *out = malloc(CS);
    size_t got = 0;
    int rc = hb_store_chunk_get(f->st, id, out, CS, &got, &scratch, &e);
    if (rc != HARVBK_E_CHUNK)
        fprintf(stderr, "chunk: %d %s\n", rc, e.msg);
    assert_int_equal(rc, HARVBK_E_CHUNK);
    assert_non_null(strstr(e.msg, key + 13));
    assert_non_null(strstr(e.msg, "corrupt"));
    assert_true(scratch.cap < 1024 * 1024);
    hb_buf_free(&scratch);
    free(out);

    /* an index: its manifest says how long it is */
    write_entry(f->st, "default", "bk-1", true);
    hb_manifest m;
    assert_int_equal(hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "bk-1", &m, &e),
                     0);
    make_huge(f->dir, "backups/default/bk-1/disk-0.idx", "");
    hb_index ix;
    rc = hb_store_index_read(f->st, HB_KIND_BACKUPS, &m, &m.vols[0], &ix, &e);
    if (rc != HARVBK_E_CORRUPT)
        fprintf(stderr, "index: %d %s\n", rc, e.msg);
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "disk-0"));
    assert_null(ix.ids);
    hb_manifest_clear(&m);

    /* a manifest */
    make_huge(f->dir, "backups/default/bk-1/manifest.json", "");
    rc = hb_store_manifest_read(f->st, HB_KIND_BACKUPS, "default", "bk-1", &m, &e);
    if (rc != HARVBK_E_CORRUPT)
        fprintf(stderr, "manifest: %d %s\n", rc, e.msg);
    assert_int_equal(rc, HARVBK_E_CORRUPT);
    assert_null(m.ns);

    /* a lease: unreadable, so judged by the object's age (fresh: live) */
    assert_int_equal(hb_target_put(f->st->t, "locks/gc-ctx-huge.json", "{}", 2, &e), 0);
    make_huge(f->dir, "locks/gc-ctx-huge.json", "");
    unsigned n = 99;
    rc = hb_lease_count_live(f->st, "gc", "me", &n, &e);
    if (rc)
        fprintf(stderr, "lease: %d %s\n", rc, e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);

    /* the store config */
    make_huge(f->dir, "harvbk-store.json", "");
    hb_store *st2 = open_store_cfg(f->dir, -1, CS, &rc, &e);
    if (rc != HARVBK_E_CORRUPT)
        fprintf(stderr, "store config: %d %s\n", rc, e.msg);
    assert_null(st2);
    assert_int_equal(rc, HARVBK_E_CORRUPT);

    /* nothing of that was read into memory */
    assert_true(maxrss_kb() - rss0 < 64 * 1024);
}

/* ---- leases ---- */

static void test_lease_acquire_count_release(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    hb_lease *l = NULL;
    unsigned n = 99;
    assert_int_equal(hb_lease_count_live(f->st, "writer", NULL, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_int_equal(hb_lease_acquire(f->st, "writer", "ctx-a", &l, &e), 0);
    uint64_t size;
    assert_int_equal(hb_target_head(f->st->t, "locks/writer-ctx-a.json", &size, &e), 0);
    assert_int_equal(hb_lease_count_live(f->st, "writer", "ctx-b", &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hb_lease_count_live(f->st, "writer", NULL, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hb_lease_count_live(f->st, "writer", "ctx-a", &n, &e), 0);
    assert_int_equal(n, 0); /* our own lease */
    assert_int_equal(hb_lease_count_live(f->st, "gc", "ctx-b", &n, &e), 0);
    assert_int_equal(n, 0); /* other role */

    uint64_t t0 = hb_mono_ms();
    hb_lease_release(l);
    assert_true(hb_mono_ms() - t0 < 5000); /* the heartbeat thread stops at once */
    assert_int_equal(hb_target_head(f->st->t, "locks/writer-ctx-a.json", &size, &e),
                     HARVBK_E_NOTFOUND);
    assert_int_equal(hb_lease_count_live(f->st, "writer", "ctx-b", &n, &e), 0);
    assert_int_equal(n, 0);
    hb_lease_release(NULL);
    assert_int_equal(hb_lease_acquire(f->st, "writer", "bad/owner", &l, &e), HARVBK_E_INVALID);
}

/* A heartbeat gap longer than the TTL (the target unreachable, or the
 * process stopped) is reported by hb_lease_check, so a writer re-checks its
 * chunks before committing. */
static void test_lease_check_reports_a_lapse(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    int saved = hb_lease_ttl_s;
    hb_lease_ttl_s = 1;
    hb_lease *l = NULL;
    assert_int_equal(hb_lease_acquire(f->st, "writer", "ctx-lapse", &l, &e), 0);
    assert_int_equal(hb_lease_check(l, &e), 0);
    char *moved = malloc(strlen(f->dir) + 8);
    sprintf(moved, "%s.away", f->dir);
    assert_int_equal(rename(f->dir, moved), 0); /* heartbeats now fail */
    sleep(3);
    assert_int_equal(rename(moved, f->dir), 0);
    sleep(2); /* a heartbeat succeeds again, after a gap > TTL */
    assert_int_equal(hb_lease_check(l, &e), HARVBK_E_BUSY);
    assert_non_null(strstr(e.msg, "lapsed"));
    hb_lease_release(l);
    hb_lease_ttl_s = saved;
    free(moved);
}

static void test_lease_stale_is_not_live_unreadable_fresh_is(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    char body[256];
    snprintf(body, sizeof body,
             "{\"role\":\"gc\",\"owner\":\"ctx-old\",\"heartbeat\":%lld,\"pid\":1,\"host\":\"h\"}",
             (long long)(hb_now() - HB_LEASE_TTL_S - 60));
    assert_int_equal(hb_target_put(f->st->t, "locks/gc-ctx-old.json", body, strlen(body), &e), 0);
    unsigned n = 99;
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 0);

    snprintf(body, sizeof body,
             "{\"role\":\"gc\",\"owner\":\"ctx-new\",\"heartbeat\":%lld,\"pid\":1,\"host\":\"h\"}",
             (long long)(hb_now() - 10));
    assert_int_equal(hb_target_put(f->st->t, "locks/gc-ctx-new.json", body, strlen(body), &e), 0);
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 1);

    /* unparsable but just written: counted as live (conservative) */
    assert_int_equal(hb_target_put(f->st->t, "locks/gc-ctx-torn.json", "{\"ro", 4, &e), 0);
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 2);
}


/* A heartbeat JSON can carry but no clock produces: the oldest 64-bit value
 * is dead (not an overflow into "live"), and one far in the future (a holder
 * whose clock was badly off, or garbage) must not block the other role
 * forever: it is judged by the object's age like an unreadable lease. */
static void test_lease_absurd_heartbeats_are_not_live_forever(void **state)
{
    fx *f = *state;
    hb_err e = { 0 };
    const char *oldest = "{\"role\":\"gc\",\"owner\":\"ctx-min\",\"heartbeat\":"
                         "-9223372036854775808,\"pid\":1,\"host\":\"h\"}";
    assert_int_equal(hb_target_put(f->st->t, "locks/gc-ctx-min.json", oldest, strlen(oldest), &e),
                     0);
    unsigned n = 99;
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 0);

    char body[256];
    snprintf(body, sizeof body,
             "{\"role\":\"gc\",\"owner\":\"ctx-future\",\"heartbeat\":%lld,\"pid\":1,"
             "\"host\":\"h\"}",
             (long long)(hb_now() + 1000LL * HB_LEASE_TTL_S));
    assert_int_equal(
        hb_target_put(f->st->t, "locks/gc-ctx-future.json", body, strlen(body), &e), 0);
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 1); /* just written: someone may be there */
    char *p = malloc(strlen(f->dir) + 64);
    sprintf(p, "%s/locks/gc-ctx-future.json", f->dir);
    time_t old = time(NULL) - 2 * HB_LEASE_TTL_S;
    struct timespec ts[2] = { { old, 0 }, { old, 0 } };
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    assert_int_equal(hb_lease_count_live(f->st, "gc", "me", &n, &e), 0);
    assert_int_equal(n, 0); /* not rewritten for longer than the TTL: dead */
    free(p);
}

/* Which chunks does the store hold: the answer is the same whether it comes
 * from heads (a few ids), one listing (many ids), or heads after a listing
 * that grew costlier than heads (a store much larger than the set). */
static void present_case(fx *f, unsigned stored, unsigned asked, unsigned missing,
                         uint64_t expect_checked)
{
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    hb_dset *ids = hb_dset_new(16);
    for (unsigned i = 0; i < stored; i++) {
        uint8_t raw[512], id[HB_DIGEST_LEN];
        tu_fill_random(raw, sizeof raw, i + 7000);
        hb_sha256(raw, sizeof raw, id);
        assert_int_equal(hb_store_chunk_put(f->st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
        if (i < asked)
            assert_int_equal(hb_dset_add(ids, id), 1);
    }
    for (unsigned i = 0; i < missing; i++) { /* never stored */
        uint8_t raw[512], id[HB_DIGEST_LEN];
        tu_fill_random(raw, sizeof raw, i + 9000);
        hb_sha256(raw, sizeof raw, id);
        assert_int_equal(hb_dset_add(ids, id), 1);
    }
    hb_dset *present = NULL;
    uint64_t checked = 0;
    assert_int_equal(hb_store_chunks_present(f->st, ids, &present, &checked, &e), 0);
    assert_int_equal(hb_dset_count(present), asked);
    for (unsigned i = 0; i < asked; i++) {
        uint8_t raw[512], id[HB_DIGEST_LEN];
        tu_fill_random(raw, sizeof raw, i + 7000);
        hb_sha256(raw, sizeof raw, id);
        assert_true(hb_dset_has(present, id));
    }
    assert_int_equal(checked, expect_checked);
    hb_dset_free(present);
    hb_dset_free(ids);
    hb_buf_free(&scratch);
}

static void test_chunks_present_by_heads(void **state)
{
    present_case(*state, 20, 5, 3, 8); /* 8 ids: 8 heads */
}

static void test_chunks_present_by_listing(void **state)
{
    present_case(*state, 40, 30, 10, 40); /* 40 ids: one listing of 40 objects */
}

static void test_chunks_present_listing_given_up_for_heads(void **state)
{
    /* 20 ids against 400 objects: a local listing of more than 20 x 16
     * objects costs more than 20 stat()s, so it stops and heads decide */
    present_case(*state, 400, 15, 5, 20 * 16 + 20);
}

/* The census a backup takes: the whole store when a listing ran to its end
 * within the memory cap (complete), else only the ids present; a stray
 * object shorter than a chunk header is not a chunk (absent, replaced). */
static void census_ids(unsigned from, unsigned n, hb_dset *into)
{
    for (unsigned i = from; i < from + n; i++) {
        uint8_t raw[512], id[HB_DIGEST_LEN];
        tu_fill_random(raw, sizeof raw, i);
        hb_sha256(raw, sizeof raw, id);
        assert_true(hb_dset_add(into, id) >= 0);
    }
}

static void test_chunks_census(void **state)
{
    fx *f = *state;
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    hb_dset *stored = hb_dset_new(64), *ids = hb_dset_new(16), *none = hb_dset_new(1);
    census_ids(7000, 40, stored);
    size_t pos = 0;
    const uint8_t *id;
    while (hb_dset_next(stored, &pos, &id)) {
        uint8_t raw[512], rid[HB_DIGEST_LEN];
        /* regenerate the raw bytes of this id */
        for (unsigned i = 7000; i < 7040; i++) {
            tu_fill_random(raw, sizeof raw, i);
            hb_sha256(raw, sizeof raw, rid);
            if (!memcmp(rid, id, HB_DIGEST_LEN))
                break;
        }
        assert_int_equal(hb_store_chunk_put(f->st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
    }
    census_ids(7000, 5, ids); /* 5 stored */
    census_ids(9000, 3, ids); /* 3 never stored */
    uint8_t stray[HB_DIGEST_LEN];
    memset(stray, 0xab, sizeof stray);
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(stray, key);
    assert_int_equal(hb_target_put(f->st->t, key, "short", 5, &e), 0);

    /* complete: every chunk of the store, not the stray, not the missing */
    hb_dset *out = NULL;
    bool complete = false;
    uint64_t listed = 0;
    size_t found = 99;
    assert_int_equal(
        hb_store_chunks_census(f->st, ids, 100, 1000, &out, &complete, &listed, &found, &e), 0);
    assert_true(complete);
    assert_int_equal(listed, 41);
    assert_int_equal(found, 5); /* of the 8 ids: the 5 stored */
    assert_int_equal(hb_dset_count(out), 40);
    pos = 0;
    while (hb_dset_next(stored, &pos, &id))
        assert_true(hb_dset_has(out, id));
    assert_false(hb_dset_has(out, stray));
    hb_dset_free(out);

    /* a new VM (no ids): the same listing */
    assert_int_equal(
        hb_store_chunks_census(f->st, none, 100, 1000, &out, &complete, NULL, &found, &e), 0);
    assert_true(complete);
    assert_int_equal(found, 0);
    assert_int_equal(hb_dset_count(out), 40);
    hb_dset_free(out);

    /* more chunks than the cap (the whole-store set is dropped early or late
     * in the listing): only the ids present, not complete */
    for (size_t cap = 1; cap < 40; cap += 19) { /* 1, 20, 39 */
        found = 99;
        assert_int_equal(
            hb_store_chunks_census(f->st, ids, 100, cap, &out, &complete, NULL, &found, &e), 0);
        assert_false(complete);
        assert_int_equal(hb_dset_count(out), 5);
        assert_int_equal(found, 5);
        pos = 0;
        while (hb_dset_next(ids, &pos, &id))
            assert_int_equal(hb_dset_has(out, id), hb_dset_has(stored, id));
        hb_dset_free(out);
    }

    /* few checks (a filesystem: up to 16): heads only, never complete */
    assert_int_equal(
        hb_store_chunks_census(f->st, none, 16, 1000, &out, &complete, &listed, NULL, &e), 0);
    assert_false(complete);
    assert_int_equal(hb_dset_count(out), 0);
    assert_int_equal(listed, 0);
    hb_dset_free(out);

    hb_dset_free(stored);
    hb_dset_free(ids);
    hb_dset_free(none);
    hb_buf_free(&scratch);
}

/* A chunk put again over an existing object of the same id (another writer
 * stored it after this one's listing): the put succeeds and the chunk reads
 * back; a stray short object at a chunk key is replaced. */
static void test_chunk_put_over_existing(void **state)
{
    fx *f = *state;
    hb_buf scratch = HB_BUF_INIT;
    hb_err e = { 0 };
    uint8_t raw[4096], id[HB_DIGEST_LEN], back[4096];
    tu_fill_random(raw, sizeof raw, 4242);
    hb_sha256(raw, sizeof raw, id);
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    assert_int_equal(hb_target_put(f->st->t, key, "short", 5, &e), 0);
    assert_int_equal(hb_store_chunk_exists(f->st, id, &e), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(hb_store_chunk_put(f->st, id, raw, sizeof raw, &scratch, NULL, &e), 0);
        size_t n = 0;
        assert_int_equal(
            hb_store_chunk_get(f->st, id, back, sizeof back, &n, &scratch, &e), 0);
        assert_int_equal(n, sizeof raw);
        assert_memory_equal(back, raw, sizeof raw);
    }
    hb_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_roundtrip_every_codec_compressible_and_random),
        cmocka_unit_test(test_chunk_empty_and_short_roundtrip),
        cmocka_unit_test(test_chunk_key_roundtrip_and_rejects_strays),
        cmocka_unit_test(test_chunk_every_flipped_byte_is_detected),
        cmocka_unit_test_setup_teardown(test_chunk_flipped_byte_in_store_names_chunk, setup,
                                        teardown),
        cmocka_unit_test(test_chunk_unknown_flag_is_format_error),
        cmocka_unit_test(test_chunk_larger_than_buffer_is_chunk_error),
        cmocka_unit_test(test_chunk_codecs_are_thread_safe),
        cmocka_unit_test_setup_teardown(test_chunk_list_sees_only_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_present_by_heads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_census, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_put_over_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_present_by_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks_present_listing_given_up_for_heads, setup,
                                        teardown),
        cmocka_unit_test(test_index_roundtrip),
        cmocka_unit_test(test_index_truncated_version2_and_bad_trailer),
        cmocka_unit_test(test_manifest_roundtrip),
        cmocka_unit_test(test_manifest_truncated_every_7th_offset_is_corrupt),
        cmocka_unit_test(test_manifest_newer_major_is_format_error),
        cmocka_unit_test(test_manifest_rejects_invalid_content),
        cmocka_unit_test(test_manifest_rejects_absurd_sizes),
        cmocka_unit_test(test_manifest_encode_refuses_invalid_names),
        cmocka_unit_test(test_manifest_encode_refuses_what_readers_refuse),
        cmocka_unit_test(test_store_open_creates_config_and_reopen_keeps_it),
        cmocka_unit_test(test_store_newer_or_malformed_config_is_refused),
        cmocka_unit_test(test_store_config_chunk_size_out_of_range_is_refused),
        cmocka_unit_test_setup_teardown(test_entry_manifest_index_list_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manifest_at_wrong_key_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_delete_never_follows_symlinks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_acquire_count_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_check_reports_a_lapse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_stale_is_not_live_unreadable_fresh_is, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_absurd_heartbeats_are_not_live_forever, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_huge_objects_are_refused_unread, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
