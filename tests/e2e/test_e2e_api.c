/*
 * test_e2e_api.c - the public C API end to end, linked against libharvbk.so:
 * cancel from the progress callback, freeze/thaw ordering with callback
 * volumes (also after failures and cancel), freeze failure with and without
 * the crash-consistent fallback, restore through write callbacks, progress and
 * log hooks, two contexts sharing one target, a store of a newer format.
 */
#include "e2e.h"

#include <harvbk.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHUNK (256 * E2E_KiB)
#define CHUNK_S "262144"

/* ------------------------------------------------------------ event log */

typedef struct events {
    atomic_uint seq;
    atomic_uint freezes, thaws;
    unsigned freeze_seq, thaw_seq;
    pthread_mutex_t mu;
    unsigned reads;
    unsigned first_read, last_read;
    uint64_t read_bytes;
    int freeze_rc;             /* what the freeze hook returns */
    char ns_seen[64], vm_seen[64];
} events;

static void events_init(events *ev)
{
    memset(ev, 0, sizeof *ev);
    pthread_mutex_init(&ev->mu, NULL);
    ev->first_read = ~0u;
}

static void events_free(events *ev)
{
    pthread_mutex_destroy(&ev->mu);
}

static int freeze_hook(const char *ns, const char *vm, void *payload)
{
    events *ev = payload;
    ev->freeze_seq = atomic_fetch_add(&ev->seq, 1);
    atomic_fetch_add(&ev->freezes, 1);
    snprintf(ev->ns_seen, sizeof ev->ns_seen, "%s", ns ? ns : "(null)");
    snprintf(ev->vm_seen, sizeof ev->vm_seen, "%s", vm ? vm : "(null)");
    return ev->freeze_rc;
}

static int thaw_hook(const char *ns, const char *vm, void *payload)
{
    (void)ns;
    (void)vm;
    events *ev = payload;
    ev->thaw_seq = atomic_fetch_add(&ev->seq, 1);
    atomic_fetch_add(&ev->thaws, 1);
    return 0;
}

/* A callback volume backed by memory. */
typedef struct memvol {
    uint8_t *data;
    uint64_t size;
    events *ev;
    int64_t fail_from;      /* reads at or beyond this offset fail (-1: never) */
    unsigned slow_us;       /* sleep per read */
    atomic_uint writes;
} memvol;

static int memvol_read(void *buf, size_t len, uint64_t off, void *payload)
{
    memvol *v = payload;
    if (off > v->size || len > v->size - off)
        return HARVBK_E_INVALID;
    if (v->ev) {
        unsigned s = atomic_fetch_add(&v->ev->seq, 1);
        pthread_mutex_lock(&v->ev->mu);
        v->ev->reads++;
        v->ev->read_bytes += len;
        if (s < v->ev->first_read)
            v->ev->first_read = s;
        if (s > v->ev->last_read || v->ev->reads == 1)
            v->ev->last_read = s;
        pthread_mutex_unlock(&v->ev->mu);
    }
    if (v->slow_us)
        e2e_sleep_ms(v->slow_us / 1000 ? v->slow_us / 1000 : 1);
    if (v->fail_from >= 0 && off + len > (uint64_t)v->fail_from)
        return HARVBK_E_IO;
    memcpy(buf, v->data + off, len);
    return 0;
}

static int memvol_write(const void *buf, size_t len, uint64_t off, void *payload)
{
    memvol *v = payload;
    if (off > v->size || len > v->size - off)
        return HARVBK_E_INVALID;
    memcpy(v->data + off, buf, len);
    atomic_fetch_add(&v->writes, 1);
    return 0;
}

static void memvol_init(memvol *v, uint64_t size, uint64_t seed, events *ev)
{
    memset(v, 0, sizeof *v);
    v->data = calloc(1, size ? size : 1);
    assert_non_null(v->data);
    v->size = size;
    v->ev = ev;
    v->fail_from = -1;
    if (seed)
        e2e_fill_random(v->data, size, seed);
}

/* ------------------------------------------------------------ progress / log */

