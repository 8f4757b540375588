/* tests/unit/test_ops_backup.c - backups through the public API on a file://
 * target: create, list, show, verify, restore, delete, gc; failures; two
 * contexts on one target; changed ranges; the busy rules. */
#include "testutil.h"

#include <harvbk.h>

#include "core/hb.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK 65536

typedef struct env {
    char *root, *state, *tdir, *disks;
    harvbk_ctx *ctx;
} env;

static void env_open(env *v, const char *tag)
{
    memset(v, 0, sizeof *v);
    v->root = tu_mkdtemp(tag);
    assert_non_null(v->root);
    v->state = tu_path2(v->root, "state");
    v->tdir = tu_path2(v->root, "target");
    v->disks = tu_path2(v->root, "disks");
    mkdir(v->disks, 0755);
    assert_int_equal(harvbk_ctx_open(&v->ctx, v->state, NULL), 0);
    tu_set_file_target(v->ctx, v->tdir);
}

static void env_close(env *v)
{
    harvbk_ctx_free(v->ctx);
    tu_rmrf(v->root);
    free(v->root);
    free(v->state);
    free(v->tdir);
    free(v->disks);
}

/* A raw disk image of `size` bytes: random data, a run of written zeros and
 * a file hole, with a seed-dependent content. */
static char *make_disk(env *v, const char *name, size_t size, uint64_t seed)
{
    char *p = tu_path2(v->disks, name);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(size);
    tu_fill_random(buf, size, seed);
    size_t z0 = size / 4, z1 = z0 + size / 8;   /* written zeros */
    size_t h0 = size / 2, h1 = h0 + size / 5;   /* hole */
    memset(buf + z0, 0, z1 - z0);
    assert_int_equal(pwrite(fd, buf, h0, 0), (ssize_t)h0);
    assert_int_equal(pwrite(fd, buf + h1, size - h1, (off_t)h1), (ssize_t)(size - h1));
    memset(buf + h0, 0, h1 - h0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    close(fd);
    free(buf);
    return p;
}

static harvbk_vm *make_vm(const char *ns, const char *name, const char *d0, const char *d1)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, ns, name), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk0", d0), 0);
    if (d1)
        assert_int_equal(harvbk_vm_add_volume_file(vm, "disk1", d1), 0);
    const char meta[] = "{\"spec\":{\"running\":true},\"bin\":\"\x01\x02\"}";
    assert_int_equal(harvbk_vm_set_metadata(vm, meta, sizeof meta), 0);
    assert_int_equal(harvbk_vm_add_image(vm, "default/image-ubuntu"), 0);
    return vm;
}

static int run_backup(env *v, const harvbk_vm *vm, const char *name,
                      const harvbk_backup_options *opts)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, v->ctx, vm, name, opts);
    if (rc)
        return rc;
    rc = harvbk_op_wait(op);
    harvbk_op_free(op);
    return rc;
}

static int run_restore(env *v, const char *name, const char *new_name, const char *dir)
{
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = new_name;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, v->ctx, "default", name, &ro);
    if (rc)
        return rc;
    rc = harvbk_op_wait(op);
    harvbk_op_free(op);
    return rc;
}

static int backdate_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag == FTW_F) {
        struct timeval tv[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
        utimes(p, tv);
    }
    return 0;
}

static int count_one_n;
static int count_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    if (flag == FTW_F)
        count_one_n++;
    return 0;
}

static int count_files(const char *dir)
{
    count_one_n = 0;
    nftw(dir, count_one, 16, FTW_PHYS);
    return count_one_n;
}

/* gc never sweeps chunks younger than its own start: age them */
static void backdate_chunks(env *v)
{
    char *c = tu_path2(v->tdir, "chunks");
    nftw(c, backdate_one, 16, FTW_PHYS);
    free(c);
}

typedef struct progress_log {
    uint64_t calls, last_done, last_total;
    int monotonic;
} progress_log;

static int progress_cb(uint64_t done, uint64_t total, void *p)
{
    progress_log *pl = p;
    if (done < pl->last_done)
        pl->monotonic = 0;
    pl->calls++;
    pl->last_done = done;
    pl->last_total = total;
    return 0;
}

