/*
 * tests/unit/sync_scenario.h - the synced-catalog scenarios (docs/CATALOG.md),
 * written once and run against every backend: tests/unit/test_ops_sync.c
 * (file://), tests/s3/test_s3_sync.c (the real S3 test server) and
 * tests/nfs/test_nfs_sync.c (the real NFS server). Header-only (static
 * functions) so that each test directory links it with its own helpers.
 *
 * Two state directories on one target behave like two clusters: cluster A
 * writes backups, cluster B syncs, lists and restores them. The target's
 * objects are inspected and damaged through the library's own target layer.
 */
#ifndef HARVBK_SYNC_SCENARIO_H
#define HARVBK_SYNC_SCENARIO_H

#include <harvbk.h>

#include "core/hb.h"
#include "target/config.h"
#include "target/target.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct sync_world {
    const char *root;  /* scratch directory (exists) */
    /* a new configuration of the shared target (caller frees) */
    harvbk_target_config *(*cfg)(void *ud, bool read_only);
    /* make the target unreachable (down) or reachable again; NULL: none */
    void (*outage)(void *ud, bool down);
    void *ud;
} sync_world;

/* ---- captured log lines of the scenario's contexts ---- */
static char sc_log_buf[16384];
static size_t sc_log_len;
static void sc_log_cb(int level, const char *message, void *payload)
{
    (void)level;
    (void)payload;
    size_t n = strlen(message);
    if (sc_log_len + n + 2 < sizeof sc_log_buf) {
        memcpy(sc_log_buf + sc_log_len, message, n);
        sc_log_len += n;
        sc_log_buf[sc_log_len++] = '\n';
        sc_log_buf[sc_log_len] = '\0';
    }
}

static char *sc_path(const sync_world *w, const char *leaf)
{
    char *p = malloc(strlen(w->root) + strlen(leaf) + 2);
    sprintf(p, "%s/%s", w->root, leaf);
    return p;
}

static harvbk_ctx *sc_ctx(const sync_world *w, const char *leaf, bool read_only)
{
    char *sd = sc_path(w, leaf);
    harvbk_ctx *ctx = NULL;
    harvbk_ctx_options o = HARVBK_CTX_OPTIONS_INIT;
    o.log_cb = sc_log_cb;
    o.log_level = HARVBK_LOG_DEBUG;
    assert_int_equal(harvbk_ctx_open(&ctx, sd, &o), 0);
    harvbk_target_config *cfg = w->cfg(w->ud, read_only);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    if (rc)
        fprintf(stderr, "set_target: %s\n", harvbk_ctx_errmsg(ctx));
    assert_int_equal(rc, 0);
    harvbk_target_config_free(cfg);
    free(sd);
    return ctx;
}

/* A disk of `size` bytes: random data with a run of zeros (seeded). */
static char *sc_disk(const sync_world *w, const char *leaf, size_t size, unsigned seed)
{
    char *p = sc_path(w, leaf);
    unsigned char *b = malloc(size);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    memset(b + size / 3, 0, size / 5);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, size, f), size);
    fclose(f);
    free(b);
    return p;
}

static int sc_backup(harvbk_ctx *ctx, const char *disk, const char *name)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", disk), 0);
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, ctx, vm, name, NULL);
    if (rc == 0) {
        rc = harvbk_op_wait(op);
        harvbk_op_free(op);
    }
    harvbk_vm_free(vm);
    return rc;
}

static bool sc_files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            eq = false;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return eq;
}

/* Restore backup default/name as new VM default/newvm into root/newvm and
 * compare its disk with `disk`. */
static void sc_restore_equal(const sync_world *w, harvbk_ctx *ctx, const char *name,
                             const char *newvm, const char *disk)
{
    char *dir = sc_path(w, newvm);
    mkdir(dir, 0755);
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = newvm;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, ctx, "default", name, &ro);
    if (rc == 0) {
        rc = harvbk_op_wait(op);
        if (rc) {
            char msg[512];
            harvbk_op_errmsg_copy(op, msg, sizeof msg);
            fprintf(stderr, "restore: %s\n", msg);
        }
        harvbk_op_free(op);
    } else {
        fprintf(stderr, "restore: %s\n", harvbk_ctx_errmsg(ctx));
    }
    assert_int_equal(rc, 0);
    char *got = malloc(strlen(dir) + 16);
    sprintf(got, "%s/disk0.raw", dir);
    assert_true(sc_files_equal(disk, got));
    free(got);
    free(dir);
}

