/*
 * helpers.h - the C side of the Go binding (cgo). Declared here, defined in
 * helpers.c, called from the Go files of the package.
 *
 * Two kinds of helpers:
 *   - trampolines: C functions with the library's callback signatures that
 *     forward to exported Go functions (callbacks.go), turning the `void *`
 *     payload back into the integer of a runtime/cgo.Handle. No Go pointer is
 *     ever stored in C memory: payloads are those integers.
 *   - wrappers: build an options struct on the C stack (through the library's
 *     *_options_init, so the layout is the one of the headers compiled
 *     against), make the call, and on failure copy the calling thread's last
 *     error message (harvbk_error_last) into *msg (malloc'd, the Go side
 *     frees it) in the same C call: a goroutine may move to another OS thread
 *     between two cgo calls, never during one.
 */
#ifndef HARVBK_GO_HELPERS_H
#define HARVBK_GO_HELPERS_H

#include <harvbk.h>
#include <stdint.h>
#include <stdlib.h>

/* The calling thread's last error as (code, malloc'd message) when it belongs
 * to rc; *msg NULL otherwise (the Go side then uses harvbk_strerror). */
int hbgo_last_error(int rc, char **msg);

int hbgo_ctx_open(harvbk_ctx **out, const char *state_dir, int log, uintptr_t log_h,
                  int log_level, unsigned int threads, char **msg);
int hbgo_set_log_hook(harvbk_ctx *ctx, int on, uintptr_t h, int max_level, char **msg);
int hbgo_set_image_hook(harvbk_ctx *ctx, int on, uintptr_t h, char **msg);

int hbgo_vm_add_volume_io(harvbk_vm *vm, const char *volume, uint64_t size, int reader,
                          int writer, uintptr_t h, char **msg);

/* Which Go callbacks an operation has (all share the payload h, the handle of
 * the operation's hooks) and its freeze deadline: built by the Go side. */
typedef struct hbgo_cbs {
    uintptr_t h;
    int progress, freeze, thaw, capture, release, resolve;
    uint32_t freeze_deadline_ms;
} hbgo_cbs;

int hbgo_backup_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm, const char *name,
                       unsigned int flags, const harvbk_ranges *ranges, const hbgo_cbs *cb,
                       char **msg);
int hbgo_snapshot_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm,
                         const char *name, unsigned int flags, const hbgo_cbs *cb, char **msg);
int hbgo_restore(harvbk_op **out, harvbk_ctx *ctx, int snapshot, const char *namespace_,
                 const char *name, unsigned int flags, const char *new_ns,
                 const char *new_name, const char *target_dir, const harvbk_vm *target_vm,
                 int deletion_policy, uintptr_t h, int progress, int rewrite, char **msg);
int hbgo_verify(harvbk_op **out, harvbk_ctx *ctx, int snapshot, const char *namespace_,
                const char *name, uintptr_t h, int progress, char **msg);
int hbgo_gc(harvbk_op **out, harvbk_ctx *ctx, int snapshot, uintptr_t h, int progress,
            char **msg);

int hbgo_snapshot_store_set(harvbk_ctx *ctx, int defaults, const char *dir, uint32_t chunk_size,
                            const char *codec, unsigned int flags, const char *key_file,
                            const char *passphrase_file, char **msg);

int hbgo_schedule_set(harvbk_ctx *ctx, int update, const char *namespace_, const char *name,
                      unsigned int flags, int type, const char *vm_ns, const char *vm_name,
                      const char *cron, unsigned int retain, unsigned int max_failure,
                      uint32_t deadline_s, int64_t now_ms, char **msg);
int hbgo_run_due(harvbk_op **out, harvbk_ctx *ctx, int64_t now_ms, unsigned int max_parallel,
                 unsigned int flags, const hbgo_cbs *cb, char **msg);
int hbgo_scheduler_start(harvbk_scheduler **out, harvbk_ctx *ctx, unsigned int max_parallel,
                         unsigned int flags, const hbgo_cbs *cb, char **msg);

/* harvbk_schedule_run_at / harvbk_schedule_history_at into plain out params
 * (cgo cannot take the address of a Go string). */
typedef struct hbgo_run {
    const char *namespace_, *schedule, *entry, *message;
    int64_t planned_ms;
    int state, error_code;
} hbgo_run;
int hbgo_schedule_run_at(const harvbk_op *op, size_t i, hbgo_run *r);
typedef struct hbgo_hist {
    const char *entry, *error;
    int64_t planned_ms;
    int state, error_code, deleted;
    unsigned int missed;
} hbgo_hist;
int hbgo_schedule_history_at(const harvbk_schedule *s, size_t i, hbgo_hist *h);

#endif