typedef struct prog {
    uint64_t calls, last_done, last_total, max_done;
    bool went_back, total_changed;
    uint64_t cancel_after; /* return non-zero on call number N (0: never) */
} prog;

static int progress_cb(uint64_t done, uint64_t total, void *payload)
{
    prog *p = payload;
    p->calls++;
    if (p->calls > 1 && done < p->last_done)
        p->went_back = true;
    if (p->calls > 1 && total != p->last_total)
        p->total_changed = true;
    p->last_done = done;
    p->last_total = total;
    if (done > p->max_done)
        p->max_done = done;
    return p->cancel_after && p->calls >= p->cancel_after ? 1 : 0;
}

typedef struct logrec {
    pthread_mutex_t mu;
    unsigned count;
    char last[256];
} logrec;

static void log_cb(int level, const char *msg, void *payload)
{
    logrec *l = payload;
    pthread_mutex_lock(&l->mu);
    l->count++;
    snprintf(l->last, sizeof l->last, "%d %s", level, msg ? msg : "(null)");
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------ fixture */

typedef struct fx {
    char *root, *state, *target, *work;
    harvbk_ctx *ctx;
    logrec log;
} fx;

static void set_target(harvbk_ctx *ctx, const char *dir)
{
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = e2e_strf("file://%s", dir);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, CHUNK_S), 0);
    int rc = harvbk_ctx_set_target(ctx, cfg);
    if (rc != 0)
        fail_msg("harvbk_ctx_set_target(%s): %s: %s", url, harvbk_error_name(rc),
                 harvbk_ctx_errmsg(ctx));
    harvbk_target_config_free(cfg);
    free(url);
}

static harvbk_ctx *open_ctx(const char *state, logrec *log)
{
    harvbk_ctx_options o;
    assert_int_equal(harvbk_ctx_options_init(&o, HARVBK_CTX_OPTIONS_VERSION), 0);
    o.threads = 2;
    if (log) {
        o.log_cb = log_cb;
        o.log_payload = log;
        o.log_level = HARVBK_LOG_DEBUG;
    }
    harvbk_ctx *ctx = NULL;
    int rc = harvbk_ctx_open(&ctx, state, &o);
    if (rc != 0)
        fail_msg("harvbk_ctx_open(%s): %s", state, harvbk_error_name(rc));
    assert_non_null(ctx);
    return ctx;
}

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->log.mu, NULL);
    f->root = e2e_mkdtemp("api");
    f->state = e2e_path(f->root, "state");
    f->target = e2e_path(f->root, "target");
    f->work = e2e_path(f->root, "work");
    mkdir(f->target, 0755);
    mkdir(f->work, 0755);
    f->ctx = open_ctx(f->state, &f->log);
    set_target(f->ctx, f->target);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    if (!f)
        return 0;
    harvbk_ctx_free(f->ctx);
    pthread_mutex_destroy(&f->log.mu);
    e2e_rmrf(f->root);
    free(f->root);
    free(f->state);
    free(f->target);
    free(f->work);
    free(f);
    return 0;
}

/* Wait for an op, describing a failure. */
static int wait_op(harvbk_op *op)
{
    int rc = harvbk_op_wait(op);
    if (rc != 0) {
        char msg[512];
        harvbk_op_errmsg_copy(op, msg, sizeof msg);
        print_message("operation %s ended with %s: %s\n", harvbk_op_kind(op),
                      harvbk_error_name(rc), msg);
    }
    return rc;
}

static harvbk_backup_info *get_info(harvbk_ctx *ctx, const char *name)
{
    harvbk_backup_info *info = NULL;
    int rc = harvbk_backup_get(&info, ctx, "ns1", name);
    if (rc != 0)
        fail_msg("harvbk_backup_get ns1/%s: %s: %s", name, harvbk_error_name(rc),
                 harvbk_ctx_errmsg(ctx));
    return info;
}