static void test_round_trip_two_volumes_byte_identical(void **state)
{
    env v;
    env_open(&v, "ops-bk-rt");
    size_t s0 = 20 * CHUNK + 12345, s1 = 7 * CHUNK;
    char *d0 = make_disk(&v, "d0.raw", s0, 1);
    char *d1 = make_disk(&v, "d1.raw", s1, 2);
    harvbk_vm *vm = make_vm("default", "vm1", d0, d1);

    progress_log pl = { 0, 0, 0, 1 };
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.progress_cb = progress_cb;
    bo.progress_payload = &pl;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", &bo), 0);
    assert_string_equal(harvbk_op_kind(op), "backup");
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_READY);
    assert_int_equal(harvbk_op_result(op), 0);
    uint64_t done = 0, total = 0;
    assert_int_equal(harvbk_op_progress(op, &done, &total), 0);
    assert_int_equal(total, s0 + s1);
    assert_int_equal(done, total);
    assert_true(pl.calls > 0);
    assert_true(pl.monotonic);
    assert_int_equal(pl.last_total, s0 + s1);
    char msg[16];
    assert_int_equal(harvbk_op_errmsg_copy(op, msg, sizeof msg), 0);
    harvbk_op_free(op);

    /* list + show */
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    const harvbk_backup_info *li = harvbk_backup_list_at(l, 0);
    assert_string_equal(harvbk_backup_info_name(li), "b1");
    assert_int_equal(harvbk_backup_info_state(li), HARVBK_STATE_READY);
    harvbk_backup_list_free(l);

    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_string_equal(harvbk_backup_info_namespace(in), "default");
    assert_string_equal(harvbk_backup_info_vm_name(in), "vm1");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_string_equal(harvbk_backup_info_error(in), "");
    assert_int_equal(harvbk_backup_info_logical_bytes(in), s0 + s1);
    assert_int_equal(harvbk_backup_info_progress_bytes(in), s0 + s1);
    assert_true(harvbk_backup_info_uploaded_bytes(in) > 0);
    /* zeros and holes are not stored */
    assert_true(harvbk_backup_info_uploaded_bytes(in) < s0 + s1);
    assert_int_equal(harvbk_backup_info_volume_count(in), 2);
    assert_string_equal(harvbk_backup_info_volume_name(in, 0), "disk0");
    assert_int_equal(harvbk_backup_info_volume_size(in, 0), s0);
    assert_string_equal(harvbk_backup_info_volume_name(in, 1), "disk1");
    assert_int_equal(harvbk_backup_info_volume_size(in, 1), s1);
    assert_int_equal(harvbk_backup_info_crash_consistent(in), 0);
    int64_t now = (int64_t)time(NULL);
    assert_true(harvbk_backup_info_created(in) <= now && harvbk_backup_info_created(in) > now - 600);
    char *json = NULL;
    assert_int_equal(harvbk_backup_info_to_json(in, &json), 0);
    const char *keys[] = { "\"namespace\":\"default\"", "\"name\":\"b1\"",
                           "\"vm\":\"default/vm1\"", "\"vm_namespace\":\"default\"",
                           "\"vm_name\":\"vm1\"", "\"state\":\"Ready\"", "\"logical_bytes\":",
                           "\"uploaded_bytes\":", "\"progress_bytes\":", "\"error\":\"\"",
                           "\"created\":\"20", "\"crash_consistent\":false",
                           "\"volumes\":[{\"name\":\"disk0\"" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(strstr(json, keys[i]));
    harvbk_string_free(json);
    harvbk_backup_info_free(in);

    /* verify */
    progress_log vl = { 0, 0, 0, 1 };
    harvbk_op_options oo = HARVBK_OP_OPTIONS_INIT;
    oo.progress_cb = progress_cb;
    oo.progress_payload = &vl;
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "b1", &oo), 0);
    assert_string_equal(harvbk_op_kind(op), "verify");
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_op_progress(op, &done, &total), 0);
    assert_int_equal(done, total);
    harvbk_op_free(op);
    assert_true(vl.monotonic);

    /* restore as a new VM */
    char *rdir = tu_path2(v.root, "restored/vm1r");
    assert_int_equal(run_restore(&v, "b1", "vm1-restored", rdir), 0);
    char *r0 = tu_path2(rdir, "disk0.raw"), *r1 = tu_path2(rdir, "disk1.raw");
    assert_int_equal(tu_files_equal(d0, r0), 0);
    assert_int_equal(tu_files_equal(d1, r1), 0);
    assert_int_equal(count_files(rdir), 2); /* no partial files left */
    harvbk_vm *rvm = NULL;
    assert_int_equal(harvbk_vm_lookup(&rvm, v.ctx, "default", "vm1-restored"), 0);
    assert_int_equal(harvbk_vm_volume_count(rvm), 2);
    assert_string_equal(harvbk_vm_volume_path(rvm, 0), r0);
    assert_string_equal(harvbk_vm_volume_path(rvm, 1), r1);
    size_t ml = 0, ml0 = 0;
    const void *md = harvbk_vm_metadata(rvm, &ml);
    const void *md0 = harvbk_vm_metadata(vm, &ml0);
    assert_int_equal(ml, ml0);
    assert_memory_equal(md, md0, ml);
    assert_int_equal(harvbk_vm_image_count(rvm), 1);
    assert_string_equal(harvbk_vm_image(rvm, 0), "default/image-ubuntu");
    assert_int_equal(harvbk_vm_power_state(rvm), HARVBK_POWER_OFF);
    harvbk_vm_free(rvm);

    /* delete, then gc frees every chunk */
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), HARVBK_E_NOTFOUND);
    assert_null(in);
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 0);
    harvbk_backup_list_free(l);
    char *chunks = tu_path2(v.tdir, "chunks");
    int before = count_files(chunks);
    assert_true(before > 0);
    backdate_chunks(&v);
    assert_int_equal(harvbk_gc(&op, v.ctx, NULL), 0);
    assert_string_equal(harvbk_op_kind(op), "gc");
    assert_int_equal(harvbk_op_wait(op), 0);
    uint64_t nchunks = 0, nbytes = 0;
    assert_int_equal(harvbk_gc_result(op, &nchunks, &nbytes), 0);
    assert_int_equal(nchunks, (uint64_t)before);
    assert_true(nbytes > 0);
    harvbk_op_free(op);
    assert_int_equal(count_files(chunks), 0);

    free(chunks);
    free(r0);
    free(r1);
    free(rdir);
    harvbk_vm_free(vm);
    free(d0);
    free(d1);
    env_close(&v);
}

