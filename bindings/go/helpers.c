/* helpers.c - the C side of the Go binding: see helpers.h. */
#include "helpers.h"

#include <string.h>

#include "_cgo_export.h"

/* The handle of the restore call running on this thread, so the context's
 * image hook (called on the thread of harvbk_restore_create, inside it) can
 * report a Go error to that call. */
static __thread uintptr_t call_token;

int hbgo_last_error(int rc, char **msg)
{
    *msg = NULL;
    if (rc != 0 && harvbk_error_last_code() == rc)
        *msg = strdup(harvbk_error_last());
    return rc;
}

/* ---- trampolines: library callback -> exported Go function ---- */

static int progress_tramp(uint64_t done, uint64_t total, void *payload)
{
    return hbgoProgress(done, total, (uintptr_t)payload);
}

static int freeze_tramp(const char *ns, const char *vm, void *payload)
{
    return hbgoFreeze((char *)ns, (char *)vm, (uintptr_t)payload, 0);
}

static int thaw_tramp(const char *ns, const char *vm, void *payload)
{
    return hbgoFreeze((char *)ns, (char *)vm, (uintptr_t)payload, 1);
}

static int capture_tramp(const char *ns, const char *vm, const char *volume, const char *path,
                         char *out_path, size_t out_size, void *payload)
{
    return hbgoCapture((char *)ns, (char *)vm, (char *)volume, (char *)path, out_path, out_size,
                       (uintptr_t)payload);
}

static int release_tramp(const char *ns, const char *vm, const char *volume,
                         const char *captured_path, void *payload)
{
    return hbgoRelease((char *)ns, (char *)vm, (char *)volume, (char *)captured_path,
                       (uintptr_t)payload);
}

static int vol_read_tramp(void *buf, size_t len, uint64_t offset, void *payload)
{
    return hbgoVolRead(buf, len, offset, (uintptr_t)payload);
}

static int vol_write_tramp(const void *buf, size_t len, uint64_t offset, void *payload)
{
    return hbgoVolWrite((void *)buf, len, offset, (uintptr_t)payload);
}

static int rewrite_tramp(harvbk_metadata_rewrite *rw, void *payload)
{
    return hbgoRewrite(rw, (uintptr_t)payload);
}

static int image_tramp(const harvbk_image *image, void *payload)
{
    return hbgoImageHook((void *)image, (uintptr_t)payload, call_token);
}

static void log_tramp(int level, const char *message, void *payload)
{
    hbgoLog(level, (char *)message, (uintptr_t)payload);
}

static int resolve_tramp(harvbk_vm **out, const char *ns, const char *name, void *payload)
{
    return hbgoResolve((void *)out, (char *)ns, (char *)name, (uintptr_t)payload);
}

/* ---- wrappers ---- */

