/*
 * test_e2e_roundtrip.c - backup and restore through the harvbk CLI with real
 * files in a file:// target: byte-identical restores of every kind of image,
 * sparseness, JSON of show/list, incremental backups (with and without changed
 * ranges), every codec, and delete + gc.
 */
#include "e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <utime.h>

#define CHUNK (256 * E2E_KiB)
#define CHUNK_S "262144"

/* ------------------------------------------------------------ helpers */

/* `vm add NS/VM --disk v=p ...` with up to 4 volumes (NULL-terminated pairs). */
static void vm_add(const e2e_world *w, const char *nsvm, const char *const *vols,
                   const char *const *paths)
{
    const char *args[16];
    char *specs[8] = { 0 };
    size_t k = 0, i = 0;
    args[k++] = "vm";
    args[k++] = "add";
    args[k++] = nsvm;
    for (; vols[i]; i++) {
        specs[i] = e2e_strf("%s=%s", vols[i], paths[i]);
        args[k++] = "--disk";
        args[k++] = specs[i];
    }
    args[k] = NULL;
    e2e_res r;
    e2e_runv(&r, w->state, 0, args);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    for (i = 0; specs[i]; i++)
        free(specs[i]);
}

static void vm_add1(const e2e_world *w, const char *nsvm, const char *vol, const char *path)
{
    const char *v[] = { vol, NULL }, *p[] = { path, NULL };
    vm_add(w, nsvm, v, p);
}

static void backup_ok(const e2e_world *w, const char *nsvm, const char *name)
{
    e2e_ok(w->state, "backup", "create", nsvm, "--name", name, NULL);
}

/* Restore NS/BACKUP as ns1/<newvm> into a fresh dir under work; returns the dir. */
static char *restore_ok(const e2e_world *w, const char *ns_backup, const char *newvm)
{
    char *dir = e2e_strf("%s/restore-%s", w->work, newvm);
    mkdir(dir, 0755);
    char *nv = e2e_strf("ns1/%s", newvm);
    e2e_ok(w->state, "restore", ns_backup, "--new-vm", nv, "--into", dir, NULL);
    free(nv);
    return dir;
}

static void assert_restored(const char *dir, const char *vol, const char *src)
{
    char *f = e2e_strf("%s/%s.raw", dir, vol);
    if (!e2e_exists(f))
        fail_msg("restore did not write %s", f);
    assert_int_equal(e2e_file_size(f), e2e_file_size(src));
    e2e_assert_same_file(src, f);
    free(f);
}

static cJSON *show_ready(const e2e_world *w, const char *ns_name)
{
    e2e_res r;
    cJSON *j = e2e_show_json(w->state, ns_name, &r);
    if (!j) {
        e2e_res_print(&r);
        fail_msg("backup show %s failed", ns_name);
    }
    e2e_res_free(&r);
    const char *st = e2e_json_str(j, "state");
    assert_non_null(st);
    assert_string_equal(st, "Ready");
    return j;
}

static void verify_ok(const e2e_world *w, const char *ns_name)
{
    e2e_ok(w->state, "backup", "verify", ns_name, NULL);
}

/* Push every file below dir 30 days into the past (so a gc grace period based
 * on object age cannot be the reason a chunk survives or goes). */
static void age_files(const char *dir)
{
    size_t n = 0;
    char **v = e2e_list_files(dir, &n);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= 30 * 24 * 3600;
    tv[1] = tv[0];
    for (size_t i = 0; i < n; i++) {
        char *p = e2e_path(dir, v[i]);
        utimes(p, tv);
        free(p);
    }
    e2e_strv_free(v);
}

static int world_setup(void **state)
{
    e2e_world *w = calloc(1, sizeof *w);
    e2e_world_init(w, "rt", "", CHUNK);
    *state = w;
    return 0;
}

static int world_teardown(void **state)
{
    e2e_world *w = *state;
    if (w) {
        e2e_world_free(w);
        free(w);
    }
    return 0;
}

