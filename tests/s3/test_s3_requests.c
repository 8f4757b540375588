/* tests/s3/test_s3_requests.c - the S3 requests the library makes, checked on
 * the real test server (every request's signature verified by the proxy) and
 * counted by the proxy (tests/s3/proxy.py /__control/stats):
 *   multipart upload: chunk objects above the (lowered) threshold go up in
 *   parts (CreateMultipartUpload/UploadPart/CompleteMultipartUpload, query
 *   strings signed), boto3 downloads them whole and identical, restore and
 *   verify pass;
 *   ListObjectsV2 pagination: 1100 objects with spaces, '+', '%' and UTF-8 in
 *   their keys are listed whole over several pages (as boto3 lists them),
 *   and DeleteObjects removes them in two batches (1000 + 100), no single
 *   DELETE;
 *   keep-alive: a backup's requests reuse a few connections;
 *   no HEAD per chunk: the backup lists chunks/ once (one page here) and
 *   keeps what it said, so an incremental backup PUTs only the changed
 *   chunks without a HEAD, an unchanged VM's incremental makes the same few
 *   requests for a 4 MiB and a 64 MiB disk, and the full backup of a new VM
 *   into a store holding another VM's chunks PUTs only its own new chunks,
 *   without a HEAD (the shared ones are neither HEADed nor uploaded again);
 *   parallel requests, configurable: with 200 ms added to every request a
 *   backup takes a fraction of the time its requests would take one after
 *   the other, with at most 8 + 2 new connections by default and more with
 *   PARALLEL 16;
 *   a server that keeps failing (503 SlowDown, dropped connections): 8
 *   attempts with exponential, jittered backoff, then one error naming the
 *   endpoint.
 * ctest-timeout: 900 */
#include "s3boto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

static int reset_faults(void **state)
{
    (void)state;
    s3t_control("", "{\"fail_rate\":0}");
    return 0;
}

static void backup_ok(harvbk_ctx *ctx, const harvbk_vm *vm, const char *name)
{
    char msg[1024];
    int rc = s3t_backup(ctx, vm, name, NULL, NULL, msg, sizeof msg);
    if (rc)
        fail_msg("backup %s: %s: %s", name, harvbk_error_name(rc), msg);
}

static void set_num(harvbk_target_config *cfg, harvbk_target_key key, unsigned long v)
{
    char num[32];
    snprintf(num, sizeof num, "%lu", v);
    assert_int_equal(harvbk_target_config_set(cfg, key, num), 0);
}

static char *with_slash(const char *prefix)
{
    char *s = NULL;
    if (asprintf(&s, "%s/", prefix) < 0)
        abort();
    return s;
}

static void print_stats(const char *what)
{
    fprintf(stderr,
            "%s: %llu requests (GET %llu, HEAD %llu, PUT %llu, POST %llu, DELETE %llu) on %llu "
            "connections, %llu rejected\n",
            what, (unsigned long long)s3t_stat("requests"),
            (unsigned long long)s3t_stat("by_method.GET"),
            (unsigned long long)s3t_stat("by_method.HEAD"),
            (unsigned long long)s3t_stat("by_method.PUT"),
            (unsigned long long)s3t_stat("by_method.POST"),
            (unsigned long long)s3t_stat("by_method.DELETE"),
            (unsigned long long)s3t_stat("connections"), (unsigned long long)s3t_stat("rejected"));
}

/* ---------------------------------------------------------------- multipart */