int hbgo_ctx_open(harvbk_ctx **out, const char *state_dir, int log, uintptr_t log_h,
                  int log_level, unsigned int threads, char **msg)
{
    harvbk_ctx_options o;
    int rc = harvbk_ctx_options_init(&o, HARVBK_CTX_OPTIONS_VERSION);
    if (rc == 0) {
        if (log) {
            o.log_cb = log_tramp;
            o.log_payload = (void *)log_h;
            o.log_level = log_level;
        }
        o.threads = threads;
        rc = harvbk_ctx_open(out, state_dir, &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_set_log_hook(harvbk_ctx *ctx, int on, uintptr_t h, int max_level, char **msg)
{
    return hbgo_last_error(
        harvbk_ctx_set_log_hook(ctx, on ? log_tramp : NULL, (void *)h, max_level), msg);
}

int hbgo_set_image_hook(harvbk_ctx *ctx, int on, uintptr_t h, char **msg)
{
    return hbgo_last_error(harvbk_ctx_set_image_hook(ctx, on ? image_tramp : NULL, (void *)h),
                           msg);
}

int hbgo_vm_add_volume_io(harvbk_vm *vm, const char *volume, uint64_t size, int reader,
                          int writer, uintptr_t h, char **msg)
{
    return hbgo_last_error(harvbk_vm_add_volume_callbacks(vm, volume, size,
                                                          reader ? vol_read_tramp : NULL,
                                                          writer ? vol_write_tramp : NULL,
                                                          (void *)h),
                           msg);
}

/* The callbacks and freeze window of a backup, snapshot or schedule pass
 * (the fields of harvbk_backup_options, harvbk_snapshot_options and
 * harvbk_schedule_run_options of the same names). */
#define HBGO_SET_HOOKS(o, cb)                                   \
    do {                                                        \
        if ((cb)->progress) {                                   \
            (o)->progress_cb = progress_tramp;                  \
            (o)->progress_payload = (void *)(cb)->h;            \
        }                                                       \
        (o)->freeze_cb = (cb)->freeze ? freeze_tramp : NULL;    \
        (o)->thaw_cb = (cb)->thaw ? thaw_tramp : NULL;          \
        (o)->freeze_payload = (void *)(cb)->h;                  \
        (o)->capture_cb = (cb)->capture ? capture_tramp : NULL; \
        (o)->release_cb = (cb)->release ? release_tramp : NULL; \
        (o)->capture_payload = (void *)(cb)->h;                 \
        (o)->freeze_deadline_ms = (cb)->freeze_deadline_ms;     \
    } while (0)

int hbgo_backup_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                       unsigned int flags, const harvbk_ranges *ranges, const hbgo_cbs *cb,
                       char **msg)
{
    harvbk_backup_options o;
    int rc = harvbk_backup_options_init(&o, HARVBK_BACKUP_OPTIONS_VERSION);
    if (rc == 0) {
        o.flags = flags;
        o.changed_ranges = ranges;
        HBGO_SET_HOOKS(&o, cb);
        rc = harvbk_backup_create(out, ctx, vm, name, &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_snapshot_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm,
                         const char *name, unsigned int flags, const hbgo_cbs *cb, char **msg)
{
    harvbk_snapshot_options o;
    int rc = harvbk_snapshot_options_init(&o, HARVBK_SNAPSHOT_OPTIONS_VERSION);
    if (rc == 0) {
        o.flags = flags;
        HBGO_SET_HOOKS(&o, cb);
        rc = harvbk_snapshot_create(out, ctx, vm, name, &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_restore(harvbk_op **out, harvbk_ctx *ctx, int snapshot, const char *namespace_,
                 const char *name, unsigned int flags, const char *new_ns,
                 const char *new_name, const char *target_dir, const harvbk_vm *target_vm,
                 int deletion_policy, uintptr_t h, int progress, int rewrite, char **msg)
{
    harvbk_restore_options o;
    int rc = harvbk_restore_options_init(&o, HARVBK_RESTORE_OPTIONS_VERSION);
    if (rc == 0) {
        o.flags = flags;
        o.new_vm_namespace = new_ns;
        o.new_vm_name = new_name;
        o.target_dir = target_dir;
        o.target_vm = target_vm;
        o.deletion_policy = deletion_policy;
        if (progress) {
            o.progress_cb = progress_tramp;
            o.progress_payload = (void *)h;
        }
        if (rewrite) {
            o.metadata_rewrite_cb = rewrite_tramp;
            o.metadata_rewrite_payload = (void *)h;
        }
        uintptr_t saved = call_token; /* an image hook may restore, too */
        call_token = h;
        rc = snapshot ? harvbk_snapshot_restore(out, ctx, namespace_, name, &o)
                      : harvbk_restore_create(out, ctx, namespace_, name, &o);
        call_token = saved;
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_verify(harvbk_op **out, harvbk_ctx *ctx, int snapshot, const char *namespace_,
                const char *name, uintptr_t h, int progress, char **msg)
{
    harvbk_op_options o;
    int rc = harvbk_op_options_init(&o, HARVBK_OP_OPTIONS_VERSION);
    if (rc == 0) {
        if (progress) {
            o.progress_cb = progress_tramp;
            o.progress_payload = (void *)h;
        }
        rc = snapshot ? harvbk_snapshot_verify(out, ctx, namespace_, name, &o)
                      : harvbk_backup_verify(out, ctx, namespace_, name, &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_gc(harvbk_op **out, harvbk_ctx *ctx, int snapshot, uintptr_t h, int progress,
            char **msg)
{
    harvbk_op_options o;
    int rc = harvbk_op_options_init(&o, HARVBK_OP_OPTIONS_VERSION);
    if (rc == 0) {
        if (progress) {
            o.progress_cb = progress_tramp;
            o.progress_payload = (void *)h;
        }
        rc = snapshot ? harvbk_snapshot_gc(out, ctx, &o) : harvbk_gc(out, ctx, &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_snapshot_store_set(harvbk_ctx *ctx, int defaults, const char *dir, uint32_t chunk_size,
                            const char *codec, unsigned int flags, const char *key_file,
                            const char *passphrase_file, char **msg)
{
    harvbk_snapshot_store_options o;
    int rc = harvbk_snapshot_store_options_init(&o, HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION);
    if (rc == 0) {
        o.dir = dir;
        o.chunk_size = chunk_size;
        o.codec = codec;
        o.flags = flags;
        o.key_file = key_file;
        o.passphrase_file = passphrase_file;
        rc = harvbk_snapshot_store_set(ctx, defaults ? NULL : &o);
    }
    return hbgo_last_error(rc, msg);
}

int hbgo_schedule_set(harvbk_ctx *ctx, int update, const char *namespace_, const char *name,
                      unsigned int flags, int type, const char *vm_ns, const char *vm_name,
                      const char *cron, unsigned int retain, unsigned int max_failure,
                      uint32_t deadline_s, int64_t now_ms, char **msg)
{
    harvbk_schedule_options o;
    int rc = harvbk_schedule_options_init(&o, HARVBK_SCHEDULE_OPTIONS_VERSION);
    if (rc == 0) {
        o.flags = flags;
        o.type = type;
        o.vm_namespace = vm_ns;
        o.vm_name = vm_name;
        o.cron = cron;
        o.retain = retain;
        o.max_failure = max_failure;
        o.deadline_s = deadline_s;
        o.now_ms = now_ms;
        rc = update ? harvbk_schedule_update(ctx, namespace_, name, &o)
                    : harvbk_schedule_create(ctx, namespace_, name, &o);
    }
    return hbgo_last_error(rc, msg);
}

static int run_options(harvbk_schedule_run_options *o, unsigned int max_parallel,
                       unsigned int flags, const hbgo_cbs *cb)
{
    int rc = harvbk_schedule_run_options_init(o, HARVBK_SCHEDULE_RUN_OPTIONS_VERSION);
    if (rc != 0)
        return rc;
    o->max_parallel = max_parallel;
    o->flags = flags;
    HBGO_SET_HOOKS(o, cb);
    if (cb->resolve) {
        o->resolve_cb = resolve_tramp;
        o->resolve_payload = (void *)cb->h;
    }
    return 0;
}

int hbgo_run_due(harvbk_op **out, harvbk_ctx *ctx, int64_t now_ms, unsigned int max_parallel,
                 unsigned int flags, const hbgo_cbs *cb, char **msg)
{
    harvbk_schedule_run_options o;
    int rc = run_options(&o, max_parallel, flags, cb);
    if (rc == 0)
        rc = harvbk_schedule_run_due(out, ctx, now_ms, &o);
    return hbgo_last_error(rc, msg);
}

int hbgo_scheduler_start(harvbk_scheduler **out, harvbk_ctx *ctx, unsigned int max_parallel,
                         unsigned int flags, const hbgo_cbs *cb, char **msg)
{
    harvbk_schedule_run_options o;
    int rc = run_options(&o, max_parallel, flags, cb);
    if (rc == 0)
        rc = harvbk_scheduler_start(out, ctx, &o);
    return hbgo_last_error(rc, msg);
}

int hbgo_schedule_run_at(const harvbk_op *op, size_t i, hbgo_run *r)
{
    memset(r, 0, sizeof *r);
    return harvbk_schedule_run_at(op, i, &r->namespace_, &r->schedule, &r->entry,
                                  &r->planned_ms, &r->state, &r->error_code, &r->message);
}

int hbgo_schedule_history_at(const harvbk_schedule *s, size_t i, hbgo_hist *h)
{
    memset(h, 0, sizeof *h);
    return harvbk_schedule_history_at(s, i, &h->entry, &h->planned_ms, &h->state,
                                      &h->error_code, &h->error, &h->missed, &h->deleted);
}
