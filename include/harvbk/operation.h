/*
 * harvbk/operation.h - asynchronous operations (backup, snapshot, restore,
 * verify, gc...).
 *
 * Functions that start work return an operation handle at once; the work runs
 * on a library thread. Poll its state and progress, wait for it, or cancel it.
 * If a function that takes callbacks returns an error, no callback is ever
 * called (the libuv rule).
 *
 * Thread-safety: every function here may be called from any thread, also
 * concurrently on the same handle, except harvbk_op_free().
 */
#ifndef HARVBK_OPERATION_H
#define HARVBK_OPERATION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_op harvbk_op;

/** States of operations, backups and snapshots. Numbers fixed forever. */
typedef enum harvbk_state {
    HARVBK_STATE_INPROGRESS = 1,
    HARVBK_STATE_READY = 2,
    HARVBK_STATE_ERROR = 3
} harvbk_state;

/** Static name of a state: "InProgress", "Ready", "Error". */
HARVBK_API const char *harvbk_state_name(int state);

/**
 * Freeze/thaw hooks for a VM's filesystems. Return 0 on success. When the
 * freeze hook succeeded, the thaw hook is called exactly once afterwards,
 * whatever happens (failure, cancel). Called on the operation's thread.
 * A freeze hook needs a thaw hook: options with a freeze hook and no thaw
 * hook are refused with HARVBK_E_INVALID (since 1.1).
 * A freeze hook returning non-zero fails the operation with HARVBK_E_FREEZE
 * (its message names the returned value), unless the *_ALLOW_CRASH_CONSISTENT
 * flag lets it go on. A thaw hook returning non-zero does not fail it: the
 * data was read while frozen, so the entry becomes Ready and is marked
 * harvbk_backup_info_thaw_failed() (the VM may still be frozen).
 */
typedef int (*harvbk_freeze_cb)(const char *namespace_, const char *vm, void *payload);

/** Wait until the operation ends; returns its result (0 or HARVBK_E_*). A
 *  failure is also recorded as the calling thread's last error, with the
 *  operation's message (harvbk_error_last()). */
HARVBK_API int harvbk_op_wait(harvbk_op *op);
/** Wait up to timeout_ms for the operation to end. Returns 0 once it has ended
 *  (read its outcome with harvbk_op_result()), HARVBK_E_TIMEOUT while it still
 *  runs, HARVBK_E_INVALID for a bad handle. timeout_ms 0 polls. */
HARVBK_API int harvbk_op_wait_timeout(harvbk_op *op, uint64_t timeout_ms);
/** Ask the operation to stop; it ends soon with HARVBK_E_CANCELLED (unless it
 *  already finished). Returns 0. */
HARVBK_API int harvbk_op_cancel(harvbk_op *op);
/** Current state (harvbk_state). */
HARVBK_API int harvbk_op_state(const harvbk_op *op);
/** Result: 0 while running or on success, else the HARVBK_E_* code. */
HARVBK_API int harvbk_op_result(const harvbk_op *op);
/** Bytes done and total so far (either pointer may be NULL). */
HARVBK_API int harvbk_op_progress(const harvbk_op *op, uint64_t *out_done, uint64_t *out_total);
/** Copy the error message (empty when none) into buf; returns the full length. */
HARVBK_API size_t harvbk_op_errmsg_copy(const harvbk_op *op, char *buf, size_t size);
/** Kind of operation: "backup", "snapshot" (harvbk_snapshot_create), "restore"
 *  (from a backup or a snapshot), "verify" (of a backup or a snapshot), "gc"
 *  (of the target or of the snapshot store). Static. */
HARVBK_API const char *harvbk_op_kind(const harvbk_op *op);
/** Free the handle. A running operation is cancelled and waited for first.
 *  NULL is a no-op. */
HARVBK_API void harvbk_op_free(harvbk_op *op);

#ifdef __cplusplus
}
#endif
#endif