static void test_multipart_upload_on_the_real_server(void **state)
{
    (void)state;
    const s3env *env = s3t_env();
    s3t_mode m = { "multipart", false, false };
    char *dir = s3t_tmpdir(m.name);
    char *st = s3t_path(dir, "state"), *img = s3t_path(dir, "disk.img");
    char *rdir = s3t_path(dir, "r");
    char *prefix = s3t_prefix(m.name);
    char *slash = with_slash(prefix);
    char msg[1024];

    /* 3 incompressible 8 MiB chunks: objects of 8 MiB + 32 bytes, each
     * uploaded as a 5 MiB and a 3 MiB part */
    s3t_make_image(img, 24 * MiB, 3);
    s3t_write_random_at(img, 0, 24 * MiB, 41);
    setenv("HARVBK_S3_MULTIPART_THRESHOLD", "5242880", 1);
    setenv("HARVBK_S3_PART_SIZE", "5242880", 1);
    harvbk_ctx *ctx = s3t_ctx(st);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    set_num(cfg, HARVBK_TARGET_CHUNK_SIZE, 8 * MiB);
    s3t_set_target_ok(ctx, cfg);
    harvbk_vm *vm = s3t_vm("default", "big", img);
    s3t_control("/stats/reset", "{}");
    backup_ok(ctx, vm, "mp");
    print_stats("multipart backup");
    assert_int_equal(s3t_stat("rejected"), 0);
    /* per chunk: POST ?uploads, 2 x PUT ?partNumber&uploadId, POST ?uploadId */
    assert_int_equal(s3t_stat("by_method.POST"), 2 * 3);
    assert_true(s3t_stat("by_method.PUT") >= 2 * 3);

    size_t nchunks = 0, nok = 0;
    cJSON *lib = s3b_library_view(cfg, &nchunks, &nok);
    assert_int_equal(nchunks, 3);
    assert_int_equal(nok, 3);
    cJSON *boto = s3b_view(&m, slash, true, 0);
    assert_int_equal(s3b_assert_views_equal(boto, lib, prefix), 3 + 3);
    const cJSON *it;
    cJSON_ArrayForEach(it, lib)
    {
        if (!strncmp(it->string, "chunks/", 7))
            assert_int_equal(
                (uint64_t)cJSON_GetObjectItemCaseSensitive(it, "size")->valuedouble,
                8 * MiB + 32);
    }

    assert_int_equal(mkdir(rdir, 0755), 0);
    int rc = s3t_restore(ctx, "default", "mp", "big-copy", rdir, msg, sizeof msg);
    if (rc)
        fail_msg("restore: %s: %s", harvbk_error_name(rc), msg);
    char *rf = s3t_path(rdir, "disk0.raw");
    s3t_assert_same_file(rf, img);
    rc = s3t_verify(ctx, "default", "mp", msg, sizeof msg);
    if (rc)
        fail_msg("verify: %s: %s", harvbk_error_name(rc), msg);

    usleep(1100 * 1000);
    assert_int_equal(harvbk_backup_delete(ctx, "default", "mp"), 0);
    uint64_t removed = 0;
    assert_int_equal(s3t_gc(ctx, &removed, msg, sizeof msg), 0);
    assert_int_equal(removed, 3);
    harvbk_ctx_free(ctx);
    unsetenv("HARVBK_S3_MULTIPART_THRESHOLD");
    unsetenv("HARVBK_S3_PART_SIZE");
    assert_false(s3t_log_contains(env->secret));

    cJSON_Delete(lib);
    cJSON_Delete(boto);
    harvbk_target_config_free(cfg);
    harvbk_vm_free(vm);
    s3t_rmrf(dir);
    free(rf);
    free(rdir);
    free(slash);
    free(prefix);
    free(img);
    free(st);
    free(dir);
}

/* ---------------------------------------------------------------- listing */

#define NOBJ 1100

static int count_cb(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    size_t *n = ud;
    char want[64];
    snprintf(want, sizeof want, "pg/obj %04zu+%%\xc3\xa9", *n);
    if (strcmp(key, want) != 0 || size != strlen(want))
        return HARVBK_E_CORRUPT; /* listed out of order or with a wrong size */
    (*n)++;
    return 0;
}