static void test_missing_disk_ends_in_error_and_nothing_ready(void **state)
{
    env v;
    env_open(&v, "ops-bk-missing");
    char *d0 = make_disk(&v, "d0.raw", 3 * CHUNK, 3);
    char *gone = tu_path2(v.disks, "gone.raw");
    harvbk_vm *vm = make_vm("default", "vm1", d0, gone);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", NULL), 0);
    int rc = harvbk_op_wait(op);
    assert_true(rc == HARVBK_E_NOTFOUND || rc == HARVBK_E_IO);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_ERROR);
    char msg[512];
    assert_true(harvbk_op_errmsg_copy(op, msg, sizeof msg) > 0);
    assert_non_null(strstr(msg, "disk1"));
    assert_non_null(strstr(msg, gone));
    harvbk_op_free(op);

    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    assert_non_null(strstr(harvbk_backup_info_error(in), "disk1"));
    harvbk_backup_info_free(in);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    assert_int_equal(harvbk_backup_info_state(harvbk_backup_list_at(l, 0)), HARVBK_STATE_ERROR);
    harvbk_backup_list_free(l);
    /* nothing committed in the target */
    char *man = tu_path2(v.tdir, "backups/default/b1/manifest.json");
    assert_int_equal(access(man, F_OK), -1);
    /* not restorable, not verifiable: its state says why */
    char *rdir = tu_path2(v.root, "r");
    assert_int_equal(run_restore(&v, "b1", "x", rdir), HARVBK_E_STATE);
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "b1", NULL), HARVBK_E_STATE);

    /* a new backup may reuse the name of a failed one */
    harvbk_vm *ok = make_vm("default", "vm1", d0, NULL);
    assert_int_equal(run_backup(&v, ok, "b1", NULL), 0);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    harvbk_backup_info_free(in);

    /* deleting an Error record removes it */
    harvbk_vm *bad = make_vm("default", "vm1", gone, NULL);
    assert_int_equal(run_backup(&v, bad, "b2", NULL), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b2"), 0);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b2"), HARVBK_E_NOTFOUND);

    harvbk_vm_free(bad);
    harvbk_vm_free(ok);
    free(rdir);
    free(man);
    harvbk_vm_free(vm);
    free(gone);
    free(d0);
    env_close(&v);
}

static void test_start_errors_are_returned_at_once(void **state)
{
    env v;
    env_open(&v, "ops-bk-start");
    char *d0 = make_disk(&v, "d0.raw", 2 * CHUNK, 4);
    harvbk_vm *vm = make_vm("default", "vm1", d0, NULL);
    assert_int_equal(run_backup(&v, vm, "b1", NULL), 0);

    harvbk_op *op = (harvbk_op *)1;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", NULL), HARVBK_E_EXISTS);
    assert_null(op);
    assert_non_null(strstr(harvbk_ctx_errmsg(v.ctx), "default/b1"));
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "B1", NULL), HARVBK_E_INVALID);
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "", NULL), HARVBK_E_INVALID);
    assert_int_equal(harvbk_backup_create(&op, v.ctx, NULL, "b2", NULL), HARVBK_E_INVALID);
    harvbk_vm *empty = NULL;
    assert_int_equal(harvbk_vm_new(&empty, "default", "empty"), 0);
    assert_int_equal(harvbk_backup_create(&op, v.ctx, empty, "b2", NULL), HARVBK_E_INVALID);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.flags = 0x80;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b2", &bo), HARVBK_E_INVALID);
    assert_int_equal(harvbk_backup_verify(&op, v.ctx, "default", "nope", NULL),
                     HARVBK_E_NOTFOUND);
    assert_null(op);

    /* no target */
    char *sd2 = tu_path2(v.root, "state2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    assert_int_equal(harvbk_backup_create(&op, c2, vm, "b9", NULL), HARVBK_E_NOTARGET);
    assert_int_equal(harvbk_backup_list_get(NULL, c2), HARVBK_E_INVALID);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, c2), HARVBK_E_NOTARGET);
    assert_int_equal(harvbk_gc(&op, c2, NULL), HARVBK_E_NOTARGET);
    assert_null(op);
    harvbk_ctx_free(c2);

    free(sd2);
    harvbk_vm_free(empty);
    harvbk_vm_free(vm);
    free(d0);
    env_close(&v);
}

/* ---- a volume whose reads wait for the test ---- */

static void test_running_backup_is_visible_and_guarded(void **state)
{
    env v;
    env_open(&v, "ops-bk-busy");
    size_t size = 6 * CHUNK;
    uint8_t *data = malloc(size);
    tu_fill_random(data, size, 5);
    tu_gate g;
    tu_gate_init(&g, data, size, 0);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", size, tu_gated_read, NULL, &g), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", NULL), 0);
    tu_gate_wait_entered(&g);

    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_INPROGRESS);
    assert_int_equal(harvbk_op_wait_timeout(op, 10), HARVBK_E_TIMEOUT);
    unsigned n = 0;
    assert_int_equal(harvbk_ctx_ops_in_progress(v.ctx, &n), 0);
    assert_int_equal(n, 1);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_INPROGRESS);
    assert_int_equal(harvbk_backup_info_logical_bytes(in), size);
    harvbk_backup_info_free(in);
    harvbk_op *op2 = NULL;
    assert_int_equal(harvbk_backup_create(&op2, v.ctx, vm, "b1", NULL), HARVBK_E_EXISTS);
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "b1"), HARVBK_E_BUSY);
    assert_int_equal(harvbk_restore_create(&op2, v.ctx, "default", "b1",
                                           &(harvbk_restore_options){
                                               .version = 1, .new_vm_namespace = "default",
                                               .new_vm_name = "r", .target_dir = v.disks }),
                     HARVBK_E_STATE);
    /* the target cannot change under a running operation */
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_ctx_get_target(v.ctx, &cfg), 0);
    assert_int_equal(harvbk_ctx_set_target(v.ctx, cfg), HARVBK_E_BUSY);
    harvbk_target_config_free(cfg);
    /* gc refuses while a writer holds the target */
    assert_int_equal(harvbk_gc(&op2, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(op2), HARVBK_E_BUSY);
    char msg[256];
    harvbk_op_errmsg_copy(op2, msg, sizeof msg);
    assert_non_null(strstr(msg, "being written"));
    uint64_t c = 1, b = 1;
    assert_int_equal(harvbk_gc_result(op2, &c, &b), 0);
    assert_int_equal(c, 0);
    harvbk_op_free(op2);

    tu_gate_open(&g);
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_op_wait_timeout(op, 0), 0);
    assert_int_equal(harvbk_ctx_ops_in_progress(v.ctx, &n), 0);
    assert_int_equal(n, 0);
    harvbk_op_free(op);
    assert_int_equal(harvbk_gc_result(NULL, &c, &b), HARVBK_E_INVALID);

    harvbk_vm_free(vm);
    free(data);
    env_close(&v);
}

