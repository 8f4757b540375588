/*
 * test_e2e_integrity.c - damaged stores through the harvbk CLI: corrupt or
 * missing chunk objects, broken manifests, broken indexes. Every command must
 * fail with one clear line on stderr and a non-zero exit, never crash, and a
 * failed restore must leave no volume file behind.
 */
#include "e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (256 * E2E_KiB)

typedef struct fx {
    e2e_world w;
    char *img0, *img1, *imgg; /* vm1 disk0 (8 chunks), vm1 disk1 (4 chunks), good vm */
    char *manifest, *idx0, *idx1;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "integ", "", CHUNK);
    f->img0 = e2e_path(f->w.work, "disk0.img");
    f->img1 = e2e_path(f->w.work, "disk1.img");
    f->imgg = e2e_path(f->w.work, "good.img");
    e2e_make_random(f->img0, 8 * CHUNK, 1);
    e2e_make_random(f->img1, 4 * CHUNK - 100, 2);
    e2e_make_random(f->imgg, 3 * CHUNK, 3);
    char *d0 = e2e_strf("disk0=%s", f->img0), *d1 = e2e_strf("disk1=%s", f->img1);
    char *dg = e2e_strf("disk=%s", f->imgg);
    e2e_ok(f->w.state, "vm", "add", "ns1/vm1", "--disk", d0, "--disk", d1, NULL);
    e2e_ok(f->w.state, "vm", "add", "ns1/good", "--disk", dg, NULL);
    e2e_ok(f->w.state, "backup", "create", "ns1/vm1", "--name", "b1", NULL);
    e2e_ok(f->w.state, "backup", "create", "ns1/good", "--name", "g1", NULL);
    f->manifest = e2e_path(f->w.target, "backups/ns1/b1/manifest.json");
    f->idx0 = e2e_path(f->w.target, "backups/ns1/b1/disk0.idx");
    f->idx1 = e2e_path(f->w.target, "backups/ns1/b1/disk1.idx");
    if (!e2e_exists(f->manifest) || !e2e_exists(f->idx0) || !e2e_exists(f->idx1))
        fail_msg("store layout: expected %s, %s and %s", f->manifest, f->idx0, f->idx1);
    free(d0);
    free(d1);
    free(dg);
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
    free(f->imgg);
    free(f->manifest);
    free(f->idx0);
    free(f->idx1);
    free(f);
    return 0;
}

/* Path of the chunk object holding bytes [off, off+len) of img. */
static char *chunk_path_of(const fx *f, const char *img, uint64_t off, uint64_t len, char hex[65])
{
    e2e_sha256_file_range(img, off, len, hex);
    char *p = e2e_strf("%s/chunks/%.2s/%.2s/%s", f->w.target, hex, hex + 2, hex);
    if (!e2e_exists(p))
        fail_msg("chunk object %s not found in the store", p);
    return p;
}

/* restore ns1/b1 as ns1/NEWVM must fail with one line; DIR stays empty and the
 * VM is not registered. */
static void restore_fails_clean(const fx *f, const char *newvm, const char *needle)
{
    char *dir = e2e_strf("%s/r-%s", f->w.work, newvm);
    mkdir(dir, 0755);
    char *nv = e2e_strf("ns1/%s", newvm);
    e2e_res r;
    e2e_run(&r, f->w.state, "restore", "ns1/b1", "--new-vm", nv, "--into", dir, NULL);
    e2e_assert_fails_1line(&r);
    if (needle)
        e2e_assert_err_has(&r, needle);
    e2e_res_free(&r);
    size_t n = 0;
    char **left = e2e_list_files(dir, &n);
    for (size_t i = 0; i < n; i++)
        print_error("failed restore left %s/%s\n", dir, left[i]);
    e2e_strv_free(left);
    assert_int_equal(n, 0);
    e2e_run(&r, f->w.state, "vm", "list", NULL);
    e2e_assert_ok(&r);
    if (strstr(r.out, newvm))
        fail_msg("a failed restore registered VM %s:\n%s", nv, r.out);
    e2e_res_free(&r);
    free(nv);
    free(dir);
}

