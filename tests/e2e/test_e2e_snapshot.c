/*
 * test_e2e_snapshot.c - VM snapshots through the harvbk CLI with real files:
 * byte-identical round trips of a multi-volume VM, the same JSON keys as
 * backups, chunk sharing between snapshots measured on a 1 %-changed disk,
 * verify / delete (space given back) / gc, a corrupted chunk found by verify,
 * and the snapshot store's location.
 */
#include "e2e_snap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK (64 * E2E_KiB)

typedef struct fx {
    e2e_world w;
    char *store;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    e2e_world_init(&f->w, "snap", "", CHUNK);
    e2e_ok(f->w.state, "snapshot", "store", "--chunk-size", "64K", NULL);
    f->store = e2e_path(f->w.state, "snapshot-store");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    e2e_kill_children();
    e2e_world_free(&f->w);
    free(f->store);
    free(f);
    return 0;
}

static uint64_t dir_bytes(const char *dir)
{
    size_t n = 0;
    char **v = e2e_list_files(dir, &n);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = e2e_path(dir, v[i]);
        sum += (uint64_t)e2e_file_size(p);
        free(p);
    }
    e2e_strv_free(v);
    return sum;
}

static void key_set_equal(cJSON *a, cJSON *b)
{
    cJSON *it;
    size_t na = 0, nb = 0;
    cJSON_ArrayForEach(it, a)
    {
        na++;
        if (!cJSON_GetObjectItemCaseSensitive(b, it->string))
            fail_msg("key %s of one JSON object is missing in the other", it->string);
    }
    cJSON_ArrayForEach(it, b)
    nb++;
    assert_int_equal(na, nb);
}