/* ------------------------------------------------------------ tests */

/* Incompressible dense image; show/list JSON; restore byte-identical. */
static void test_dense_random(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 4 * E2E_MiB + 3 * CHUNK;
    char *img = e2e_path(w->work, "dense.img");
    e2e_make_random(img, size, 11);
    vm_add1(w, "ns1/dense", "root", img);
    backup_ok(w, "ns1/dense", "b1");

    cJSON *j = show_ready(w, "ns1/b1");
    static const char *keys[] = { "namespace", "name",  "vm", "state", "logical_bytes",
                                  "uploaded_bytes", "error" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!cJSON_GetObjectItemCaseSensitive(j, keys[i]))
            fail_msg("backup show --json lacks key \"%s\"", keys[i]);
    assert_string_equal(e2e_json_str(j, "namespace"), "ns1");
    assert_string_equal(e2e_json_str(j, "name"), "b1");
    assert_non_null(e2e_json_str(j, "vm"));
    assert_non_null(strstr(e2e_json_str(j, "vm"), "dense"));
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), size);
    /* incompressible: everything had to be stored */
    assert_true(e2e_json_u64(j, "uploaded_bytes") >= size);
    assert_true(e2e_json_u64(j, "uploaded_bytes") < size + size / 20);
    cJSON_Delete(j);

    cJSON *l = e2e_list_json(w->state);
    cJSON *it = e2e_list_find(l, "ns1", "b1");
    assert_non_null(it);
    assert_string_equal(e2e_json_str(it, "state"), "Ready");
    assert_int_equal(e2e_json_u64(it, "logical_bytes"), size);
    cJSON_Delete(l);

    /* the store holds one chunk object per distinct data chunk */
    assert_int_equal(e2e_count_files(w->target) > 0, 1);
    size_t nchunks = 0;
    e2e_strv_free(e2e_chunk_files(w->target, &nchunks));
    assert_int_equal(nchunks, size / CHUNK);

    char *dir = restore_ok(w, "ns1/b1", "dense-r");
    assert_restored(dir, "root", img);

    /* the restored VM is registered */
    e2e_res r;
    e2e_run(&r, w->state, "vm", "list", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, "dense-r"));
    e2e_res_free(&r);
    free(dir);
    free(img);
}

/* Compressible text: the default codec really compresses; restore identical. */
static void test_text_compressible(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 3 * E2E_MiB + 777;
    char *img = e2e_path(w->work, "text.img");
    e2e_make_text(img, size, 5);
    vm_add1(w, "ns1/text", "data", img);
    backup_ok(w, "ns1/text", "t1");
    cJSON *j = show_ready(w, "ns1/t1");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), size);
    assert_true(e2e_json_u64(j, "uploaded_bytes") > 0);
    assert_true(e2e_json_u64(j, "uploaded_bytes") < size / 2);
    cJSON_Delete(j);
    char *dir = restore_ok(w, "ns1/t1", "text-r");
    assert_restored(dir, "data", img);
    free(dir);
    free(img);
}

/* Sparse image: 64 MiB with ~1 MiB of data; the restore is sparse too. */
static void test_sparse(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 64 * E2E_MiB;
    char *img = e2e_path(w->work, "sparse.img");
    e2e_make_hole(img, size);
    e2e_write_random_at(img, 0, 100 * E2E_KiB, 1);
    e2e_write_random_at(img, 20 * E2E_MiB + 123, 700 * E2E_KiB, 2);
    e2e_write_random_at(img, size - 4096, 4096, 3);
    assert_true(e2e_allocated(img) < (int64_t)(2 * E2E_MiB));

    vm_add1(w, "ns1/sparse", "disk", img);
    backup_ok(w, "ns1/sparse", "s1");
    cJSON *j = show_ready(w, "ns1/s1");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), size);
    /* holes are never stored: 6 data chunks at most */
    assert_true(e2e_json_u64(j, "uploaded_bytes") < 8 * CHUNK);
    cJSON_Delete(j);

    char *dir = restore_ok(w, "ns1/s1", "sparse-r");
    assert_restored(dir, "disk", img);
    char *f = e2e_path(dir, "disk.raw");
    int64_t alloc = e2e_allocated(f);
    print_message("sparse: size %llu, restored allocation %lld\n", (unsigned long long)size,
                  (long long)alloc);
    assert_true(alloc >= 0);
    assert_true(alloc <= (int64_t)(8 * CHUNK)); /* far below 64 MiB */
    free(f);
    free(dir);
    free(img);
}