/* The untouched backup ns1/g1 still verifies and restores identically. */
static void good_still_fine(const fx *f, const char *newvm)
{
    e2e_ok(f->w.state, "backup", "verify", "ns1/g1", NULL);
    char *dir = e2e_strf("%s/r-%s", f->w.work, newvm);
    mkdir(dir, 0755);
    char *nv = e2e_strf("ns1/%s", newvm);
    e2e_ok(f->w.state, "restore", "ns1/g1", "--new-vm", nv, "--into", dir, NULL);
    char *out = e2e_path(dir, "disk.raw");
    e2e_assert_same_file(f->imgg, out);
    free(out);
    free(nv);
    free(dir);
}

static void verify_fails_naming(const fx *f, const char *hex, const char *vol)
{
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "verify", "ns1/b1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, hex);
    e2e_assert_err_has(&r, vol);
    e2e_res_free(&r);
}

/* ---------------------------------------------------------------- chunks */

static void test_chunk_payload_flip(void **state)
{
    fx *f = *state;
    char hex[65];
    char *p = chunk_path_of(f, f->img1, 2 * CHUNK, CHUNK, hex);
    e2e_flip_byte(p, 32 + 1000);
    verify_fails_naming(f, hex, "disk1");
    restore_fails_clean(f, "flip-r", hex);
    good_still_fine(f, "flip-g");
    free(p);
}

static void test_chunk_header_flip(void **state)
{
    fx *f = *state;
    char hex[65];
    char *p = chunk_path_of(f, f->img0, 0, CHUNK, hex);
    e2e_flip_byte(p, 0); /* the "HBC1" magic */
    verify_fails_naming(f, hex, "disk0");
    restore_fails_clean(f, "hdr-r", hex);
    free(p);
}

static void test_chunk_last_byte_flip(void **state)
{
    fx *f = *state;
    char hex[65];
    /* the short last chunk of disk1 */
    char *p = chunk_path_of(f, f->img1, 3 * CHUNK, CHUNK - 100, hex);
    int64_t sz = e2e_file_size(p);
    assert_true(sz > 32);
    e2e_flip_byte(p, (uint64_t)sz - 1);
    verify_fails_naming(f, hex, "disk1");
    restore_fails_clean(f, "last-r", hex);
    free(p);
}

static void test_chunk_truncated(void **state)
{
    fx *f = *state;
    char hex[65];
    char *p = chunk_path_of(f, f->img0, 5 * CHUNK, CHUNK, hex);
    e2e_truncate(p, 40);
    verify_fails_naming(f, hex, "disk0");
    restore_fails_clean(f, "trunc-r", hex);
    free(p);
}

static void test_chunk_missing(void **state)
{
    fx *f = *state;
    char hex[65];
    char *p = chunk_path_of(f, f->img0, 7 * CHUNK, CHUNK, hex);
    assert_int_equal(unlink(p), 0);
    verify_fails_naming(f, hex, "disk0");
    restore_fails_clean(f, "miss-r", hex);
    good_still_fine(f, "miss-g");
    free(p);
}

/* ---------------------------------------------------------------- manifest */