/* The list has no Ready entry ns1/name. */
static void assert_not_ready_in_list(harvbk_ctx *ctx, const char *name)
{
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, ctx), 0);
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++) {
        const harvbk_backup_info *in = harvbk_backup_list_at(l, i);
        if (strcmp(harvbk_backup_info_namespace(in), "ns1") == 0 &&
            strcmp(harvbk_backup_info_name(in), name) == 0)
            assert_int_not_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    }
    assert_null(harvbk_backup_list_at(l, harvbk_backup_list_count(l)));
    harvbk_backup_list_free(l);
}

static void assert_backup_state(harvbk_ctx *ctx, const char *name, int want)
{
    harvbk_backup_info *info = get_info(ctx, name);
    if (harvbk_backup_info_state(info) != want)
        fail_msg("backup ns1/%s is %s (error \"%s\"), expected %s", name,
                 harvbk_state_name(harvbk_backup_info_state(info)),
                 harvbk_backup_info_error(info), harvbk_state_name(want));
    harvbk_backup_info_free(info);
}

/* Restore ns1/backup into DIR as a new VM through files; returns DIR. */
static char *restore_to_dir(fx *f, harvbk_ctx *ctx, const char *backup, const char *newvm)
{
    char *dir = e2e_strf("%s/r-%s", f->work, newvm);
    mkdir(dir, 0755);
    harvbk_restore_options ro;
    assert_int_equal(harvbk_restore_options_init(&ro, HARVBK_RESTORE_OPTIONS_VERSION), 0);
    ro.new_vm_namespace = "ns1";
    ro.new_vm_name = newvm;
    ro.target_dir = dir;
    harvbk_op *op = NULL;
    int rc = harvbk_restore_create(&op, ctx, "ns1", backup, &ro);
    if (rc != 0)
        fail_msg("harvbk_restore_create: %s: %s", harvbk_error_name(rc), harvbk_ctx_errmsg(ctx));
    assert_string_equal(harvbk_op_kind(op), "restore");
    assert_int_equal(wait_op(op), 0);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_READY);
    harvbk_op_free(op);
    return dir;
}

/* Compare a restored file with memory. */
static void assert_file_is(const char *path, const uint8_t *data, uint64_t size)
{
    size_t len = 0;
    char *got = e2e_read_file(path, &len);
    if (!got)
        fail_msg("%s was not written", path);
    assert_int_equal(len, size);
    assert_memory_equal(got, data, size);
    free(got);
}

/* ------------------------------------------------------------ tests */

/* Freeze before the first read, thaw after the last, once; progress totals;
 * Ready and not crash-consistent; restore through write callbacks. */