/* A dense image of written zeros: nothing stored, restored as a hole. */
static void test_all_zero(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 8 * E2E_MiB + 100;
    char *img = e2e_path(w->work, "zero.img");
    e2e_make_zeros(img, size);
    assert_true(e2e_allocated(img) >= (int64_t)(8 * E2E_MiB));
    vm_add1(w, "ns1/zero", "disk", img);
    backup_ok(w, "ns1/zero", "z1");
    cJSON *j = show_ready(w, "ns1/z1");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), size);
    assert_true(e2e_json_u64(j, "uploaded_bytes") < 64 * E2E_KiB); /* metadata only */
    cJSON_Delete(j);
    size_t nchunks = 99;
    e2e_strv_free(e2e_chunk_files(w->target, &nchunks));
    assert_int_equal(nchunks, 0);

    char *dir = restore_ok(w, "ns1/z1", "zero-r");
    assert_restored(dir, "disk", img);
    char *f = e2e_path(dir, "disk.raw");
    assert_true(e2e_allocated(f) < (int64_t)E2E_MiB);
    free(f);
    free(dir);
    free(img);
}

/* Sizes that are not a multiple of the chunk size, and smaller than one chunk. */
static void test_odd_sizes(void **state)
{
    e2e_world *w = *state;
    const char *vols[] = { "one", "small", "odd", "prime", NULL };
    const uint64_t sizes[] = { 1, 1000, 3 * CHUNK + 12345, 1048573 };
    char *paths[5] = { 0 };
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        paths[i] = e2e_strf("%s/odd-%s.img", w->work, vols[i]);
        e2e_make_random(paths[i], sizes[i], 100 + (uint64_t)i);
        total += sizes[i];
    }
    vm_add(w, "ns1/odd", vols, (const char *const *)paths);
    backup_ok(w, "ns1/odd", "o1");
    cJSON *j = show_ready(w, "ns1/o1");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), total);
    cJSON_Delete(j);
    verify_ok(w, "ns1/o1");
    char *dir = restore_ok(w, "ns1/o1", "odd-r");
    for (int i = 0; i < 4; i++)
        assert_restored(dir, vols[i], paths[i]);
    for (int i = 0; i < 4; i++)
        free(paths[i]);
    free(dir);
}

/* A VM with three different volumes. */
static void test_three_volumes(void **state)
{
    e2e_world *w = *state;
    const char *vols[] = { "root", "data", "scratch", NULL };
    char *paths[4] = { 0 };
    paths[0] = e2e_path(w->work, "v-root.img");
    paths[1] = e2e_path(w->work, "v-data.img");
    paths[2] = e2e_path(w->work, "v-scratch.img");
    e2e_make_random(paths[0], 2 * E2E_MiB + 5, 21);
    e2e_make_text(paths[1], 1 * E2E_MiB + 3 * CHUNK, 22);
    e2e_make_hole(paths[2], 16 * E2E_MiB);
    e2e_write_random_at(paths[2], 9 * E2E_MiB, 5000, 23);
    vm_add(w, "ns1/three", vols, (const char *const *)paths);
    backup_ok(w, "ns1/three", "m1");
    cJSON *j = show_ready(w, "ns1/m1");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"),
                     (uint64_t)(e2e_file_size(paths[0]) + e2e_file_size(paths[1]) +
                                e2e_file_size(paths[2])));
    cJSON_Delete(j);
    char *dir = restore_ok(w, "ns1/m1", "three-r");
    for (int i = 0; i < 3; i++)
        assert_restored(dir, vols[i], paths[i]);
    /* exactly the three volumes, nothing else */
    assert_int_equal(e2e_count_files(dir), 3);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
    free(dir);
}

