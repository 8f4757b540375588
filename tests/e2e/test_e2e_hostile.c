/*
 * test_e2e_hostile.c - a hostile target and hostile input, through the
 * harvbk CLI on a real store on disk (file target, plaintext: an encrypted
 * store authenticates every object, so edits are refused before they are
 * parsed, test_e2e_crypt.c).
 *
 *   - names from a manifest (volume, VM, namespace, entry, image): each
 *     hostile one ("../", absolute, '/', NUL, overlong, ".", "..", leading
 *     '-', duplicates) is refused with HARVBK_E_CORRUPT, exit 1 and one line,
 *     and no file appears outside the restore directory, nor in it;
 *   - sizes from the target: a chunk header that lies about its raw or stored
 *     length (HARVBK_E_CHUNK, verify exit 3), an oversized chunk or manifest
 *     object (refused unread), an index whose count overflows or whose
 *     volume size disagrees with the manifest, a manifest whose sizes and
 *     counts do not add up, an index entry naming a chunk of the wrong length;
 *   - symbolic links in the restore directory (never followed: a link named
 *     like a volume is HARVBK_E_EXISTS) and a restore directory that is a
 *     link (resolved once, docs/CLI.md);
 *   - the state directory: 0700 and every file 0600, also under umask 000;
 *     corrupt catalog and record files give a clear error and are kept;
 *   - no key, passphrase or S3 secret (nor its hex or base64 form) in any
 *     output, -vv debug log or JSON, also when commands fail.
 */
#include "e2e.h"

#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (64 * E2E_KiB)
#define SIZE0 (5 * CHUNK - 1000) /* disk0: random, 5 chunks, the last one short */
#define SIZE1 (3 * CHUNK)        /* disk1: text (zstd payloads) */

typedef struct fx {
    e2e_world w;
    char *img0, *img1;
    char *manifest, *idx0, *idx1;
    char *orig;     /* the manifest as written */
    size_t orig_len;
    char **outside; /* files below the root, but the state directory's, before */
    size_t noutside;
} fx;

/* Files below root, without those of the state directory (sorted). */
static char **outside_files(const fx *f, size_t *n)
{
    size_t all = 0;
    char **v = e2e_list_files(f->w.root, &all);
    size_t k = 0;
    for (size_t i = 0; i < all; i++) {
        if (strncmp(v[i], "state/", 6) == 0)
            free(v[i]);
        else
            v[k++] = v[i];
    }
    v[k] = NULL;
    *n = k;
    return v;
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "hostile", "", CHUNK);
    f->img0 = e2e_path(f->w.work, "disk0.img");
    f->img1 = e2e_path(f->w.work, "disk1.img");
    e2e_make_random(f->img0, SIZE0, 11);
    e2e_make_text(f->img1, SIZE1, 12);
    char *d0 = e2e_strf("disk0=%s", f->img0), *d1 = e2e_strf("disk1=%s", f->img1);
    e2e_ok(f->w.state, "vm", "add", "ns1/vm1", "--disk", d0, "--disk", d1, NULL);
    e2e_ok(f->w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    free(d0);
    free(d1);
    f->manifest = e2e_path(f->w.target, "backups/ns1/b1/manifest.json");
    f->idx0 = e2e_path(f->w.target, "backups/ns1/b1/disk0.idx");
    f->idx1 = e2e_path(f->w.target, "backups/ns1/b1/disk1.idx");
    f->orig = e2e_read_file(f->manifest, &f->orig_len);
    assert_non_null(f->orig);
    assert_true(e2e_exists(f->idx0) && e2e_exists(f->idx1));
    f->outside = outside_files(f, &f->noutside);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    e2e_world_free(&f->w);
    free(f->img0);
    free(f->img1);
    free(f->manifest);
    free(f->idx0);
    free(f->idx1);
    free(f->orig);
    e2e_strv_free(f->outside);
    free(f);
    return 0;
}

/* ------------------------------------------------------------- helpers */

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(p, n, d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* The manifest as written, with the first `from` replaced by `to`. */
static void manifest_edit(const fx *f, const char *from, const char *to)
{
    const char *at = strstr(f->orig, from);
    if (!at)
        fail_msg("manifest has no \"%s\":\n%s", from, f->orig);
    size_t pre = (size_t)(at - f->orig), fl = strlen(from), tl = strlen(to);
    size_t n = f->orig_len - fl + tl;
    char *s = malloc(n + 1);
    memcpy(s, f->orig, pre);
    memcpy(s + pre, to, tl);
    memcpy(s + pre + tl, at + fl, f->orig_len - pre - fl);
    s[n] = '\0';
    e2e_write_file(f->manifest, s, n);
    free(s);
}

static void manifest_restore(const fx *f)
{
    e2e_write_file(f->manifest, f->orig, f->orig_len);
}

/* A line without control characters (terminal escapes, NUL, CR). */
static void assert_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
            fail_msg("output holds control character 0x%02x: %s", *p, s);
}

/* restore ns1/b1 as a new VM into a fresh directory must fail (exit 1, one
 * line naming `code`, `needle` when set); the directory stays empty, no file
 * appeared or changed anywhere outside the state directory, and the VM is
 * not registered. */