static void test_listing_pages_and_batch_delete(void **state)
{
    (void)state;
    s3t_mode m = { "pages", false, false };
    char *prefix = s3t_prefix(m.name);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    static hb_logger lg = { s3t_log_cb, NULL, HARVBK_LOG_DEBUG };
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    if (hb_target_open(&t, &cfg->cfg, "s3req", &lg, &e) != 0)
        fail_msg("hb_target_open: %s", e.msg);

    char **keys = calloc(NOBJ, sizeof *keys);
    uint64_t t0 = s3t_now_ms();
    for (size_t i = 0; i < NOBJ; i++) {
        if (asprintf(&keys[i], "pg/obj %04zu+%%\xc3\xa9", i) < 0)
            abort();
        if (hb_target_put(t, keys[i], keys[i], strlen(keys[i]), &e) != 0)
            fail_msg("put %s: %s", keys[i], e.msg);
    }
    fprintf(stderr, "%d puts in %llu ms\n", NOBJ, (unsigned long long)(s3t_now_ms() - t0));

    hb_s3_stats s0, s1;
    assert_true(hb_target_s3_stats(t, &s0));
    size_t n = 0;
    if (hb_target_list(t, "pg/", count_cb, &n, &e) != 0)
        fail_msg("list: %s (after %zu keys)", e.msg, n);
    assert_int_equal(n, NOBJ);
    assert_true(hb_target_s3_stats(t, &s1));
    assert_int_equal(s1.list_pages - s0.list_pages, 2); /* max-keys 1000 */

    /* boto3 lists the same keys with the same sizes */
    char *pg = NULL;
    if (asprintf(&pg, "%s/pg/", prefix) < 0)
        abort();
    cJSON *boto = s3b_view(&m, pg, false, 0);
    assert_int_equal(cJSON_GetArraySize(boto), NOBJ);
    for (size_t i = 0; i < NOBJ; i++) {
        char *full = NULL;
        if (asprintf(&full, "%s/%s", prefix, keys[i]) < 0)
            abort();
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(boto, full);
        if (!o)
            fail_msg("boto3 does not list '%s'", full);
        assert_int_equal((uint64_t)cJSON_GetObjectItemCaseSensitive(o, "size")->valuedouble,
                         strlen(keys[i]));
        free(full);
    }
    cJSON_Delete(boto);

    /* DeleteObjects in batches of 1000: 2 POSTs, no DELETE */
    s3t_control("/stats/reset", "{}");
    if (hb_target_del_many(t, (const char *const *)keys, NOBJ, &e) != 0)
        fail_msg("del_many: %s", e.msg);
    print_stats("delete many");
    assert_int_equal(s3t_stat("by_method.POST"), 2);
    assert_int_equal(s3t_stat("by_method.DELETE"), 0);
    assert_int_equal(s3t_stat("rejected"), 0);
    boto = s3b_view(&m, pg, false, 0);
    assert_int_equal(cJSON_GetArraySize(boto), 0);
    cJSON_Delete(boto);
    n = 0;
    assert_int_equal(hb_target_list(t, "pg/", count_cb, &n, &e), 0);
    assert_int_equal(n, 0);

    hb_target_close(t);
    for (size_t i = 0; i < NOBJ; i++)
        free(keys[i]);
    free(keys);
    free(pg);
    harvbk_target_config_free(cfg);
    free(prefix);
}

/* ---------------------------------------------------------------- requests */

typedef struct world {
    char *dir, *img, *prefix;
    harvbk_ctx *ctx;
    harvbk_target_config *cfg;
    harvbk_vm *vm;
} world;

static void world_init(world *w, const char *tag, unsigned parallel, uint64_t size)
{
    w->dir = s3t_tmpdir(tag);
    char *st = s3t_path(w->dir, "state");
    w->img = s3t_path(w->dir, "disk.img");
    w->prefix = s3t_prefix(tag);
    s3t_make_image(w->img, size, 9);
    s3t_mode m = { tag, false, false };
    w->cfg = s3t_config(&m, w->prefix, true);
    set_num(w->cfg, HARVBK_TARGET_CHUNK_SIZE, 256 * 1024);
    if (parallel)
        set_num(w->cfg, HARVBK_TARGET_PARALLEL, parallel);
    w->ctx = s3t_ctx(st);
    s3t_set_target_ok(w->ctx, w->cfg);
    w->vm = s3t_vm("default", "app", w->img);
    free(st);
}

static void world_free(world *w)
{
    harvbk_vm_free(w->vm);
    harvbk_target_config_free(w->cfg);
    harvbk_ctx_free(w->ctx);
    s3t_rmrf(w->dir);
    free(w->dir);
    free(w->img);
    free(w->prefix);
}