/* Incremental: change one chunk-sized region; the second backup stores one
 * chunk (the SHA-256 of the new bytes) and both backups restore their own bytes. */
static void test_incremental(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 16 * CHUNK;
    char *img = e2e_path(w->work, "inc.img");
    char *orig = e2e_path(w->work, "inc.orig");
    e2e_make_random(img, size, 31);
    e2e_copy_file(img, orig);
    vm_add1(w, "ns1/inc", "disk", img);
    backup_ok(w, "ns1/inc", "i1");
    cJSON *j1 = show_ready(w, "ns1/i1");
    uint64_t up1 = e2e_json_u64(j1, "uploaded_bytes");
    cJSON_Delete(j1);
    assert_true(up1 >= size);

    size_t n0 = 0, n1 = 0, nnew = 0;
    char **before = e2e_chunk_files(w->target, &n0);
    assert_int_equal(n0, 16);

    e2e_write_random_at(img, 5 * CHUNK, CHUNK, 32);
    backup_ok(w, "ns1/inc", "i2");
    cJSON *j2 = show_ready(w, "ns1/i2");
    uint64_t up2 = e2e_json_u64(j2, "uploaded_bytes");
    cJSON_Delete(j2);
    print_message("incremental: uploaded %llu then %llu\n", (unsigned long long)up1,
                  (unsigned long long)up2);
    assert_true(up2 >= CHUNK);             /* the changed chunk (incompressible) */
    assert_true(up2 < CHUNK + 64 * E2E_KiB); /* and only it + metadata */
    assert_true(up2 * 8 < up1);

    char **after = e2e_chunk_files(w->target, &n1);
    char **added = e2e_strv_minus(after, before, &nnew);
    assert_int_equal(nnew, 1);
    assert_int_equal(n1, n0 + 1);
    char hex[65];
    e2e_sha256_file_range(img, 5 * CHUNK, CHUNK, hex);
    assert_string_equal(e2e_basename(added[0]), hex);
    /* fan-out layout chunks/<aa>/<bb>/<hex> */
    char *want = e2e_strf("chunks/%.2s/%.2s/%s", hex, hex + 2, hex);
    assert_string_equal(added[0], want);
    free(want);

    char *d1 = restore_ok(w, "ns1/i1", "inc-r1");
    char *d2 = restore_ok(w, "ns1/i2", "inc-r2");
    assert_restored(d1, "disk", orig);
    assert_restored(d2, "disk", img);
    verify_ok(w, "ns1/i2");

    e2e_strv_free(before);
    e2e_strv_free(after);
    e2e_strv_free(added);
    free(d1);
    free(d2);
    free(img);
    free(orig);
}

