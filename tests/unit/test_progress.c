/* tests/unit/test_progress.c - the progress hook runs on a thread of its own:
 * a slow hook never stalls the workers of a backup, restore or verify; calls
 * are coalesced (at most one per 100 ms), never overlap, never come after the
 * operation ended, may call into the library, and the last one reports
 * done == total - before the commit, so that a hook saying stop there still
 * cancels. gc reports bytes.
 *
 * "Never stalls": the volume's read (backup) or write (restore) callback
 * holds every byte past a gate until the hook has run once; the hook then
 * opens the gate and does not return until the operation has made progress.
 * Were the hook called by a worker while the workers' progress is serialised
 * (as it was), that progress could never happen (the test would wait out its
 * 60 s guard and fail). */
#include "testutil.h"

#include <harvbk.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536u
#define HOOK_SLEEP_MS 300u
#define GUARD_MS 60000u

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* 64 MiB; a quarter of it under valgrind, where the library runs ~50x slower */
static size_t disk_size(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return (size_t)(pre && strstr(pre, "vgpreload") ? 16u : 64u) << 20;
}

/* ---- the gate: volume I/O at or past `off` waits until it opens ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, timed_out;
    uint64_t off; /* UINT64_MAX: no gate */
} gate;

static void gate_init(gate *g, uint64_t off)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
    g->timed_out = 0;
    g->off = off;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_pass(gate *g, uint64_t off)
{
    if (off < g->off)
        return;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += GUARD_MS / 1000u;
    pthread_mutex_lock(&g->mu);
    while (!g->open) {
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) != 0) {
            g->timed_out = 1; /* the hook never ran: let the operation finish */
            g->open = 1;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

typedef struct memvol {
    uint8_t *data;
    size_t size;
    gate *g;
} memvol;

static int mem_read(void *buf, size_t len, uint64_t off, void *p)
{
    memvol *m = p;
    if (off + len > m->size)
        return HARVBK_E_IO;
    gate_pass(m->g, off);
    memcpy(buf, m->data + off, len);
    return 0;
}

static int mem_write(const void *buf, size_t len, uint64_t off, void *p)
{
    memvol *m = p;
    if (off + len > m->size)
        return HARVBK_E_IO;
    gate_pass(m->g, off);
    memcpy(m->data + off, buf, len);
    return 0;
}

/* ---- the hook ---- */

typedef struct hook {
    _Atomic(harvbk_op *) op; /* set once the create call returned */
    harvbk_ctx *ctx;
    unsigned sleep_ms;
    int stop_at_total; /* return non-zero when called with done == total */
    gate *g;           /* opened on the first call (may be NULL) */
    atomic_int inside, overlaps;
    /* written by the hook only (its calls never overlap, checked above) */
    unsigned calls, checked;
    uint64_t last_done, last_total;
    int backwards, over, bad_state, lib_errors;
    int opened, moved_while_inside;
} hook;

static void hook_init(hook *h, harvbk_ctx *ctx, unsigned sleep_ms, gate *g)
{
    memset(h, 0, sizeof *h);
    atomic_init(&h->op, NULL);
    atomic_init(&h->inside, 0);
    atomic_init(&h->overlaps, 0);
    h->ctx = ctx;
    h->sleep_ms = sleep_ms;
    h->g = g;
}

static harvbk_op *hook_op(hook *h, uint64_t deadline)
{
    harvbk_op *op;
    while (!(op = atomic_load(&h->op)) && now_ms() < deadline)
        usleep(1000);
    return op;
}

static int hook_cb(uint64_t done, uint64_t total, void *p)
{
    hook *h = p;
    if (atomic_fetch_add(&h->inside, 1) != 0)
        atomic_fetch_add(&h->overlaps, 1);
    h->calls++;
    if (done < h->last_done)
        h->backwards = 1;
    if (total && done > total)
        h->over = 1;
    h->last_done = done;
    h->last_total = total;
    /* the library may be called from here: the same operation, and others */
    harvbk_op *op = atomic_load(&h->op);
    if (op) {
        uint64_t d = 0, t = 0;
        if (harvbk_op_state(op) != HARVBK_STATE_INPROGRESS)
            h->bad_state++;
        if (harvbk_op_progress(op, &d, &t) != 0 || d < done)
            h->lib_errors++;
        h->checked++;
    }
    unsigned n = 0;
    if (harvbk_ctx_ops_in_progress(h->ctx, &n) != 0 || n < 1)
        h->lib_errors++;
    harvbk_backup_list *l = NULL;
    if (harvbk_backup_list_get(&l, h->ctx) != 0)
        h->lib_errors++;
    harvbk_backup_list_free(l);
    if (h->g && !h->opened) {
        /* let the I/O past the gate go on, and stay here until the workers
         * have moved the operation on */
        h->opened = 1;
        uint64_t deadline = now_ms() + GUARD_MS;
        harvbk_op *o = hook_op(h, deadline);
        uint64_t d0 = 0, d = 0;
        if (o)
            harvbk_op_progress(o, &d0, NULL);
        gate_open(h->g);
        while (o && now_ms() < deadline) {
            harvbk_op_progress(o, &d, NULL);
            if (d > d0) {
                h->moved_while_inside = 1;
                break;
            }
            usleep(2000);
        }
    }
    if (h->sleep_ms)
        usleep(h->sleep_ms * 1000u);
    int stop = h->stop_at_total && total && done == total;
    atomic_fetch_sub(&h->inside, 1);
    return stop;
}

/* The contract of every hook run, given the operation's wall time. */
static void hook_check(const hook *h, uint64_t elapsed_ms, uint64_t want_total, const char *what)
{
    fprintf(stderr, "%s: %u progress calls in %llu ms (hook sleeps %u ms a call)\n", what, h->calls,
            (unsigned long long)elapsed_ms, h->sleep_ms);
    assert_int_equal(atomic_load(&h->overlaps), 0);
    assert_true(h->calls >= 1);
    assert_true(h->calls <= elapsed_ms / 100u + 2u); /* coalesced */
    assert_int_equal(h->backwards, 0);
    assert_int_equal(h->over, 0);
    assert_int_equal(h->bad_state, 0); /* never after the operation ended */
    assert_int_equal(h->lib_errors, 0);
    if (want_total) {
        assert_int_equal(h->last_total, want_total);
        assert_int_equal(h->last_done, want_total); /* the last call: done == total */
    }
}

/* ---- fixture ---- */

typedef struct fx {
    char *root, *state, *target;
    harvbk_ctx *ctx;
    size_t size;
    uint8_t *data;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->root = tu_mkdtemp("progress");
    f->state = tu_path2(f->root, "state");
    f->target = tu_path2(f->root, "target");
    harvbk_ctx_options co = HARVBK_CTX_OPTIONS_INIT;
    co.threads = 4; /* several workers, whatever the machine */
    assert_int_equal(harvbk_ctx_open(&f->ctx, f->state, &co), 0);
    tu_set_file_target(f->ctx, f->target);
    f->size = disk_size();
    f->data = malloc(f->size);
    tu_fill_random(f->data, f->size, 42); /* incompressible: real work per chunk */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    harvbk_ctx_free(f->ctx);
    tu_rmrf(f->root);
    free(f->root);
    free(f->state);
    free(f->target);
    free(f->data);
    free(f);
    return 0;
}

static harvbk_vm *mem_vm(const char *name, memvol *m)
{
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "default", name), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "disk0", m->size, mem_read, NULL, m), 0);
    return vm;
}