static void test_freeze_thaw_order_and_callback_restore(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    memvol v0, v1;
    memvol_init(&v0, 4 * CHUNK + 5, 1, &ev);
    memvol_init(&v1, 700 * E2E_KiB, 2, &ev);
    const uint64_t total = v0.size + v1.size;

    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "cbvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v1", v1.size, memvol_read, NULL, &v1),
                     0);
    const char meta[] = "{\"kind\":\"VirtualMachine\"}";
    assert_int_equal(harvbk_vm_set_metadata(vm, meta, sizeof meta - 1), 0);

    prog pr = { 0 };
    harvbk_backup_options bo;
    assert_int_equal(harvbk_backup_options_init(&bo, HARVBK_BACKUP_OPTIONS_VERSION), 0);
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    bo.progress_cb = progress_cb;
    bo.progress_payload = &pr;
    harvbk_op *op = NULL;
    unsigned logs_before = f->log.count;
    int rc = harvbk_backup_create(&op, f->ctx, vm, "fb1", &bo);
    if (rc != 0)
        fail_msg("harvbk_backup_create: %s: %s", harvbk_error_name(rc), harvbk_ctx_errmsg(f->ctx));
    assert_string_equal(harvbk_op_kind(op), "backup");
    assert_int_equal(wait_op(op), 0);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_READY);
    assert_int_equal(harvbk_op_result(op), 0);
    uint64_t d = 0, t = 0;
    assert_int_equal(harvbk_op_progress(op, &d, &t), 0);
    assert_int_equal(t, total);
    assert_int_equal(d, total);
    harvbk_op_free(op);

    /* freeze/thaw ordering */
    assert_int_equal(atomic_load(&ev.freezes), 1);
    assert_int_equal(atomic_load(&ev.thaws), 1);
    assert_string_equal(ev.ns_seen, "ns1");
    assert_string_equal(ev.vm_seen, "cbvm");
    assert_true(ev.reads > 0);
    assert_true(ev.read_bytes >= total);
    assert_true(ev.freeze_seq < ev.first_read);
    assert_true(ev.last_read < ev.thaw_seq);

    /* progress: total = sum of the volume sizes, done reaches it, never backwards */
    assert_true(pr.calls > 0);
    assert_int_equal(pr.last_total, total);
    assert_false(pr.total_changed);
    assert_false(pr.went_back);
    assert_int_equal(pr.max_done, total);
    assert_int_equal(pr.last_done, total);

    /* log hook received messages */
    pthread_mutex_lock(&f->log.mu);
    unsigned logs = f->log.count;
    pthread_mutex_unlock(&f->log.mu);
    print_message("log messages during the backup: %u (last: %s)\n", logs - logs_before,
                  f->log.last);
    assert_true(logs > logs_before);

    harvbk_backup_info *info = get_info(f->ctx, "fb1");
    assert_int_equal(harvbk_backup_info_state(info), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_crash_consistent(info), 0);
    assert_int_equal(harvbk_backup_info_logical_bytes(info), total);
    assert_int_equal(harvbk_backup_info_progress_bytes(info), total);
    assert_true(harvbk_backup_info_uploaded_bytes(info) >= total);
    assert_string_equal(harvbk_backup_info_vm_name(info), "cbvm");
    assert_int_equal(harvbk_backup_info_volume_count(info), 2);
    assert_string_equal(harvbk_backup_info_volume_name(info, 0), "v0");
    assert_int_equal(harvbk_backup_info_volume_size(info, 0), v0.size);
    assert_string_equal(harvbk_backup_info_volume_name(info, 1), "v1");
    assert_int_equal(harvbk_backup_info_volume_size(info, 1), v1.size);
    char *js = NULL;
    assert_int_equal(harvbk_backup_info_to_json(info, &js), 0);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    assert_string_equal(e2e_json_str(j, "state"), "Ready");
    assert_int_equal(e2e_json_u64(j, "logical_bytes"), total);
    cJSON_Delete(j);
    harvbk_string_free(js);
    harvbk_backup_info_free(info);

    /* restore through write callbacks into zeroed memory */
    memvol w0, w1;
    memvol_init(&w0, v0.size, 0, NULL);
    memvol_init(&w1, v1.size, 0, NULL);
    harvbk_vm *tvm = NULL;
    assert_int_equal(harvbk_vm_new(&tvm, "ns1", "cbvm-r"), 0);
    assert_int_equal(
        harvbk_vm_add_volume_callbacks(tvm, "v0", w0.size, NULL, memvol_write, &w0), 0);
    assert_int_equal(
        harvbk_vm_add_volume_callbacks(tvm, "v1", w1.size, NULL, memvol_write, &w1), 0);
    harvbk_restore_options ro;
    assert_int_equal(harvbk_restore_options_init(&ro, HARVBK_RESTORE_OPTIONS_VERSION), 0);
    ro.new_vm_namespace = "ns1";
    ro.new_vm_name = "cbvm-r";
    ro.target_vm = tvm;
    prog rp = { 0 };
    ro.progress_cb = progress_cb;
    ro.progress_payload = &rp;
    rc = harvbk_restore_create(&op, f->ctx, "ns1", "fb1", &ro);
    if (rc != 0)
        fail_msg("harvbk_restore_create: %s: %s", harvbk_error_name(rc), harvbk_ctx_errmsg(f->ctx));
    assert_int_equal(wait_op(op), 0);
    harvbk_op_free(op);
    assert_true(atomic_load(&w0.writes) > 0);
    assert_true(atomic_load(&w1.writes) > 0);
    assert_memory_equal(w0.data, v0.data, v0.size);
    assert_memory_equal(w1.data, v1.data, v1.size);
    assert_int_equal(rp.last_total, total);
    assert_int_equal(rp.max_done, total);

    /* and through files */
    char *dir = restore_to_dir(f, f->ctx, "fb1", "cbvm-f");
    char *p0 = e2e_path(dir, "v0.raw"), *p1 = e2e_path(dir, "v1.raw");
    assert_file_is(p0, v0.data, v0.size);
    assert_file_is(p1, v1.data, v1.size);
    free(p0);
    free(p1);
    free(dir);

    harvbk_vm_free(tvm);
    harvbk_vm_free(vm);
    free(v0.data);
    free(v1.data);
    free(w0.data);
    free(w1.data);
    events_free(&ev);
}

