/* tests/unit/test_ops_snapshot.c - snapshots in the local snapshot store,
 * restores from snapshots and backups (new VM and replace), the metadata
 * rewrite hook, replace-restore crash recovery from its journal, and quotas:
 * every refusal with its dedicated error code, byte-identical round trips,
 * one freeze around every volume of a multi-volume VM. */
#include "testutil.h"

#include <harvbk.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

static void write_disk(const char *p, size_t size, uint64_t seed)
{
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, seed);
    memset(buf + size / 3, 0, size / 4); /* a run of zero chunks */
    assert_int_equal(tu_write_file(p, buf, size), 0);
    free(buf);
}

static const char META[] =
    "{\"apiVersion\":\"kubevirt.io/v1\",\"kind\":\"VirtualMachine\","
    "\"metadata\":{\"name\":\"vm1\",\"namespace\":\"default\",\"uid\":\"u-1\","
    "\"resourceVersion\":\"77\",\"labels\":{\"harvesterhci.io/vmName\":\"vm1\",\"app\":\"x\"}},"
    "\"spec\":{\"dataVolumeTemplates\":[{\"metadata\":{\"name\":\"vm1-d1-dv\"}}],"
    "\"template\":{\"metadata\":{\"labels\":{\"kubevirt.io/vm\":\"vm1\"}},"
    "\"spec\":{\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"default\","
    "\"macAddress\":\"52:54:00:12:34:56\"}]}},"
    "\"volumes\":[{\"name\":\"d0\",\"persistentVolumeClaim\":{\"claimName\":\"vm1-d0-pvc\"}},"
    "{\"name\":\"d1\",\"dataVolume\":{\"name\":\"vm1-d1-dv\"}},"
    "{\"name\":\"cloudinit\",\"cloudInitNoCloud\":{\"userData\":\"#cloud-config\"}}]}}},"
    "\"status\":{\"ready\":true}}";

/* A context (with a file:// target and a 64 KiB-chunk snapshot store)
 * holding VM default/vm1: volumes d0 and d1 (files), KubeVirt metadata. */
typedef struct env {
    char *root, *state, *d0, *d1, *store;
    size_t s0, s1;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
} env;

static void env_open(env *v, const char *tag)
{
    memset(v, 0, sizeof *v);
    v->root = tu_mkdtemp(tag);
    v->state = tu_path2(v->root, "state");
    v->d0 = tu_path2(v->root, "d0.raw");
    v->d1 = tu_path2(v->root, "d1.raw");
    v->store = tu_path2(v->state, "snapshot-store");
    v->s0 = 20 * CHUNK + 333;
    v->s1 = 6 * CHUNK;
    write_disk(v->d0, v->s0, 1);
    write_disk(v->d1, v->s1, 2);
    assert_int_equal(harvbk_ctx_open(&v->ctx, v->state, NULL), 0);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *tdir = tu_path2(v->root, "target");
    char *url = malloc(strlen(tdir) + 8);
    sprintf(url, "file://%s", tdir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    assert_int_equal(harvbk_ctx_set_target(v->ctx, cfg), 0);
    harvbk_target_config_free(cfg);
    free(url);
    free(tdir);
    harvbk_snapshot_store_options so = HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    so.chunk_size = CHUNK;
    assert_int_equal(harvbk_snapshot_store_set(v->ctx, &so), 0);
    assert_int_equal(harvbk_vm_new(&v->vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v->vm, "d0", v->d0), 0);
    assert_int_equal(harvbk_vm_add_volume_file(v->vm, "d1", v->d1), 0);
    assert_int_equal(harvbk_vm_set_metadata(v->vm, META, strlen(META)), 0);
    assert_int_equal(harvbk_vm_add_image(v->vm, "default/image-1"), 0);
    assert_int_equal(harvbk_vm_register(v->ctx, v->vm), 0);
}

static void env_close(env *v)
{
    harvbk_vm_free(v->vm);
    harvbk_ctx_free(v->ctx);
    tu_rmrf(v->root);
    free(v->root);
    free(v->state);
    free(v->d0);
    free(v->d1);
    free(v->store);
}

static int snap(env *v, const char *name, char *msg, size_t size)
{
    harvbk_op *op = NULL;
    int rc = harvbk_snapshot_create(&op, v->ctx, v->vm, name, NULL);
    if (rc) {
        if (msg)
            harvbk_ctx_errmsg_copy(v->ctx, msg, size);
        return rc;
    }
    assert_string_equal(harvbk_op_kind(op), "snapshot");
    rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    return rc;
}

static int backup(env *v, const char *name)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, v->ctx, v->vm, name, NULL);
    if (rc)
        return rc;
    rc = harvbk_op_wait(op);
    harvbk_op_free(op);
    return rc;
}

/* Restore (snapshot or backup) and wait; the start error or the op's. */
static int restore_ex(env *v, bool from_snapshot, const char *src,
                      const harvbk_restore_options *ro, char *msg, size_t size,
                      harvbk_op **keep)
{
    harvbk_op *op = NULL;
    int rc = from_snapshot ? harvbk_snapshot_restore(&op, v->ctx, "default", src, ro)
                           : harvbk_restore_create(&op, v->ctx, "default", src, ro);
    if (rc) {
        if (msg)
            harvbk_ctx_errmsg_copy(v->ctx, msg, size);
        return rc;
    }
    rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    if (keep)
        *keep = op;
    else
        harvbk_op_free(op);
    return rc;
}

static harvbk_restore_options new_vm(const char *ns, const char *name, const char *dir)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = ns;
    ro.new_vm_name = name;
    ro.target_dir = dir;
    return ro;
}

static harvbk_restore_options replace(const char *name, int policy)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.flags = HARVBK_RESTORE_REPLACE;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = name;
    ro.deletion_policy = policy;
    return ro;
}

static size_t g_nfiles;
static int count_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag == FTW_F)
        g_nfiles++;
    return 0;
}

static size_t count_files(const char *dir)
{
    g_nfiles = 0;
    nftw(dir, count_cb, 8, FTW_PHYS);
    return g_nfiles;
}

static void set_power(env *v, const char *name, harvbk_power_state p)
{
    assert_int_equal(harvbk_vm_set_registered_power_state(v->ctx, "default", name, p), 0);
}

