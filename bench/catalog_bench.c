/*
 * bench/catalog_bench.c - listing N backups on an S3 target three ways
 * (bench/run-catalog-s3.sh runs it against s3rver; results in RESULTS.md):
 *   old       what harvbk_backup_list_get did before the synced catalog: list
 *             the manifests, then GET every one of them (sequentially);
 *   sync      harvbk_target_sync into an empty catalog (a new cluster):
 *             one listing plus one GET per manifest (parallel);
 *   resync    harvbk_target_sync when nothing changed: the listing only;
 *   catalog   harvbk_backup_list_get from the synced catalog: no request.
 * Request counts come from the S3 backend's own counters (hb_target_s3_stats).
 * The N backups are made from one real backup: its index and a renamed copy
 * of its manifest are written under N names (2 PUTs each).
 *
 *   catalog_bench --url s3://BUCKET/PREFIX --endpoint URL --region R
 *                 --access-key-id ID --secret-access-key-file F
 *                 [--count 1000] [--repeat 3] [--dir SCRATCH]
 */
#include "ops/ops.h"

#include <harvbk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "catalog_bench: %s: %s\n", what, msg);
    exit(1);
}

static const char *opt(int argc, char **argv, const char *name, const char *dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return dflt;
}

static char *g_url, *g_ep, *g_region, *g_akid, *g_secret;

static harvbk_ctx *ctx_on(const char *dir)
{
    harvbk_ctx *ctx = NULL;
    if (harvbk_ctx_open(&ctx, dir, NULL) != 0)
        die("ctx_open", dir);
    harvbk_target_config *cfg = NULL;
    harvbk_target_config_new(&cfg);
    harvbk_target_config_set(cfg, HARVBK_TARGET_URL, g_url);
    harvbk_target_config_set(cfg, HARVBK_TARGET_ENDPOINT, g_ep);
    harvbk_target_config_set(cfg, HARVBK_TARGET_REGION, g_region);
    harvbk_target_config_set(cfg, HARVBK_TARGET_ACCESS_KEY_ID, g_akid);
    harvbk_target_config_set(cfg, HARVBK_TARGET_SECRET_ACCESS_KEY, g_secret);
    harvbk_target_config_set(cfg, HARVBK_TARGET_STORE_SECRET, "1");
    harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536");
    if (harvbk_ctx_set_target(ctx, cfg) != 0)
        die("set_target", harvbk_ctx_errmsg(ctx));
    harvbk_target_config_free(cfg);
    return ctx;
}

/* The S3 counters of the context's open store. */
static uint64_t requests(harvbk_ctx *ctx)
{
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    if (hb_ctx_store_acquire(ctx, &ref, &e) != 0)
        die("store", e.msg);
    hb_s3_stats s;
    memset(&s, 0, sizeof s);
    if (!hb_target_s3_stats(ref->st->t, &s))
        die("stats", "not an S3 target");
    hb_ctx_store_release(ctx, ref);
    return s.requests;
}

typedef struct old_list {
    hb_store *st;
    size_t n;
} old_list;