/* A read callback fails: the backup fails, thaw still comes once, after freeze. */
static void test_thaw_after_read_failure(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    memvol v0;
    memvol_init(&v0, 8 * CHUNK, 3, &ev);
    v0.fail_from = 3 * CHUNK + 10;
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "failvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "rf1", &bo), 0);
    int rc = wait_op(op);
    assert_int_not_equal(rc, 0);
    assert_int_equal(rc, HARVBK_E_IO);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_ERROR);
    assert_int_equal(harvbk_op_result(op), rc);
    char msg[512];
    assert_true(harvbk_op_errmsg_copy(op, msg, sizeof msg) > 0);
    harvbk_op_free(op);
    assert_int_equal(atomic_load(&ev.freezes), 1);
    assert_int_equal(atomic_load(&ev.thaws), 1);
    assert_true(ev.freeze_seq < ev.first_read);
    assert_true(ev.last_read < ev.thaw_seq);
    assert_backup_state(f->ctx, "rf1", HARVBK_STATE_ERROR);
    assert_not_ready_in_list(f->ctx, "rf1");
    /* nothing committed in the target */
    char *m = e2e_path(f->target, "backups/ns1/rf1/manifest.json");
    assert_false(e2e_exists(m));
    free(m);
    harvbk_vm_free(vm);
    free(v0.data);
    events_free(&ev);
}

/* Cancel from the progress callback: E_CANCELLED, not Ready, thaw once. */
static void test_cancel_from_progress(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    char *img = e2e_path(f->work, "cancel.img");
    e2e_make_random(img, 32 * CHUNK, 4);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "cvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk", img), 0);
    assert_int_equal(harvbk_vm_register(f->ctx, vm), 0);
    prog pr = { 0 };
    pr.cancel_after = 1;
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.progress_cb = progress_cb;
    bo.progress_payload = &pr;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "cx1", &bo), 0);
    int rc = wait_op(op);
    assert_int_equal(rc, HARVBK_E_CANCELLED);
    assert_int_equal(harvbk_op_result(op), HARVBK_E_CANCELLED);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_ERROR);
    harvbk_op_free(op);
    /* never called again after it said stop; it stopped before the commit
     * (the hook hears done == total before the manifest is written, at the
     * latest, so a stop there still cancels) */
    assert_int_equal(pr.calls, 1);
    assert_true(pr.max_done <= 32 * CHUNK);
    assert_int_equal(atomic_load(&ev.freezes), 1);
    assert_int_equal(atomic_load(&ev.thaws), 1);
    assert_backup_state(f->ctx, "cx1", HARVBK_STATE_ERROR);
    assert_not_ready_in_list(f->ctx, "cx1");
    char *m = e2e_path(f->target, "backups/ns1/cx1/manifest.json");
    assert_false(e2e_exists(m));
    free(m);

    /* the same VM backs up fine afterwards, and restores identically */
    harvbk_op *op2 = NULL;
    assert_int_equal(harvbk_backup_create(&op2, f->ctx, vm, "cx2", NULL), 0);
    assert_int_equal(wait_op(op2), 0);
    harvbk_op_free(op2);
    char *dir = restore_to_dir(f, f->ctx, "cx2", "cvm-r");
    char *out = e2e_path(dir, "disk.raw");
    e2e_assert_same_file(img, out);
    free(out);
    free(dir);
    harvbk_vm_free(vm);
    free(img);
    events_free(&ev);
}

