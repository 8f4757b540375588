/* tests/unit/test_ops_freeze.c - freeze/thaw hooks and cancellation of
 * backups: volumes are read between freeze and thaw; thaw is called exactly
 * once after a successful freeze, whatever happens; a failed freeze fails the
 * backup unless crash-consistent fallback was chosen. */
#include "testutil.h"

#include <harvbk.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536
#define VOLSIZE (8 * CHUNK)

typedef struct fz {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int seq;
    int freeze_at, thaw_at, first_read_at, last_read_at;
    int freezes, thaws, reads;
    int freeze_rc;        /* what the freeze hook returns */
    int fail_read;        /* reads fail once this many were served (0: never) */
    int fail_read_rc;     /* what a failing read returns (0: HARVBK_E_IO) */
    int thaw_rc;          /* what the thaw hook returns */
    int block_reads;      /* reads wait until unblocked */
    uint8_t data[VOLSIZE];
} fz;

static int next(fz *f)
{
    return ++f->seq;
}

static int freeze_cb(const char *ns, const char *vm, void *p)
{
    fz *f = p;
    pthread_mutex_lock(&f->mu);
    f->freezes++;
    f->freeze_at = next(f);
    int rc = f->freeze_rc;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int thaw_cb(const char *ns, const char *vm, void *p)
{
    fz *f = p;
    pthread_mutex_lock(&f->mu);
    f->thaws++;
    f->thaw_at = next(f);
    int rc = f->thaw_rc;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int read_cb(void *buf, size_t len, uint64_t off, void *p)
{
    fz *f = p;
    pthread_mutex_lock(&f->mu);
    int at = next(f);
    if (!f->first_read_at)
        f->first_read_at = at;
    f->last_read_at = at;
    f->reads++;
    pthread_cond_broadcast(&f->cv);
    while (f->block_reads)
        pthread_cond_wait(&f->cv, &f->mu);
    int fail = f->fail_read && f->reads >= f->fail_read;
    int fail_rc = f->fail_read_rc ? f->fail_read_rc : HARVBK_E_IO;
    pthread_mutex_unlock(&f->mu);
    if (fail)
        return fail_rc;
    memcpy(buf, f->data + off, len);
    return 0;
}

typedef struct env {
    char *root;
    harvbk_ctx *ctx;
    harvbk_vm *vm;
    fz *f;
} env;

static void env_open(env *v, const char *tag)
{
    v->root = tu_mkdtemp(tag);
    char *sd = malloc(strlen(v->root) + 16), *url = malloc(strlen(v->root) + 32);
    sprintf(sd, "%s/state", v->root);
    sprintf(url, "file://%s/target", v->root);
    assert_int_equal(harvbk_ctx_open(&v->ctx, sd, NULL), 0);
    harvbk_target_config *cfg = NULL;
    assert_int_equal(harvbk_target_config_new(&cfg), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_URL, url), 0);
    assert_int_equal(harvbk_target_config_set(cfg, HARVBK_TARGET_CHUNK_SIZE, "65536"), 0);
    assert_int_equal(harvbk_ctx_set_target(v->ctx, cfg), 0);
    harvbk_target_config_free(cfg);
    free(sd);
    free(url);
    v->f = calloc(1, sizeof *v->f);
    pthread_mutex_init(&v->f->mu, NULL);
    pthread_cond_init(&v->f->cv, NULL);
    tu_fill_random(v->f->data, VOLSIZE, 42);
    assert_int_equal(harvbk_vm_new(&v->vm, "default", "vm1"), 0);
    assert_int_equal(
        harvbk_vm_add_volume_callbacks(v->vm, "disk0", VOLSIZE, read_cb, NULL, v->f), 0);
    assert_int_equal(
        harvbk_vm_add_volume_callbacks(v->vm, "disk1", VOLSIZE / 2, read_cb, NULL, v->f), 0);
}

static void env_close(env *v)
{
    harvbk_vm_free(v->vm);
    harvbk_ctx_free(v->ctx);
    pthread_mutex_destroy(&v->f->mu);
    pthread_cond_destroy(&v->f->cv);
    free(v->f);
    tu_rmrf(v->root);
    free(v->root);
}

static harvbk_backup_options freeze_opts(env *v)
{
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = freeze_cb;
    bo.thaw_cb = thaw_cb;
    bo.freeze_payload = v->f;
    return bo;
}

static int run(env *v, const char *name, const harvbk_backup_options *bo, char *msg, size_t size)
{
    harvbk_op *op = NULL;
    int rc = harvbk_backup_create(&op, v->ctx, v->vm, name, bo);
    assert_int_equal(rc, 0);
    rc = harvbk_op_wait(op);
    if (msg)
        harvbk_op_errmsg_copy(op, msg, size);
    harvbk_op_free(op);
    return rc;
}

static int backup_state(env *v, const char *name, int *crash, char *err, size_t size)
{
    harvbk_backup_info *in = NULL;
    int rc = harvbk_backup_get(&in, v->ctx, "default", name);
    if (rc)
        return rc;
    int st = harvbk_backup_info_state(in);
    if (crash)
        *crash = harvbk_backup_info_crash_consistent(in);
    if (err)
        snprintf(err, size, "%s", harvbk_backup_info_error(in));
    harvbk_backup_info_free(in);
    return st;
}

static void test_reads_happen_between_freeze_and_thaw(void **state)
{
    env v;
    env_open(&v, "ops-fz-order");
    harvbk_backup_options bo = freeze_opts(&v);
    assert_int_equal(run(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.f->freezes, 1);
    assert_int_equal(v.f->thaws, 1);
    assert_true(v.f->reads >= 12);
    assert_true(v.f->freeze_at < v.f->first_read_at);
    assert_true(v.f->last_read_at < v.f->thaw_at);
    int crash = -1;
    assert_int_equal(backup_state(&v, "b1", &crash, NULL, 0), HARVBK_STATE_READY);
    assert_int_equal(crash, 0);
    env_close(&v);
}

static void test_thaw_after_a_failed_read(void **state)
{
    env v;
    env_open(&v, "ops-fz-readfail");
    v.f->fail_read = 3;
    harvbk_backup_options bo = freeze_opts(&v);
    char msg[512];
    int rc = run(&v, "b1", &bo, msg, sizeof msg);
    assert_true(rc < 0);
    assert_int_not_equal(rc, HARVBK_E_CANCELLED);
    assert_true(strlen(msg) > 0);
    assert_int_equal(v.f->freezes, 1);
    assert_int_equal(v.f->thaws, 1);
    assert_true(v.f->last_read_at < v.f->thaw_at);
    assert_int_equal(backup_state(&v, "b1", NULL, NULL, 0), HARVBK_STATE_ERROR);
    env_close(&v);
}

/* A read callback returning -1 (no specific code): HARVBK_E_CALLBACK, and
 * the message names the volume, the offset and the returned value; one
 * returning a specific code (HARVBK_E_IO) keeps it. */
static void test_failing_read_callback(void **state)
{
    env v;
    env_open(&v, "ops-fz-cbfail");
    v.f->fail_read = 1;
    v.f->fail_read_rc = -1;
    harvbk_backup_options bo = freeze_opts(&v);
    char msg[512];
    assert_int_equal(run(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_CALLBACK);
    assert_non_null(strstr(msg, "volume 'disk0'"));
    assert_non_null(strstr(msg, "read callback returned -1 at offset "));
    assert_int_equal(v.f->thaws, 1);
    char err[512];
    assert_int_equal(backup_state(&v, "b1", NULL, err, sizeof err), HARVBK_STATE_ERROR);
    assert_non_null(strstr(err, "volume 'disk0'"));

    v.f->fail_read_rc = 5; /* a positive value is no code either */
    assert_int_equal(run(&v, "b2", &bo, msg, sizeof msg), HARVBK_E_CALLBACK);
    assert_non_null(strstr(msg, "returned 5"));

    v.f->fail_read_rc = HARVBK_E_IO; /* a specific code is kept */
    assert_int_equal(run(&v, "b3", &bo, msg, sizeof msg), HARVBK_E_IO);
    assert_non_null(strstr(msg, "returned -7"));
    env_close(&v);
}

static int noop_freeze(const char *ns, const char *vm, void *p)
{
    (void)ns;
    (void)vm;
    (void)p;
    return 0;
}

/* A freeze hook without a thaw hook is refused, for backups and snapshots,
 * before anything starts; the thread's last error says why. */
static void test_freeze_without_thaw_is_refused(void **state)
{
    env v;
    env_open(&v, "ops-fz-nothaw");
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.freeze_cb = noop_freeze;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, v.vm, "b1", &bo), HARVBK_E_INVALID);
    assert_null(op);
    assert_string_equal(harvbk_error_last(), "a freeze hook needs a thaw hook");
    assert_int_equal(harvbk_error_last_code(), HARVBK_E_INVALID);
    assert_string_equal(harvbk_ctx_errmsg(v.ctx), "a freeze hook needs a thaw hook");
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), HARVBK_E_NOTFOUND);

    harvbk_snapshot_options so;
    assert_int_equal(harvbk_snapshot_options_init(&so, HARVBK_SNAPSHOT_OPTIONS_VERSION), 0);
    so.freeze_cb = noop_freeze;
    assert_int_equal(harvbk_snapshot_create(&op, v.ctx, v.vm, "s1", &so), HARVBK_E_INVALID);
    assert_null(op);
    assert_string_equal(harvbk_error_last(), "a freeze hook needs a thaw hook");
    assert_int_equal(v.f->freezes, 0);
    env_close(&v);
}