static void restore_refused(const fx *f, const char *tag, const char *code, const char *needle)
{
    char *dir = e2e_strf("%s/r-%s", f->w.work, tag);
    assert_int_equal(mkdir(dir, 0755), 0);
    char *nv = e2e_strf("ns1/%s", tag);
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", nv, "--into", dir, NULL);
    e2e_assert_exit(&r, 1);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, code);
    if (needle)
        e2e_assert_err_has(&r, needle);
    assert_printable(r.err);
    e2e_res_free(&r);
    size_t n = 0;
    char **left = e2e_list_files(dir, &n);
    for (size_t i = 0; i < n; i++)
        print_error("the refused restore left %s/%s\n", dir, left[i]);
    e2e_strv_free(left);
    assert_int_equal(n, 0);
    size_t m = 0;
    char **now = outside_files(f, &m);
    size_t nn = 0;
    char **added = e2e_strv_minus(now, f->outside, &nn);
    for (size_t i = 0; i < nn; i++)
        print_error("the refused restore wrote %s/%s\n", f->w.root, added[i]);
    assert_int_equal(nn, 0);
    e2e_strv_free(added);
    e2e_strv_free(now);
    e2e_run(&r, f->w.state, "vm", "list", NULL);
    e2e_assert_ok(&r);
    if (strstr(r.out, nv))
        fail_msg("a refused restore registered VM %s:\n%s", nv, r.out);
    e2e_res_free(&r);
    assert_int_equal(rmdir(dir), 0);
    free(nv);
    free(dir);
}

/* backup verify ns1/b1 fails with exit 3 naming `code`. */
static void verify_refused(const fx *f, const char *code)
{
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "verify", "ns1/b1", NULL);
    e2e_assert_exit(&r, 3);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, code);
    assert_printable(r.err);
    e2e_res_free(&r);
}

/* The untouched store restores byte for byte again. */
static void restores_fine(const fx *f, const char *tag)
{
    char *dir = e2e_strf("%s/ok-%s", f->w.work, tag);
    char *nv = e2e_strf("ns1/%s", tag);
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", nv, "--into", dir, NULL);
    char *o0 = e2e_path(dir, "disk0.raw"), *o1 = e2e_path(dir, "disk1.raw");
    e2e_assert_same_file(f->img0, o0);
    e2e_assert_same_file(f->img1, o1);
    free(o0);
    free(o1);
    free(nv);
    free(dir);
}

/* ------------------------------------------------------ names (class 2) */

static void test_fixture_sound(void **state)
{
    fx *f = *state;
    e2e_ok(f->w.state, "backup", "verify", "ns1/b1", NULL);
    restores_fine(f, "sound");
}

/* Each hostile volume name in place of "disk0". */
static void test_hostile_volume_names(void **state)
{
    fx *f = *state;
    char *abs = e2e_strf("%s/abs-evil", f->w.root); /* would be ROOT/abs-evil.raw */
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *names[] = {
        "../evil",  "../../evil", abs,       "a/b",       "/",       "disk0\\u0000/../evil",
        "disk0\\u0000", ".",      "..",      "-rf",       "--help",  "",
        longname,   "Disk0",      "disk0 x", "disk0\\n",  "disk0\\u001b[2J", "d\xc3\xadsk0",
        "disk0-",   "..disk0",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        print_message("volume name \"%.60s\"\n", names[i]);
        char *to = e2e_strf("\"name\":\"%s\"", names[i]);
        manifest_edit(f, "\"name\":\"disk0\"", to);
        char *tag = e2e_strf("vn%zu", i);
        restore_refused(f, tag, "HARVBK_E_CORRUPT", NULL);
        free(tag);
        free(to);
    }
    char *absraw = e2e_strf("%s.raw", abs);
    assert_false(e2e_exists(absraw));
    free(absraw);
    /* verify refuses it as corrupt metadata too (exit 3) */
    manifest_edit(f, "\"name\":\"disk0\"", "\"name\":\"../evil\"");
    verify_refused(f, "HARVBK_E_CORRUPT");
    manifest_restore(f);
    restores_fine(f, "after-names");
    free(abs);
}

static void test_duplicate_volume_names(void **state)
{
    fx *f = *state;
    manifest_edit(f, "\"name\":\"disk1\"", "\"name\":\"disk0\"");
    restore_refused(f, "dup", "HARVBK_E_CORRUPT", "twice");
    verify_refused(f, "HARVBK_E_CORRUPT");

    /* 200000 empty volumes and "disk0" again at the end: found in one sort
     * (comparing every pair took minutes, past the CLI's timeout here) */
    const char *vols = strstr(f->orig, "\"volumes\":[");
    assert_non_null(vols);
    vols += strlen("\"volumes\":[");
    size_t cap = 200000 * 140 + f->orig_len + 256, n = 0;
    char *m = malloc(cap);
    n += (size_t)snprintf(m, cap, "%.*s", (int)(vols - f->orig), f->orig);
    for (unsigned i = 0; i < 200000; i++)
        n += (size_t)snprintf(m + n, cap - n,
                              "{\"name\":\"v%u\",\"size\":0,\"chunks\":0,\"data_chunks\":0,"
                              "\"index_sha256\":\"%064d\"},",
                              i, 0);
    n += (size_t)snprintf(m + n, cap - n, "%s", vols); /* disk0, disk1 and the rest */
    char *d1 = strstr(m + n - strlen(vols), "\"name\":\"disk1\"");
    assert_non_null(d1);
    memcpy(d1 + 8, "disk0", 5);
    e2e_write_file(f->manifest, m, n);
    free(m);
    uint64_t t0 = e2e_now_ms();
    restore_refused(f, "dupmany", "HARVBK_E_CORRUPT", "twice");
    print_message("200002 volumes, one twice: refused in %llu ms\n",
                  (unsigned long long)(e2e_now_ms() - t0));
}