/* 1 when backup default/name is listed by ctx; its flags/state through out. */
static bool sc_listed(harvbk_ctx *ctx, const char *name, unsigned *flags, int *state,
                      int64_t *synced_at)
{
    harvbk_backup_list *l = NULL;
    int rc = harvbk_backup_list_get(&l, ctx);
    if (rc)
        fprintf(stderr, "list: %s\n", harvbk_ctx_errmsg(ctx));
    assert_int_equal(rc, 0);
    bool found = false;
    if (synced_at)
        *synced_at = harvbk_backup_list_synced_at(l);
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++) {
        const harvbk_backup_info *in = harvbk_backup_list_at(l, i);
        if (strcmp(harvbk_backup_info_namespace(in), "default") == 0 &&
            strcmp(harvbk_backup_info_name(in), name) == 0) {
            found = true;
            if (flags)
                *flags = harvbk_backup_info_catalog_flags(in);
            if (state)
                *state = harvbk_backup_info_state(in);
        }
    }
    harvbk_backup_list_free(l);
    return found;
}

static uint64_t sc_sync(harvbk_ctx *ctx, int what)
{
    harvbk_sync_result *r = NULL;
    int rc = harvbk_target_sync(ctx, &r);
    if (rc)
        fprintf(stderr, "sync: %s\n", harvbk_ctx_errmsg(ctx));
    assert_int_equal(rc, 0);
    assert_true(harvbk_sync_result_synced_at(r) > 0);
    uint64_t v = what ? harvbk_sync_result_count(r, what) : 0;
    harvbk_sync_result_free(r);
    return v;
}

/* ---- the target's objects, through the library's target layer ---- */
static hb_logger sc_quiet = { NULL, NULL, 0 };

static hb_target *sc_target(const sync_world *w)
{
    harvbk_target_config *cfg = w->cfg(w->ud, false);
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_open(&t, &cfg->cfg, "sync-test", &sc_quiet, &e);
    if (rc)
        fprintf(stderr, "open target: %s\n", e.msg);
    assert_int_equal(rc, 0);
    harvbk_target_config_free(cfg);
    return t;
}

static int sc_keys_cb(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    hb_buf *b = ud;
    char line[64];
    snprintf(line, sizeof line, " %llu\n", (unsigned long long)size);
    hb_buf_append_str(b, key);
    hb_buf_append_str(b, line);
    return 0;
}

/* Every key and size of the target, one per line (caller frees). Sorted by
 * the backend's order, which is stable for an unchanged target. */
static char *sc_keys(const sync_world *w)
{
    hb_target *t = sc_target(w);
    hb_buf b = HB_BUF_INIT;
    hb_buf_append_str(&b, "");
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_target_list(t, "", sc_keys_cb, &b, &e), 0);
    hb_target_close(t);
    char *s = strdup((char *)b.data);
    hb_buf_free(&b);
    return s;
}

static bool sc_has(const sync_world *w, const char *key)
{
    hb_target *t = sc_target(w);
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_target_head(t, key, NULL, &e);
    hb_target_close(t);
    return rc == 0;
}

static void sc_put(const sync_world *w, const char *key, const char *text)
{
    hb_target *t = sc_target(w);
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_target_put(t, key, text, strlen(text), &e), 0);
    hb_target_close(t);
}

static void sc_del(const sync_world *w, const char *key)
{
    hb_target *t = sc_target(w);
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_target_del(t, key, &e), 0);
    hb_target_close(t);
}

/* ---- scenario 1: two clusters, sync, cross-restore, forget/delete, gone,
 * index check, hostile keys, damaged catalog ---- */