static void copy_file(const char *from, const char *to)
{
    char *cmd = malloc(strlen(from) + strlen(to) + 16);
    sprintf(cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* ------------------------------------------------------------------ */

static void test_snapshot_round_trip_and_chunk_sharing(void **state)
{
    env v;
    env_open(&v, "ops-snap-rt");
    char msg[512];
    assert_int_equal(snap(&v, "s1", msg, sizeof msg), 0);

    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "s1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_string_equal(harvbk_backup_info_vm_name(in), "vm1");
    assert_int_equal(harvbk_backup_info_logical_bytes(in), v.s0 + v.s1);
    assert_int_equal(harvbk_backup_info_volume_count(in), 2);
    uint64_t first = harvbk_backup_info_uploaded_bytes(in);
    char *js = NULL;
    assert_int_equal(harvbk_backup_info_to_json(in, &js), 0);
    assert_non_null(strstr(js, "\"crash_consistent\":false"));
    harvbk_string_free(js);
    harvbk_backup_info_free(in);
    /* a snapshot is not a backup: separate names */
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "s1"), HARVBK_E_NOTFOUND);
    assert_int_equal(snap(&v, "s1", msg, sizeof msg), HARVBK_E_EXISTS);
    assert_int_equal(backup(&v, "s1"), 0); /* a backup may have the same name */

    /* change one chunk of d0: the second snapshot stores about that much */
    uint8_t patch[CHUNK];
    tu_fill_random(patch, sizeof patch, 99);
    int fd = open(v.d0, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, patch, sizeof patch, 2 * CHUNK), (ssize_t)sizeof patch);
    close(fd);
    assert_int_equal(snap(&v, "s2", NULL, 0), 0);
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "s2"), 0);
    uint64_t second = harvbk_backup_info_uploaded_bytes(in);
    harvbk_backup_info_free(in);
    assert_true(second < first / 5);
    assert_true(second >= CHUNK); /* the new chunk itself (random: stored uncompressed) */

    /* both restore byte for byte; the list has both */
    char *dir1 = tu_path2(v.root, "r1"), *dir2 = tu_path2(v.root, "r2");
    harvbk_restore_options ro = new_vm("default", "copy1", dir1);
    assert_int_equal(restore_ex(&v, true, "s2", &ro, msg, sizeof msg, NULL), 0);
    char *r0 = tu_path2(dir1, "d0.raw"), *r1 = tu_path2(dir1, "d1.raw");
    assert_int_equal(tu_files_equal(v.d0, r0), 0);
    assert_int_equal(tu_files_equal(v.d1, r1), 0);
    ro = new_vm("default", "copy2", dir2);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), 0);
    free(r0);
    r0 = tu_path2(dir2, "d0.raw");
    assert_int_not_equal(tu_files_equal(v.d0, r0), 0); /* s1 is before the change */
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_snapshot_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 2);
    assert_string_equal(harvbk_backup_info_name(harvbk_backup_list_at(l, 0)), "s1");
    harvbk_backup_list_free(l);

    /* verify, delete, verify of a deleted one */
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_verify(&op, v.ctx, "default", "s2", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), 0);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_snapshot_verify(&op, v.ctx, "default", "s1", NULL),
                     HARVBK_E_NOTFOUND);
    /* the backup of the same name is untouched */
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "s1"), 0);
    harvbk_backup_info_free(in);
    free(r0);
    free(r1);
    free(dir1);
    free(dir2);
    env_close(&v);
}

/* ---- freeze once around every volume ---- */

typedef struct fz {
    pthread_mutex_t mu;
    int seq, freezes, thaws, freeze_at, thaw_at, freeze_rc;
    int first_read[2], last_read[2], reads[2];
    int fail_vol; /* 1 + index of a volume whose reads fail; 0: none */
    uint8_t data[2][8 * CHUNK];
} fz;

typedef struct fzvol {
    fz *f;
    int idx;
} fzvol;

static int fz_freeze(const char *ns, const char *vm, void *p)
{
    fz *f = p;
    pthread_mutex_lock(&f->mu);
    f->freezes++;
    f->freeze_at = ++f->seq;
    pthread_mutex_unlock(&f->mu);
    return f->freeze_rc;
}

static int fz_thaw(const char *ns, const char *vm, void *p)
{
    fz *f = p;
    pthread_mutex_lock(&f->mu);
    f->thaws++;
    f->thaw_at = ++f->seq;
    pthread_mutex_unlock(&f->mu);
    return 0;
}

static int fz_read(void *buf, size_t len, uint64_t off, void *p)
{
    fzvol *fv = p;
    fz *f = fv->f;
    pthread_mutex_lock(&f->mu);
    int at = ++f->seq;
    if (!f->first_read[fv->idx])
        f->first_read[fv->idx] = at;
    f->last_read[fv->idx] = at;
    f->reads[fv->idx]++;
    bool fail = f->fail_vol == fv->idx + 1;
    pthread_mutex_unlock(&f->mu);
    if (fail)
        return HARVBK_E_IO;
    memcpy(buf, f->data[fv->idx] + off, len);
    return 0;
}

static void test_one_freeze_around_all_volumes(void **state)
{
    env v;
    env_open(&v, "ops-snap-fz");
    fz *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    tu_fill_random(f->data, sizeof f->data, 5);
    fzvol fv[2] = { { f, 0 }, { f, 1 } };
    harvbk_vm *cb = NULL;
    assert_int_equal(harvbk_vm_new(&cb, "default", "cbvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(cb, "a", sizeof f->data[0], fz_read, NULL,
                                                    &fv[0]), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(cb, "b", sizeof f->data[1], fz_read, NULL,
                                                    &fv[1]), 0);
    harvbk_snapshot_options so = HARVBK_SNAPSHOT_OPTIONS_INIT;
    so.freeze_cb = fz_freeze;
    so.thaw_cb = fz_thaw;
    so.freeze_payload = f;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb, "fz1", &so), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    /* one freeze, every read of both volumes, one thaw */
    assert_int_equal(f->freezes, 1);
    assert_int_equal(f->thaws, 1);
    assert_int_equal(f->reads[0], 8);
    assert_int_equal(f->reads[1], 8);
    for (int i = 0; i < 2; i++) {
        assert_true(f->freeze_at < f->first_read[i]);
        assert_true(f->last_read[i] < f->thaw_at);
    }
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "fz1"), 0);
    assert_int_equal(harvbk_backup_info_crash_consistent(in), 0);
    harvbk_backup_info_free(in);

    /* a failed freeze: the dedicated error, no thaw, no read */
    memset(f->reads, 0, sizeof f->reads);
    f->freezes = f->thaws = 0;
    f->freeze_rc = -1;
    char msg[512];
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb, "fz2", &so), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_FREEZE);
    harvbk_op_errmsg_copy(op, msg, sizeof msg);
    harvbk_op_free(op);
    assert_non_null(strstr(msg, "failed to freeze filesystem"));
    assert_int_equal(f->thaws, 0);
    assert_int_equal(f->reads[0] + f->reads[1], 0);
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "fz2"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    harvbk_backup_info_free(in);

    /* allowed: goes on, crash-consistent */
    so.flags = HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb, "fz3", &so), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    assert_int_equal(f->thaws, 0);
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "fz3"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_crash_consistent(in), 1);
    harvbk_backup_info_free(in);
    so.flags = 0x80;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb, "fz4", &so), HARVBK_E_INVALID);

    /* frozen, then the second volume cannot be read: the thaw still comes,
     * exactly once, after the reads, and the snapshot ends Error */
    so.flags = 0;
    f->freeze_rc = 0;
    f->freezes = f->thaws = 0;
    memset(f->reads, 0, sizeof f->reads);
    memset(f->first_read, 0, sizeof f->first_read);
    f->fail_vol = 2;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb, "fz5", &so), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_IO);
    harvbk_op_free(op);
    assert_int_equal(f->freezes, 1);
    assert_int_equal(f->thaws, 1);
    assert_true(f->reads[1] > 0);
    assert_true(f->freeze_at < f->first_read[0]);
    assert_true(f->last_read[1] < f->thaw_at);
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "fz5"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    harvbk_backup_info_free(in);
    f->fail_vol = 0;

    /* frozen, then the first volume's new data is over the VM's quota: the
     * snapshot stops before the second volume, thaws once, usage stays 0 */
    harvbk_vm *cb2 = NULL;
    assert_int_equal(harvbk_vm_new(&cb2, "default", "cbvm2"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(cb2, "a", sizeof f->data[0], fz_read, NULL,
                                                    &fv[0]), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(cb2, "b", sizeof f->data[1], fz_read, NULL,
                                                    &fv[1]), 0);
    tu_fill_random(f->data, sizeof f->data, 6); /* new chunks */
    assert_int_equal(harvbk_quota_set(v.ctx, "default", "cbvm2", 1), 0);
    f->freezes = f->thaws = 0;
    memset(f->reads, 0, sizeof f->reads);
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, cb2, "fz6", &so), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_QUOTA);
    harvbk_op_free(op);
    assert_int_equal(f->freezes, 1);
    assert_int_equal(f->thaws, 1);
    assert_int_equal(f->reads[0], 8);
    assert_int_equal(f->reads[1], 0);
    assert_true(f->last_read[0] < f->thaw_at);
    uint64_t use = 1;
    assert_int_equal(harvbk_quota_get(v.ctx, "default", "cbvm2", NULL, NULL, &use), 0);
    assert_int_equal(use, 0);
    assert_int_equal(harvbk_quota_clear(v.ctx, "default", "cbvm2"), 0);
    harvbk_vm_free(cb2);

    harvbk_vm_free(cb);
    pthread_mutex_destroy(&f->mu);
    free(f);
    env_close(&v);
}