static void test_keepalive_and_no_head_per_known_chunk(void **state)
{
    (void)state;
    world w;
    world_init(&w, "keepalive", 0, 12 * MiB);
    size_t distinct = s3t_distinct_chunks(w.img, 256 * 1024);

    s3t_control("/stats/reset", "{}");
    backup_ok(w.ctx, w.vm, "full");
    print_stats("full backup");
    uint64_t req = s3t_stat("requests"), conns = s3t_stat("connections");
    assert_int_equal(s3t_stat("rejected"), 0);
    assert_true(s3t_stat("by_method.PUT") >= distinct);
    /* keep-alive: at most one connection per worker (8) and a few more for
     * the store's own requests, each carrying many requests */
    assert_true(conns >= 1 && conns <= 12);
    assert_true(req >= 5 * conns);

    /* incremental, 2 chunks changed: the listing of chunks/ answers for all,
     * so only the changed chunks are uploaded, without a HEAD */
    s3t_write_random_at(w.img, 3 * 256 * 1024 + 5, 100, 301);
    s3t_write_random_at(w.img, 33 * 256 * 1024, 4096, 302);
    s3t_control("/stats/reset", "{}");
    backup_ok(w.ctx, w.vm, "incr");
    print_stats("incremental backup, 2 chunks changed");
    uint64_t heads = s3t_stat("by_method.HEAD"), puts = s3t_stat("by_method.PUT");
    assert_true(heads <= 2); /* none for the chunks; at most 2 for metadata */
    /* 2 chunks, index, manifest, leases (written and refreshed) */
    assert_true(puts >= 2 + 2 && puts <= 2 + 2 + 4);
    assert_true(s3t_stat("connections") <= 2); /* the full backup's are reused */
    world_free(&w);
}

typedef struct req_count {
    uint64_t all, get, head, put, post, del;
} req_count;

static req_count counted(void)
{
    req_count r = { s3t_stat("requests"), s3t_stat("by_method.GET"), s3t_stat("by_method.HEAD"),
                    s3t_stat("by_method.PUT"), s3t_stat("by_method.POST"),
                    s3t_stat("by_method.DELETE") };
    assert_int_equal(s3t_stat("rejected"), 0);
    return r;
}

/* A full backup, then an incremental one of the unchanged VM (the whole disk
 * read, no changed ranges): its requests, and no chunk uploaded. */
static req_count unchanged_incremental(const char *tag, uint64_t size)
{
    world w;
    world_init(&w, tag, 0, size);
    backup_ok(w.ctx, w.vm, "full");
    s3t_control("/stats/reset", "{}");
    backup_ok(w.ctx, w.vm, "incr");
    char what[96];
    snprintf(what, sizeof what, "incremental backup of the unchanged %llu MiB VM",
             (unsigned long long)(size / MiB));
    print_stats(what);
    req_count r = counted();
    /* the index and the manifest only (no chunk: 256 KiB each) */
    assert_true(s3t_backup_uploaded(w.ctx, "default", "incr") < 64 * 1024);
    world_free(&w);
    return r;
}

static void test_unchanged_incremental_costs_constant_requests(void **state)
{
    (void)state;
    /* 16 and 256 chunks of 256 KiB */
    req_count small = unchanged_incremental("unchanged-4m", 4 * MiB);
    req_count big = unchanged_incremental("unchanged-64m", 64 * MiB);
    assert_int_equal(big.all, small.all);
    assert_int_equal(big.get, small.get);
    assert_int_equal(big.head, small.head);
    assert_int_equal(big.put, small.put);
    assert_int_equal(big.del, small.del);
    assert_true(small.head <= 2); /* metadata only, no HEAD per chunk */
    assert_true(small.all <= 20);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fclose(b), 0);
}