static void manifest_broken_common(fx *f, const char *tag, const char *needle)
{
    /* show: either fails with one clear line, or shows the backup in state
     * Error with the reason (never Ready, never a crash). Show answers from
     * the catalog: a sync first sees the changed manifest. */
    e2e_res r;
    e2e_run(&r, f->w.state, "sync", NULL);
    assert_true(r.exited);
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "backup", "show", "ns1/b1", NULL);
    assert_true(r.exited);
    bool show_fails = r.code != 0;
    if (show_fails) {
        e2e_assert_fails_1line(&r);
        if (needle)
            e2e_assert_err_has(&r, needle);
    } else {
        if (!strstr(r.out, "Error")) {
            e2e_res_print(&r);
            fail_msg("backup show of a backup with a broken manifest does not say Error");
        }
    }
    e2e_res_free(&r);

    cJSON *j = e2e_show_json(f->w.state, "ns1/b1", &r);
    if (show_fails) {
        assert_null(j);
        e2e_assert_fails_1line(&r);
    } else {
        if (!j)
            e2e_res_print(&r);
        assert_non_null(j);
        const char *st = e2e_json_str(j, "state"), *err = e2e_json_str(j, "error");
        if (!st || strcmp(st, "Error") != 0 || !err || !*err ||
            (needle && !e2e_icontains(err, needle))) {
            e2e_res_print(&r);
            fail_msg("backup show --json: expected state Error with a reason%s%s", needle ? " mentioning " : "",
                     needle ? needle : "");
        }
        if (!e2e_icontains(err, "manifest") && !e2e_icontains(err, "format")) {
            e2e_res_print(&r);
            fail_msg("backup show --json: the error does not say what is broken");
        }
        print_message("note: show exits 0 and reports Error: %s\n", err);
        cJSON_Delete(j);
    }
    e2e_res_free(&r);

    e2e_run(&r, f->w.state, "backup", "verify", "ns1/b1", NULL);
    e2e_assert_fails_1line(&r);
    if (needle)
        e2e_assert_err_has(&r, needle);
    e2e_res_free(&r);

    char *nv = e2e_strf("%s-r", tag);
    restore_fails_clean(f, nv, needle);
    free(nv);

    /* one broken backup does not break listing the others */
    cJSON *l = e2e_list_json(f->w.state);
    cJSON *g = e2e_list_find(l, "ns1", "g1");
    assert_non_null(g);
    assert_string_equal(e2e_json_str(g, "state"), "Ready");
    cJSON *b = e2e_list_find(l, "ns1", "b1");
    if (b && e2e_json_str(b, "state") && strcmp(e2e_json_str(b, "state"), "Ready") == 0)
        fail_msg("backup list reports ns1/b1 Ready although its manifest is unreadable");
    cJSON_Delete(l);
    char *gv = e2e_strf("%s-g", tag);
    good_still_fine(f, gv);
    free(gv);
}

static void test_manifest_truncated_half(void **state)
{
    fx *f = *state;
    int64_t sz = e2e_file_size(f->manifest);
    assert_true(sz > 10);
    e2e_truncate(f->manifest, (uint64_t)sz / 2);
    manifest_broken_common(f, "mhalf", NULL);
}

static void test_manifest_empty(void **state)
{
    fx *f = *state;
    e2e_truncate(f->manifest, 0);
    manifest_broken_common(f, "mempty", NULL);
}

static void test_manifest_invalid_json(void **state)
{
    fx *f = *state;
    const char *junk = "{ \"format_major\": 1, this is : not json ]\n";
    e2e_write_file(f->manifest, junk, strlen(junk));
    manifest_broken_common(f, "mjunk", NULL);
}

static void test_manifest_wrong_types(void **state)
{
    fx *f = *state;
    /* valid JSON, but not a manifest */
    const char *junk = "[1, 2, 3]";
    e2e_write_file(f->manifest, junk, strlen(junk));
    manifest_broken_common(f, "mtypes", NULL);
}

static void test_manifest_newer_format(void **state)
{
    fx *f = *state;
    size_t len = 0;
    char *txt = e2e_read_file(f->manifest, &len);
    assert_non_null(txt);
    cJSON *j = cJSON_Parse(txt);
    if (!j)
        fail_msg("manifest.json is not JSON: %.200s", txt);
    cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "format_major");
    if (!cJSON_IsNumber(fm))
        fail_msg("manifest.json has no numeric format_major: %.300s", txt);
    cJSON_SetNumberValue(fm, 99);
    char *out = cJSON_Print(j);
    e2e_write_file(f->manifest, out, strlen(out));
    manifest_broken_common(f, "m99", "newer");
    free(out);
    cJSON_Delete(j);
    free(txt);
}

/* ---------------------------------------------------------------- index */

static void index_broken_common(fx *f, const char *tag)
{
    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "verify", "ns1/b1", NULL);
    e2e_assert_fails_1line(&r);
    if (!e2e_icontains(r.err, "disk0") && !e2e_icontains(r.err, "idx") &&
        !e2e_icontains(r.err, "index")) {
        e2e_res_print(&r);
        fail_msg("the error does not say which index (disk0) is broken");
    }
    e2e_res_free(&r);
    char *nv = e2e_strf("%s-r", tag);
    restore_fails_clean(f, nv, NULL);
    free(nv);
    /* show does not crash (it may or may not read indexes) */
    e2e_run(&r, f->w.state, "backup", "show", "ns1/b1", NULL);
    assert_true(r.exited);
    e2e_res_free(&r);
    char *gv = e2e_strf("%s-g", tag);
    good_still_fine(f, gv);
    free(gv);
}