/* ---- restore refusals, each with its code ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered, open;
} gate;

/* progress hook that holds the restore until the gate opens */
static int gate_progress(uint64_t done, uint64_t total, void *p)
{
    gate *g = p;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void test_restore_refusals(void **state)
{
    env v;
    env_open(&v, "ops-snap-refuse");
    char msg[512];
    char *dir = tu_path2(v.root, "out");
    assert_int_equal(snap(&v, "s1", msg, sizeof msg), 0);
    assert_int_equal(backup(&v, "b1"), 0);

    /* a snapshot stays in its namespace */
    harvbk_restore_options ro = new_vm("other", "x", dir);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_CROSS_NAMESPACE);
    assert_non_null(strstr(msg, "namespace"));
    /* ... a backup may go anywhere */
    ro = new_vm("other", "x", dir);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL), 0);
    /* the new VM exists */
    char *dir2 = tu_path2(v.root, "out2");
    ro = new_vm("default", "vm1", dir2);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), HARVBK_E_EXISTS);
    /* keep-mac while the source VM exists */
    ro = new_vm("default", "y", dir2);
    ro.flags = HARVBK_RESTORE_KEEP_MAC;
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), HARVBK_E_KEEP_MAC);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL), HARVBK_E_KEEP_MAC);
    assert_int_equal(count_files(dir2), 0);
    /* a deletion policy for a new VM, keep-mac for a replace: invalid */
    ro = new_vm("default", "y", dir2);
    ro.deletion_policy = HARVBK_DELETION_POLICY_RETAIN;
    assert_int_equal(restore_ex(&v, false, "b1", &ro, NULL, 0, NULL), HARVBK_E_INVALID);
    ro = replace("vm1", 0);
    ro.flags |= HARVBK_RESTORE_KEEP_MAC;
    assert_int_equal(restore_ex(&v, false, "b1", &ro, NULL, 0, NULL), HARVBK_E_INVALID);
    ro = replace("vm1", 7);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, NULL, 0, NULL), HARVBK_E_INVALID);

    /* replace: powered on or unknown */
    ro = replace("vm1", 0);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_VM_RUNNING);
    set_power(&v, "vm1", HARVBK_POWER_ON);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_VM_RUNNING);
    assert_non_null(strstr(msg, "powered on"));
    set_power(&v, "vm1", HARVBK_POWER_OFF);
    /* a snapshot cannot delete the previous volumes */
    ro = replace("vm1", HARVBK_DELETION_POLICY_DELETE);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_DELETION_POLICY);
    /* a snapshot cannot replace a VM of another namespace either */
    ro = replace("vm1", 0);
    ro.new_vm_namespace = "other";
    ro.new_vm_name = "x";
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_CROSS_NAMESPACE);
    /* replacing a VM that is not registered */
    ro = replace("ghost", 0);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL),
                     HARVBK_E_NOTFOUND);
    /* replacing a VM the source was not taken of (other/x, restored above and
     * registered powered off): its files stay as they are */
    char *xd0 = tu_path2(dir, "d0.raw"), *xcopy = tu_path2(v.root, "x-d0.copy");
    copy_file(xd0, xcopy);
    ro = replace("x", 0);
    ro.new_vm_namespace = "other";
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL), HARVBK_E_INVALID);
    assert_non_null(strstr(msg, "only that VM"));
    ro = replace("vm2", 0);
    harvbk_vm *vm2 = NULL;
    assert_int_equal(harvbk_vm_new(&vm2, "default", "vm2"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm2, "d0", xd0), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, vm2), 0);
    harvbk_vm_free(vm2);
    set_power(&v, "vm2", HARVBK_POWER_OFF);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), HARVBK_E_INVALID);
    assert_int_equal(tu_files_equal(xd0, xcopy), 0);
    assert_int_equal(harvbk_vm_unregister(v.ctx, "default", "vm2"), 0);
    free(xd0);
    free(xcopy);

    /* while a replace from s1 runs: s1 cannot be deleted, the VM cannot be
     * restored by another restore */
    gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
    ro = replace("vm1", 0);
    ro.progress_cb = gate_progress;
    ro.progress_payload = &g;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_restore(&op, v.ctx, "default", "s1", &ro), 0);
    pthread_mutex_lock(&g.mu);
    while (!g.entered)
        pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), HARVBK_E_BUSY);
    harvbk_ctx_errmsg_copy(v.ctx, msg, sizeof msg);
    assert_non_null(strstr(msg, "restored"));
    harvbk_restore_options ro2 = replace("vm1", 0);
    harvbk_op *op2 = NULL;
    assert_int_equal(harvbk_restore_create(&op2, v.ctx, "default", "b1", &ro2), HARVBK_E_BUSY);
    harvbk_ctx_errmsg_copy(v.ctx, msg, sizeof msg);
    assert_non_null(strstr(msg, "being restored"));
    assert_null(op2);
    /* and another context on the same state directory (another process) */
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, v.state, NULL), 0);
    assert_int_equal(harvbk_snapshot_delete(c2, "default", "s1"), HARVBK_E_BUSY);
    assert_int_equal(harvbk_snapshot_restore(&op2, c2, "default", "s1", &ro2), HARVBK_E_BUSY);
    harvbk_ctx_free(c2);
    pthread_mutex_lock(&g.mu);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    /* once it is over, delete works */
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), 0);

    /* the same while a backup is restored as a new VM: the backup cannot be
     * deleted, and no other restore may write that new VM */
    gate g2 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };
    char *dir3 = tu_path2(v.root, "out3"), *dir4 = tu_path2(v.root, "out4");
    ro = new_vm("default", "fresh", dir3);
    ro.progress_cb = gate_progress;
    ro.progress_payload = &g2;
    assert_int_equal(harvbk_restore_create(&op, v.ctx, "default", "b1", &ro), 0);
    pthread_mutex_lock(&g2.mu);
    while (!g2.entered)
        pthread_cond_wait(&g2.cv, &g2.mu);
    pthread_mutex_unlock(&g2.mu);
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), HARVBK_E_BUSY);
    harvbk_restore_options ro3 = new_vm("default", "fresh", dir4);
    assert_int_equal(harvbk_restore_create(&op2, v.ctx, "default", "b1", &ro3), HARVBK_E_EXISTS);
    assert_null(op2);
    assert_int_equal(harvbk_ctx_open(&c2, v.state, NULL), 0);
    assert_int_equal(harvbk_backup_delete(c2, "default", "b1"), HARVBK_E_BUSY);
    assert_int_equal(harvbk_restore_create(&op2, c2, "default", "b1", &ro3), HARVBK_E_EXISTS);
    harvbk_ctx_free(c2);
    pthread_mutex_lock(&g2.mu);
    g2.open = 1;
    pthread_cond_broadcast(&g2.cv);
    pthread_mutex_unlock(&g2.mu);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    assert_int_equal(count_files(dir4), 0);
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), 0);
    free(dir3);
    free(dir4);

    free(dir);
    free(dir2);
    env_close(&v);
}