static void assert_thaw_failed_json(const harvbk_backup_info *in, int want)
{
    char *js = NULL;
    assert_int_equal(harvbk_backup_info_to_json(in, &js), 0);
    assert_non_null(strstr(js, want ? "\"thaw_failed\":true" : "\"thaw_failed\":false"));
    harvbk_string_free(js);
}

/* A thaw hook returning non-zero does not fail the backup (its data was read
 * while frozen) but is recorded: in the info, its JSON, the local record,
 * the manifest (another context syncing the target sees it) and the synced
 * catalog. */
static void test_failed_thaw_is_recorded(void **state)
{
    env v;
    env_open(&v, "ops-fz-thawfail");
    harvbk_backup_options bo = freeze_opts(&v);
    assert_int_equal(run(&v, "ok", &bo, NULL, 0), 0);
    v.f->thaw_rc = -1;
    assert_int_equal(run(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.f->thaws, 2);

    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_thaw_failed(in), 1);
    assert_int_equal(harvbk_backup_info_crash_consistent(in), 0);
    assert_thaw_failed_json(in, 1);
    harvbk_backup_info_free(in);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "ok"), 0);
    assert_int_equal(harvbk_backup_info_thaw_failed(in), 0);
    assert_thaw_failed_json(in, 0);
    harvbk_backup_info_free(in);

    /* after a sync of this context (catalog rebuilt from the manifests) */
    harvbk_sync_result *sr = NULL;
    assert_int_equal(harvbk_target_sync(v.ctx, &sr), 0);
    harvbk_sync_result_free(sr);
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_thaw_failed(in), 1);
    harvbk_backup_info_free(in);

    /* another context on the same target only knows the manifest */
    char *sd2 = tu_path2(v.root, "state2"), *tgt = tu_path2(v.root, "target");
    harvbk_ctx *c2 = NULL;
    assert_int_equal(harvbk_ctx_open(&c2, sd2, NULL), 0);
    tu_set_file_target(c2, tgt);
    sr = NULL;
    assert_int_equal(harvbk_target_sync(c2, &sr), 0);
    harvbk_sync_result_free(sr);
    assert_int_equal(harvbk_backup_get(&in, c2, "default", "b1"), 0);
    assert_int_equal(harvbk_backup_info_state(in), HARVBK_STATE_READY);
    assert_int_equal(harvbk_backup_info_thaw_failed(in), 1);
    assert_thaw_failed_json(in, 1);
    harvbk_backup_info_free(in);
    assert_int_equal(harvbk_backup_get(&in, c2, "default", "ok"), 0);
    assert_int_equal(harvbk_backup_info_thaw_failed(in), 0);
    harvbk_backup_info_free(in);
    harvbk_ctx_free(c2);
    free(sd2);
    free(tgt);
    env_close(&v);
}