/* The entry's own names, the source VM's and image references. */
static void test_hostile_entry_and_image_names(void **state)
{
    fx *f = *state;
    const struct {
        const char *from, *to, *needle;
    } c[] = {
        { "\"vm_name\":\"vm1\"", "\"vm_name\":\"../vm1\"", NULL },
        { "\"vm_name\":\"vm1\"", "\"vm_name\":\"vm1\\u0000x\"", "NUL" },
        { "\"vm_namespace\":\"ns1\"", "\"vm_namespace\":\"/etc\"", NULL },
        { "\"namespace\":\"ns1\"", "\"namespace\":\"ns2\"", "names" },
        { "\"name\":\"b1\"", "\"name\":\"b2\"", "names" },
        { "\"name\":\"b1\"", "\"name\":\"../b1\"", NULL },
        { "\"kind\":\"backup\"", "\"kind\":\"../x\"", NULL },
        { "\"images\":[]", "\"images\":[\"ns1/img\\u001b[31m\"]", "image" },
        { "\"images\":[]", "\"images\":[\"\"]", "image" },
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        print_message("%s\n", c[i].to);
        manifest_edit(f, c[i].from, c[i].to);
        char *tag = e2e_strf("en%zu", i);
        restore_refused(f, tag, "HARVBK_E_CORRUPT", c[i].needle);
        free(tag);
    }
    manifest_restore(f);
    restores_fine(f, "after-entry");
}

/* ------------------------------------------------------- sizes (class 1) */

/* Path of the chunk object of bytes [off, off+len) of img, and its bytes. */
static char *chunk_of(const fx *f, const char *img, uint64_t off, uint64_t len, char **bytes,
                      size_t *n)
{
    char hex[65];
    e2e_sha256_file_range(img, off, len, hex);
    char *p = e2e_strf("%s/chunks/%.2s/%.2s/%s", f->w.target, hex, hex + 2, hex);
    if (!e2e_exists(p))
        fail_msg("chunk object %s not found", p);
    *bytes = e2e_read_file(p, n);
    return p;
}

static void put_le32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint32_t get_le32(const char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

static void put_le64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (8 * i));
}

/* A chunk whose header lies about its raw length (bytes 8..11) or its
 * stored length (12..15): HARVBK_E_CHUNK, never an allocation or a copy of
 * that size (ASan and valgrind run this test too). */
static void test_chunk_header_lies(void **state)
{
    fx *f = *state;
    const struct {
        const char *img;
        uint64_t off, len;
    } which[] = { { f->img0, 0, CHUNK }, { f->img1, CHUNK, CHUNK } }; /* codec none; zstd */
    for (size_t w = 0; w < 2; w++) {
        char *obj = NULL;
        size_t n = 0;
        char *path = chunk_of(f, which[w].img, which[w].off, which[w].len, &obj, &n);
        assert_true(n > 32);
        uint32_t raw = get_le32(obj + 8), stored = get_le32(obj + 12);
        assert_int_equal(raw, CHUNK);
        assert_int_equal(stored, n - 32);
        print_message("chunk %zu: codec %d, %u raw, %u stored bytes\n", w, obj[4], raw, stored);
        const struct {
            int field; /* 8: raw length, 12: stored length */
            uint32_t v;
        } lie[] = {
            { 8, 0xffffffffu }, { 8, 2 * CHUNK }, { 8, CHUNK + 1 }, { 8, CHUNK / 2 }, { 8, 0 },
            { 12, 0xffffffffu }, { 12, 0xffffffe0u }, { 12, stored + 1 }, { 12, stored - 1 },
            { 12, 0 },
        };
        for (size_t i = 0; i < sizeof lie / sizeof *lie; i++) {
            char *bad = malloc(n);
            memcpy(bad, obj, n);
            put_le32(bad + lie[i].field, lie[i].v);
            e2e_write_file(path, bad, n);
            free(bad);
            char *tag = e2e_strf("hl%zu-%zu", w, i);
            restore_refused(f, tag, "HARVBK_E_CHUNK", "corrupt");
            free(tag);
            if (i == 0)
                verify_refused(f, "HARVBK_E_CHUNK");
        }
        /* an object far larger than any chunk: refused before it is read */
        e2e_write_file(path, obj, n);
        e2e_truncate(path, 3ull << 30);
        char *tag = e2e_strf("huge%zu", w);
        restore_refused(f, tag, "HARVBK_E_CHUNK", "more than");
        free(tag);
        e2e_write_file(path, obj, n);
        free(obj);
        free(path);
    }
    restores_fine(f, "after-chunks");
}

/* Rewrite an index file: its header fields changed, its trailer checksum
 * recomputed, and the manifest's index_sha256 made to match, so that only
 * the lie itself is left to be found. */