/* ---- replace, both sources ---- */

static void test_replace_from_backup_and_snapshot(void **state)
{
    env v;
    env_open(&v, "ops-snap-replace");
    char msg[512];
    char *orig0 = tu_path2(v.root, "orig0"), *orig1 = tu_path2(v.root, "orig1");
    copy_file(v.d0, orig0);
    copy_file(v.d1, orig1);
    chmod(v.d0, 0640);
    assert_int_equal(snap(&v, "s1", msg, sizeof msg), 0);
    assert_int_equal(backup(&v, "b1"), 0);
    set_power(&v, "vm1", HARVBK_POWER_OFF);

    /* the VM's disks change; a backup replace (default: delete) brings them back */
    write_disk(v.d0, v.s0, 77);
    write_disk(v.d1, v.s1 + CHUNK, 78);
    harvbk_restore_options ro = replace("vm1", 0);
    harvbk_op *op = NULL;
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, &op), 0);
    assert_int_equal(harvbk_restore_retained_count(op), 0);
    harvbk_op_free(op);
    assert_int_equal(tu_files_equal(v.d0, orig0), 0);
    assert_int_equal(tu_files_equal(v.d1, orig1), 0);
    struct stat sb;
    assert_int_equal(stat(v.d0, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0640); /* the volume keeps its mode */
    /* nothing else is left in the directory: no retained, hidden or partial file */
    char *tdir = tu_path2(v.root, "target");
    assert_int_equal(count_files(v.root) - count_files(v.state) - count_files(tdir),
                     4); /* d0, d1, orig0, orig1 */
    free(tdir);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_power_state(got), HARVBK_POWER_OFF);
    assert_string_equal(harvbk_vm_volume_path(got, 0), v.d0);
    size_t ml = 0;
    const char *meta = harvbk_vm_metadata(got, &ml);
    /* same VM: MAC kept, volume references kept */
    assert_non_null(strstr(meta, "52:54:00:12:34:56"));
    assert_non_null(strstr(meta, "vm1-d0-pvc"));
    harvbk_vm_free(got);

    /* snapshot replace: retain (the default and the only choice) */
    write_disk(v.d0, v.s0, 79);
    char *changed = tu_path2(v.root, "changed0");
    copy_file(v.d0, changed);
    ro = replace("vm1", 0);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, &op), 0);
    assert_int_equal(harvbk_restore_retained_count(op), 2);
    const char *kept0 = harvbk_restore_retained_path(op, 0);
    assert_non_null(kept0);
    assert_non_null(strstr(kept0, "d0.raw.retained-"));
    assert_int_equal(tu_files_equal(kept0, changed), 0); /* the old volume, intact */
    assert_null(harvbk_restore_retained_path(op, 2));
    harvbk_op_free(op);
    assert_int_equal(tu_files_equal(v.d0, orig0), 0);
    assert_int_equal(tu_files_equal(v.d1, orig1), 0);

    /* explicit retain from a backup */
    ro = replace("vm1", HARVBK_DELETION_POLICY_RETAIN);
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, &op), 0);
    assert_int_equal(harvbk_restore_retained_count(op), 2);
    harvbk_op_free(op);

    free(changed);
    free(orig0);
    free(orig1);
    env_close(&v);
}

/* ---- the metadata rewrite ---- */

static cJSON *vm_meta(env *v, const char *name)
{
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v->ctx, "default", name), 0);
    size_t ml = 0;
    const char *m = harvbk_vm_metadata(got, &ml);
    cJSON *j = cJSON_ParseWithLength(m, ml);
    harvbk_vm_free(got);
    return j;
}