static void test_round_trip_multi_volume(void **state)
{
    fx *f = *state;
    char *d0 = e2e_path(f->w.work, "rt-d0.img"), *d1 = e2e_path(f->w.work, "rt-d1.img");
    char *d2 = e2e_path(f->w.work, "rt-d2.img");
    e2e_make_random(d0, 5 * E2E_MiB + 777, 1);
    e2e_make_text(d1, 3 * E2E_MiB, 2);
    e2e_make_hole(d2, 8 * E2E_MiB);
    e2e_write_random_at(d2, 3 * E2E_MiB, 100 * E2E_KiB, 3); /* sparse with some data */
    char *meta = e2e_path(f->w.work, "rt-meta.json");
    const char *doc = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"rt\",\"namespace\":"
                      "\"ns1\"},\"spec\":{\"template\":{\"spec\":{\"domain\":{\"devices\":{"
                      "\"interfaces\":[{\"name\":\"nic\",\"macAddress\":\"52:54:00:00:00:01\"}]"
                      "}}}}}}";
    e2e_write_file(meta, doc, strlen(doc));
    char *a0 = e2e_strf("root=%s", d0), *a1 = e2e_strf("data=%s", d1), *a2 = e2e_strf("log=%s", d2);
    e2e_ok(f->w.state, "vm", "add", "ns1/rt", "--disk", a0, "--disk", a1, "--disk", a2,
           "--metadata", meta, NULL);

    e2e_res r;
    e2e_run(&r, f->w.state, "snapshot", "create", "ns1/rt", "--name", "rt-1", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "snapshot ns1/rt-1 Ready"));
    e2e_res_free(&r);
    /* the same JSON keys as a backup of the same VM */
    e2e_ok(f->w.state, "backup", "create", "ns1/rt", "--name", "rt-b", NULL);
    cJSON *sj = snap_show_json(f->w.state, "ns1/rt-1");
    cJSON *bj = e2e_show_json(f->w.state, "ns1/rt-b", NULL);
    assert_non_null(sj);
    assert_non_null(bj);
    key_set_equal(sj, bj);
    assert_string_equal(e2e_json_str(sj, "state"), "Ready");
    assert_string_equal(e2e_json_str(sj, "vm"), "ns1/rt");
    assert_int_equal(e2e_json_u64(sj, "logical_bytes"), 5 * E2E_MiB + 777 + 11 * E2E_MiB);
    cJSON *vols = cJSON_GetObjectItemCaseSensitive(sj, "volumes");
    assert_int_equal(cJSON_GetArraySize(vols), 3);
    cJSON_Delete(sj);
    cJSON_Delete(bj);
    /* snapshots and backups are listed apart */
    const char *la[] = { "snapshot", "list", "--json", NULL };
    cJSON *l = snap_cli_json(f->w.state, la);
    assert_int_equal(cJSON_GetArraySize(l), 1);
    assert_non_null(e2e_list_find(l, "ns1", "rt-1"));
    cJSON_Delete(l);
    l = e2e_list_json(f->w.state);
    assert_null(e2e_list_find(l, "ns1", "rt-1"));
    cJSON_Delete(l);

    /* restore as a new VM: byte for byte, holes stay holes, metadata rewritten */
    char *dir = e2e_path(f->w.work, "rt-out");
    e2e_run(&r, f->w.state, "restore", "--snapshot", "ns1/rt-1", "--new-vm", "ns1/rt-copy",
            "--into", dir, NULL);
    e2e_assert_ok(&r);
    e2e_res_free(&r);
    char *o0 = e2e_path(dir, "root.raw"), *o1 = e2e_path(dir, "data.raw"),
         *o2 = e2e_path(dir, "log.raw");
    e2e_assert_same_file(d0, o0);
    e2e_assert_same_file(d1, o1);
    e2e_assert_same_file(d2, o2);
    assert_true(e2e_allocated(o2) < (int64_t)(2 * E2E_MiB));
    e2e_run(&r, f->w.state, "vm", "show", "ns1/rt-copy", "--metadata", NULL);
    e2e_assert_ok(&r);
    cJSON *m = cJSON_Parse(r.out);
    assert_non_null(m);
    cJSON *md = cJSON_GetObjectItemCaseSensitive(m, "metadata");
    assert_string_equal(e2e_json_str(md, "name"), "rt-copy");
    assert_null(strstr(r.out, "52:54:00:00:00:01")); /* MAC cleared */
    cJSON_Delete(m);
    e2e_res_free(&r);
    e2e_ok(f->w.state, "snapshot", "verify", "ns1/rt-1", NULL);

    free(o0);
    free(o1);
    free(o2);
    free(dir);
    free(a0);
    free(a1);
    free(a2);
    free(meta);
    free(d0);
    free(d1);
    free(d2);
}

/* 64 MiB of random data, 64 KiB chunks: a second snapshot after 1 % of the
 * disk changed stores about 1 % new. */
