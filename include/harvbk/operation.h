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

/* ---- The freeze window (since 1.1; docs/THREADING.md "Freeze window") ----
 *
 * With a freeze hook, a backup or snapshot runs: freeze -> capture -> thaw ->
 * read the captures, so the VM is frozen only while its volumes are
 * captured, not while they are read. Each volume is captured by the first
 * method that works:
 *   1. "reflink": a volume that is a regular file on a filesystem with
 *      reflinks (XFS with reflink=1, btrfs, ...) is cloned by the library
 *      (FICLONE) into an unnamed file in its own directory, gone when it is
 *      closed or the process dies (needs write access to that directory; off
 *      with the *_NO_REFLINK flag);
 *   2. "hook": the capture hook below, when given (the only method for
 *      volumes served by callbacks);
 *   3. "none": the volume is read from where it is, before the thaw (the VM
 *      stays frozen meanwhile, bounded by freeze_deadline_ms when set).
 * The capture step also runs without a freeze hook when a capture hook is
 * given, and after a failed freeze that *_ALLOW_CRASH_CONSISTENT lets go on
 * (captures then give a crash-consistent point in time). Without a freeze
 * hook and a capture hook, nothing is captured. */

/** Size of the buffer a capture hook writes its path into (with the NUL). */
#define HARVBK_CAPTURE_PATH_MAX 4096

/**
 * Capture hook: make a point-in-time copy of volume `volume` of VM
 * namespace_/vm (an LVM, Ceph RBD or Longhorn snapshot...) and write the path
 * of a regular file or block device holding its bytes into out_path
 * (NUL-terminated, at most out_size bytes with the NUL; out_size is
 * HARVBK_CAPTURE_PATH_MAX). `path` is the volume's path as given to
 * harvbk_vm_add_volume_file(), NULL for a volume served by callbacks.
 * Called on the operation's thread, one volume at a time in the VM's volume
 * order, while the VM is frozen, for each volume not captured by a reflink.
 * - 0 with out_path set: captured. The volume is read from out_path after
 *   the thaw: its first `size` bytes (the volume's size), so the capture must
 *   be at least that large. The release hook is called for it once.
 * - 0 with out_path left "": not captured; the volume is read as it is,
 *   before the thaw.
 * - any other value fails the operation with HARVBK_E_CALLBACK (the message
 *   names the volume and the value); the VM is thawed and the captures made
 *   so far are released.
 * A capture that cannot be opened or is smaller than the volume also fails
 * the operation with HARVBK_E_CALLBACK (it is released all the same).
 */
typedef int (*harvbk_capture_cb)(const char *namespace_, const char *vm, const char *volume,
                                 const char *path, char *out_path, size_t out_size,
                                 void *payload);

/**
 * Release hook: the capture `captured_path` of `volume` (what the capture
 * hook wrote) is no longer needed; remove it. Called on the operation's
 * thread **exactly once per successful capture**, whatever happens: right
 * after that volume was read, or, when the operation fails or is cancelled
 * first, after the thaw; always before the operation ends and before the
 * entry is committed. A non-zero return fails the operation with
 * HARVBK_E_CALLBACK (the entry is not committed; when the operation already
 * failed, its first error stays and this one is logged).
 */
typedef int (*harvbk_capture_release_cb)(const char *namespace_, const char *vm,
                                         const char *volume, const char *captured_path,
                                         void *payload);

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