static int wait_op(harvbk_op *op)
{
    /* generous: a loaded machine, sanitizers, valgrind */
    int rc = harvbk_op_wait_timeout(op, 20u * 60u * 1000u);
    assert_int_equal(rc, 0);
    return harvbk_op_result(op);
}

/* ---- backup ---- */

static void test_slow_hook_does_not_stall_a_backup(void **state)
{
    fx *f = *state;
    gate g;
    gate_init(&g, f->size / 8);
    memvol m = { f->data, f->size, &g };
    harvbk_vm *vm = mem_vm("vm1", &m);
    hook h;
    hook_init(&h, f->ctx, HOOK_SLEEP_MS, &g);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.progress_cb = hook_cb;
    bo.progress_payload = &h;
    harvbk_op *op = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "b1", &bo), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), 0);
    uint64_t elapsed = now_ms() - t0;
    harvbk_op_free(op);
    assert_int_equal(g.timed_out, 0);          /* the hook ran while I/O waited */
    assert_int_equal(h.moved_while_inside, 1); /* the workers went on meanwhile */
    assert_true(h.checked >= 1);
    hook_check(&h, elapsed, f->size, "backup");
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, f->ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_logical_bytes(in), f->size);
    harvbk_backup_info_free(in);
    harvbk_vm_free(vm);
}

/* ---- restore ---- */

static void test_slow_hook_does_not_stall_a_restore(void **state)
{
    fx *f = *state;
    gate g;
    gate_init(&g, f->size / 8);
    memvol out = { calloc(1, f->size), f->size, &g };
    assert_non_null(out.data);
    harvbk_vm *tvm = NULL;
    assert_int_equal(harvbk_vm_new(&tvm, "default", "copy"), 0);
    assert_int_equal(
        harvbk_vm_add_volume_callbacks(tvm, "disk0", out.size, NULL, mem_write, &out), 0);
    hook h;
    hook_init(&h, f->ctx, HOOK_SLEEP_MS, &g);
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = "copy";
    ro.target_vm = tvm;
    ro.progress_cb = hook_cb;
    ro.progress_payload = &h;
    harvbk_op *op = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(harvbk_restore_create(&op, f->ctx, "default", "b1", &ro), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), 0);
    uint64_t elapsed = now_ms() - t0;
    harvbk_op_free(op);
    assert_int_equal(g.timed_out, 0);
    assert_int_equal(h.moved_while_inside, 1);
    hook_check(&h, elapsed, f->size, "restore");
    assert_memory_equal(out.data, f->data, f->size); /* byte for byte */
    harvbk_vm_free(tvm);
    free(out.data);
}