static void test_index_flip(void **state)
{
    fx *f = *state;
    int64_t sz = e2e_file_size(f->idx0);
    assert_true(sz > 64);
    e2e_flip_byte(f->idx0, (uint64_t)sz / 2);
    index_broken_common(f, "iflip");
}

static void test_index_truncated(void **state)
{
    fx *f = *state;
    e2e_truncate(f->idx0, 10);
    index_broken_common(f, "itrunc");
}

static void test_index_empty(void **state)
{
    fx *f = *state;
    e2e_truncate(f->idx0, 0);
    index_broken_common(f, "iempty");
}

static void test_index_missing(void **state)
{
    fx *f = *state;
    assert_int_equal(unlink(f->idx0), 0);
    index_broken_common(f, "imiss");
}

static void test_index_swapped(void **state)
{
    fx *f = *state;
    /* a well-formed index of the wrong volume: checksum in the manifest differs */
    e2e_copy_file(f->idx1, f->idx0);
    index_broken_common(f, "iswap");
}

/* harvbk-store.json of a newer major format: every command that touches the
 * store refuses with a clear "newer" message; nothing is written. */
static void test_store_newer_format(void **state)
{
    fx *f = *state;
    char *sj = e2e_path(f->w.target, "harvbk-store.json");
    char *txt = e2e_read_file(sj, NULL);
    if (!txt)
        fail_msg("%s does not exist", sj);
    cJSON *j = cJSON_Parse(txt);
    assert_non_null(j);
    cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "format_major");
    if (!cJSON_IsNumber(fm))
        fail_msg("harvbk-store.json has no numeric format_major: %.300s", txt);
    cJSON_SetNumberValue(fm, 99);
    char *out = cJSON_Print(j);
    e2e_write_file(sj, out, strlen(out));
    size_t nfiles = e2e_count_files(f->w.target);

    e2e_res r;
    e2e_run(&r, f->w.state, "backup", "create", "ns1/vm1", "--name", "b2", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "newer");
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "backup", "verify", "ns1/b1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "newer");
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "gc", NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "newer");
    e2e_res_free(&r);
    restore_fails_clean(f, "s99-r", "newer");
    /* a second cluster cannot adopt it either */
    char *st2 = e2e_path(f->w.root, "state2");
    char *url = e2e_strf("file://%s", f->w.target);
    e2e_run(&r, st2, "target", "set", url, NULL);
    e2e_assert_fails_1line(&r);
    e2e_assert_err_has(&r, "newer");
    e2e_res_free(&r);
    /* nothing was added to or removed from the store, the config is untouched */
    assert_int_equal(e2e_count_files(f->w.target), nfiles);
    char *now = e2e_read_file(sj, NULL);
    assert_string_equal(now, out);
    free(now);
    free(url);
    free(st2);
    free(out);
    cJSON_Delete(j);
    free(txt);
    free(sj);
}

/* Sanity: the fixture itself is sound (so the failures above are caused by
 * the damage, not by a broken backup). */
static void test_fixture_sound(void **state)
{
    fx *f = *state;
    e2e_ok(f->w.state, "backup", "verify", "ns1/b1", NULL);
    char *dir = e2e_path(f->w.work, "sound");
    mkdir(dir, 0755);
    e2e_ok(f->w.state, "restore", "ns1/b1", "--new-vm", "ns1/sound", "--into", dir, NULL);
    char *o0 = e2e_path(dir, "disk0.raw"), *o1 = e2e_path(dir, "disk1.raw");
    e2e_assert_same_file(f->img0, o0);
    e2e_assert_same_file(f->img1, o1);
    free(o0);
    free(o1);
    free(dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fixture_sound),
        T(test_chunk_payload_flip),
        T(test_chunk_header_flip),
        T(test_chunk_last_byte_flip),
        T(test_chunk_truncated),
        T(test_chunk_missing),
        T(test_manifest_truncated_half),
        T(test_manifest_empty),
        T(test_manifest_invalid_json),
        T(test_manifest_wrong_types),
        T(test_manifest_newer_format),
        T(test_index_flip),
        T(test_index_truncated),
        T(test_index_empty),
        T(test_index_missing),
        T(test_index_swapped),
        T(test_store_newer_format),
    };
    return cmocka_run_group_tests_name("e2e_integrity", tests, NULL, NULL);
}