static void test_chunk_sharing_measured(void **state)
{
    fx *f = *state;
    const uint64_t size = 64 * E2E_MiB;
    char *disk = e2e_path(f->w.work, "share.img"), *orig = e2e_path(f->w.work, "share.orig");
    e2e_make_random(disk, size, 11);
    e2e_copy_file(disk, orig);
    char *a = e2e_strf("disk=%s", disk);
    e2e_ok(f->w.state, "vm", "add", "ns2/share", "--disk", a, NULL);
    char *chunks = e2e_path(f->store, "chunks");
    uint64_t before = dir_bytes(chunks);
    e2e_ok(f->w.state, "snapshot", "create", "ns2/share", "--name", "sh-1", NULL);
    uint64_t after1 = dir_bytes(chunks);
    cJSON *j = snap_show_json(f->w.state, "ns2/sh-1");
    uint64_t up1 = e2e_json_u64(j, "uploaded_bytes");
    cJSON_Delete(j);
    assert_true(after1 - before >= size); /* random: stored as it is (+ headers) */
    assert_true(up1 >= size);

    /* 1 % of the disk: 10 chunk-sized regions spread over it */
    for (int i = 0; i < 10; i++)
        e2e_write_random_at(disk, (uint64_t)(i * 97 + 13) * CHUNK % size / CHUNK * CHUNK, CHUNK,
                            100 + (uint64_t)i);
    e2e_ok(f->w.state, "snapshot", "create", "ns2/share", "--name", "sh-2", NULL);
    uint64_t after2 = dir_bytes(chunks);
    j = snap_show_json(f->w.state, "ns2/sh-2");
    uint64_t up2 = e2e_json_u64(j, "uploaded_bytes");
    cJSON_Delete(j);
    uint64_t grown = after2 - after1;
    print_message("  snapshot 1 stored %llu bytes; after 1%% changed, snapshot 2 stored %llu "
                  "bytes (%.2f%%), the store grew by %llu bytes\n",
                  (unsigned long long)up1, (unsigned long long)up2, 100.0 * (double)up2 / (double)size,
                  (unsigned long long)grown);
    assert_true(grown >= 10 * CHUNK);
    assert_true(grown <= 10 * (CHUNK + 64)); /* exactly the 10 new chunks */
    assert_true(up2 <= size / 100 + 64 * E2E_KiB); /* ~1 %: chunks + indexes + manifest */
    /* usage: the distinct chunks of both snapshots, the recount agrees */
    uint64_t usage = quota_usage_cli(f->w.state, "ns2", "share", NULL);
    assert_int_equal(usage, recount_usage(f->store, "ns2", "share", NULL));
    assert_int_equal(usage, after2 - before);

    /* both restore to what they were */
    char *r1 = e2e_path(f->w.work, "share-r1"), *r2 = e2e_path(f->w.work, "share-r2");
    e2e_ok(f->w.state, "restore", "--snapshot", "ns2/sh-1", "--new-vm", "ns2/share-r1",
           "--into", r1, NULL);
    e2e_ok(f->w.state, "restore", "--snapshot", "ns2/sh-2", "--new-vm", "ns2/share-r2",
           "--into", r2, NULL);
    char *o1 = e2e_path(r1, "disk.raw"), *o2 = e2e_path(r2, "disk.raw");
    e2e_assert_same_file(orig, o1);
    e2e_assert_same_file(disk, o2);
    e2e_rmrf_force(r1);
    e2e_rmrf_force(r2);

    /* deleting sh-1 gives back exactly its 10 own chunks */
    e2e_ok(f->w.state, "snapshot", "delete", "ns2/sh-1", NULL);
    uint64_t after_del = dir_bytes(chunks);
    assert_true(after2 - after_del >= 10 * CHUNK && after2 - after_del <= 10 * (CHUNK + 64));
    assert_int_equal(quota_usage_cli(f->w.state, "ns2", "share", NULL),
                     recount_usage(f->store, "ns2", "share", NULL));
    e2e_ok(f->w.state, "snapshot", "verify", "ns2/sh-2", NULL);
    e2e_ok(f->w.state, "snapshot", "delete", "ns2/sh-2", NULL);
    assert_int_equal(dir_bytes(chunks), before);
    assert_int_equal(quota_usage_cli(f->w.state, "ns2", "share", NULL), 0);

    free(o1);
    free(o2);
    free(r1);
    free(r2);
    free(chunks);
    free(a);
    free(disk);
    free(orig);
}