static const char *jstr(cJSON *o, const char *path)
{
    /* "a>b>0>c" (label keys contain dots) */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    cJSON *cur = o;
    for (char *tok = strtok(buf, ">"); tok && cur; tok = strtok(NULL, ">")) {
        if (tok[0] >= '0' && tok[0] <= '9')
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    }
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

typedef struct hook_seen {
    int calls;
    char src[64], dst[64];
    int keep_mac, replace;
    size_t nvols;
    char claim0[64];
    int fail;
} hook_seen;

static int my_hook(harvbk_metadata_rewrite *rw, void *p)
{
    hook_seen *h = p;
    h->calls++;
    snprintf(h->src, sizeof h->src, "%s/%s", harvbk_metadata_rewrite_source_namespace(rw),
             harvbk_metadata_rewrite_source_vm(rw));
    snprintf(h->dst, sizeof h->dst, "%s/%s", harvbk_metadata_rewrite_namespace(rw),
             harvbk_metadata_rewrite_vm(rw));
    h->keep_mac = harvbk_metadata_rewrite_keep_mac(rw);
    h->replace = harvbk_metadata_rewrite_replace(rw);
    h->nvols = harvbk_metadata_rewrite_volume_count(rw);
    const char *c = harvbk_metadata_rewrite_volume_claim(rw, 0);
    snprintf(h->claim0, sizeof h->claim0, "%s", c ? c : "(null)");
    if (h->fail)
        return HARVBK_E_PERM;
    size_t len = 0;
    assert_non_null(harvbk_metadata_rewrite_input(rw, &len));
    assert_int_equal(len, strlen(META));
    return harvbk_metadata_rewrite_set_output(rw, "custom", 6);
}

static void test_metadata_rewrite(void **state)
{
    env v;
    env_open(&v, "ops-snap-meta");
    char msg[512];
    assert_int_equal(snap(&v, "s1", msg, sizeof msg), 0);
    assert_int_equal(backup(&v, "b1"), 0);
    char *dir = tu_path2(v.root, "n1");

    /* the default: a KubeVirt VirtualMachine */
    harvbk_restore_options ro = new_vm("default", "web2", dir);
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), 0);
    cJSON *j = vm_meta(&v, "web2");
    assert_non_null(j);
    assert_string_equal(jstr(j, "metadata>name"), "web2");
    assert_string_equal(jstr(j, "metadata>namespace"), "default");
    assert_null(jstr(j, "metadata>uid"));
    assert_null(jstr(j, "metadata>resourceVersion"));
    assert_null(cJSON_GetObjectItem(j, "status"));
    assert_string_equal(jstr(j, "metadata>labels>harvesterhci.io/vmName"), "web2");
    assert_string_equal(jstr(j, "metadata>labels>app"), "x");
    assert_string_equal(jstr(j, "spec>template>metadata>labels>kubevirt.io/vm"), "web2");
    assert_string_equal(jstr(j, "spec>template>spec>volumes>0>persistentVolumeClaim>claimName"),
                        "web2-d0");
    assert_string_equal(jstr(j, "spec>template>spec>volumes>1>dataVolume>name"), "web2-d1");
    assert_string_equal(jstr(j, "spec>dataVolumeTemplates>0>metadata>name"), "web2-d1");
    assert_string_equal(jstr(j, "spec>template>spec>volumes>2>cloudInitNoCloud>userData"),
                        "#cloud-config");
    assert_string_equal(jstr(j, "spec>template>spec>domain>devices>interfaces>0>name"),
                        "default");
    assert_null(jstr(j, "spec>template>spec>domain>devices>interfaces>0>macAddress"));
    cJSON_Delete(j);

    /* keep-mac once the source VM is gone */
    assert_int_equal(harvbk_vm_unregister(v.ctx, "default", "vm1"), 0);
    char *dir2 = tu_path2(v.root, "n2");
    ro = new_vm("default", "web3", dir2);
    ro.flags = HARVBK_RESTORE_KEEP_MAC;
    assert_int_equal(restore_ex(&v, false, "b1", &ro, msg, sizeof msg, NULL), 0);
    j = vm_meta(&v, "web3");
    assert_string_equal(jstr(j, "spec>template>spec>domain>devices>interfaces>0>macAddress"),
                        "52:54:00:12:34:56");
    assert_string_equal(jstr(j, "metadata>name"), "web3");
    cJSON_Delete(j);

    /* a caller's hook: what it gets and what it returns */
    hook_seen h;
    memset(&h, 0, sizeof h);
    char *dir3 = tu_path2(v.root, "n3");
    ro = new_vm("default", "web4", dir3);
    ro.metadata_rewrite_cb = my_hook;
    ro.metadata_rewrite_payload = &h;
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), 0);
    assert_int_equal(h.calls, 1);
    assert_string_equal(h.src, "default/vm1");
    assert_string_equal(h.dst, "default/web4");
    assert_int_equal(h.keep_mac, 0);
    assert_int_equal(h.replace, 0);
    assert_int_equal(h.nvols, 2);
    assert_string_equal(h.claim0, "web4-d0");
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "web4"), 0);
    size_t ml = 0;
    const char *m = harvbk_vm_metadata(got, &ml);
    assert_int_equal(ml, 6);
    assert_memory_equal(m, "custom", 6);
    harvbk_vm_free(got);
    /* a failing hook fails the restore before anything is written */
    char *dir4 = tu_path2(v.root, "n4");
    h.fail = 1;
    ro = new_vm("default", "web5", dir4);
    ro.metadata_rewrite_cb = my_hook;
    ro.metadata_rewrite_payload = &h;
    assert_int_equal(restore_ex(&v, true, "s1", &ro, msg, sizeof msg, NULL), HARVBK_E_PERM);
    assert_non_null(strstr(msg, "rewrite hook"));
    assert_int_equal(count_files(dir4), 0);
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "web5"), HARVBK_E_NOTFOUND);

    /* a document that is not a KubeVirt VM is left alone (a generic
     * Kubernetes object gets only name/namespace) */
    harvbk_vm *other = NULL;
    assert_int_equal(harvbk_vm_new(&other, "default", "plain"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(other, "d0", v.d0), 0);
    const char *raw = "not json \x01 at all";
    assert_int_equal(harvbk_vm_set_metadata(other, raw, strlen(raw)), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, other, "p1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    const char *k8s = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"plain\",\"namespace\":"
                      "\"default\"},\"data\":{\"macAddress\":\"keep\"}}";
    assert_int_equal(harvbk_vm_set_metadata(other, k8s, strlen(k8s)), 0);
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, other, "p2", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    char *dir5 = tu_path2(v.root, "n5"), *dir6 = tu_path2(v.root, "n6");
    ro = new_vm("default", "plain2", dir5);
    assert_int_equal(restore_ex(&v, true, "p1", &ro, msg, sizeof msg, NULL), 0);
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "plain2"), 0);
    m = harvbk_vm_metadata(got, &ml);
    assert_int_equal(ml, strlen(raw));
    assert_memory_equal(m, raw, ml);
    harvbk_vm_free(got);
    ro = new_vm("default", "plain3", dir6);
    assert_int_equal(restore_ex(&v, true, "p2", &ro, msg, sizeof msg, NULL), 0);
    j = vm_meta(&v, "plain3");
    assert_string_equal(jstr(j, "metadata>name"), "plain3");
    assert_string_equal(jstr(j, "data>macAddress"), "keep");
    cJSON_Delete(j);
    harvbk_vm_free(other);

    free(dir);
    free(dir2);
    free(dir3);
    free(dir4);
    free(dir5);
    free(dir6);
    env_close(&v);
}

/* ---- the default rewrite changes nothing it does not have to ---- */

/* Snapshot an (unregistered) VM default/src1 whose metadata is `meta`,
 * restore it as new VM default/<tag>; the restore's result, and the new VM's
 * metadata in *out (malloc'd, *out_len bytes). */