static void test_new_vm_full_backup_puts_only_its_new_chunks(void **state)
{
    (void)state;
    const size_t cs = 256 * 1024;
    world w;
    world_init(&w, "newvm", 0, 8 * MiB);
    backup_ok(w.ctx, w.vm, "a1");
    /* the non-chunk requests of a backup that stores no chunk */
    s3t_control("/stats/reset", "{}");
    backup_ok(w.ctx, w.vm, "a2");
    req_count base = counted();

    /* another VM: app's disk with 3 chunks replaced by new random bytes; its
     * other chunks are in the store already (app's) */
    char *img2 = s3t_path(w.dir, "other.img");
    copy_file(w.img, img2);
    const unsigned replaced[3] = { 0, 4, 23 };
    for (int k = 0; k < 3; k++)
        s3t_write_random_at(img2, replaced[k] * cs, cs, 7000 + (uint64_t)k);
    harvbk_vm *vm2 = s3t_vm("default", "other", img2);
    s3t_control("/stats/reset", "{}");
    backup_ok(w.ctx, vm2, "b1");
    print_stats("full backup of a new VM sharing all but 3 chunks");
    req_count r = counted();
    /* no HEAD per chunk; the 3 new chunks PUT, the shared ones not again */
    assert_int_equal(r.head, base.head);
    assert_int_equal(r.put, base.put + 3);
    assert_true(r.all <= base.all + 3); /* no previous index to read */
    /* random bytes are stored as they are: 32-byte header + 256 KiB each;
     * then the index and the manifest */
    uint64_t up = s3t_backup_uploaded(w.ctx, "default", "b1");
    assert_in_range(up, 3 * (cs + 32), 3 * (cs + 32) + 8192);

    /* the store: app's chunks and the 3 new ones, each once, all valid */
    size_t nchunks = 0, nok = 0;
    cJSON *lib = s3b_library_view(w.cfg, &nchunks, &nok);
    cJSON_Delete(lib);
    assert_int_equal(nchunks, s3t_distinct_chunks(w.img, cs) + 3);
    assert_int_equal(nok, nchunks);
    /* and the new VM restores byte for byte */
    char *rdir = s3t_path(w.dir, "r"), msg[1024];
    assert_int_equal(mkdir(rdir, 0755), 0);
    int rc = s3t_restore(w.ctx, "default", "b1", "other-copy", rdir, msg, sizeof msg);
    if (rc)
        fail_msg("restore: %s: %s", harvbk_error_name(rc), msg);
    char *rf = s3t_path(rdir, "disk0.raw");
    s3t_assert_same_file(rf, img2);
    free(rf);
    free(rdir);
    harvbk_vm_free(vm2);
    free(img2);
    world_free(&w);
}

static void test_parallel_requests_hide_latency(void **state)
{
    (void)state;
    const unsigned delay_ms = 200;
    world w;
    world_init(&w, "parallel-default", 0, 32 * MiB);
    /* every request 200 ms slower: the round trip of a distant server */
    char faults[160];
    snprintf(faults, sizeof faults,
             "{\"fail_rate\":1,\"kinds\":[\"delay\"],\"delay_ms\":%u}", delay_ms);
    s3t_control("", faults);
    s3t_control("/stats/reset", "{}");
    uint64_t t0 = s3t_now_ms();
    backup_ok(w.ctx, w.vm, "b");
    uint64_t took = s3t_now_ms() - t0;
    s3t_control("", "{\"fail_rate\":0}");
    uint64_t req = s3t_stat("requests"), conns = s3t_stat("connections");
    char what[64];
    snprintf(what, sizeof what, "PARALLEL 8, %llu ms, at most %llu at once",
             (unsigned long long)took, (unsigned long long)s3t_stat("max_held"));
    print_stats(what);
    assert_int_equal(s3t_stat("injected"), req);
    /* one after the other they would take req * delay */
    assert_true(req > 100);
    assert_true(took < req * delay_ms / 3 + s3t_slack_ms());
    /* in flight at once: the 8 workers, the backup's own thread and the
     * lease's; new connections (those of harvbk_ctx_set_target are reused):
     * at most one per worker plus the store's own */
    assert_true(s3t_stat("max_held") <= 8 + 2);
    assert_in_range(conns, 2, 8 + 2);
    world_free(&w);

    /* PARALLEL 16: 16 chunk uploads in flight. How many a backup keeps in
     * flight under a fixed delay depends on how fast the CPUs make chunks
     * (under valgrind, on a busy machine, a handful): the proxy holds every
     * chunk upload until 16 wait at once (or 3 s), so only a library that
     * never has 16 in flight is slow, and the count is exact. */
    world_init(&w, "parallel-16", 16, 32 * MiB);
    s3t_control("", "{\"fail_rate\":1,\"kinds\":[\"delay\"],\"delay_ms\":3000,"
                    "\"gather\":16,\"only_methods\":[\"PUT\"],\"only_paths\":[\"/chunks/\"]}");
    s3t_control("/stats/reset", "{}");
    t0 = s3t_now_ms();
    backup_ok(w.ctx, w.vm, "b");
    took = s3t_now_ms() - t0;
    s3t_control("", "{\"fail_rate\":0}");
    uint64_t injected = s3t_stat("injected");
    conns = s3t_stat("connections");
    snprintf(what, sizeof what, "PARALLEL 16, %llu ms, at most %llu at once",
             (unsigned long long)took, (unsigned long long)s3t_stat("max_held"));
    print_stats(what);
    assert_true(injected > 64);
    assert_int_equal(s3t_stat("max_held"), 16);
    /* every group of 16 went on at once: at most the last waited 3 s */
    assert_true(took < 3000 + 2000 + s3t_slack_ms());
    assert_true(conns > 8 + 2);
    world_free(&w);
}