static void index_rewrite(fx *f, const char *idx, char *data, size_t n, const char *manifest_from,
                          const char *manifest_to)
{
    SHA256((unsigned char *)data, n - 32, (unsigned char *)data + n - 32);
    e2e_write_file(idx, data, n);
    char old[65], now[65];
    size_t on = 0;
    char *cur = e2e_read_file(idx, &on);
    sha256_hex(cur, on, now);
    free(cur);
    /* the manifest names the old checksum of this index */
    const char *k = strstr(f->orig, idx == f->idx0 ? "\"disk0\"" : "\"disk1\"");
    assert_non_null(k);
    const char *h = strstr(k, "\"index_sha256\":\"");
    assert_non_null(h);
    memcpy(old, h + 16, 64);
    old[64] = '\0';
    char *t1 = NULL;
    size_t len = f->orig_len;
    char *m = malloc(len + 64 + 1);
    memcpy(m, f->orig, len + 1);
    char *at = strstr(m, old);
    memcpy(at, now, 64);
    if (manifest_from) { /* one more edit */
        char *p = strstr(m, manifest_from);
        assert_non_null(p);
        size_t fl = strlen(manifest_from), tl = strlen(manifest_to);
        t1 = malloc(len - fl + tl + 1);
        size_t pre = (size_t)(p - m);
        memcpy(t1, m, pre);
        memcpy(t1 + pre, manifest_to, tl);
        memcpy(t1 + pre + tl, p + fl, len - pre - fl + 1);
        free(m);
        m = t1;
        len = len - fl + tl;
    }
    e2e_write_file(f->manifest, m, len);
    free(m);
}

static void test_hostile_index(void **state)
{
    fx *f = *state;
    size_t n = 0;
    char *ix = e2e_read_file(f->idx0, &n);
    assert_int_equal(n, 32 + 5 * 32 + 32);
    char *bad = malloc(n);

    /* count so large that count * 32 wraps around 2^64 */
    memcpy(bad, ix, n);
    put_le64(bad + 24, (1ull << 59) + 5);
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-count", "HARVBK_E_CORRUPT", "index");
    verify_refused(f, "HARVBK_E_CORRUPT");

    /* a volume size the manifest does not have (same count of chunks) */
    memcpy(bad, ix, n);
    put_le64(bad + 16, SIZE0 - 1);
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-size", "HARVBK_E_CORRUPT", "disagrees");

    /* ... and with the manifest agreeing on a volume of 2^62 bytes */
    memcpy(bad, ix, n);
    put_le64(bad + 16, 1ull << 62);
    put_le64(bad + 24, (1ull << 62) / CHUNK);
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-huge", "HARVBK_E_CORRUPT", "index");

    /* another chunk size than the manifest's */
    memcpy(bad, ix, n);
    put_le32(bad + 8, CHUNK * 2);
    put_le64(bad + 24, (SIZE0 + 2 * CHUNK - 1) / (2 * CHUNK));
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-chunksize", "HARVBK_E_CORRUPT", "index");

    /* a full chunk's slot naming the short last chunk (its length is not
     * the slot's): found when the chunk is read, nothing written */
    memcpy(bad, ix, n);
    memcpy(bad + 32 + 1 * 32, ix + 32 + 4 * 32, 32);
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-short", "HARVBK_E_CHUNK", "the index expects");
    verify_refused(f, "HARVBK_E_CHUNK");

    /* and the other way round: the last, short slot naming a full chunk */
    memcpy(bad, ix, n);
    memcpy(bad + 32 + 4 * 32, ix + 32, 32);
    index_rewrite(f, f->idx0, bad, n, NULL, NULL);
    restore_refused(f, "ix-long", "HARVBK_E_CHUNK", NULL);

    e2e_write_file(f->idx0, ix, n);
    manifest_restore(f);
    restores_fine(f, "after-index");
    free(bad);
    free(ix);
}

/* Sizes and counts in the manifest that do not add up, or that would make a
 * reader allocate (or a restore create) something huge. */
static void test_hostile_manifest_sizes(void **state)
{
    fx *f = *state;
    char *size0 = e2e_strf("\"size\":%llu,\"chunks\":5,", (unsigned long long)SIZE0);
    char *lb = e2e_strf("\"logical_bytes\":%llu,", (unsigned long long)(SIZE0 + SIZE1));
    /* 2^53 bytes (the largest a manifest holds), counts consistent */
    char *big = e2e_strf("\"size\":%llu,\"chunks\":%llu,", 1ull << 53,
                         (unsigned long long)((1ull << 53) / CHUNK));
    char *biglb = e2e_strf("\"logical_bytes\":%llu,", (unsigned long long)((1ull << 53) + SIZE1));
    const struct {
        const char *from, *to, *from2, *to2, *code;
    } c[] = {
        { size0, "\"size\":300000,\"chunks\":99999999999999,", NULL, NULL, "HARVBK_E_CORRUPT" },
        { size0, "\"size\":18446744073709551615,\"chunks\":5,", NULL, NULL, "HARVBK_E_CORRUPT" },
        { size0, "\"size\":-1,\"chunks\":5,", NULL, NULL, "HARVBK_E_CORRUPT" },
        { size0, "\"size\":1e300,\"chunks\":5,", NULL, NULL, "HARVBK_E_CORRUPT" },
        { "\"data_chunks\":5", "\"data_chunks\":6", NULL, NULL, "HARVBK_E_CORRUPT" },
        { lb, "\"logical_bytes\":1,", NULL, NULL, "HARVBK_E_CORRUPT" },
        { "\"chunk_size\":65536", "\"chunk_size\":4294967296", NULL, NULL, "HARVBK_E_CORRUPT" },
        { "\"chunk_size\":65536", "\"chunk_size\":65537", NULL, NULL, "HARVBK_E_CORRUPT" },
        { size0, big, lb, biglb, "HARVBK_E_CORRUPT" },
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        print_message("%s%s\n", c[i].to, c[i].to2 ? c[i].to2 : "");
        manifest_edit(f, c[i].from, c[i].to);
        if (c[i].from2) { /* a second edit on top of the first */
            size_t n = 0;
            char *s = e2e_read_file(f->manifest, &n);
            char *p = strstr(s, c[i].from2);
            assert_non_null(p);
            char *t = e2e_strf("%.*s%s%s", (int)(p - s), s, c[i].to2, p + strlen(c[i].from2));
            e2e_write_file(f->manifest, t, strlen(t));
            free(t);
            free(s);
        }
        char *tag = e2e_strf("ms%zu", i);
        restore_refused(f, tag, c[i].code, NULL);
        free(tag);
    }
    /* a manifest object larger than any manifest may be: refused unread */
    manifest_restore(f);
    e2e_truncate(f->manifest, 65ull << 20);
    restore_refused(f, "ms-huge", "HARVBK_E_CORRUPT", "more than");
    manifest_restore(f);
    restores_fine(f, "after-sizes");
    free(size0);
    free(lb);
    free(big);
    free(biglb);
}