static int restore_with_meta(env *v, const char *meta, size_t len, const char *tag, char **out,
                             size_t *out_len, char *msg, size_t msize)
{
    harvbk_vm *src = NULL;
    assert_int_equal(harvbk_vm_new(&src, "default", "src1"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(src, "d1", v->d1), 0);
    assert_int_equal(harvbk_vm_set_metadata(src, meta, len), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_snapshot_create(&op, v->ctx, src, tag, NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    harvbk_vm_free(src);
    char *dir = tu_path2(v->root, tag);
    harvbk_restore_options ro = new_vm("default", tag, dir);
    int rc = restore_ex(v, true, tag, &ro, msg, msize, NULL);
    free(dir);
    *out = NULL;
    *out_len = 0;
    if (rc == 0) {
        harvbk_vm *got = NULL;
        assert_int_equal(harvbk_vm_lookup(&got, v->ctx, "default", tag), 0);
        const char *m = harvbk_vm_metadata(got, out_len);
        *out = malloc(*out_len + 1);
        memcpy(*out, m, *out_len);
        (*out)[*out_len] = '\0';
        harvbk_vm_free(got);
    }
    return rc;
}

static void test_metadata_rewrite_keeps_other_values_exact(void **state)
{
    env v;
    env_open(&v, "ops-snap-exact");
    char msg[512], *got = NULL;
    size_t len = 0;

    /* a VirtualMachine: numbers cJSON cannot hold exactly, and a string with
     * \u0000, come back as they were written; only the documented fields change */
    const char *vmdoc =
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\",\"namespace\":"
        "\"default\",\"uid\":\"u\"},\"spec\":{\"big\":12345678901234567890,\"ratio\":1.50,"
        "\"list\":[1e3,-0.0,123456789012345678901234567890,7],\"note\":\"a\\u0000b\","
        "\"esc\":\"tab\\there \\\"q\\\" \\\\u0000\",\"template\":{\"spec\":{\"domain\":"
        "{\"devices\":{\"interfaces\":[{\"name\":\"n\",\"macAddress\":\"52:54:00:00:00:09\"}]}},"
        "\"volumes\":[{\"name\":\"d1\",\"persistentVolumeClaim\":{\"claimName\":"
        "\"src1-d1\"}}]}}}}";
    assert_int_equal(restore_with_meta(&v, vmdoc, strlen(vmdoc), "vmx", &got, &len, msg,
                                       sizeof msg), 0);
    const char *want =
        "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"vmx\",\"namespace\":"
        "\"default\"},\"spec\":{\"big\":12345678901234567890,\"ratio\":1.50,"
        "\"list\":[1e3,-0.0,123456789012345678901234567890,7],\"note\":\"a\\u0000b\","
        "\"esc\":\"tab\\there \\\"q\\\" \\\\u0000\",\"template\":{\"spec\":{\"domain\":"
        "{\"devices\":{\"interfaces\":[{\"name\":\"n\"}]}},"
        "\"volumes\":[{\"name\":\"d1\",\"persistentVolumeClaim\":{\"claimName\":"
        "\"vmx-d1\"}}]}}}}";
    assert_string_equal(got, want);
    free(got);

    /* another Kubernetes object that does not name the source VM: byte for
     * byte, layout included */
    const char *cm = "{ \"kind\": \"ConfigMap\",\n  \"metadata\": { \"name\": \"cfg\" },\n"
                     "  \"n\": 1.0, \"big\": 12345678901234567890 }\n";
    assert_int_equal(restore_with_meta(&v, cm, strlen(cm), "cmx", &got, &len, msg, sizeof msg),
                     0);
    assert_int_equal(len, strlen(cm));
    assert_memory_equal(got, cm, len);
    free(got);
    /* ... and one that does: only its name changes, every value stays exact */
    const char *th = "{\"kind\":\"Thing\",\"metadata\":{\"name\":\"src1\",\"namespace\":"
                     "\"default\"},\"n\":1.0,\"big\":12345678901234567890}";
    assert_int_equal(restore_with_meta(&v, th, strlen(th), "thx", &got, &len, msg, sizeof msg),
                     0);
    assert_string_equal(got, "{\"kind\":\"Thing\",\"metadata\":{\"name\":\"thx\","
                             "\"namespace\":\"default\"},\"n\":1.0,\"big\":12345678901234567890}");
    free(got);
    /* JSON followed by other bytes is not a JSON document: unchanged */
    const char *tail = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"}} trailing";
    assert_int_equal(restore_with_meta(&v, tail, strlen(tail), "tlx", &got, &len, msg,
                                       sizeof msg), 0);
    assert_int_equal(len, strlen(tail));
    assert_memory_equal(got, tail, len);
    free(got);

    /* a VirtualMachine whose key holds \u0000 cannot be printed back exactly:
     * the default refuses instead of dropping part of it; nothing is written */
    const char *bad = "{\"kind\":\"VirtualMachine\",\"metadata\":{\"name\":\"src1\"},"
                      "\"spec\":{\"k\\u0000x\":1}}";
    assert_int_equal(restore_with_meta(&v, bad, strlen(bad), "bdx", &got, &len, msg,
                                       sizeof msg), HARVBK_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "default metadata rewrite"));
    harvbk_vm *none = NULL;
    assert_int_equal(harvbk_vm_lookup(&none, v.ctx, "default", "bdx"), HARVBK_E_NOTFOUND);
    char *bdir = tu_path2(v.root, "bdx");
    assert_int_equal(count_files(bdir), 0);
    free(bdir);
    env_close(&v);
}

/* ---- the catalog keeps absolute volume paths only ---- */

static void test_register_refuses_relative_paths(void **state)
{
    env v;
    env_open(&v, "ops-snap-relpath");
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "rel"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d0", "disks/d0.raw"), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, vm), HARVBK_E_INVALID);
    char msg[512];
    harvbk_ctx_errmsg_copy(v.ctx, msg, sizeof msg);
    assert_non_null(strstr(msg, "relative"));
    assert_non_null(strstr(msg, "disks/d0.raw"));
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "rel"), HARVBK_E_NOTFOUND);
    harvbk_vm_free(vm);
    /* "./x" is relative too; an absolute path is fine */
    assert_int_equal(harvbk_vm_new(&vm, "default", "rel"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d0", v.d0), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d1", "./d1.raw"), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, vm), HARVBK_E_INVALID);
    harvbk_vm_free(vm);
    assert_int_equal(harvbk_vm_new(&vm, "default", "rel"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "d0", v.d0), 0);
    assert_int_equal(harvbk_vm_register(v.ctx, vm), 0);
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "rel"), 0);
    assert_string_equal(harvbk_vm_volume_path(got, 0), v.d0);
    harvbk_vm_free(got);
    harvbk_vm_free(vm);
    env_close(&v);
}

/* ---- replace-restore crash recovery from its journal ---- */