__attribute__((unused)) static void sync_scenario_two_clusters(const sync_world *w)
{
    harvbk_ctx *a = sc_ctx(w, "cluster-a", false);
    harvbk_ctx *b = sc_ctx(w, "cluster-b", false);
    char *d1 = sc_disk(w, "d1.raw", 3 * 1024 * 1024 + 4321, 1);
    char *d2 = sc_disk(w, "d2.raw", 2 * 1024 * 1024 + 77, 2);

    /* A's backups reach B only through a sync */
    assert_int_equal(sc_backup(a, d1, "b1"), 0);
    assert_true(sc_listed(a, "b1", NULL, NULL, NULL)); /* A's own: in its catalog at once */
    assert_false(sc_listed(b, "b1", NULL, NULL, NULL));
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, b, "default", "b1"), HARVBK_E_NOTFOUND);
    assert_int_equal(sc_sync(b, HARVBK_SYNC_IMPORTED), 1);
    int state = 0;
    assert_true(sc_listed(b, "b1", NULL, &state, NULL));
    assert_int_equal(state, HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_get(&in, b, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_volume_count(in), 1);
    assert_true(harvbk_backup_info_synced_at(in) > 0);
    harvbk_backup_info_free(in);
    /* a second sync reads no manifest (nothing changed) */
    assert_int_equal(sc_sync(b, HARVBK_SYNC_MANIFEST_READS), 0);
    /* B restores A's backup as a new VM: bytes equal */
    sc_restore_equal(w, b, "b1", "from-a", d1);

    /* forget: only B's catalog; the target keeps it; a sync does not bring it back */
    assert_int_equal(harvbk_backup_forget(b, "default", "b1"), 0);
    assert_false(sc_listed(b, "b1", NULL, NULL, NULL));
    assert_true(sc_has(w, "backups/default/b1/manifest.json"));
    assert_true(sc_has(w, "backups/default/b1/disk0.idx"));
    assert_int_equal(sc_sync(b, HARVBK_SYNC_SKIPPED), 1);
    assert_false(sc_listed(b, "b1", NULL, NULL, NULL));
    assert_true(sc_listed(a, "b1", NULL, NULL, NULL));
    assert_int_equal(harvbk_backup_forget(b, "default", "b1"), HARVBK_E_NOTFOUND);

    /* delete by A removes the objects; B sees it gone, then forgets it */
    assert_int_equal(sc_backup(a, d2, "b2"), 0);
    assert_int_equal(sc_sync(b, HARVBK_SYNC_IMPORTED), 1);
    assert_int_equal(harvbk_backup_delete(a, "default", "b2"), 0);
    assert_false(sc_has(w, "backups/default/b2/manifest.json"));
    assert_false(sc_has(w, "backups/default/b2/disk0.idx"));
    assert_false(sc_listed(a, "b2", NULL, NULL, NULL));
    assert_true(sc_listed(b, "b2", NULL, NULL, NULL)); /* not synced yet */
    assert_int_equal(sc_sync(b, HARVBK_SYNC_GONE), 1);
    unsigned flags = 0;
    assert_true(sc_listed(b, "b2", &flags, &state, NULL));
    assert_true(flags & HARVBK_BACKUP_FLAG_GONE);
    assert_int_equal(state, HARVBK_STATE_ERROR);
    assert_int_equal(sc_sync(b, HARVBK_SYNC_FORGOTTEN), 1);
    assert_false(sc_listed(b, "b2", NULL, NULL, NULL));

    /* a Ready backup whose index vanished is flagged by the sync */
    assert_int_equal(sc_backup(a, d2, "b3"), 0);
    sc_del(w, "backups/default/b3/disk0.idx");
    assert_int_equal(sc_sync(b, HARVBK_SYNC_INDEX_MISSING), 1);
    assert_true(sc_listed(b, "b3", &flags, &state, NULL));
    assert_true(flags & HARVBK_BACKUP_FLAG_INDEX_MISSING);
    assert_int_equal(state, HARVBK_STATE_ERROR);
    assert_int_equal(harvbk_backup_get(&in, b, "default", "b3"), 0);
    assert_non_null(strstr(harvbk_backup_info_error(in), "index"));
    harvbk_backup_info_free(in);

    /* hostile names in the listing are ignored (never imported, never a crash) */
    sc_put(w, "backups/UPPER/x/manifest.json", "{}");
    sc_put(w, "backups/default/a_b/manifest.json", "{}");
    sc_put(w, "backups/default/..x/manifest.json", "{}");
    sc_put(w, "backups/stray.json", "{}");
    sc_log_len = 0;
    sc_log_buf[0] = '\0';
    assert_int_equal(sc_sync(b, HARVBK_SYNC_IMPORTED), 0);
    assert_non_null(strstr(sc_log_buf, "ignored"));
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, b), 0);
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++) {
        const harvbk_backup_info *x = harvbk_backup_list_at(l, i);
        assert_true(harvbk_name_is_valid(harvbk_backup_info_namespace(x)));
        assert_true(harvbk_name_is_valid(harvbk_backup_info_name(x)));
    }
    harvbk_backup_list_free(l);
    sc_del(w, "backups/UPPER/x/manifest.json");
    sc_del(w, "backups/default/a_b/manifest.json");
    sc_del(w, "backups/default/..x/manifest.json");
    sc_del(w, "backups/stray.json");

    /* a damaged catalog file is rebuilt by the next sync, with a clear log line */
    char *catf = sc_path(w, "cluster-b/catalog/backups.json");
    static const char *const damage[] = { "{\"format\":1,\"backups\":[{\"namesp", "", "\x01\x02",
                                          "{\"format\":1,\"synced_at_ms\":1,\"backups\":[{}]}",
                                          "{\"format\":99,\"synced_at_ms\":1,\"backups\":[]}" };
    for (size_t k = 0; k < sizeof damage / sizeof damage[0]; k++) {
        FILE *f = fopen(catf, "wb");
        assert_non_null(f);
        fwrite(damage[k], 1, strlen(damage[k]), f);
        fclose(f);
        sc_log_len = 0;
        sc_log_buf[0] = '\0';
        assert_true(sc_listed(b, "b3", NULL, NULL, NULL)); /* list syncs a catalog it cannot use */
        assert_non_null(strstr(sc_log_buf, "rebuild"));
        assert_true(sc_listed(b, "b3", NULL, NULL, NULL));
    }
    free(catf);

    harvbk_ctx_free(a);
    harvbk_ctx_free(b);
    free(d1);
    free(d2);
}