static void test_verify_finds_corruption_and_gc(void **state)
{
    fx *f = *state;
    char *disk = e2e_path(f->w.work, "cor.img");
    e2e_make_random(disk, 2 * E2E_MiB, 21);
    char *a = e2e_strf("disk=%s", disk);
    e2e_ok(f->w.state, "vm", "add", "ns3/cor", "--disk", a, NULL);
    e2e_ok(f->w.state, "snapshot", "create", "ns3/cor", "--name", "c1", NULL);
    size_t n0 = 0;
    char **before = e2e_chunk_files(f->store, &n0);
    /* damage one of its chunks */
    idset s = { 0 };
    char *ip = e2e_strf("%s/snapshots/ns3/c1/disk.idx", f->store);
    recount_index(&s, ip);
    assert_true(s.n > 0);
    char hex[65];
    for (int k = 0; k < 32; k++)
        sprintf(hex + 2 * k, "%02x", s.v[0][k]);
    char *cp = e2e_strf("%s/chunks/%.2s/%.2s/%s", f->store, hex, hex + 2, hex);
    e2e_flip_byte(cp, 100);
    e2e_res r;
    e2e_run(&r, f->w.state, "snapshot", "verify", "ns3/c1", NULL);
    e2e_assert_exit(&r, 3);
    assert_true(e2e_icontains(r.err, hex));
    e2e_res_free(&r);
    /* a restore refuses to produce wrong bytes */
    char *dir = e2e_path(f->w.work, "cor-out");
    e2e_run(&r, f->w.state, "restore", "--snapshot", "ns3/c1", "--new-vm", "ns3/cor2", "--into",
            dir, NULL);
    e2e_assert_fails(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_CHUNK"));
    e2e_res_free(&r);
    assert_int_equal(e2e_count_files(dir), 0);
    /* an unknown snapshot */
    e2e_run(&r, f->w.state, "snapshot", "show", "ns3/nope", NULL);
    e2e_assert_fails_1line(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_NOTFOUND"));
    e2e_res_free(&r);
    e2e_run(&r, f->w.state, "snapshot", "create", "ns3/cor", "--name", "Bad_Name", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    /* gc keeps what snapshots reference; delete frees the rest */
    e2e_run(&r, f->w.state, "snapshot", "gc", NULL);
    e2e_assert_ok(&r);
    assert_true(e2e_icontains(r.out, "removed 0 chunks"));
    e2e_res_free(&r);
    size_t n1 = 0;
    char **after = e2e_chunk_files(f->store, &n1);
    assert_int_equal(n0, n1);
    e2e_ok(f->w.state, "snapshot", "delete", "ns3/c1", NULL);
    e2e_run(&r, f->w.state, "snapshot", "delete", "ns3/c1", NULL);
    e2e_assert_fails_1line(&r);
    e2e_res_free(&r);
    e2e_strv_free(before);
    e2e_strv_free(after);
    free(s.v);
    free(ip);
    free(cp);
    free(dir);
    free(a);
    free(disk);
}

static void test_store_location(void **state)
{
    fx *f = *state;
    e2e_res r;
    e2e_run(&r, f->w.state, "snapshot", "store", NULL);
    e2e_assert_ok(&r);
    assert_non_null(strstr(r.out, f->store));
    e2e_res_free(&r);
    /* another state directory with its store elsewhere */
    char *st2 = e2e_path(f->w.root, "state-b"), *elsewhere = e2e_path(f->w.root, "snapstore-b");
    e2e_ok(st2, "snapshot", "store", "--dir", elsewhere, "--codec", "lz4", NULL);
    char *disk = e2e_path(f->w.work, "loc.img");
    e2e_make_text(disk, 1 * E2E_MiB, 5);
    char *a = e2e_strf("disk=%s", disk);
    e2e_ok(st2, "vm", "add", "ns1/loc", "--disk", a, NULL);
    e2e_ok(st2, "snapshot", "create", "ns1/loc", "--name", "l1", NULL);
    char *m = e2e_strf("%s/snapshots/ns1/l1/manifest.json", elsewhere);
    assert_true(e2e_exists(m));
    /* moving a store that holds snapshots is refused */
    char *third = e2e_path(f->w.root, "snapstore-c");
    e2e_run(&r, st2, "snapshot", "store", "--dir", third, NULL);
    e2e_assert_fails(&r);
    assert_true(e2e_icontains(r.err, "HARVBK_E_STATE"));
    e2e_res_free(&r);
    e2e_run(&r, st2, "snapshot", "store", "--chunk-size", "1000", NULL);
    e2e_assert_exit(&r, 2);
    e2e_res_free(&r);
    free(third);
    free(m);
    free(a);
    free(disk);
    free(st2);
    free(elsewhere);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_multi_volume),
        cmocka_unit_test(test_chunk_sharing_measured),
        cmocka_unit_test(test_verify_finds_corruption_and_gc),
        cmocka_unit_test(test_store_location),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