/* harvbk_op_cancel() from the caller's thread while the backup runs. */
static void test_cancel_op(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    memvol v0;
    memvol_init(&v0, 64 * CHUNK, 5, &ev);
    v0.slow_us = 5000; /* 64 reads of 5 ms: long enough to cancel midway */
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "slowvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "oc1", &bo), 0);
    /* wait until it is frozen and reading (bounded) */
    uint64_t deadline = e2e_now_ms() + e2e_scaled_ms(30000);
    for (;;) {
        pthread_mutex_lock(&ev.mu);
        unsigned reads = ev.reads;
        pthread_mutex_unlock(&ev.mu);
        if (reads >= 2 || e2e_now_ms() > deadline)
            break;
        e2e_sleep_ms(1);
    }
    assert_int_equal(atomic_load(&ev.freezes), 1);
    /* visible as InProgress while it runs */
    harvbk_backup_info *info = get_info(f->ctx, "oc1");
    assert_int_equal(harvbk_backup_info_state(info), HARVBK_STATE_INPROGRESS);
    harvbk_backup_info_free(info);
    unsigned count = 0;
    assert_int_equal(harvbk_ctx_ops_in_progress(f->ctx, &count), 0);
    assert_true(count >= 1);
    assert_int_equal(harvbk_op_wait_timeout(op, 1), HARVBK_E_TIMEOUT);
    assert_int_equal(harvbk_op_cancel(op), 0);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_CANCELLED);
    harvbk_op_free(op);
    assert_true(ev.reads < 64);
    assert_int_equal(atomic_load(&ev.thaws), 1);
    assert_backup_state(f->ctx, "oc1", HARVBK_STATE_ERROR);
    assert_not_ready_in_list(f->ctx, "oc1");
    assert_int_equal(harvbk_ctx_ops_in_progress(f->ctx, &count), 0);
    assert_int_equal(count, 0);
    harvbk_vm_free(vm);
    free(v0.data);
    events_free(&ev);
}

/* Freeze fails: HARVBK_E_FREEZE, "failed to freeze filesystem", no read, no thaw. */
static void test_freeze_failure(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    ev.freeze_rc = -1;
    memvol v0;
    memvol_init(&v0, 3 * CHUNK, 6, &ev);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "frvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "fz1", &bo), 0);
    assert_int_equal(wait_op(op), HARVBK_E_FREEZE);
    char msg[512];
    harvbk_op_errmsg_copy(op, msg, sizeof msg);
    if (!strstr(msg, "failed to freeze filesystem"))
        fail_msg("error message \"%s\" lacks \"failed to freeze filesystem\"", msg);
    harvbk_op_free(op);
    assert_int_equal(atomic_load(&ev.freezes), 1);
    assert_int_equal(atomic_load(&ev.thaws), 0);
    assert_int_equal(ev.reads, 0);
    harvbk_backup_info *info = get_info(f->ctx, "fz1");
    assert_int_equal(harvbk_backup_info_state(info), HARVBK_STATE_ERROR);
    assert_non_null(strstr(harvbk_backup_info_error(info), "failed to freeze filesystem"));
    harvbk_backup_info_free(info);
    assert_not_ready_in_list(f->ctx, "fz1");
    harvbk_vm_free(vm);
    free(v0.data);
    events_free(&ev);
}

/* Freeze fails with the crash-consistent fallback: Ready, marked so. */
static void test_freeze_failure_crash_consistent(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    ev.freeze_rc = -1;
    memvol v0;
    memvol_init(&v0, 3 * CHUNK + 99, 7, &ev);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "ccvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.flags = HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "cc1", &bo), 0);
    assert_int_equal(wait_op(op), 0);
    harvbk_op_free(op);
    assert_int_equal(atomic_load(&ev.freezes), 1);
    assert_int_equal(atomic_load(&ev.thaws), 0); /* freeze never succeeded */
    assert_true(ev.reads > 0);
    harvbk_backup_info *info = get_info(f->ctx, "cc1");
    assert_int_equal(harvbk_backup_info_state(info), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_crash_consistent(info), 1);
    char *js = NULL;
    assert_int_equal(harvbk_backup_info_to_json(info, &js), 0);
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(j, "crash_consistent");
    assert_true(cJSON_IsTrue(cc) || (cJSON_IsNumber(cc) && cc->valueint == 1));
    cJSON_Delete(j);
    harvbk_string_free(js);
    harvbk_backup_info_free(info);
    char *dir = restore_to_dir(f, f->ctx, "cc1", "ccvm-r");
    char *p0 = e2e_path(dir, "v0.raw");
    assert_file_is(p0, v0.data, v0.size);
    free(p0);
    free(dir);
    harvbk_vm_free(vm);
    free(v0.data);
    events_free(&ev);
}