static int cancel_at_first_progress(uint64_t done, uint64_t total, void *p)
{
    int *calls = p;
    (*calls)++;
    return 1;
}

static void test_cancel_from_progress_callback(void **state)
{
    env v;
    env_open(&v, "ops-fz-cbcancel");
    harvbk_backup_options bo = freeze_opts(&v);
    int calls = 0;
    bo.progress_cb = cancel_at_first_progress;
    bo.progress_payload = &calls;
    char msg[512];
    assert_int_equal(run(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_CANCELLED);
    assert_int_equal(calls, 1); /* never called again after it said stop */
    assert_non_null(strstr(msg, "cancel"));
    assert_int_equal(v.f->thaws, 1);
    char err[512];
    assert_int_equal(backup_state(&v, "b1", NULL, err, sizeof err), HARVBK_STATE_ERROR);
    assert_non_null(strstr(err, "cancel"));
    harvbk_backup_list *l = NULL;
    assert_int_equal(harvbk_backup_list_get(&l, v.ctx), 0);
    for (size_t i = 0; i < harvbk_backup_list_count(l); i++)
        assert_int_not_equal(harvbk_backup_info_state(harvbk_backup_list_at(l, i)),
                             HARVBK_STATE_READY);
    harvbk_backup_list_free(l);
    env_close(&v);
}

static void test_cancel_from_another_thread_while_reading(void **state)
{
    env v;
    env_open(&v, "ops-fz-cancel");
    v.f->block_reads = 1;
    harvbk_backup_options bo = freeze_opts(&v);
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, v.vm, "b1", &bo), 0);
    pthread_mutex_lock(&v.f->mu);
    while (v.f->reads == 0)
        pthread_cond_wait(&v.f->cv, &v.f->mu);
    pthread_mutex_unlock(&v.f->mu);
    assert_int_equal(harvbk_op_cancel(op), 0);
    pthread_mutex_lock(&v.f->mu);
    v.f->block_reads = 0;
    pthread_cond_broadcast(&v.f->cv);
    pthread_mutex_unlock(&v.f->mu);
    assert_int_equal(harvbk_op_wait(op), HARVBK_E_CANCELLED);
    assert_int_equal(harvbk_op_state(op), HARVBK_STATE_ERROR);
    assert_int_equal(harvbk_op_cancel(op), 0); /* after the end: harmless */
    assert_int_equal(harvbk_op_result(op), HARVBK_E_CANCELLED);
    harvbk_op_free(op);
    assert_int_equal(v.f->freezes, 1);
    assert_int_equal(v.f->thaws, 1);
    assert_int_equal(backup_state(&v, "b1", NULL, NULL, 0), HARVBK_STATE_ERROR);
    /* and the name can be used again */
    assert_int_equal(run(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(backup_state(&v, "b1", NULL, NULL, 0), HARVBK_STATE_READY);
    env_close(&v);
}

static void test_failed_freeze_fails_with_clear_message(void **state)
{
    env v;
    env_open(&v, "ops-fz-fail");
    v.f->freeze_rc = -1;
    harvbk_backup_options bo = freeze_opts(&v);
    char msg[512];
    assert_int_equal(run(&v, "b1", &bo, msg, sizeof msg), HARVBK_E_FREEZE);
    assert_non_null(strstr(msg, "failed to freeze filesystem"));
    assert_non_null(strstr(msg, "default/vm1"));
    assert_int_equal(v.f->reads, 0);
    assert_int_equal(v.f->thaws, 0);
    char err[512];
    assert_int_equal(backup_state(&v, "b1", NULL, err, sizeof err), HARVBK_STATE_ERROR);
    assert_non_null(strstr(err, "failed to freeze filesystem"));
    env_close(&v);
}

static void test_crash_consistent_fallback(void **state)
{
    env v;
    env_open(&v, "ops-fz-fallback");
    v.f->freeze_rc = 5;
    harvbk_backup_options bo = freeze_opts(&v);
    bo.flags = HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT;
    assert_int_equal(run(&v, "b1", &bo, NULL, 0), 0);
    assert_int_equal(v.f->thaws, 0); /* nothing was frozen */
    assert_true(v.f->reads > 0);
    int crash = 0;
    assert_int_equal(backup_state(&v, "b1", &crash, NULL, 0), HARVBK_STATE_READY);
    assert_int_equal(crash, 1);
    harvbk_backup_info *in = NULL;
    assert_int_equal(harvbk_backup_get(&in, v.ctx, "default", "b1"), 0);
    char *json = NULL;
    assert_int_equal(harvbk_backup_info_to_json(in, &json), 0);
    assert_non_null(strstr(json, "\"crash_consistent\":true"));
    harvbk_string_free(json);
    harvbk_backup_info_free(in);
    env_close(&v);
}

/* Callbacks may call back into the library on the same context (THREADING.md
 * "Callbacks"): reading the op's progress, the backup being written, the list,
 * the running count, from the progress and the freeze hooks. No deadlock, and
 * the backup is seen InProgress from inside. */
typedef struct reenter {
    env *v;
    _Atomic(harvbk_op *) op;
    int calls, seen_inprogress, listed, errors;
} reenter;

static void reenter_once(reenter *r)
{
    harvbk_op *op = atomic_load(&r->op);
    uint64_t done = 0, total = 0;
    if (op && harvbk_op_progress(op, &done, &total) != 0)
        r->errors++;
    harvbk_backup_info *in = NULL;
    if (harvbk_backup_get(&in, r->v->ctx, "default", "re1") == 0) {
        if (harvbk_backup_info_state(in) == HARVBK_STATE_INPROGRESS)
            r->seen_inprogress++;
        harvbk_backup_info_free(in);
    } else {
        r->errors++;
    }
    harvbk_backup_list *l = NULL;
    if (harvbk_backup_list_get(&l, r->v->ctx) == 0) {
        r->listed += (int)harvbk_backup_list_count(l);
        harvbk_backup_list_free(l);
    } else {
        r->errors++;
    }
    unsigned n = 0;
    if (harvbk_ctx_ops_in_progress(r->v->ctx, &n) != 0 || n != 1)
        r->errors++;
    /* refused, not deadlocked: the backup is being written */
    if (harvbk_backup_delete(r->v->ctx, "default", "re1") != HARVBK_E_BUSY)
        r->errors++;
    r->calls++;
}

static int reenter_progress(uint64_t done, uint64_t total, void *p)
{
    reenter_once(p);
    return 0;
}

static int reenter_thaw(const char *ns, const char *vm, void *p)
{
    (void)ns;
    (void)vm;
    (void)p;
    return 0;
}

static int reenter_freeze(const char *ns, const char *vm, void *p)
{
    reenter_once(p);
    return 0;
}

static void test_callbacks_may_call_into_the_library(void **state)
{
    env v;
    env_open(&v, "ops-fz-reenter");
    reenter r;
    memset(&r, 0, sizeof r);
    r.v = &v;
    harvbk_backup_options bo = HARVBK_BACKUP_OPTIONS_INIT;
    bo.progress_cb = reenter_progress;
    bo.progress_payload = &r;
    bo.freeze_cb = reenter_freeze;
    bo.thaw_cb = reenter_thaw; /* a freeze hook without a thaw hook is refused */
    bo.freeze_payload = &r;
    harvbk_op *op = NULL;
    assert_int_equal(harvbk_backup_create(&op, v.ctx, v.vm, "re1", &bo), 0);
    atomic_store(&r.op, op);
    assert_int_equal(harvbk_op_wait_timeout(op, 60000), 0);
    assert_int_equal(harvbk_op_result(op), 0);
    harvbk_op_free(op);
    assert_true(r.calls >= 2);
    assert_int_equal(r.seen_inprogress, r.calls);
    assert_true(r.listed >= r.calls);
    assert_int_equal(r.errors, 0);
    env_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_happen_between_freeze_and_thaw),
        cmocka_unit_test(test_thaw_after_a_failed_read),
        cmocka_unit_test(test_failing_read_callback),
        cmocka_unit_test(test_freeze_without_thaw_is_refused),
        cmocka_unit_test(test_failed_thaw_is_recorded),
        cmocka_unit_test(test_cancel_from_progress_callback),
        cmocka_unit_test(test_cancel_from_another_thread_while_reading),
        cmocka_unit_test(test_failed_freeze_fails_with_clear_message),
        cmocka_unit_test(test_crash_consistent_fallback),
        cmocka_unit_test(test_callbacks_may_call_into_the_library),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
