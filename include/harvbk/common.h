/*
 * harvbk/common.h - versions, error codes, logging and memory helpers shared by
 * every part of the libharvbk public API.
 *
 * Thread-safety: every function in this header is safe to call from any thread.
 */
#ifndef HARVBK_COMMON_H
#define HARVBK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Export macro: only symbols marked HARVBK_API leave the shared library. */
#if defined(HARVBK_BUILDING_LIBRARY) && defined(__GNUC__)
#define HARVBK_API __attribute__((visibility("default")))
#else
#define HARVBK_API
#endif

/* Compile-time version of the headers. Compare with harvbk_version_number()
 * at run time to learn which library a program was loaded with. */
#define HARVBK_VERSION_MAJOR 1
#define HARVBK_VERSION_MINOR 0
#define HARVBK_VERSION_PATCH 0
#define HARVBK_VERSION_STRING "1.0.0"
#define HARVBK_VERSION_NUMBER \
    (HARVBK_VERSION_MAJOR * 10000 + HARVBK_VERSION_MINOR * 100 + HARVBK_VERSION_PATCH)

/** Version string of the loaded library, e.g. "1.0.0". Static storage. */
HARVBK_API const char *harvbk_version(void);
/** Version number of the loaded library (MAJOR*10000 + MINOR*100 + PATCH). */
HARVBK_API unsigned int harvbk_version_number(void);

/*
 * Error codes. Every function returning int returns HARVBK_OK (0) on success or
 * one of these negative values. The numbers are fixed forever: new codes are
 * only ever appended.
 *   X(NAME, value, message)
 */
#define HARVBK_ERROR_TABLE(X)                                                          \
    X(OK, 0, "success")                                                                \
    X(E_ERROR, -1, "unspecified error")                                                \
    X(E_NOMEM, -2, "out of memory")                                                    \
    X(E_INVALID, -3, "invalid argument")                                               \
    X(E_VERSION, -4, "options structure version not supported")                        \
    X(E_NOTFOUND, -5, "not found")                                                     \
    X(E_EXISTS, -6, "already exists")                                                  \
    X(E_IO, -7, "input/output error")                                                  \
    X(E_CHUNK, -8, "chunk missing or corrupt")                                         \
    X(E_CORRUPT, -9, "metadata corrupt or malformed")                                  \
    X(E_FORMAT, -10, "store format version not supported")                             \
    X(E_CANCELLED, -11, "operation cancelled")                                         \
    X(E_FREEZE, -12, "failed to freeze filesystem")                                    \
    X(E_TARGET, -13, "backup target unreachable or failed")                            \
    X(E_UNSUPPORTED, -14, "not supported")                                             \
    X(E_BUSY, -15, "resource busy")                                                    \
    X(E_STATE, -16, "object in the wrong state for this call")                         \
    X(E_TIMEOUT, -17, "timed out")                                                     \
    X(E_PERM, -18, "permission denied")                                                \
    X(E_NOTARGET, -19, "no backup target configured")                                  \
    X(E_INTERRUPTED, -20, "operation interrupted")                                     \
    X(E_QUOTA, -21, "snapshot space quota exceeded")                                   \
    X(E_VM_RUNNING, -22, "VM is not powered off")                                      \
    X(E_CROSS_NAMESPACE, -23, "a snapshot cannot be restored into another namespace")  \
    X(E_DELETION_POLICY, -24, "deletion policy not allowed for this restore")          \
    X(E_KEEP_MAC, -25, "MAC addresses cannot be kept while the source VM exists")    \
    X(E_CRON, -26, "cron expression invalid or never fires")                          \
    X(E_INTERVAL, -27, "schedule fires more often than once an hour")                 \
    X(E_SCHEDULE_CONFLICT, -28, "schedule fires too close to another schedule")       \
    X(E_RETAIN, -29, "retain count out of range")                                     \
    X(E_MAX_FAILURE, -30, "max failure out of range")                                 \
    X(E_VM_SCHEDULED, -31, "VM already has a schedule")                               \
    X(E_MAINTENANCE, -32, "state directory is in maintenance mode")                   \
    X(E_READ_ONLY, -33, "backup target is read-only")                                 \
    X(E_IMAGE, -34, "VM image missing and cannot be recreated")                     \
    X(E_CALLBACK, -35, "a callback reported failure")                               \
    X(E_KEY, -36, "encryption key missing or wrong")