/* Two contexts (two "clusters") on one target. */
static void test_two_contexts(void **state)
{
    fx *f = *state;
    char *img = e2e_path(f->work, "shared.img");
    e2e_make_random(img, 5 * CHUNK + 333, 8);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "shvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_file(vm, "disk", img), 0);
    const char meta[] = "{\"spec\":{\"running\":false}}";
    assert_int_equal(harvbk_vm_set_metadata(vm, meta, sizeof meta - 1), 0);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "sh1", NULL), 0);
    assert_int_equal(wait_op(op), 0);
    harvbk_op_free(op);

    char *state2 = e2e_path(f->root, "state2");
    harvbk_ctx *c2 = open_ctx(state2, NULL);
    assert_string_not_equal(harvbk_ctx_id(c2), harvbk_ctx_id(f->ctx));
    set_target(c2, f->target);
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, c2), 0);
    bool found = false;
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++) {
        const harvbk_backup_info *in = harvbk_backup_list_at(l, i);
        if (strcmp(harvbk_backup_info_name(in), "sh1") == 0 &&
            strcmp(harvbk_backup_info_namespace(in), "ns1") == 0) {
            found = true;
            assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
            assert_int_equal(harvbk_backup_info_logical_bytes(in), 5 * CHUNK + 333);
            assert_string_equal(harvbk_backup_info_vm_name(in), "shvm");
        }
    }
    harvbk_backup_list_free(l);
    assert_true(found);

    /* verify from the second context */
    assert_int_equal(harvbk_backup_verify(&op, c2, "ns1", "sh1", NULL), 0);
    assert_string_equal(harvbk_op_kind(op), "verify");
    assert_int_equal(wait_op(op), 0);
    harvbk_op_free(op);

    char *dir = restore_to_dir(f, c2, "sh1", "shvm-c2");
    char *out = e2e_path(dir, "disk.raw");
    e2e_assert_same_file(img, out);
    /* the new VM is registered in the second context, with the metadata */
    harvbk_vm *nvm = NULL;
    assert_int_equal(harvbk_vm_lookup(&nvm, c2, "ns1", "shvm-c2"), 0);
    assert_int_equal(harvbk_vm_volume_count(nvm), 1);
    assert_string_equal(harvbk_vm_volume_name(nvm, 0), "disk");
    assert_string_equal(harvbk_vm_volume_path(nvm, 0), out);
    size_t mlen = 0;
    const void *md = harvbk_vm_metadata(nvm, &mlen);
    assert_true(mlen > 0);
    assert_non_null(md);
    harvbk_vm_free(nvm);
    /* and not in the first */
    assert_int_equal(harvbk_vm_lookup(&nvm, f->ctx, "ns1", "shvm-c2"), HARVBK_E_NOTFOUND);
    harvbk_ctx_free(c2);
    free(out);
    free(dir);
    free(state2);
    harvbk_vm_free(vm);
    free(img);
}