/* --changed-ranges: only the listed chunk is read; result restores identically. */
static void test_changed_ranges(void **state)
{
    e2e_world *w = *state;
    const uint64_t size = 12 * CHUNK + 4321;
    char *img = e2e_path(w->work, "cr.img");
    e2e_make_random(img, size, 41);
    vm_add1(w, "ns1/cr", "disk", img);
    backup_ok(w, "ns1/cr", "c1");

    size_t n0 = 0, n1 = 0, nnew = 0;
    char **before = e2e_chunk_files(w->target, &n0);
    /* a small change inside chunk 9, and one in the short last chunk */
    const uint64_t off = 9 * CHUNK + 1000, len = 5000;
    e2e_write_random_at(img, off, len, 42);
    e2e_write_random_at(img, 12 * CHUNK + 10, 100, 43);
    char *rf = e2e_path(w->work, "ranges.txt");
    char *txt = e2e_strf("disk %llu %llu\ndisk %llu %llu\n", (unsigned long long)off,
                         (unsigned long long)len, (unsigned long long)(12 * CHUNK + 10), 100ull);
    e2e_write_file(rf, txt, strlen(txt));
    e2e_ok(w->state, "backup", "create", "ns1/cr", "--name", "c2", "--changed-ranges", rf, NULL);
    cJSON *j = show_ready(w, "ns1/c2");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), size);
    assert_true(e2e_json_u64(j, "uploaded_bytes") < 2 * CHUNK + 64 * E2E_KiB);
    cJSON_Delete(j);

    char **after = e2e_chunk_files(w->target, &n1);
    char **added = e2e_strv_minus(after, before, &nnew);
    assert_int_equal(nnew, 2);
    char h9[65], hlast[65];
    e2e_sha256_file_range(img, 9 * CHUNK, CHUNK, h9);
    e2e_sha256_file_range(img, 12 * CHUNK, 4321, hlast);
    assert_true((strcmp(e2e_basename(added[0]), h9) == 0 &&
                 strcmp(e2e_basename(added[1]), hlast) == 0) ||
                (strcmp(e2e_basename(added[1]), h9) == 0 &&
                 strcmp(e2e_basename(added[0]), hlast) == 0));

    char *d = restore_ok(w, "ns1/c2", "cr-r2");
    assert_restored(d, "disk", img);
    verify_ok(w, "ns1/c2");

    /* an empty ranges file: nothing changed, nothing new stored, still identical */
    e2e_write_file(rf, "", 0);
    e2e_ok(w->state, "backup", "create", "ns1/cr", "--name", "c3", "--changed-ranges", rf, NULL);
    size_t n3 = 0;
    e2e_strv_free(e2e_chunk_files(w->target, &n3));
    assert_int_equal(n3, n1);
    char *d3 = restore_ok(w, "ns1/c3", "cr-r3");
    assert_restored(d3, "disk", img);

    e2e_strv_free(before);
    e2e_strv_free(after);
    e2e_strv_free(added);
    free(rf);
    free(txt);
    free(d);
    free(d3);
    free(img);
}

/* Every codec round-trips, each in its own target; compression is effective
 * for the compressing codecs and absent for "none". */
static void test_codecs(void **state)
{
    (void)state;
    static const char *codecs[] = { "zstd", "lz4", "gzip", "none" };
    for (size_t c = 0; c < 4; c++) {
        e2e_world w;
        char tag[32];
        snprintf(tag, sizeof tag, "codec-%s", codecs[c]);
        e2e_world_init(&w, tag, codecs[c], CHUNK);
        print_message("codec %s\n", codecs[c]);

        e2e_res r;
        e2e_run(&r, w.state, "target", "show", NULL);
        e2e_assert_ok(&r);
        assert_non_null(strstr(r.out, w.target));
        e2e_res_free(&r);

        const char *vols[] = { "text", "rand", NULL };
        char *paths[3] = { 0 };
        paths[0] = e2e_path(w.work, "text.img");
        paths[1] = e2e_path(w.work, "rand.img");
        const uint64_t tsize = 2 * E2E_MiB + 99, rsize = CHUNK + 17;
        e2e_make_text(paths[0], tsize, 7 + c);
        e2e_make_random(paths[1], rsize, 8 + c);
        vm_add(&w, "ns1/cvm", vols, (const char *const *)paths);
        backup_ok(&w, "ns1/cvm", "cb");
        cJSON *j = show_ready(&w, "ns1/cb");
        uint64_t up = e2e_json_u64(j, "uploaded_bytes");
        cJSON_Delete(j);
        print_message("codec %s: logical %llu uploaded %llu\n", codecs[c],
                      (unsigned long long)(tsize + rsize), (unsigned long long)up);
        if (strcmp(codecs[c], "none") == 0)
            assert_true(up >= tsize + rsize);
        else
            assert_true(up < rsize + tsize / 2 + 64 * E2E_KiB);

        /* chunk objects carry the "HBC1" header */
        size_t n = 0;
        char **ch = e2e_chunk_files(w.target, &n);
        assert_true(n >= 10);
        for (size_t i = 0; i < n; i++) {
            char *p = e2e_path(w.target, ch[i]);
            size_t len = 0;
            char *data = e2e_read_file(p, &len);
            assert_non_null(data);
            assert_true(len > 32);
            assert_memory_equal(data, "HBC1", 4);
            free(data);
            free(p);
        }
        e2e_strv_free(ch);

        verify_ok(&w, "ns1/cb");
        char *dir = restore_ok(&w, "ns1/cb", "cvm-r");
        assert_restored(dir, "text", paths[0]);
        assert_restored(dir, "rand", paths[1]);
        free(dir);
        free(paths[0]);
        free(paths[1]);
        e2e_world_free(&w);
    }
}