static void write_text(const char *path, const char *text)
{
    assert_int_equal(tu_write_file(path, text, strlen(text)), 0);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The files a replace of vm1 (volume d0 only) leaves when killed in the
 * middle of its swap: d0 moved aside, the new data already at d0's path.
 * Opening the state directory must put the old d0 back. */
static void test_replace_journal_rollback_and_rollforward(void **state)
{
    env v;
    env_open(&v, "ops-snap-journal");
    harvbk_ctx_free(v.ctx);
    v.ctx = NULL;
    char *dir = v.root;
    char *old = read_all(v.d0);
    char *aside = malloc(strlen(dir) + 64), *part = malloc(strlen(dir) + 64);
    sprintf(aside, "%s/.d0.raw.old-0a0b0c0d", dir);
    sprintf(part, "%s/.d0.raw.restore-01020304", dir);
    /* swap step 1 and 2 done: old -> aside, part -> d0 */
    assert_int_equal(rename(v.d0, aside), 0);
    write_text(v.d0, "NEW DATA");
    struct stat sb;
    assert_int_equal(stat(v.d0, &sb), 0);
    char *jdir = tu_path2(v.state, "restores/default");
    char *cmd = malloc(strlen(jdir) + 16);
    sprintf(cmd, "mkdir -p '%s'", jdir);
    assert_int_equal(system(cmd), 0);
    char *jpath = tu_path2(jdir, "vm1.json");
    char *journal = malloc(8192);
    snprintf(journal, 8192,
             "{\"mode\":\"replace\",\"namespace\":\"default\",\"name\":\"vm1\",\"phase\":\"swap\","
             "\"policy\":\"delete\",\"volumes\":[{\"name\":\"d0\",\"final\":\"%s\",\"part\":\"%s\","
             "\"aside\":\"%s\",\"retain\":\"\",\"dev\":\"%llu\",\"ino\":\"%llu\"}],\"drop\":[]}",
             v.d0, part, aside, (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
    write_text(jpath, journal);
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    char *now = read_all(v.d0);
    assert_non_null(now);
    assert_int_equal(strcmp(now, old), 0); /* the old volume is back */
    free(now);
    assert_int_equal(access(aside, F_OK), -1);
    assert_int_equal(access(jpath, F_OK), -1);

    /* a file at the volume's path that is not the restore's own is never
     * removed (say the process died before step 2): the old file comes back
     * only if the path is free, else both stay */
    harvbk_ctx_free(v.ctx);
    v.ctx = NULL;
    assert_int_equal(rename(v.d0, aside), 0); /* step 1 only */
    write_text(part, "NEW DATA");
    assert_int_equal(stat(part, &sb), 0);
    snprintf(journal, 8192,
             "{\"mode\":\"replace\",\"namespace\":\"default\",\"name\":\"vm1\",\"phase\":\"swap\","
             "\"policy\":\"retain\",\"volumes\":[{\"name\":\"d0\",\"final\":\"%s\",\"part\":\"%s\","
             "\"aside\":\"%s\",\"retain\":\"%s.retained-20260101T000000Z\",\"dev\":\"%llu\","
             "\"ino\":\"%llu\"}],\"drop\":[]}",
             v.d0, part, aside, v.d0, (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino);
    write_text(jpath, journal);
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    now = read_all(v.d0);
    assert_int_equal(strcmp(now, old), 0);
    free(now);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(access(aside, F_OK), -1);

    /* killed after its commit: rolled forward (catalog switched, old volume
     * retained under its documented name) */
    harvbk_ctx_free(v.ctx);
    v.ctx = NULL;
    assert_int_equal(rename(v.d0, aside), 0);
    write_text(v.d0, "NEW DATA");
    assert_int_equal(stat(v.d0, &sb), 0);
    char *retained = malloc(strlen(v.d0) + 64);
    sprintf(retained, "%s.retained-20260101T000000Z", v.d0);
    char vmjson[2048];
    snprintf(vmjson, sizeof vmjson,
             "{\\\"namespace\\\":\\\"default\\\",\\\"name\\\":\\\"vm1\\\",\\\"volumes\\\":"
             "[{\\\"name\\\":\\\"d0\\\",\\\"path\\\":\\\"%s\\\"}],\\\"metadata\\\":\\\"\\\","
             "\\\"images\\\":[],\\\"power_state\\\":\\\"off\\\"}",
             v.d0);
    snprintf(journal, 8192,
             "{\"mode\":\"replace\",\"namespace\":\"default\",\"name\":\"vm1\",\"phase\":\"commit\","
             "\"policy\":\"retain\",\"volumes\":[{\"name\":\"d0\",\"final\":\"%s\",\"part\":\"%s\","
             "\"aside\":\"%s\",\"retain\":\"%s\",\"dev\":\"%llu\",\"ino\":\"%llu\"}],"
             "\"drop\":[{\"path\":\"%s\",\"retain\":\"%s.retained-20260101T000000Z\"}],"
             "\"vm\":\"%s\"}",
             v.d0, part, aside, retained, (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino, v.d1, v.d1, vmjson);
    write_text(jpath, journal);
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    now = read_all(v.d0);
    assert_string_equal(now, "NEW DATA");
    free(now);
    now = read_all(retained);
    assert_non_null(now);
    assert_int_equal(strcmp(now, old), 0);
    free(now);
    assert_int_equal(access(v.d1, F_OK), -1); /* a volume the source lacked: retained too */
    char *d1kept = malloc(strlen(v.d1) + 64);
    sprintf(d1kept, "%s.retained-20260101T000000Z", v.d1);
    assert_int_equal(access(d1kept, F_OK), 0);
    free(d1kept);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_volume_count(got), 1);
    assert_int_equal(harvbk_vm_power_state(got), HARVBK_POWER_OFF);
    harvbk_vm_free(got);
    assert_int_equal(access(jpath, F_OK), -1);

    /* a journal whose paths do not have the documented shapes is ignored */
    harvbk_ctx_free(v.ctx);
    v.ctx = NULL;
    char *victim = tu_path2(v.root, "victim");
    write_text(victim, "keep me");
    snprintf(journal, 8192,
             "{\"mode\":\"replace\",\"namespace\":\"default\",\"name\":\"vm1\",\"phase\":\"swap\","
             "\"policy\":\"delete\",\"volumes\":[{\"name\":\"d0\",\"final\":\"%s\",\"part\":\"%s\","
             "\"aside\":\"\",\"retain\":\"\",\"dev\":\"0\",\"ino\":\"0\"}],\"drop\":[]}",
             v.d0, victim);
    write_text(jpath, journal);
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    assert_int_equal(access(victim, F_OK), 0);
    assert_int_equal(access(jpath, F_OK), -1);

    free(victim);
    free(retained);
    free(old);
    free(aside);
    free(part);
    free(jdir);
    free(cmd);
    free(jpath);
    free(journal);
    env_close(&v);
}

/* ---- quotas ---- */

static size_t chunk_files(env *v)
{
    char *c = tu_path2(v->store, "chunks");
    size_t n = count_files(c);
    free(c);
    return n;
}

static uint64_t g_bytes;
static int bytes_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag == FTW_F)
        g_bytes += (uint64_t)sb->st_size;
    return 0;
}

static uint64_t chunk_bytes(env *v)
{
    char *c = tu_path2(v->store, "chunks");
    g_bytes = 0;
    nftw(c, bytes_cb, 8, FTW_PHYS);
    free(c);
    return g_bytes;
}

static uint64_t usage(env *v, const char *vm)
{
    uint64_t u = 0;
    int has = -1;
    assert_int_equal(harvbk_quota_get(v->ctx, "default", vm, &has, NULL, &u), 0);
    return u;
}

static void test_quotas(void **state)
{
    env v;
    env_open(&v, "ops-snap-quota");
    char msg[512];
    int has = -1;
    uint64_t lim = 1, use = 1;
    assert_int_equal(harvbk_quota_get(v.ctx, "default", NULL, &has, &lim, &use), 0);
    assert_int_equal(has, 0);
    assert_int_equal(lim, 0);
    assert_int_equal(use, 0);
    assert_int_equal(harvbk_quota_set(v.ctx, "Bad", NULL, 1), HARVBK_E_INVALID);
    assert_int_equal(harvbk_quota_clear(v.ctx, "default", NULL), HARVBK_E_NOTFOUND);

    assert_int_equal(snap(&v, "s1", msg, sizeof msg), 0);
    uint64_t u1 = usage(&v, "vm1");
    assert_true(u1 > 0);
    assert_int_equal(usage(&v, NULL), u1);
    /* the usage is the stored size of the distinct chunks: with one snapshot,
     * exactly the sizes of the store's chunk files */
    assert_int_equal(chunk_bytes(&v), u1);
    assert_int_equal(chunk_files(&v), 17 + 5); /* 21 + 6 chunks, 4 + 1 of them zero */

    /* a limit below what a new snapshot adds: it fails mid-way, removes what
     * it wrote, the usage stays */
    write_disk(v.d0, v.s0, 50); /* all of d0 changes */
    size_t files = chunk_files(&v);
    assert_int_equal(harvbk_quota_set(v.ctx, "default", "vm1", u1 + 5 * CHUNK), 0);
    assert_int_equal(snap(&v, "s2", msg, sizeof msg), HARVBK_E_QUOTA);
    assert_non_null(strstr(msg, "quota"));
    assert_int_equal(usage(&v, "vm1"), u1);
    assert_int_equal(chunk_files(&v), files);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "s2"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    harvbk_backup_info_free(in);

    /* the namespace's limit counts the same way */
    assert_int_equal(harvbk_quota_clear(v.ctx, "default", "vm1"), 0);
    assert_int_equal(harvbk_quota_set(v.ctx, "default", NULL, u1 + CHUNK), 0);
    assert_int_equal(snap(&v, "s2", msg, sizeof msg), HARVBK_E_QUOTA);
    assert_int_equal(usage(&v, NULL), u1);
    assert_int_equal(chunk_files(&v), files);

    /* at or over the limit: refused at once, snapshots and backups alike */
    assert_int_equal(harvbk_quota_set(v.ctx, "default", NULL, u1), 0);
    harvbk_op *op = (harvbk_op *)1;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, v.vm, "s3", NULL), HARVBK_E_QUOTA);
    assert_null(op);
    harvbk_ctx_errmsg_copy(v.ctx, msg, sizeof msg);
    assert_non_null(strstr(msg, "at or over"));
    assert_int_equal(harvbk_backup_create(&op, v.ctx, v.vm, "b3", NULL), HARVBK_E_QUOTA);
    assert_int_equal(harvbk_snapshot_get(&in, v.ctx, "default", "s3"), HARVBK_E_NOTFOUND);
    /* other namespaces are not limited */
    harvbk_vm *o = NULL;
    assert_int_equal(harvbk_vm_new(&o, "other", "vm9"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(o, "d", v.d1), 0);
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, o, "o1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    harvbk_vm_free(o);

    /* enough room: it works, usage grows by what it stored */
    assert_int_equal(harvbk_quota_set(v.ctx, "default", NULL, 100 * CHUNK), 0);
    assert_int_equal(harvbk_quota_set(v.ctx, "default", "vm1", 100 * CHUNK), 0);
    assert_int_equal(snap(&v, "s2", msg, sizeof msg), 0);
    uint64_t u2 = usage(&v, "vm1");
    assert_true(u2 > u1);
    /* a snapshot of unchanged data adds nothing */
    assert_int_equal(snap(&v, "s3", msg, sizeof msg), 0);
    assert_int_equal(usage(&v, "vm1"), u2);

    /* the list: namespaces and VMs with limits or snapshots */
    harvbk_quota_list *ql = NULL;
    assert_int_equal(harvbk_quota_list_get(&ql, v.ctx), 0);
    assert_int_equal(harvbk_quota_list_count(ql), 4);
    assert_string_equal(harvbk_quota_list_namespace(ql, 0), "default");
    assert_null(harvbk_quota_list_vm(ql, 0));
    assert_int_equal(harvbk_quota_list_has_limit(ql, 0), 1);
    assert_int_equal(harvbk_quota_list_limit(ql, 0), 100 * CHUNK);
    assert_int_equal(harvbk_quota_list_usage(ql, 0), u2);
    assert_string_equal(harvbk_quota_list_vm(ql, 1), "vm1");
    assert_int_equal(harvbk_quota_list_snapshots(ql, 1), 3);
    assert_string_equal(harvbk_quota_list_namespace(ql, 2), "other");
    assert_int_equal(harvbk_quota_list_has_limit(ql, 2), 0);
    assert_string_equal(harvbk_quota_list_vm(ql, 3), "vm9");
    assert_true(harvbk_quota_list_usage(ql, 3) > 0);
    harvbk_quota_list_free(ql);

    /* deletions: exact again; the last snapshot gone, usage 0, store empty */
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s2"), 0);
    assert_int_equal(usage(&v, "vm1"), u2); /* s3 has the same chunks */
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s3"), 0);
    assert_int_equal(usage(&v, "vm1"), u1);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), 0);
    assert_int_equal(usage(&v, "vm1"), 0);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "other", "o1"), 0);
    assert_int_equal(chunk_files(&v), 0);
    env_close(&v);
}