/* progress_bytes of the record file at path, or UINT64_MAX when unreadable */
static uint64_t record_progress(const char *path)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return UINT64_MAX;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return UINT64_MAX;
    buf[n] = '\0';
    const char *p = strstr(buf, "\"progress_bytes\":");
    return p ? strtoull(p + strlen("\"progress_bytes\":"), NULL, 10) : UINT64_MAX;
}

/* The InProgress record holds the bytes done so far, rewritten about once a
 * second beside the pipeline: also while the pipeline waits for a volume's
 * read (the pipeline's workers wrote it before, when they counted progress,
 * so a read that stalled left the record as it was). */
static void test_progress_is_recorded_while_a_read_waits(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ops-bk-progress");
    size_t size = 8 * CHUNK;
    uint8_t *data = malloc(size);
    tu_fill_random(data, size, 9);
    tu_gate g;
    tu_gate_init(&g, data, size, 3 * CHUNK);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", size, tu_gated_read, NULL, &g),
                     0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", NULL), 0);
    tu_gate_wait_entered(&g); /* chunks 0..2 are read, the read of chunk 3 waits */

    char *rec = tu_path2(v.state, "backups/default/b1.json");
    uint64_t seen = record_progress(rec);
    assert_true(seen < 3 * CHUNK); /* the start's record */
    /* at most 10 s (a bound for a loaded machine, the ticker's period is 1 s) */
    for (int i = 0; i < 1000 && seen != 3 * CHUNK; i++) {
        usleep(10 * 1000);
        seen = record_progress(rec);
    }
    assert_int_equal(seen, 3 * CHUNK);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_INPROGRESS);

    tu_gate_open(&g);
    assert_int_equal(harvbk_op_wait(op), 0);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_READY);
    harvbk_op_free(op);
    assert_int_equal(record_progress(rec), size);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_progress_bytes(in), size);
    harvbk_backup_info_free(in);

    /* the backup restores to the bytes read */
    char *out = tu_path2(v.root, "restored");
    mkdir(out, 0755);
    assert_int_equal(run_restore(&v, "b1", "r1", out), 0);
    char *disk = tu_path2(out, "disk0.raw");
    uint8_t *back = malloc(size);
    int fd = open(disk, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, back, size, 0), (ssize_t)size);
    close(fd);
    assert_memory_equal(back, data, size);

    free(back);
    free(disk);
    free(out);
    free(rec);
    harvbk_vm_free(vm);
    free(data);
    env_close(&v);
}

static void test_second_context_on_same_target_lists_and_restores(void **state)
{
    env v;
    env_open(&v, "ops-bk-two");
    char *d0 = make_disk(&v, "d0.raw", 9 * CHUNK + 100, 6);
    char *d1 = make_disk(&v, "d1.raw", 4 * CHUNK, 7);
    harvbk_vm *vm = make_vm("prod", "db", d0, d1);
    assert_int_equal(run_backup(&v, vm, "nightly", NULL), 0);

    char *sd2 = tu_path2(v.root, "cluster2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    assert_string_not_equal(harvbk_ctx_id(c2), harvbk_ctx_id(v.ctx));
    tu_set_file_target(c2, v.tdir);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, c2), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    const harvbk_backup_info *in = harvbk_backup_list_at(l, 0);
    assert_string_equal(harvbk_backup_info_namespace(in), "prod");
    assert_string_equal(harvbk_backup_info_name(in), "nightly");
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    harvbk_backup_list_free(l);

    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "prod";
    ro.new_vm_name = "db";
    char *rdir = tu_path2(v.root, "c2disks");
    ro.target_dir = rdir;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_restore_create(&op, c2, "prod", "nightly", &ro), 0);
    assert_string_equal(harvbk_op_kind(op), "restore");
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    char *r0 = tu_path2(rdir, "disk0.raw"), *r1 = tu_path2(rdir, "disk1.raw");
    assert_int_equal(tu_files_equal(d0, r0), 0);
    assert_int_equal(tu_files_equal(d1, r1), 0);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, c2, "prod", "db"), 0);
    harvbk_vm_free(got);
    /* the first context's catalog is its own */
    assert_int_equal(harvbk_vm_lookup(&got, v.ctx, "prod", "db"), HARVBK_E_NOTFOUND);

    /* an unfinished backup of the first context is not the second's business */
    harvbk_vm *bad = make_vm("prod", "db", "/nonexistent/disk", NULL);
    assert_true(run_backup(&v, bad, "broken", NULL) < 0);
    assert_int_equal(harvbk_backup_list_get(&l, c2), 0);
    assert_int_equal(harvbk_backup_list_count(l), 1);
    harvbk_backup_list_free(l);
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 2);
    assert_string_equal(harvbk_backup_info_name(harvbk_backup_list_at(l, 0)), "broken");
    assert_string_equal(harvbk_backup_info_name(harvbk_backup_list_at(l, 1)), "nightly");
    harvbk_backup_list_free(l);

    /* deleted by the second context: gone for the first one too, once its
     * catalog is synced (marked gone at the first sync, forgotten at the next) */
    assert_int_equal(harvbk_backup_delete(c2, "prod", "nightly"), 0);
    harvbk_backup_info *gone = NULL;
    assert_int_equal(harvbk_backup_get(&gone, v.ctx, "prod", "nightly"), 0);
    assert_int_equal(harvbk_backup_info_state(gone), HARVBK_STATE_READY); /* not synced yet */
    harvbk_backup_info_free(gone);
    assert_int_equal(harvbk_target_sync(v.ctx, NULL), 0);
    assert_int_equal(harvbk_backup_get(&gone, v.ctx, "prod", "nightly"), 0);
    assert_int_equal(harvbk_backup_info_state(gone), HARVBK_STATE_ERROR);
    assert_true(harvbk_backup_info_catalog_flags(gone) & HARVBK_BACKUP_FLAG_GONE);
    harvbk_backup_info_free(gone);
    assert_int_equal(harvbk_target_sync(v.ctx, NULL), 0);
    assert_int_equal(harvbk_backup_get(&gone, v.ctx, "prod", "nightly"), HARVBK_E_NOTFOUND);
    assert_int_equal(harvbk_backup_delete(v.ctx, "prod", "nightly"), HARVBK_E_NOTFOUND);

    harvbk_vm_free(bad);
    harvbk_ctx_free(c2);
    free(r0);
    free(r1);
    free(rdir);
    free(sd2);
    harvbk_vm_free(vm);
    free(d0);
    free(d1);
    env_close(&v);
}