/* ---- verify ---- */

static void test_slow_hook_during_a_verify(void **state)
{
    fx *f = *state;
    hook h;
    hook_init(&h, f->ctx, HOOK_SLEEP_MS, NULL);
    harvbk_op_options oo = HARVBK_OP_OPTIONS_INIT;
    oo.progress_cb = hook_cb;
    oo.progress_payload = &h;
    harvbk_op *op = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(harvbk_backup_verify(&op, f->ctx, "default", "b1", &oo), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), 0);
    uint64_t elapsed = now_ms() - t0;
    harvbk_op_free(op);
    hook_check(&h, elapsed, f->size, "verify");
}

/* ---- the last call comes before the commit ---- */

static void test_stop_at_the_last_call_cancels(void **state)
{
    fx *f = *state;
    gate g;
    gate_init(&g, UINT64_MAX);
    size_t small = 8 * CHUNK;
    memvol m = { f->data, small, &g };
    harvbk_vm *vm = mem_vm("vm2", &m);
    hook h;
    hook_init(&h, f->ctx, 0, NULL);
    h.stop_at_total = 1;
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.progress_cb = hook_cb;
    bo.progress_payload = &h;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "stopped", &bo), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), HARVBK_E_CANCELLED);
    harvbk_op_free(op);
    assert_int_equal(h.last_done, small); /* it said stop on done == total ... */
    assert_int_equal(atomic_load(&h.overlaps), 0);
    harvbk_backup_info *in = NULL; /* ... and the backup is not Ready */
    assert_int_equal(harvbk_backup_get(&in, f->ctx, "default", "stopped"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_ERROR);
    harvbk_backup_info_free(in);

    /* a restore likewise: nothing registered */
    hook_init(&h, f->ctx, 0, NULL);
    h.stop_at_total = 1;
    char *dir = tu_path2(f->root, "out-stopped");
    harvbk_restore_options ro = HARVBK_RESTORE_OPTIONS_INIT;
    ro.new_vm_namespace = "default";
    ro.new_vm_name = "stopped";
    ro.target_dir = dir;
    ro.progress_cb = hook_cb;
    ro.progress_payload = &h;
    assert_int_equal(harvbk_restore_create(&op, f->ctx, "default", "b1", &ro), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), HARVBK_E_CANCELLED);
    harvbk_op_free(op);
    assert_int_equal(h.last_done, f->size);
    harvbk_vm *got = NULL;
    assert_int_equal(harvbk_vm_lookup(&got, f->ctx, "default", "stopped"), HARVBK_E_NOTFOUND);
    char *part = tu_path2(dir, "disk0.raw");
    assert_int_not_equal(access(part, F_OK), 0);
    free(part);
    free(dir);
    harvbk_vm_free(vm);
}

/* ---- gc: bytes ---- */

static int backdate_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_F) {
        struct timespec ts[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
        if (utimensat(AT_FDCWD, p, ts, 0) != 0)
            return -1;
    }
    return 0;
}

static void test_gc_progress_is_in_bytes(void **state)
{
    fx *f = *state;
    assert_int_equal(harvbk_backup_delete(f->ctx, "default", "b1"), 0);
    /* chunks are only swept once older than the gc: backdate them */
    char *chunkdir = tu_path2(f->target, "chunks");
    assert_int_equal(nftw(chunkdir, backdate_cb, 16, FTW_PHYS), 0);
    free(chunkdir);
    hook h;
    hook_init(&h, f->ctx, HOOK_SLEEP_MS, NULL);
    harvbk_op_options oo = HARVBK_OP_OPTIONS_INIT;
    oo.progress_cb = hook_cb;
    oo.progress_payload = &h;
    harvbk_op *op = NULL;
    uint64_t t0 = now_ms();
    assert_int_equal(harvbk_gc(&op, f->ctx, &oo), 0);
    atomic_store(&h.op, op);
    assert_int_equal(wait_op(op), 0);
    uint64_t elapsed = now_ms() - t0;
    uint64_t chunks = 0, bytes = 0;
    assert_int_equal(harvbk_gc_result(op, &chunks, &bytes), 0);
    harvbk_op_free(op);
    hook_check(&h, elapsed, 0, "gc");
    /* every chunk of the deleted backup goes; the total counts their bytes
     * twice (listed, then removed) */
    assert_true(chunks >= f->size / CHUNK);
    assert_true(bytes >= f->size);
    assert_int_equal(h.last_done, h.last_total);
    assert_int_equal(h.last_total, 2 * bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_hook_does_not_stall_a_backup),
        cmocka_unit_test(test_slow_hook_does_not_stall_a_restore),
        cmocka_unit_test(test_slow_hook_during_a_verify),
        cmocka_unit_test(test_stop_at_the_last_call_cancels),
        cmocka_unit_test(test_gc_progress_is_in_bytes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