/* delete + gc removes exactly the chunks only the deleted backup referenced. */
static void test_delete_gc(void **state)
{
    e2e_world *w = *state;
    char *a = e2e_path(w->work, "gc-a.img");
    char *b = e2e_path(w->work, "gc-b.img");
    e2e_make_random(a, 8 * CHUNK, 51);
    /* b shares a's first 4 chunks, then 4 chunks of its own */
    e2e_copy_file(a, b);
    e2e_write_random_at(b, 4 * CHUNK, 4 * CHUNK, 52);
    vm_add1(w, "ns1/gca", "disk", a);
    vm_add1(w, "ns1/gcb", "disk", b);
    backup_ok(w, "ns1/gca", "ga");
    size_t n0 = 0, n1 = 0, n2 = 0;
    char **s0 = e2e_chunk_files(w->target, &n0);
    assert_int_equal(n0, 8);
    backup_ok(w, "ns1/gcb", "gb");
    char **s1 = e2e_chunk_files(w->target, &n1);
    assert_int_equal(n1, 12);

    e2e_ok(w->state, "backup", "delete", "ns1/gb", NULL);
    e2e_res r;
    e2e_run(&r, w->state, "backup", "show", "ns1/gb", NULL);
    e2e_assert_fails(&r);
    e2e_res_free(&r);
    cJSON *l = e2e_list_json(w->state);
    assert_null(e2e_list_find(l, "ns1", "gb"));
    assert_non_null(e2e_list_find(l, "ns1", "ga"));
    cJSON_Delete(l);

    age_files(w->target);
    e2e_ok(w->state, "gc", NULL);
    char **s2 = e2e_chunk_files(w->target, &n2);
    if (n2 != n0)
        print_error("after gc %zu chunk files, expected %zu\n", n2, n0);
    assert_int_equal(n2, n0);
    for (size_t i = 0; i < n0; i++)
        if (!e2e_strv_has(s2, s0[i]))
            fail_msg("gc removed %s, which backup ns1/ga references", s0[i]);

    verify_ok(w, "ns1/ga");
    char *dir = restore_ok(w, "ns1/ga", "gca-r");
    assert_restored(dir, "disk", a);
    /* a second gc has nothing to remove */
    e2e_ok(w->state, "gc", NULL);
    assert_int_equal(e2e_count_files(w->target) > 0, 1);
    size_t n3 = 0;
    e2e_strv_free(e2e_chunk_files(w->target, &n3));
    assert_int_equal(n3, n0);

    e2e_strv_free(s0);
    e2e_strv_free(s1);
    e2e_strv_free(s2);
    free(dir);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dense_random, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_text_compressible, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_sparse, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_all_zero, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_odd_sizes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_three_volumes, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_incremental, world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_changed_ranges, world_setup, world_teardown),
        cmocka_unit_test(test_codecs),
        cmocka_unit_test_setup_teardown(test_delete_gc, world_setup, world_teardown),
    };
    return cmocka_run_group_tests_name("e2e_roundtrip", tests, NULL, NULL);
}