static int old_one(const char *ns, const char *name, void *ud)
{
    old_list *ol = ud;
    hb_manifest m;
    hb_err e;
    hb_err_clear(&e);
    if (hb_store_manifest_read(ol->st, HB_KIND_BACKUPS, ns, name, &m, &e) == 0) {
        hb_manifest_clear(&m);
        ol->n++;
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    g_url = (char *)opt(argc, argv, "--url", NULL);
    g_ep = (char *)opt(argc, argv, "--endpoint", NULL);
    g_region = (char *)opt(argc, argv, "--region", "us-east-1");
    g_akid = (char *)opt(argc, argv, "--access-key-id", "S3RVER");
    const char *sf = opt(argc, argv, "--secret-access-key-file", NULL);
    int count = atoi(opt(argc, argv, "--count", "1000"));
    int repeat = atoi(opt(argc, argv, "--repeat", "3"));
    const char *scratch = opt(argc, argv, "--dir", "/tmp");
    if (!g_url || !g_ep || !sf || count < 1 || repeat < 1)
        die("usage", "--url --endpoint --secret-access-key-file are required");
    char sec[256] = "";
    FILE *f = fopen(sf, "r");
    if (!f || !fgets(sec, sizeof sec, f))
        die("secret", sf);
    fclose(f);
    sec[strcspn(sec, "\r\n")] = '\0';
    g_secret = sec;

    char root[512];
    snprintf(root, sizeof root, "%s/catalog-bench.XXXXXX", scratch);
    if (!mkdtemp(root))
        die("mkdtemp", root);
    char path[600];

    /* one real backup, then N copies of its index + renamed manifest */
    snprintf(path, sizeof path, "%s/disk.raw", root);
    f = fopen(path, "wb");
    for (int i = 0; i < 65536; i++)
        fputc(i * 7 + 3, f);
    fclose(f);
    snprintf(path + 600 - 600, sizeof path, "%s/writer", root);
    harvbk_ctx *w = ctx_on(path);
    harvbk_vm *vm = NULL;
    snprintf(path, sizeof path, "%s/disk.raw", root);
    harvbk_vm_new(&vm, "default", "vm1");
    harvbk_vm_add_volume_file(vm, "disk0", path);
    harvbk_op *op = NULL;
    if (harvbk_backup_create(&op, w, vm, "seed", NULL) != 0 || harvbk_op_wait(op) != 0)
        die("backup", harvbk_ctx_errmsg(w));
    harvbk_op_free(op);
    harvbk_vm_free(vm);
    hb_err e;
    hb_err_clear(&e);
    hb_store_ref *ref = NULL;
    if (hb_ctx_store_acquire(w, &ref, &e) != 0)
        die("store", e.msg);
    hb_manifest m;
    if (hb_store_manifest_read(ref->st, HB_KIND_BACKUPS, "default", "seed", &m, &e) != 0)
        die("manifest", e.msg);
    hb_buf ix = HB_BUF_INIT;
    char *ikey = hb_key_index(HB_KIND_BACKUPS, "default", "seed", "disk0");
    if (hb_target_get(ref->st->t, ikey, &ix, &e) != 0)
        die("index", e.msg);
    hb_free(ikey);
    double t0 = now_s();
    for (int i = 1; i < count; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%05d", i);
        char *k = hb_key_index(HB_KIND_BACKUPS, "default", name, "disk0");
        if (hb_target_put(ref->st->t, k, ix.data, ix.len, &e) != 0)
            die("put index", e.msg);
        hb_free(k);
        hb_free(m.name);
        m.name = hb_strdup(name);
        if (hb_store_manifest_write(ref->st, HB_KIND_BACKUPS, &m, &e) != 0)
            die("put manifest", e.msg);
    }
    fprintf(stderr, "made %d backups in %.1f s\n", count, now_s() - t0);
    hb_manifest_clear(&m);
    hb_buf_free(&ix);
    hb_ctx_store_release(w, ref);

    double t_old[16], t_sync[16], t_resync[16], t_cat[16];
    uint64_t r_old = 0, r_sync = 0, r_resync = 0, r_cat = 0;
    size_t n_old = 0, n_cat = 0;
    if (repeat > 16)
        repeat = 16;
    for (int rep = 0; rep < repeat; rep++) {
        /* old: list + GET every manifest (the reader of before the catalog) */
        uint64_t q0 = requests(w);
        hb_store_ref *r = NULL;
        hb_ctx_store_acquire(w, &r, &e);
        old_list ol = { r->st, 0 };
        t0 = now_s();
        if (hb_store_entry_list(r->st, HB_KIND_BACKUPS, old_one, &ol, &e) != 0)
            die("old list", e.msg);
        t_old[rep] = now_s() - t0;
        hb_ctx_store_release(w, r);
        r_old = requests(w) - q0;
        n_old = ol.n;

        /* sync into an empty catalog: a new cluster */
        snprintf(path, sizeof path, "%s/reader%d", root, rep);
        harvbk_ctx *rd = ctx_on(path); /* set_target syncs; drop that catalog */
        snprintf(path, sizeof path, "%s/reader%d/catalog/backups.json", root, rep);
        unlink(path);
        q0 = requests(rd);
        t0 = now_s();
        if (harvbk_target_sync(rd, NULL) != 0)
            die("sync", harvbk_ctx_errmsg(rd));
        t_sync[rep] = now_s() - t0;
        r_sync = requests(rd) - q0;

        q0 = requests(rd);
        t0 = now_s();
        if (harvbk_target_sync(rd, NULL) != 0)
            die("resync", harvbk_ctx_errmsg(rd));
        t_resync[rep] = now_s() - t0;
        r_resync = requests(rd) - q0;

        q0 = requests(rd);
        harvbk_backup_list *l = NULL;
        t0 = now_s();
        if (harvbk_backup_list_get(&l, rd) != 0)
            die("list", harvbk_ctx_errmsg(rd));
        t_cat[rep] = now_s() - t0;
        n_cat = harvbk_backup_list_count(l);
        harvbk_backup_list_free(l);
        r_cat = requests(rd) - q0;
        harvbk_ctx_free(rd);
        fprintf(stderr, "repeat %d: old %.3f s, sync %.3f s, resync %.3f s, catalog %.4f s\n",
                rep + 1, t_old[rep], t_sync[rep], t_resync[rep], t_cat[rep]);
    }
    qsort(t_old, (size_t)repeat, sizeof(double), cmp_d);
    qsort(t_sync, (size_t)repeat, sizeof(double), cmp_d);
    qsort(t_resync, (size_t)repeat, sizeof(double), cmp_d);
    qsort(t_cat, (size_t)repeat, sizeof(double), cmp_d);
    int mid = repeat / 2;
    printf("backups: %d (old way saw %zu, catalog lists %zu)\n", count, n_old, n_cat);
    printf("%-36s %10s %10s\n", "way (median of repeats)", "seconds", "requests");
    printf("%-36s %10.3f %10llu\n", "old: list + GET every manifest", t_old[mid],
           (unsigned long long)r_old);
    printf("%-36s %10.3f %10llu\n", "sync into an empty catalog", t_sync[mid],
           (unsigned long long)r_sync);
    printf("%-36s %10.3f %10llu\n", "sync, nothing changed", t_resync[mid],
           (unsigned long long)r_resync);
    printf("%-36s %10.4f %10llu\n", "backup list from the catalog", t_cat[mid],
           (unsigned long long)r_cat);
    harvbk_ctx_free(w);
    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
    return 0;
}