/* ------------------------------------------------ links in the restore dir */

static void test_symlink_named_like_a_volume(void **state)
{
    fx *f = *state;
    char *dir = e2e_path(f->w.work, "rl");
    char *victim = e2e_path(f->w.work, "victim");
    char *ghost = e2e_path(f->w.work, "ghost");
    assert_int_equal(mkdir(dir, 0755), 0);
    e2e_write_file(victim, "precious\n", 9);
    char *l0 = e2e_path(dir, "disk0.raw"), *l1 = e2e_path(dir, "disk1.raw");
    assert_int_equal(symlink(victim, l0), 0);
    assert_int_equal(symlink(ghost, l1), 0); /* dangling: must not be created */
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/lnk", "--into", dir, NULL);
    e2e_assert_exit(&r, 1);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "HARVBK_E_EXISTS");
    e2e_res_free(&r);
    size_t n = 0;
    char *v = e2e_read_file(victim, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(v, "precious\n", 9);
    free(v);
    assert_false(e2e_exists(ghost));
    struct stat sb;
    assert_int_equal(lstat(l0, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(lstat(l1, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_int_equal(e2e_count_files(dir), 0); /* no partial file left */
    /* only one of them a link: still refused, nothing written through it */
    assert_int_equal(unlink(l1), 0);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/lnk", "--into", dir, NULL);
    e2e_assert_exit(&r, 1);
    e2e_assert_err_has(&r, "HARVBK_E_EXISTS");
    e2e_res_free(&r);
    assert_int_equal(e2e_file_size(victim), 9);
    assert_false(e2e_exists(l1));
    free(l0);
    free(l1);
    free(ghost);
    free(victim);
    free(dir);
}

/* --into a symbolic link to a directory: resolved once when the restore
 * starts; the volumes land in the directory it names (docs/CLI.md). A link
 * to nowhere is refused and creates nothing. */
static void test_restore_dir_is_a_symlink(void **state)
{
    fx *f = *state;
    char *real = e2e_path(f->w.work, "realdir"), *link = e2e_path(f->w.work, "linkdir");
    assert_int_equal(mkdir(real, 0755), 0);
    assert_int_equal(symlink(real, link), 0);
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/vl", "--into", link, NULL);
    char *o0 = e2e_path(real, "disk0.raw");
    e2e_assert_same_file(f->img0, o0);
    e2e_res r;
    e2e_run(&r, f->w.state, "vm", "show", "ns1/vl", NULL);
    e2e_assert_ok(&r);
    if (!strstr(r.out, o0)) /* registered with the resolved path */
        fail_msg("vm show does not name %s:\n%s", o0, r.out);
    e2e_res_free(&r);

    char *dangling = e2e_path(f->w.work, "dangling"), *nowhere = e2e_path(f->w.work, "nowhere");
    assert_int_equal(symlink(nowhere, dangling), 0);
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/vd", "--into", dangling, NULL);
    e2e_assert_exit(&r, 1);
    e2e_assert_fails_1line(&r);
    e2e_res_free(&r);
    assert_false(e2e_exists(nowhere));
    free(dangling);
    free(nowhere);
    free(o0);
    free(real);
    free(link);
}

/* ------------------------------------------- the state directory (class 3) */

static const char *g_bad_mode_path;
static int g_bad_modes;

static int check_mode(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_SL || type == FTW_SLN)
        return 0;
    if (sb->st_mode & 077) {
        print_error("%s has mode %03o (group or others may access it)\n", path,
                    (unsigned)(sb->st_mode & 0777));
        g_bad_modes++;
        g_bad_mode_path = path;
    }
    if (type == FTW_F && !S_ISREG(sb->st_mode) && !S_ISSOCK(sb->st_mode)) {
        print_error("%s is not a regular file\n", path);
        g_bad_modes++;
    }
    return 0;
}

static void assert_private_tree(const char *dir)
{
    g_bad_modes = 0;
    assert_int_equal(nftw(dir, check_mode, 16, FTW_PHYS), 0);
    assert_int_equal(g_bad_modes, 0);
}

/* Everything the library creates in the state directory, under umask 000:
 * the directory and its folders 0700, every file 0600 (catalog, records,
 * journals, locks, schedules, images, the target configuration with a stored
 * secret, the snapshot store in it). */
static void test_state_dir_private_under_umask_000(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "umask", NULL, 0);
    mode_t old = umask(0);
    char *img = e2e_path(w.work, "d.img");
    e2e_make_random(img, 3 * CHUNK, 5);
    char *d = e2e_strf("disk=%s", img);
    char *url = e2e_strf("file://%s", w.target);
    e2e_ok(w.state, "target", "set", url, "--chunk-size", "64K", NULL);
    e2e_ok(w.state, "vm", "add", "ns1/vm1", "--disk", d, NULL);
    e2e_ok(w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    e2e_ok(w.state, "snapshot", "create", "ns1/vm1", "--name", "s1", NULL);
    e2e_ok(w.state, "schedule", "create", "ns1/nightly", "--type", "backup", "--vm", "ns1/vm1",
           "--cron", "0 3 * * *", "--retain", "3", NULL);
    char *rdir = e2e_path(w.work, "r");
    e2e_ok(w.state, "restore", "ns1/b1", "--new-vm", "ns1/copy", "--into", rdir, NULL);
    e2e_ok(w.state, "sync", NULL);
    e2e_ok(w.state, "backup", "list", NULL);
    /* a stored S3 secret (the target is not reached) */
    char *sf = e2e_path(w.work, "secret");
    e2e_write_file(sf, "s3cr3t-umask-test\n", 18);
    assert_int_equal(chmod(sf, 0600), 0);
    char *st2 = e2e_path(w.root, "state2");
    e2e_res r;
    e2e_run(&r, st2, "target", "set", "s3://bucket/p", "--endpoint", "http://127.0.0.1:9",
            "--access-key-id", "AKID", "--secret-access-key-file", sf, "--store-secret", NULL);
    e2e_res_free(&r);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(w.state, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_private_tree(w.state);
    char *tj = e2e_path(st2, "target.json");
    if (e2e_exists(tj))
        assert_private_tree(st2);
    /* the restored volume is the caller's (0600 as well) */
    char *o = e2e_path(rdir, "disk.raw");
    assert_int_equal(stat(o, &sb), 0);
    assert_int_equal(sb.st_mode & 077, 0);
    /* a state directory someone made 0755 is made private when opened */
    char *st3 = e2e_path(w.root, "state3");
    assert_int_equal(mkdir(st3, 0755), 0);
    assert_int_equal(chmod(st3, 0755), 0);
    e2e_ok(st3, "vm", "list", NULL);
    assert_int_equal(stat(st3, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    free(o);
    free(st3);
    free(tj);
    free(st2);
    free(sf);
    free(rdir);
    free(url);
    free(d);
    free(img);
    e2e_world_free(&w);
}

/* Corrupt catalog and record files in the state directory: a clear error
 * naming the file, never a crash, and the file is kept as it is (nothing a
 * person could still repair is lost); the rest keeps working. */
static void test_corrupt_state_files(void **state)
{
    fx *f = *state;
    char *vmf = e2e_path(f->w.state, "vms/ns1/vm1.json");
    char *rec = e2e_path(f->w.state, "backups/ns1/b1.json");
    assert_true(e2e_exists(vmf));
    assert_true(e2e_exists(rec));
    char *img = e2e_path(f->w.work, "other.img");
    e2e_make_random(img, CHUNK, 9);
    char *d = e2e_strf("disk=%s", img);
    e2e_ok(f->w.state, "vm", "add", "ns1/other", "--disk", d, NULL);
    const char *garbage[] = { "{\"namespace\":\"ns1\",\"name\":\"vm1\",", "\x01\x02\xff garbage",
                              "{\"namespace\":\"ns1\\u0000\",\"name\":\"vm1\"}", "" };
    for (size_t i = 0; i < sizeof garbage / sizeof *garbage; i++) {
        e2e_write_file(vmf, garbage[i], strlen(garbage[i]));
        e2e_res r;
        e2e_run(&r, f->w.state, "vm", "show", "ns1/vm1", NULL);
        e2e_assert_exit(&r, 1);
        e2e_assert_fails_1line(&r);
        e2e_assert_err_has(&r, "HARVBK_E_CORRUPT");
        assert_printable(r.err);
        e2e_res_free(&r);
        /* the other VM is still there */
        e2e_run(&r, f->w.state, "vm", "show", "ns1/other", NULL);
        e2e_assert_ok(&r);
        e2e_res_free(&r);
        /* a backup of it is refused, the file is kept byte for byte */
        e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", "bx", NULL);
        e2e_assert_exit(&r, 1);
        e2e_assert_err_has(&r, "HARVBK_E_CORRUPT");
        e2e_res_free(&r);
        size_t n = 0;
        char *now = e2e_read_file(vmf, &n);
        assert_int_equal(n, strlen(garbage[i]));
        assert_memory_equal(now, garbage[i], n);
        free(now);
    }
    /* a broken local backup record: the backup (committed on the target) is
     * still listed and restorable, the record is not removed */
    e2e_write_file(rec, "{not json", 9);
    e2e_res r;
    e2e_run(&r, f->w.state, "-v", "backup", "list", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "ns1/b1"));
    e2e_assert_err_has(&r, "unreadable backup record");
    e2e_assert_err_has(&r, rec);
    e2e_res_free(&r);
    size_t n = 0;
    char *now = e2e_read_file(rec, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(now, "{not json", 9);
    free(now);
    /* the backup catalog is a cache of the target: a broken one is named in a
     * warning and rebuilt from the target, the backup still listed Ready */
    char *cat = e2e_path(f->w.state, "catalog/backups.json");
    assert_true(e2e_exists(cat));
    e2e_write_file(cat, "{garbage", 8);
    e2e_run(&r, f->w.state, "-v", "backup", "list", "--json", NULL);
    e2e_assert_ok(&r);
    e2e_assert_err_has(&r, cat);
    cJSON *l = cJSON_Parse(r.out);
    assert_non_null(l);
    cJSON *b = e2e_list_find(l, "ns1", "b1");
    assert_non_null(b);
    assert_string_equal(e2e_json_str(b, "state"), "Ready");
    cJSON_Delete(l);
    e2e_res_free(&r);
    free(cat);
    free(d);
    free(img);
    free(rec);
    free(vmf);
}

/* ------------------------------------------------------------- secrets */

/* needle, its lower and upper hex and its base64 forms */
static char *forms[4];

static void make_forms(const char *needle)
{
    size_t n = strlen(needle);
    forms[0] = strdup(needle);
    forms[1] = malloc(2 * n + 1);
    forms[2] = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        sprintf(forms[1] + 2 * i, "%02x", (unsigned char)needle[i]);
        sprintf(forms[2] + 2 * i, "%02X", (unsigned char)needle[i]);
    }
    forms[3] = malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)forms[3], (const unsigned char *)needle, (int)n);
}

static void free_forms(void)
{
    for (int i = 0; i < 4; i++) {
        free(forms[i]);
        forms[i] = NULL;
    }
}

typedef struct secrets {
    const char *s[3];
} secrets;

/* Nothing of a run's output holds any form of any secret. The base64 form
 * is checked without its last 4 characters (padding varies with alignment);
 * a 16-character window of each form is enough to count as a leak. */
static void assert_no_secret(const e2e_res *r, const secrets *sc)
{
    for (int k = 0; k < 3; k++) {
        if (!sc->s[k])
            continue;
        make_forms(sc->s[k]);
        for (int i = 0; i < 4; i++) {
            size_t fl = strlen(forms[i]);
            if (i == 3 && fl > 8)
                forms[i][fl - 4] = '\0';
            const char *outs[2] = { r->out, r->err };
            for (int o = 0; o < 2; o++)
                for (size_t off = 0; off + 16 <= strlen(forms[i]); off += 8) {
                    char win[17];
                    memcpy(win, forms[i] + off, 16);
                    win[16] = '\0';
                    if (strstr(outs[o], win)) {
                        e2e_res_print(r);
                        fail_msg("secret %d (form %d) appears in the %s of: %s", k, i,
                                 o ? "stderr" : "stdout", r->cmdline);
                    }
                }
        }
        free_forms();
    }
}

#define RUN_CHECKED(r, sc, state, ...)                                                         \
    do {                                                                                       \
        e2e_run((r), (state), __VA_ARGS__, NULL);                                              \
        assert_true((r)->exited);                                                              \
        assert_no_secret((r), (sc));                                                           \
    } while (0)

static void test_no_secret_in_any_output(void **state)
{
    (void)state;
    e2e_world w;
    e2e_world_init(&w, "secrets", NULL, 0);
    char *keys = e2e_path(w.root, "keys");
    assert_int_equal(mkdir(keys, 0700), 0);
    const char key[] = "KEYFILE-SECRET-5f1c0e9a7b3d2468-0123456789abcdef";
    const char pass[] = "PASSPHRASE-SECRET-violet-staple-9137";
    const char s3[] = "S3SECRET-wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";
    char *kf = e2e_path(keys, "k.key"), *kf2 = e2e_path(keys, "wrong.key");
    char *pf = e2e_path(keys, "p.txt"), *sf = e2e_path(keys, "s3.secret");
    e2e_write_file(kf, key, strlen(key));
    e2e_write_file(kf2, "WRONGKEY-0000000000000000000000000000000000", 43);
    e2e_write_file(pf, pass, strlen(pass));
    e2e_write_file(sf, s3, strlen(s3));
    assert_int_equal(chmod(kf, 0600), 0);
    assert_int_equal(chmod(kf2, 0600), 0);
    assert_int_equal(chmod(pf, 0600), 0);
    assert_int_equal(chmod(sf, 0600), 0);
    secrets sc = { { key, pass, s3 } };
    char *img = e2e_path(w.work, "d.img");
    e2e_make_text(img, 3 * CHUNK, 6);
    char *d = e2e_strf("disk=%s", img);
    char *url = e2e_strf("file://%s", w.target);
    e2e_res r;

    /* an encrypted file target: every command with -vv, JSON outputs */
    RUN_CHECKED(&r, &sc, w.state, "-vv", "target", "set", url, "--encrypt", "--key-file", kf,
                "--chunk-size", "64K");
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "target", "key", "add", "--new-passphrase-file", pf);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "vm", "add", "ns1/vm1", "--disk", d);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "backup", "create", "ns1/vm1", "--name", "b1");
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "snapshot", "create", "ns1/vm1", "--name", "s1");
    e2e_res_free(&r);
    const char *const show[][5] = {
        { "target", "show", NULL },           { "target", "show", "--json", NULL },
        { "target", "key", "list", NULL },    { "target", "key", "list", "--json", NULL },
        { "backup", "list", "--json", NULL }, { "backup", "show", "ns1/b1", "--json", NULL },
        { "vm", "show", "ns1/vm1", NULL },    { "backup", "verify", "ns1/b1", NULL },
    };
    for (size_t i = 0; i < sizeof show / sizeof *show; i++) {
        const char *args[12] = { "--state", w.state, "-vv" };
        size_t k = 3;
        for (size_t j = 0; show[i][j]; j++)
            args[k++] = show[i][j];
        args[k] = NULL;
        e2e_runv(&r, NULL, 0, args);
        assert_true(r.exited);
        assert_no_secret(&r, &sc);
        e2e_res_free(&r);
    }
    char *rdir = e2e_path(w.work, "r");
    RUN_CHECKED(&r, &sc, w.state, "-vv", "--passphrase-file", pf, "restore", "ns1/b1",
                "--new-vm", "ns1/copy", "--into", rdir);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    /* failing: a wrong key, a group-readable key file, a missing one */
    RUN_CHECKED(&r, &sc, w.state, "-vv", "--key-file", kf2, "backup", "verify", "ns1/b1");
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "HARVBK_E_KEY");
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "--key-file", kf2, "restore", "ns1/b1", "--new-vm",
                "ns1/copy2", "--into", rdir);
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    assert_int_equal(chmod(pf, 0640), 0);
    RUN_CHECKED(&r, &sc, w.state, "-vv", "--passphrase-file", pf, "backup", "list", "--json");
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "chmod 600");
    e2e_res_free(&r);
    assert_int_equal(chmod(pf, 0600), 0);

    /* an S3 target that nobody answers (any more): `target set` checks that
     * the endpoint answers, so the configuration is written as a set that
     * succeeded earlier would have left it, the secret stored in it */
    char *st2 = e2e_path(w.root, "state-s3");
    RUN_CHECKED(&r, &sc, st2, "-vv", "target", "set", "s3://bucket/prefix", "--endpoint",
                "http://127.0.0.1:9", "--region", "us-east-1", "--access-key-id", "AKIDEXAMPLE",
                "--secret-access-key-file", sf, "--timeout", "1", "--store-secret");
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "HARVBK_E_TARGET");
    e2e_res_free(&r);
    char *tj = e2e_path(st2, "target.json");
    char *cfg = e2e_strf("{\"version\":1,\"url\":\"s3://bucket/prefix\",\"endpoint\":"
                         "\"http://127.0.0.1:9\",\"region\":\"us-east-1\",\"access_key_id\":"
                         "\"AKIDEXAMPLE\",\"secret_access_key\":\"%s\",\"store_secret\":true,"
                         "\"timeout_ms\":1000}\n", s3);
    e2e_write_file(tj, cfg, strlen(cfg));
    assert_int_equal(chmod(tj, 0600), 0);
    free(cfg);
    free(tj);
    RUN_CHECKED(&r, &sc, st2, "-vv", "target", "show");
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, st2, "-vv", "target", "show", "--json");
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, st2, "-vv", "--secret-access-key-file", sf, "backup", "list", "--json");
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, st2, "-vv", "vm", "add", "ns1/vm1", "--disk", d);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, st2, "-vv", "--secret-access-key-file", sf, "backup", "create",
                "ns1/vm1", "--name", "b1");
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    RUN_CHECKED(&r, &sc, st2, "-vv", "sync", "--json");
    e2e_res_free(&r);
    /* a readable secret file: refused, with the reason, and not echoed */
    assert_int_equal(chmod(sf, 0644), 0);
    RUN_CHECKED(&r, &sc, st2, "-vv", "--secret-access-key-file", sf, "backup", "list");
    e2e_assert_fails(&r);
    e2e_assert_err_has(&r, "chmod 600");
    e2e_res_free(&r);
    assert_int_equal(chmod(sf, 0600), 0);
    /* the key and passphrase are nowhere in the state directory either */
    size_t nf = 0;
    char **files = e2e_list_files(w.state, &nf);
    for (size_t i = 0; i < nf; i++) {
        char *p = e2e_path(w.state, files[i]);
        size_t n = 0;
        char *b = e2e_read_file(p, &n);
        if (b && (memmem(b, n, key, strlen(key)) || memmem(b, n, pass, strlen(pass))))
            fail_msg("a key is stored in the clear in %s", p);
        free(b);
        free(p);
    }
    e2e_strv_free(files);
    free(st2);
    free(rdir);
    free(url);
    free(d);
    free(img);
    free(kf);
    free(kf2);
    free(pf);
    free(sf);
    free(keys);
    e2e_world_free(&w);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fixture_sound),
        T(test_hostile_volume_names),
        T(test_duplicate_volume_names),
        T(test_hostile_entry_and_image_names),
        T(test_chunk_header_lies),
        T(test_hostile_index),
        T(test_hostile_manifest_sizes),
        T(test_symlink_named_like_a_volume),
        T(test_restore_dir_is_a_symlink),
        T(test_corrupt_state_files),
        cmocka_unit_test(test_state_dir_private_under_umask_000),
        cmocka_unit_test(test_no_secret_in_any_output),
    };
    return cmocka_run_group_tests_name("e2e_hostile", tests, NULL, NULL);
}
