/*
 * harvbk/context.h - the context: one "cluster" on a state directory.
 *
 * A context owns its state directory (catalog of VMs and operations, the
 * configured backup target, later the local snapshot store, schedules and
 * quotas). Two contexts on two state directories that share one target behave
 * like two clusters.
 *
 * The context's image registry and image hook (harvbk_ctx_set_image_hook)
 * are in harvbk/image.h.
 *
 * Thread-safety: a context may be used from several threads at once; every
 * function taking a harvbk_ctx serialises what needs serialising internally.
 * The error message returned by harvbk_ctx_errmsg() is per context: use
 * harvbk_ctx_errmsg_copy() when several threads share a context, or the
 * calling thread's own harvbk_error_last() (harvbk/common.h).
 */
#ifndef HARVBK_CONTEXT_H
#define HARVBK_CONTEXT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_ctx harvbk_ctx;

#define HARVBK_CTX_OPTIONS_VERSION 1

/** Options for harvbk_ctx_open(). Initialise with HARVBK_CTX_OPTIONS_INIT or
 *  harvbk_ctx_options_init(). */
typedef struct harvbk_ctx_options {
    unsigned int version;   /* HARVBK_CTX_OPTIONS_VERSION */
    harvbk_log_cb log_cb;   /* NULL: messages are dropped */
    void *log_payload;      /* passed to log_cb */
    int log_level;          /* highest level delivered; default HARVBK_LOG_INFO */
    unsigned int threads;   /* worker threads per operation; 0 = automatic */
} harvbk_ctx_options;

#define HARVBK_CTX_OPTIONS_INIT { HARVBK_CTX_OPTIONS_VERSION, 0, 0, HARVBK_LOG_INFO, 0 }

/** Initialise `opts` to defaults for structure `version`.
 *  Returns HARVBK_E_VERSION for a version this library does not know. */
HARVBK_API int harvbk_ctx_options_init(harvbk_ctx_options *opts, unsigned int version);

/**
 * Open (creating if needed) the state directory `state_dir` and return a new
 * context in `*out` (the caller frees it with harvbk_ctx_free()). `opts` may be
 * NULL for defaults. Crash recovery happens here: operations a previous process
 * left InProgress become Error ("interrupted") and its temporary files are removed.
 * The state directory is private to its owner: created 0700 (an existing one
 * of the caller's that group or others may access is made 0700, logged as a
 * warning), and every file the library makes in it is 0600 and every folder
 * 0700 whatever the umask (the snapshot store in it too).
 * Errors: HARVBK_E_INVALID, HARVBK_E_IO, HARVBK_E_PERM, HARVBK_E_CORRUPT,
 * HARVBK_E_FORMAT, HARVBK_E_VERSION, HARVBK_E_NOMEM. On error `*out` is NULL;
 * there is no context to hold the message, read it with harvbk_error_last()
 * (e.g. "state directory '/x' is not writable: Permission denied").
 */
HARVBK_API int harvbk_ctx_open(harvbk_ctx **out, const char *state_dir,
                               const harvbk_ctx_options *opts);

/** Close a context. Running operations are cancelled and waited for first.
 *  Operation handles stay valid (and must still be freed). NULL is a no-op. */
HARVBK_API void harvbk_ctx_free(harvbk_ctx *ctx);

/** Replace the log hook (NULL disables logging). */
HARVBK_API int harvbk_ctx_set_log_hook(harvbk_ctx *ctx, harvbk_log_cb cb, void *payload,
                                       int max_level);

/** Detailed message of the last failing call on this context. Borrowed: valid
 *  until the next call on the context. Never NULL (empty when none). */
HARVBK_API const char *harvbk_ctx_errmsg(const harvbk_ctx *ctx);

/** Copy the last error message into buf (always NUL-terminated, truncated to
 *  size). Safe when several threads share the context. Returns the full length. */
HARVBK_API size_t harvbk_ctx_errmsg_copy(const harvbk_ctx *ctx, char *buf, size_t size);

/** Stable identifier of this state directory (a UUID string). Borrowed. */
HARVBK_API const char *harvbk_ctx_id(const harvbk_ctx *ctx);

/** Number of operations of this context currently in progress (in this
 *  process), so an upgrade can wait for quiet. */
HARVBK_API int harvbk_ctx_ops_in_progress(harvbk_ctx *ctx, unsigned int *out_count);

#ifdef __cplusplus
}
#endif
#endif