/* ---- scenario 2: a read-only target refuses every write, writes nothing,
 * and still lists, syncs, verifies and restores ---- */
__attribute__((unused)) static void sync_scenario_read_only(const sync_world *w)
{
    harvbk_ctx *a = sc_ctx(w, "ro-writer", false);
    char *d = sc_disk(w, "ro.raw", 1024 * 1024 + 5, 3);
    assert_int_equal(sc_backup(a, d, "keep"), 0);
    harvbk_ctx_free(a);

    char *before = sc_keys(w);
    harvbk_ctx *r = sc_ctx(w, "ro-reader", true); /* the DR cluster */
    assert_true(sc_listed(r, "keep", NULL, NULL, NULL)); /* synced when the target was set */
    harvbk_op *op = NULL;
    assert_int_equal(sc_backup(r, d, "nope"), HARVBK_E_READ_ONLY);
    assert_int_equal(harvbk_backup_delete(r, "default", "keep"), HARVBK_E_READ_ONLY);
    int deferred = -1;
    assert_int_equal(harvbk_backup_delete_ex(r, "default", "keep", &deferred),
                     HARVBK_E_READ_ONLY);
    assert_int_equal(deferred, 0);
    assert_int_equal(harvbk_gc(&op, r, NULL), HARVBK_E_READ_ONLY);
    assert_null(op);
    sc_sync(r, 0);
    assert_int_equal(harvbk_backup_verify(&op, r, "default", "keep", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    sc_restore_equal(w, r, "keep", "dr-copy", d);
    /* forget works (it is the context's own catalog) */
    assert_int_equal(harvbk_backup_forget(r, "default", "keep"), 0);
    harvbk_ctx_free(r);
    char *after = sc_keys(w);
    assert_string_equal(before, after); /* not one object written or removed */

    /* the target layer itself refuses writes of a read-only configuration */
    harvbk_target_config *cfg = w->cfg(w->ud, true);
    hb_target *t = NULL;
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_target_open(&t, &cfg->cfg, "ro-test", &sc_quiet, &e), 0);
    assert_int_equal(hb_target_put(t, "x/y", "z", 1, &e), HARVBK_E_READ_ONLY);
    assert_int_equal(hb_target_put_deferred(t, "x/y", "z", 1, &e), HARVBK_E_READ_ONLY);
    assert_int_equal(hb_target_del(t, "backups/default/keep/manifest.json", &e),
                     HARVBK_E_READ_ONLY);
    const char *keys[] = { "x/y" };
    assert_int_equal(hb_target_del_many(t, keys, 1, &e), HARVBK_E_READ_ONLY);
    assert_int_equal(hb_target_cleanup(t, "someone", 0, &e), HARVBK_E_READ_ONLY);
    hb_target_close(t);
    harvbk_target_config_free(cfg);
    char *after2 = sc_keys(w);
    assert_string_equal(before, after2);
    free(before);
    free(after);
    free(after2);
    free(d);
}

/* ---- scenario 3: the target is unreachable: list from the catalog with its
 * age; a delete is deferred and finished by the next successful sync ---- */
__attribute__((unused)) static void sync_scenario_outage(const sync_world *w)
{
    harvbk_ctx *a = sc_ctx(w, "out-a", false);
    char *d = sc_disk(w, "out.raw", 1024 * 1024 + 9, 4);
    assert_int_equal(sc_backup(a, d, "o1"), 0);
    assert_int_equal(sc_backup(a, d, "o2"), 0);
    sc_sync(a, 0);
    harvbk_ctx_free(a);

    w->outage(w->ud, true);
    sleep(1); /* the catalog is at least a second old */
    /* a new process: nothing of the target is open */
    char *sd = sc_path(w, "out-a");
    harvbk_ctx_options o = HARVBK_CTX_OPTIONS_INIT;
    o.log_cb = sc_log_cb;
    assert_int_equal(harvbk_ctx_open(&a, sd, &o), 0);
    free(sd);
    harvbk_sync_result *res = NULL;
    assert_int_equal(harvbk_target_sync(a, &res), HARVBK_E_TARGET);
    assert_null(res);
    int64_t synced_at = 0;
    assert_true(sc_listed(a, "o1", NULL, NULL, &synced_at));
    assert_true(sc_listed(a, "o2", NULL, NULL, NULL));
    assert_true(synced_at > 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(now - synced_at >= 1000);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, a, "default", "o1"), 0);
    harvbk_backup_info_free(in);

    /* delete while unreachable: deferred, visible as pending */
    assert_int_equal(harvbk_backup_delete(a, "default", "o1"), HARVBK_E_TARGET);
    assert_non_null(strstr(harvbk_ctx_errmsg(a), "pending"));
    int deferred = 0;
    assert_int_equal(harvbk_backup_delete_ex(a, "default", "o2", &deferred), 0);
    assert_int_equal(deferred, 1);
    unsigned flags = 0;
    assert_true(sc_listed(a, "o1", &flags, NULL, NULL));
    assert_true(flags & HARVBK_BACKUP_FLAG_DELETE_PENDING);
    assert_true(sc_listed(a, "o2", &flags, NULL, NULL));
    assert_true(flags & HARVBK_BACKUP_FLAG_DELETE_PENDING);

    w->outage(w->ud, false);
    assert_true(sc_has(w, "backups/default/o1/manifest.json"));
    assert_int_equal(sc_sync(a, HARVBK_SYNC_DELETED), 2);
    assert_false(sc_has(w, "backups/default/o1/manifest.json"));
    assert_false(sc_has(w, "backups/default/o2/manifest.json"));
    assert_false(sc_listed(a, "o1", NULL, NULL, NULL));
    assert_false(sc_listed(a, "o2", NULL, NULL, NULL));
    harvbk_ctx_free(a);
    free(d);
}

#endif