typedef enum harvbk_error {
#define HARVBK_X_ENUM_(name, value, msg) HARVBK_##name = value,
    HARVBK_ERROR_TABLE(HARVBK_X_ENUM_)
#undef HARVBK_X_ENUM_
    HARVBK_ERROR_LAST_ = -36
} harvbk_error;

/** Static message for an error code ("unknown error" for unknown codes). */
HARVBK_API const char *harvbk_strerror(int code);
/** Static symbolic name for an error code, e.g. "HARVBK_E_CHUNK". */
HARVBK_API const char *harvbk_error_name(int code);

/*
 * The calling thread's last error (the libgit2 git_error_last model).
 *
 * Every library function that returns a HARVBK_E_* code records that code
 * and a detailed message on the calling thread whenever it fails, whether or
 * not it takes a context: the context-less ones (harvbk_ctx_open, harvbk_vm_*
 * and harvbk_image_* setters, harvbk_target_config_set, harvbk_ranges_add,
 * the *_options_init functions, the *_to_json and *_at functions) included.
 * A NULL or invalid handle or argument is named with the function, e.g.
 * "harvbk_backup_get: ctx is NULL". Successful calls do NOT clear it: read it
 * right after a call that returned an error. Functions that return a value
 * rather than a code (accessors returning NULL or 0 for a NULL handle,
 * harvbk_op_errmsg_copy) never set it. Messages never contain secrets.
 *
 * Failures of an operation that happen later on a library thread (a running
 * backup...) are read with harvbk_op_errmsg_copy(); harvbk_op_wait()
 * returning such a failure also records it (code and message) here.
 *
 * Go (cgo) callers: a goroutine may move between OS threads, so lock the OS
 * thread (runtime.LockOSThread) around the call and the read of
 * harvbk_error_last_copy().
 */
/** Message of the last failing library call on the calling thread, "" when
 *  none. Borrowed: valid until the next library call on this thread. */
HARVBK_API const char *harvbk_error_last(void);
/** Copy that message into buf (always NUL-terminated, truncated to size; buf
 *  may be NULL with size 0). Returns the full length. */
HARVBK_API size_t harvbk_error_last_copy(char *buf, size_t size);
/** Code (HARVBK_E_*) of the last failing library call on the calling thread,
 *  HARVBK_OK (0) when none. */
HARVBK_API int harvbk_error_last_code(void);

/* Log levels for the log hook. */
typedef enum harvbk_log_level {
    HARVBK_LOG_ERROR = 0,
    HARVBK_LOG_WARN = 1,
    HARVBK_LOG_INFO = 2,
    HARVBK_LOG_DEBUG = 3
} harvbk_log_level;

/**
 * Log hook. Receives every message the library logs (the library never prints).
 * May be called from any library thread, concurrently; `message` is borrowed
 * for the duration of the call. Never contains secrets.
 */
typedef void (*harvbk_log_cb)(int level, const char *message, void *payload);

/**
 * Progress hook of long operations: bytes done and total (total 0: not known
 * yet). Each operation given a hook has one progress thread of its own, started
 * with it: every call of the hook is made on that thread, never on the
 * caller's thread nor on a worker, with no library lock held, so a slow hook
 * delays no worker (only the next call). Calls are coalesced: at most one per
 * 100 ms, made when the counters moved; never two at once for one operation;
 * never after the operation ended (harvbk_op_wait() returns after the last
 * one); done never decreases. On success the last call reports done == total.
 * Backups, snapshots, restores and verifies make that call before their
 * commit (the manifest, moving the volumes into place, releasing the entry)
 * and wait for it there, so a hook that blocks holds the operation at that
 * point. The hook may call the library (harvbk_op_progress, harvbk_op_state,
 * harvbk_op_cancel on its own operation; any function on others), except
 * harvbk_op_wait/_free of its own operation and harvbk_ctx_free of its
 * context. Return 0 to continue; a non-zero value cancels the operation, which
 * then ends with HARVBK_E_CANCELLED (a gc that had already swept keeps its
 * result), and the hook is not called again.
 */
typedef int (*harvbk_progress_cb)(uint64_t done, uint64_t total, void *payload);

/** Free a string the library returned as owned by the caller. NULL is a no-op. */
HARVBK_API void harvbk_string_free(char *s);

#ifdef __cplusplus
}
#endif
#endif