static void test_gc_refuses_while_another_context_writes(void **state)
{
    env v;
    env_open(&v, "ops-bk-gc");
    char *sd2 = tu_path2(v.root, "cluster2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    tu_set_file_target(c2, v.tdir);

    size_t size = 3 * CHUNK;
    uint8_t *data = malloc(size);
    tu_fill_random(data, size, 9);
    tu_gate g;
    tu_gate_init(&g, data, size, 0);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", size, tu_gated_read, NULL, &g), 0);
    harvbk_op *bk = NULL;
    assert_int_equal(harvbk_backup_create(&bk, c2, vm, "b1", NULL), 0);
    tu_gate_wait_entered(&g); /* its writer lease is published */

    harvbk_op *gc = NULL;
    assert_int_equal(harvbk_gc(&gc, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(gc), HARVBK_E_BUSY);
    char msg[256];
    harvbk_op_errmsg_copy(gc, msg, sizeof msg);
    assert_non_null(strstr(msg, "1 writer"));
    harvbk_op_free(gc);

    tu_gate_open(&g);
    assert_int_equal(harvbk_op_wait(bk), 0);
    harvbk_op_free(bk);
    assert_int_equal(harvbk_gc(&gc, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(gc), 0);
    uint64_t c = 99;
    assert_int_equal(harvbk_gc_result(gc, &c, NULL), 0);
    assert_int_equal(c, 0); /* everything is referenced by b1 */
    harvbk_op_free(gc);

    /* b1 is intact */
    harvbk_op *vf = NULL;
    assert_int_equal(harvbk_backup_verify(&vf, v.ctx, "default", "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(vf), 0);
    harvbk_op_free(vf);

    harvbk_vm_free(vm);
    free(data);
    harvbk_ctx_free(c2);
    free(sd2);
    env_close(&v);
}

static void test_incremental_with_changed_ranges(void **state)
{
    env v;
    env_open(&v, "ops-bk-incr");
    size_t size = 16 * CHUNK;
    char *d0 = make_disk(&v, "d0.raw", size, 10);
    harvbk_vm *vm = make_vm("default", "vm1", d0, NULL);
    assert_int_equal(run_backup(&v, vm, "b1", NULL), 0);
    harvbk_backup_info *i1 = NULL;
    assert_int_equal(harvbk_backup_get(&i1, v.ctx, "default", "b1"), 0);

    /* change chunk 1 and chunk 12 of the disk */
    int fd = open(d0, O_RDWR);
    uint8_t patch[CHUNK];
    tu_fill_random(patch, sizeof patch, 11);
    assert_int_equal(pwrite(fd, patch, 100, CHUNK + 5), 100);
    assert_int_equal(pwrite(fd, patch, 200, 12 * CHUNK + 7), 200);
    close(fd);

    /* ranges name only chunk 1: chunk 12 is taken from b1 without reading */
    harvbk_ranges *rg = NULL;
    assert_int_equal(harvbk_ranges_new(&rg), 0);
    assert_int_equal(harvbk_ranges_add(rg, "disk0", CHUNK + 5, 100), 0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.changed_ranges = rg;
    assert_int_equal(run_backup(&v, vm, "b2", &bo), 0);
    harvbk_ranges_free(rg);
    harvbk_backup_info *i2 = NULL;
    assert_int_equal(harvbk_backup_get(&i2, v.ctx, "default", "b2"), 0);
    assert_true(harvbk_backup_info_uploaded_bytes(i2) < harvbk_backup_info_uploaded_bytes(i1));

    /* full read: b3 sees both changes */
    assert_int_equal(run_backup(&v, vm, "b3", NULL), 0);

    char *r2 = tu_path2(v.root, "r2"), *r3 = tu_path2(v.root, "r3");
    assert_int_equal(run_restore(&v, "b2", "vm-b2", r2), 0);
    assert_int_equal(run_restore(&v, "b3", "vm-b3", r3), 0);
    char *f2 = tu_path2(r2, "disk0.raw"), *f3 = tu_path2(r3, "disk0.raw");
    assert_int_equal(tu_files_equal(d0, f3), 0);
    assert_int_not_equal(tu_files_equal(d0, f2), 0);
    /* b2 has the new chunk 1 and the old chunk 12 */
    uint8_t *a = malloc(size), *b = malloc(size);
    FILE *fa = fopen(d0, "rb"), *fb = fopen(f2, "rb");
    assert_int_equal(fread(a, 1, size, fa), size);
    assert_int_equal(fread(b, 1, size, fb), size);
    fclose(fa);
    fclose(fb);
    assert_memory_equal(a, b, 12 * CHUNK);
    assert_memory_not_equal(a + 12 * CHUNK, b + 12 * CHUNK, CHUNK);
    assert_memory_equal(a + 13 * CHUNK, b + 13 * CHUNK, size - 13 * CHUNK);
    free(a);
    free(b);

    /* "nothing changed" right after b2 and b3 (likely completed in the same
     * second, so the previous backup is ambiguous): still exact */
    assert_int_equal(harvbk_ranges_new(&rg), 0);
    bo.changed_ranges = rg;
    assert_int_equal(run_backup(&v, vm, "b4", &bo), 0);
    harvbk_ranges_free(rg);
    char *r4 = tu_path2(v.root, "r4");
    assert_int_equal(run_restore(&v, "b4", "vm-b4", r4), 0);
    char *f4 = tu_path2(r4, "disk0.raw");
    assert_int_equal(tu_files_equal(d0, f4), 0);
    free(f4);
    free(r4);

    harvbk_backup_info_free(i1);
    harvbk_backup_info_free(i2);
    free(f2);
    free(f3);
    free(r2);
    free(r3);
    harvbk_vm_free(vm);
    free(d0);
    env_close(&v);
}

/* Two clusters share a target and both have a VM named default/vm1 (different
 * VMs, same disk size). Cluster A's changed ranges are relative to A's own
 * previous backup: a newer backup of B's same-named VM must never be used as
 * the base, or A's backup would silently hold B's bytes. */
static void test_changed_ranges_never_use_another_contexts_backup(void **state)
{
    env v;
    env_open(&v, "ops-bk-rgother");
    size_t size = 8 * CHUNK;
    char *da = make_disk(&v, "a.raw", size, 21);
    char *db = make_disk(&v, "b.raw", size, 22);
    harvbk_vm *vma = make_vm("default", "vm1", da, NULL);
    harvbk_vm *vmb = make_vm("default", "vm1", db, NULL);
    assert_int_equal(run_backup(&v, vma, "a1", NULL), 0);

    char *sd2 = tu_path2(v.root, "cluster2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    tu_set_file_target(c2, v.tdir);
    usleep(20000); /* b1 completes strictly later than a1 */
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, c2, vmb, "b1", NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    harvbk_op_free(op);
    usleep(20000);

    /* nothing changed on A's disk since a1 */
    harvbk_ranges *rg = NULL;
    assert_int_equal(harvbk_ranges_new(&rg), 0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.changed_ranges = rg;
    assert_int_equal(run_backup(&v, vma, "a2", &bo), 0);
    harvbk_ranges_free(rg);

    char *r = tu_path2(v.root, "ra2");
    assert_int_equal(run_restore(&v, "a2", "vm-a2", r), 0);
    char *f = tu_path2(r, "disk0.raw");
    assert_int_equal(tu_files_equal(da, f), 0);

    free(f);
    free(r);
    harvbk_ctx_free(c2);
    free(sd2);
    harvbk_vm_free(vma);
    harvbk_vm_free(vmb);
    free(da);
    free(db);
    env_close(&v);
}

static void test_free_context_cancels_running_backup(void **state)
{
    env v;
    env_open(&v, "ops-bk-ctxfree");
    size_t size = 64 * CHUNK;
    uint8_t *data = malloc(size);
    tu_fill_random(data, size, 12);
    tu_gate g;
    tu_gate_init(&g, data, size, 0);
    g.open = 1; /* reads go through, the op is simply running */
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", "vm1"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", size, tu_gated_read, NULL, &g), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, "b1", NULL), 0);
    harvbk_ctx_free(v.ctx); /* cancels and waits */
    v.ctx = NULL;
    assert_int_not_equal(harvbk_op_state(op), HARVBK_STATE_INPROGRESS);
    int rc = harvbk_op_result(op);
    assert_true(rc == 0 || rc == HARVBK_E_CANCELLED);
    harvbk_op_free(op); /* the handle outlives its context */
    harvbk_vm_free(vm);
    free(data);
    env_close(&v);
}

/* A process died while writing backup "dead": its record says InProgress,
 * its writer lease is still fresh in the target (gc would refuse for the
 * lease's whole TTL) and it left a temporary object. Reopening the context
 * marks the record interrupted; the next use of the store removes both. */
static void test_reopen_cleans_up_after_a_dead_writer(void **state)
{
    env v;
    env_open(&v, "ops-bk-dead");
    char *cfgp = tu_path2(v.tdir, "harvbk-store.json");
    FILE *f = fopen(cfgp, "rb");
    char cfg[4096];
    size_t n = fread(cfg, 1, sizeof cfg - 1, f);
    cfg[n] = '\0';
    fclose(f);
    char *sid = strstr(cfg, "\"store_id\":\"");
    assert_non_null(sid);
    sid += strlen("\"store_id\":\"");
    sid[36] = '\0';

    const char *owner = "11111111-2222-4333-8444-555555555555-4242-deadbeef";
    char text[1024];
    char *locks = tu_path2(v.tdir, "locks");
    mkdir(locks, 0755);
    char lease[256];
    snprintf(lease, sizeof lease, "%s/writer-%s.json", locks, owner);
    snprintf(text, sizeof text, "{\"role\":\"writer\",\"owner\":\"%s\",\"heartbeat\":%lld}",
             owner, (long long)time(NULL));
    assert_int_equal(tu_write_file(lease, text, strlen(text)), 0);
    char tmpf[256];
    snprintf(tmpf, sizeof tmpf, "%s/tmp/%s-7-abcdef", v.tdir, owner);
    assert_int_equal(tu_write_file(tmpf, "partial", 7), 0);

    harvbk_op *gc = NULL;
    assert_int_equal(harvbk_gc(&gc, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(gc), HARVBK_E_BUSY);
    harvbk_op_free(gc);
    harvbk_ctx_free(v.ctx);

    char *recdir = tu_path2(v.state, "backups/default");
    char *cmd = malloc(strlen(recdir) + 16);
    sprintf(cmd, "mkdir -p '%s'", recdir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *rec = tu_path2(recdir, "dead.json");
    snprintf(text, sizeof text,
             "{\"namespace\":\"default\",\"name\":\"dead\",\"vm_namespace\":\"default\","
             "\"vm_name\":\"vm1\",\"state\":\"InProgress\",\"error\":\"\",\"created\":1,"
             "\"owner\":\"%s\",\"store_id\":\"%s\",\"volumes\":[]}",
             owner, sid);
    assert_int_equal(tu_write_file(rec, text, strlen(text)), 0);

    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "dead"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    assert_non_null(strstr(harvbk_backup_info_error(in), "interrupted"));
    harvbk_backup_info_free(in);
    /* the get answered from the catalog; the next use of the store cleans up */
    assert_int_equal(harvbk_target_sync(v.ctx, NULL), 0);
    assert_int_equal(access(lease, F_OK), -1);
    assert_int_equal(access(tmpf, F_OK), -1);
    assert_int_equal(harvbk_gc(&gc, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(gc), 0);
    harvbk_op_free(gc);
    /* an interrupted backup is deleted like a failed one */
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "dead"), 0);
    assert_int_equal(access(rec, F_OK), -1);

    free(rec);
    free(recdir);
    free(locks);
    free(cfgp);
    env_close(&v);
}

/* kill -9 after the manifest was committed but before the local record said
 * Ready: the record is left InProgress with nobody holding its lock. The
 * backup is Ready (its manifest is the commit) and recovery must not turn it
 * into a failed one: once it is deleted (here by another cluster) it must not
 * come back as an "interrupted" Error backup. */
static void test_recovery_never_marks_a_committed_backup_error(void **state)
{
    env v;
    env_open(&v, "ops-bk-readyrec");
    char *d0 = make_disk(&v, "d0.raw", 4 * CHUNK, 31);
    harvbk_vm *vm = make_vm("default", "vm1", d0, NULL);
    assert_int_equal(run_backup(&v, vm, "b1", NULL), 0);
    harvbk_ctx_free(v.ctx);

    /* rewind the record to what it said just before the commit */
    char *rec = tu_path2(v.state, "backups/default/b1.json");
    FILE *f = fopen(rec, "rb");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *st = strstr(text, "\"state\":\"Ready\"");
    assert_non_null(st);
    char fixed[8192];
    snprintf(fixed, sizeof fixed, "%.*s\"state\":\"InProgress\"%s", (int)(st - text), text,
             st + strlen("\"state\":\"Ready\""));
    assert_int_equal(tu_write_file(rec, fixed, strlen(fixed)), 0);

    /* recovery by a process that never looks at the target (e.g. `vm list`) */
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    harvbk_ctx_free(v.ctx);
    assert_int_equal(harvbk_ctx_open(&v.ctx, v.state, NULL), 0);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    harvbk_backup_info_free(in);

    char *sd2 = tu_path2(v.root, "cluster2");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    tu_set_file_target(c2, v.tdir);
    assert_int_equal(harvbk_backup_delete(c2, "default", "b1"), 0);
    harvbk_ctx_free(c2);

    /* the first context learns it through syncs: gone, then forgotten */
    assert_int_equal(harvbk_target_sync(v.ctx, NULL), 0);
    assert_int_equal(harvbk_target_sync(v.ctx, NULL), 0);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), HARVBK_E_NOTFOUND);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    assert_int_equal(harvbk_backup_list_count(l), 0);
    harvbk_backup_list_free(l);

    free(sd2);
    free(rec);
    harvbk_vm_free(vm);
    free(d0);
    env_close(&v);
}

/* A disk path that became a FIFO (or a socket, or a character device) must
 * not block the backup: it ends at once with HARVBK_E_INVALID naming the
 * volume and the path, is recorded as Error, and releases its writer lease
 * (a gc of the target runs right after). A hang fails through alarm(). */
static void test_special_file_volume_refused_without_blocking(void **state)
{
    env v;
    env_open(&v, "ops-bk-fifo");
    char *d0 = make_disk(&v, "d0.raw", 3 * CHUNK, 3);
    char *fifo = tu_path2(v.disks, "fifo.raw");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    char *sock = tu_path2(v.disks, "sock.raw");
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(sfd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    assert_true(strlen(sock) < sizeof sa.sun_path);
    strcpy(sa.sun_path, sock);
    assert_int_equal(bind(sfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(sfd, 1), 0);
    const char *const bad[] = { fifo, sock, "/dev/null" };
    const char *const names[] = { "bfifo", "bsock", "bchr" };

    alarm(60); /* a backup blocked in open() or read() fails the test */
    for (size_t i = 0; i < 3; i++) {
        harvbk_vm *vm = make_vm("default", "vm1", d0, bad[i]);
        harvbk_op *op = NULL;
        assert_int_equal(harvbk_backup_create(&op, v.ctx, vm, names[i], NULL), 0);
        assert_int_equal(harvbk_op_wait(op), HARVBK_E_INVALID);
        assert_int_equal(harvbk_op_state(op), HARVBK_STATE_ERROR);
        char msg[512];
        assert_true(harvbk_op_errmsg_copy(op, msg, sizeof msg) > 0);
        assert_non_null(strstr(msg, "disk1"));
        assert_non_null(strstr(msg, bad[i]));
        assert_non_null(strstr(msg, "not a regular file or block device"));
        harvbk_op_free(op);
        harvbk_backup_info *in = NULL;
        assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", names[i]), 0);
        assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
        harvbk_backup_info_free(in);
        /* a snapshot of it too (the same volume opening) */
        assert_int_equal(harvbk_snapshot_create(&op, v.ctx, vm, names[i], NULL), 0);
        assert_int_equal(harvbk_op_wait(op), HARVBK_E_INVALID);
        harvbk_op_free(op);
        harvbk_vm_free(vm);
    }
    /* no writer lease left behind: gc is not refused */
    harvbk_op *gc = NULL;
    assert_int_equal(harvbk_gc(&gc, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(gc), 0);
    harvbk_op_free(gc);
    alarm(0);

    close(sfd);
    free(sock);
    free(fifo);
    free(d0);
    env_close(&v);
}

/* A new VM sharing all but two chunks with another VM's backup, into a
 * file:// target: the backup lists the store once and keeps what it said,
 * so the shared chunks are not stored again and the two new ones are put
 * even where a stray object (shorter than a chunk header) already sits at
 * one's key (absent from the listing: put over it). The outcome: the store
 * holds each chunk once, both VMs restore byte for byte, and after the first
 * VM's backup is deleted gc removes only its two own chunks. */
static void test_new_vm_shares_chunks_and_puts_over_strays(void **state)
{
    (void)state;
    env v;
    env_open(&v, "ops-bk-share");
    size_t size = 40 * CHUNK;
    char *d0 = make_disk(&v, "a.raw", size, 11);
    harvbk_vm *a = make_vm("default", "vm-a", d0, NULL);
    assert_int_equal(run_backup(&v, a, "a1", NULL), 0);
    char *chunks = tu_path2(v.tdir, "chunks");
    int after_a = count_files(chunks);
    assert_true(after_a > 20);

    /* vm-b: vm-a's disk with chunks 1 and 30 replaced by new bytes */
    uint8_t *buf = malloc(size);
    int fd = open(d0, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    uint8_t *n1 = buf + 1 * CHUNK, *n30 = buf + 30 * CHUNK;
    tu_fill_random(n1, CHUNK, 501);
    tu_fill_random(n30, CHUNK, 502);
    char *d1 = tu_path2(v.disks, "b.raw");
    assert_int_equal(tu_write_file(d1, buf, size), 0);
    /* a stray object at the key of the first new chunk */
    uint8_t id[HB_DIGEST_LEN];
    hb_sha256(n1, CHUNK, id);
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    char *stray = tu_path2(v.tdir, key);
    char *slash = strrchr(stray, '/');
    *slash = 0;
    slash[-3] = 0; /* .../chunks/aa */
    assert_true(mkdir(stray, 0755) == 0 || errno == EEXIST);
    slash[-3] = '/'; /* .../chunks/aa/bb */
    assert_true(mkdir(stray, 0755) == 0 || errno == EEXIST);
    *slash = '/';
    assert_int_equal(tu_write_file(stray, "short", 5), 0);
    assert_int_equal(count_files(chunks), after_a + 1);

    harvbk_vm *b = make_vm("default", "vm-b", d1, NULL);
    assert_int_equal(run_backup(&v, b, "b1", NULL), 0);
    assert_int_equal(count_files(chunks), after_a + 2); /* the stray replaced */
    struct stat sb;
    assert_int_equal(stat(stray, &sb), 0);
    assert_true(sb.st_size > 32);

    char *rdir = tu_path2(v.root, "r");
    assert_int_equal(mkdir(rdir, 0755), 0);
    char *rb = tu_path2(rdir, "disk0.raw");
    assert_int_equal(run_restore(&v, "b1", "b-copy", rdir), 0);
    assert_int_equal(tu_files_equal(rb, d1), 0);

    /* gc after vm-a's backup is deleted: only its two own chunks go */
    assert_int_equal(harvbk_backup_delete(v.ctx, "default", "a1"), 0);
    backdate_chunks(&v);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_gc(&op, v.ctx, NULL), 0);
    assert_int_equal(harvbk_op_wait(op), 0);
    uint64_t nchunks = 0, nbytes = 0;
    assert_int_equal(harvbk_gc_result(op, &nchunks, &nbytes), 0);
    harvbk_op_free(op);
    assert_int_equal(nchunks, 2);
    assert_int_equal(count_files(chunks), after_a);
    assert_int_equal(unlink(rb), 0);
    assert_int_equal(run_restore(&v, "b1", "b-copy2", rdir), 0);
    assert_int_equal(tu_files_equal(rb, d1), 0);

    free(rb);
    free(rdir);
    free(stray);
    free(buf);
    harvbk_vm_free(a);
    harvbk_vm_free(b);
    free(chunks);
    free(d0);
    free(d1);
    env_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_two_volumes_byte_identical),
        cmocka_unit_test(test_new_vm_shares_chunks_and_puts_over_strays),
        cmocka_unit_test(test_missing_disk_ends_in_error_and_nothing_ready),
        cmocka_unit_test(test_start_errors_are_returned_at_once),
        cmocka_unit_test(test_running_backup_is_visible_and_guarded),
        cmocka_unit_test(test_progress_is_recorded_while_a_read_waits),
        cmocka_unit_test(test_second_context_on_same_target_lists_and_restores),
        cmocka_unit_test(test_gc_refuses_while_another_context_writes),
        cmocka_unit_test(test_incremental_with_changed_ranges),
        cmocka_unit_test(test_changed_ranges_never_use_another_contexts_backup),
        cmocka_unit_test(test_free_context_cancels_running_backup),
        cmocka_unit_test(test_reopen_cleans_up_after_a_dead_writer),
        cmocka_unit_test(test_recovery_never_marks_a_committed_backup_error),
        cmocka_unit_test(test_special_file_volume_refused_without_blocking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