/* ---------------------------------------------------------------- retries */

/* A server that keeps failing: S3_MAX_ATTEMPTS (8) attempts with backoff of
 * 50 ms doubling to 2 s, jittered within the upper half of each step, then a
 * clear error naming the endpoint. */
static void persistent_fault(const char *kind, const char *expect)
{
    const s3env *env = s3t_env();
    s3t_mode m = { "retries", false, false };
    char *prefix = s3t_prefix(m.name);
    harvbk_target_config *cfg = s3t_config(&m, prefix, true);
    set_num(cfg, HARVBK_TARGET_TIMEOUT_MS, 2000);
    static hb_logger lg = { s3t_log_cb, NULL, HARVBK_LOG_DEBUG };
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    if (hb_target_open(&t, &cfg->cfg, "s3req", &lg, &e) != 0)
        fail_msg("hb_target_open: %s", e.msg);
    char faults[128];
    snprintf(faults, sizeof faults, "{\"fail_rate\":1,\"kinds\":[\"%s\"]}", kind);
    s3t_control("", faults);
    s3t_control("/stats/reset", "{}");
    uint64_t t0 = s3t_now_ms();
    int rc = hb_target_put(t, "k", "data", 4, &e);
    uint64_t took = s3t_now_ms() - t0;
    s3t_control("", "{\"fail_rate\":0}");
    fprintf(stderr, "%s: %d after %llu ms: %s\n", kind, rc, (unsigned long long)took, e.msg);
    assert_int_equal(rc, HARVBK_E_TARGET);
    assert_int_equal(s3t_stat("injected"), 8);
    assert_int_equal(s3t_stat("forwarded"), 0);
    assert_non_null(strstr(e.msg, env->endpoint));
    assert_non_null(strstr(e.msg, "8 attempts"));
    assert_non_null(strstr(e.msg, expect));
    /* waits: 25..50 + 50..100 + ... + 1000..2000 ms */
    assert_in_range(took, 2575, 5150 + s3t_slack_ms());
    /* the server is back: the same target works at once */
    hb_err_clear(&e);
    assert_int_equal(hb_target_put(t, "k", "data", 4, &e), 0);
    assert_int_equal(hb_target_del(t, "k", &e), 0);
    hb_target_close(t);
    harvbk_target_config_free(cfg);
    free(prefix);
}

static void test_persistent_errors_bounded_retries(void **state)
{
    (void)state;
    persistent_fault("503", "SlowDown");
    persistent_fault("drop", "PUT failed");
}

static void test_no_secret_in_server_logs(void **state)
{
    (void)state;
    s3b_assert_server_logs_clean();
    assert_false(s3t_log_contains(s3t_env()->secret));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_multipart_upload_on_the_real_server, reset_faults),
        cmocka_unit_test_teardown(test_listing_pages_and_batch_delete, reset_faults),
        cmocka_unit_test_teardown(test_keepalive_and_no_head_per_known_chunk, reset_faults),
        cmocka_unit_test_teardown(test_unchanged_incremental_costs_constant_requests,
                                  reset_faults),
        cmocka_unit_test_teardown(test_new_vm_full_backup_puts_only_its_new_chunks,
                                  reset_faults),
        cmocka_unit_test_teardown(test_parallel_requests_hide_latency, reset_faults),
        cmocka_unit_test_teardown(test_persistent_errors_bounded_retries, reset_faults),
        cmocka_unit_test(test_no_secret_in_server_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