/* A store whose harvbk-store.json says format_major 99 is refused. */
static void test_newer_store_format(void **state)
{
    fx *f = *state;
    char *sj = e2e_path(f->target, "harvbk-store.json");
    size_t len = 0;
    char *txt = e2e_read_file(sj, &len);
    if (!txt)
        fail_msg("%s does not exist", sj);
    cJSON *j = cJSON_Parse(txt);
    if (!j)
        fail_msg("harvbk-store.json is not JSON: %.200s", txt);
    cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "format_major");
    if (!cJSON_IsNumber(fm))
        fail_msg("harvbk-store.json has no numeric format_major: %.300s", txt);
    cJSON_SetNumberValue(fm, 99);
    char *out = cJSON_Print(j);
    e2e_write_file(sj, out, strlen(out));

    char *state3 = e2e_path(f->root, "state3");
    harvbk_ctx *c3 = open_ctx(state3, NULL);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    char *url = e2e_strf("file://%s", f->target);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    int rc = harvbk_ctx_set_target(c3, cfg);
    print_message("set_target on a format-99 store: %s: %s\n", harvbk_error_name(rc),
                  harvbk_ctx_errmsg(c3));
    assert_int_equal(rc, HARVBK_E_FORMAT);
    assert_true(strlen(harvbk_ctx_errmsg(c3)) > 0);
    /* and the context has no target afterwards */
    harvbk_target_config *got = NULL;
    assert_int_equal(harvbk_ctx_get_target(c3, &got), HARVBK_E_NOTARGET);
    /* the store file was not rewritten by the refused reader */
    char *after = e2e_read_file(sj, NULL);
    assert_string_equal(after, out);
    free(after);
    harvbk_target_config_free(cfg);
    harvbk_ctx_free(c3);
    free(url);
    free(state3);
    free(out);
    cJSON_Delete(j);
    free(txt);
    free(sj);
    /* a context already pointed at it notices on check (documented return) */
    int crc = harvbk_ctx_check_target(f->ctx);
    if (crc != HARVBK_E_FORMAT)
        fail_msg("harvbk_ctx_check_target on a store now of format 99 returned %s (\"%s\"), "
                 "expected HARVBK_E_FORMAT", harvbk_error_name(crc), harvbk_ctx_errmsg(f->ctx));
}

/* Error paths of the API that must not call callbacks (libuv rule). */
static void test_start_errors_call_nothing(void **state)
{
    fx *f = *state;
    events ev;
    events_init(&ev);
    memvol v0;
    memvol_init(&v0, CHUNK, 9, &ev);
    harvbk_vm *vm = NULL;
    assert_int_equal(harvbk_vm_new(&vm, "ns1", "errvm"), 0);
    assert_int_equal(harvbk_vm_add_volume_callbacks(vm, "v0", v0.size, memvol_read, NULL, &v0),
                     0);
    prog pr = { 0 };
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_hook;
    bo.thaw_cb = thaw_hook;
    bo.freeze_payload = &ev;
    bo.progress_cb = progress_cb;
    bo.progress_payload = &pr;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "Bad_Name", &bo), HARVBK_E_INVALID);
    assert_null(op);
    bo.version = 999;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "ok1", &bo), HARVBK_E_VERSION);
    assert_null(op);
    bo.version = HARVBK_BACKUP_OPTIONS_VERSION;
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "ok1", &bo), 0);
    assert_int_equal(wait_op(op), 0);
    harvbk_op_free(op);
    op = NULL;
    unsigned freezes = atomic_load(&ev.freezes), calls = (unsigned)pr.calls;
    assert_int_equal(freezes, 1);
    assert_int_equal(harvbk_backup_create(&op, f->ctx, vm, "ok1", &bo), HARVBK_E_EXISTS);
    assert_null(op);
    assert_int_equal(atomic_load(&ev.freezes), freezes);
    assert_int_equal(pr.calls, calls);
    assert_int_equal(harvbk_backup_delete(f->ctx, "ns1", "nope"), HARVBK_E_NOTFOUND);
    harvbk_backup_info *info = NULL;
    assert_int_equal(harvbk_backup_get(&info, f->ctx, "ns1", "nope"), HARVBK_E_NOTFOUND);
    assert_null(info);
    harvbk_vm_free(vm);
    free(v0.data);
    events_free(&ev);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_freeze_thaw_order_and_callback_restore),
        T(test_thaw_after_read_failure),
        T(test_cancel_from_progress),
        T(test_cancel_op),
        T(test_freeze_failure),
        T(test_freeze_failure_crash_consistent),
        T(test_two_contexts),
        T(test_newer_store_format),
        T(test_start_errors_call_nothing),
    };
    return cmocka_run_group_tests_name("e2e_api", tests, NULL, NULL);
}