static void test_store_location(void **state)
{
    env v;
    env_open(&v, "ops-snap-store");
    char buf[4096];
    size_t len = 0;
    assert_int_equal(harvbk_snapshot_store_dir(v.ctx, buf, sizeof buf, &len), 0);
    assert_string_equal(buf, v.store);
    assert_int_equal(len, strlen(v.store));
    harvbk_snapshot_store_options so = HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    so.dir = "relative/dir";
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), HARVBK_E_INVALID);
    so.dir = NULL;
    so.chunk_size = 1000;
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), HARVBK_E_INVALID);
    so.chunk_size = 0;
    so.codec = "rar";
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), HARVBK_E_INVALID);
    so.version = 99;
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), HARVBK_E_VERSION);
    /* another directory before any snapshot: fine, and used */
    char *other = tu_path2(v.root, "elsewhere");
    so = (harvbk_snapshot_store_options)HARVBK_SNAPSHOT_STORE_OPTIONS_INIT;
    so.dir = other;
    so.codec = "lz4";
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), 0);
    assert_int_equal(snap(&v, "s1", NULL, 0), 0);
    char *cfg = tu_path2(other, "harvbk-store.json");
    assert_int_equal(access(cfg, F_OK), 0);
    /* moving away from a store with snapshots is refused */
    so.dir = v.store;
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), HARVBK_E_STATE);
    assert_int_equal(harvbk_snapshot_delete(v.ctx, "default", "s1"), 0);
    assert_int_equal(harvbk_snapshot_store_set(v.ctx, &so), 0);
    free(cfg);
    free(other);
    env_close(&v);
}

/* Restore progress: bytes of every volume, weighted by size (total = the sum
 * of the sizes), never backwards, ending at the total. */
typedef struct prog {
    uint64_t last, total, calls;
    int backwards, over;
} prog;

static int prog_cb(uint64_t done, uint64_t total, void *p)
{
    prog *g = p;
    if (done < g->last)
        g->backwards = 1;
    if (done > total)
        g->over = 1;
    g->last = done;
    g->total = total;
    g->calls++;
    return 0;
}

static void test_restore_progress(void **state)
{
    env v;
    env_open(&v, "ops-snap-prog");
    assert_int_equal(snap(&v, "s1", NULL, 0), 0);
    for (int k = 0; k < 2; k++) {
        prog g;
        memset(&g, 0, sizeof g);
        char *dir = tu_path2(v.root, k ? "p2" : "p1");
        harvbk_restore_options ro = new_vm("default", k ? "p2" : "p1", dir);
        if (k) { /* a replace */
            set_power(&v, "vm1", HARVBK_POWER_OFF);
            ro = replace("vm1", 0);
        }
        ro.progress_cb = prog_cb;
        ro.progress_payload = &g;
        harvbk_op *op = NULL;
        assert_int_equal(restore_ex(&v, true, "s1", &ro, NULL, 0, &op), 0);
        uint64_t done = 0, total = 0;
        assert_int_equal(harvbk_op_progress(op, &done, &total), 0);
        assert_int_equal(total, v.s0 + v.s1);
        assert_int_equal(done, total);
        harvbk_op_free(op);
        assert_true(g.calls >= 1); /* coalesced: a quick restore may make one call */
        assert_int_equal(g.backwards, 0);
        assert_int_equal(g.over, 0);
        assert_int_equal(g.total, v.s0 + v.s1);
        assert_int_equal(g.last, v.s0 + v.s1);
        free(dir);
    }
    env_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_round_trip_and_chunk_sharing),
        cmocka_unit_test(test_one_freeze_around_all_volumes),
        cmocka_unit_test(test_restore_refusals),
        cmocka_unit_test(test_replace_from_backup_and_snapshot),
        cmocka_unit_test(test_metadata_rewrite),
        cmocka_unit_test(test_metadata_rewrite_keeps_other_values_exact),
        cmocka_unit_test(test_register_refuses_relative_paths),
        cmocka_unit_test(test_replace_journal_rollback_and_rollforward),
        cmocka_unit_test(test_quotas),
        cmocka_unit_test(test_store_location),
        cmocka_unit_test(test_restore_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
