/*
 * harvbk/backup.h - VM backups in the backup target: create, list, show,
 * verify, delete, and garbage-collect the target's chunk store.
 *
 * A backup is named NAMESPACE/NAME; its namespace is the VM's namespace. It is
 * Ready only once every chunk and then its manifest were written. Any context
 * pointed at the same target lists and restores it.
 *
 * Thread-safety: all functions may be called from any thread with a shared
 * context. Info and list handles are plain values.
 */
#ifndef HARVBK_BACKUP_H
#define HARVBK_BACKUP_H

#include "common.h"
#include "context.h"
#include "operation.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Changed ranges: what changed per volume since the previous backup ---- */

typedef struct harvbk_ranges harvbk_ranges;

/** New empty set of changed ranges in *out; free with harvbk_ranges_free(). */
HARVBK_API int harvbk_ranges_new(harvbk_ranges **out);
/** Mark [offset, offset+length) of `volume` as changed. */
HARVBK_API int harvbk_ranges_add(harvbk_ranges *ranges, const char *volume, uint64_t offset,
                                 uint64_t length);
/** Free a set of ranges. NULL is a no-op. */
HARVBK_API void harvbk_ranges_free(harvbk_ranges *ranges);

/* ---- Creating a backup ---- */

/** Flags of harvbk_backup_options.flags. */
#define HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT 0x1u /* freeze failure: go on, mark
                                                     the backup crash-consistent */
#define HARVBK_BACKUP_NO_REFLINK 0x10u            /* no reflink capture of file
                                                     volumes (since 1.1; a value
                                                     no other options type uses) */

/* Version 2 (since 1.1) added capture_cb .. freeze_deadline_ms. */
#define HARVBK_BACKUP_OPTIONS_VERSION 2

typedef struct harvbk_backup_options {
    unsigned int version;                /* HARVBK_BACKUP_OPTIONS_VERSION */
    unsigned int flags;                  /* HARVBK_BACKUP_* */
    /* Changed ranges since the VM's most recent Ready backup in this target
     * that this context wrote (backups of a same-named VM written by another
     * context sharing the target are never used as the base; without one,
     * everything is read). Chunks outside them are taken from that backup's
     * index without reading. NULL: read everything (unchanged chunks are
     * still not uploaded). A volume absent from the set is treated as
     * unchanged. */
    const harvbk_ranges *changed_ranges;
    harvbk_progress_cb progress_cb;      /* may be NULL */
    void *progress_payload;
    harvbk_freeze_cb freeze_cb;          /* may be NULL: no freeze */
    harvbk_freeze_cb thaw_cb;            /* called once after a successful freeze */
    void *freeze_payload;
    /* ---- version 2: the freeze window (harvbk/operation.h, docs/THREADING.md) ---- */
    /* Capture hook for volumes a reflink cannot capture; NULL: none. */
    harvbk_capture_cb capture_cb;
    /* Required with capture_cb (else HARVBK_E_INVALID): called once per capture. */
    harvbk_capture_release_cb release_cb;
    void *capture_payload;               /* for both */
    /* Longest time (ms) the VM may stay frozen while volumes that were not
     * captured are read, counted from the freeze hook's return. When it
     * passes before they were read, the operation stops, thaws, and fails
     * with HARVBK_E_TIMEOUT ("freeze deadline of N ms passed ..."). Checked
     * before every chunk read while frozen (a read in flight is finished
     * first); captures are not bounded by it. 0: no deadline. */
    uint32_t freeze_deadline_ms;
} harvbk_backup_options;

#define HARVBK_BACKUP_OPTIONS_INIT \
    { HARVBK_BACKUP_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_backup_options_init(harvbk_backup_options *opts, unsigned int version);

/**
 * Start a backup named `name` of `vm` into the context's target. On success
 * *out receives the operation (caller frees). The backup is visible as
 * InProgress at once. The VM description is copied.
 * Errors (returned at once): HARVBK_E_INVALID, HARVBK_E_VERSION, HARVBK_E_NOTARGET,
 * HARVBK_E_EXISTS (a backup of that name exists), HARVBK_E_BUSY, HARVBK_E_KEY
 * (an encrypted store the context has no right key for: nothing is written).
 * (also: a freeze hook without a thaw hook, a capture hook without a release
 * hook, unknown flags).
 * Errors of the running backup (from harvbk_op_wait): HARVBK_E_IO, HARVBK_E_TARGET,
 * HARVBK_E_FREEZE, HARVBK_E_CALLBACK (a capture or release hook failed),
 * HARVBK_E_TIMEOUT (the freeze deadline passed), HARVBK_E_CANCELLED, ...
 */
HARVBK_API int harvbk_backup_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm,
                                    const char *name, const harvbk_backup_options *opts);

/* ---- Reading backups ---- */

typedef struct harvbk_backup_info harvbk_backup_info;
typedef struct harvbk_backup_list harvbk_backup_list;

/** Information about backup NAMESPACE/NAME in *out (caller frees), from the
 *  context's synced catalog (see harvbk_target_sync() in target.h) merged with
 *  this context's unfinished backups (InProgress, Error); the target is not
 *  contacted, except for a first sync when the catalog was never synced.
 *  HARVBK_E_NOTFOUND when neither the catalog nor the local records know it
 *  (a backup another context wrote is known after a sync). */
HARVBK_API int harvbk_backup_get(harvbk_backup_info **out, harvbk_ctx *ctx,
                                 const char *namespace_, const char *name);
HARVBK_API void harvbk_backup_info_free(harvbk_backup_info *info);

/* Accessors; strings are borrowed from the info. */
HARVBK_API const char *harvbk_backup_info_namespace(const harvbk_backup_info *info);
HARVBK_API const char *harvbk_backup_info_name(const harvbk_backup_info *info);
HARVBK_API const char *harvbk_backup_info_vm_name(const harvbk_backup_info *info);
HARVBK_API int harvbk_backup_info_state(const harvbk_backup_info *info);
/** Error message ("" when none). */
HARVBK_API const char *harvbk_backup_info_error(const harvbk_backup_info *info);
/** Sum of the volume sizes. */
HARVBK_API uint64_t harvbk_backup_info_logical_bytes(const harvbk_backup_info *info);
/** Bytes this backup wrote to the target (new chunks, compressed, + metadata). */
HARVBK_API uint64_t harvbk_backup_info_uploaded_bytes(const harvbk_backup_info *info);
/** Bytes done / total while running (equal to logical_bytes once Ready). */
HARVBK_API uint64_t harvbk_backup_info_progress_bytes(const harvbk_backup_info *info);
/** Creation time, seconds since the Unix epoch. */
HARVBK_API int64_t harvbk_backup_info_created(const harvbk_backup_info *info);
HARVBK_API size_t harvbk_backup_info_volume_count(const harvbk_backup_info *info);
HARVBK_API const char *harvbk_backup_info_volume_name(const harvbk_backup_info *info, size_t i);
HARVBK_API uint64_t harvbk_backup_info_volume_size(const harvbk_backup_info *info, size_t i);
/** 1 when a freeze hook was given, failed, and the backup went on because
 *  HARVBK_BACKUP_ALLOW_CRASH_CONSISTENT was set; 0 otherwise (also when no
 *  freeze hook was given: the caller then vouches for consistency). */
HARVBK_API int harvbk_backup_info_crash_consistent(const harvbk_backup_info *info);
/** 1 when the freeze hook succeeded but the thaw hook then returned non-zero
 *  (the VM may still be frozen); the entry itself is not affected by it.
 *  Recorded in the entry's JSON ("thaw_failed"), its manifest and the synced
 *  catalog. 0 otherwise. Since 1.1. */
HARVBK_API int harvbk_backup_info_thaw_failed(const harvbk_backup_info *info);
/** How long the VM was kept frozen, in ms: from the freeze hook's return to
 *  the thaw hook's call (the hooks' own time not included). With a capture
 *  that is the capture step; without, it includes reading the volumes.
 *  -1 when the VM was not frozen (no freeze hook, or it failed), for entries
 *  written before 1.1, and for NULL. Also set on failed entries that got as
 *  far as the thaw. Since 1.1. */
HARVBK_API int64_t harvbk_backup_info_frozen_ms(const harvbk_backup_info *info);
/** How the volumes were captured (harvbk/operation.h): "reflink" or "hook"
 *  when every volume was captured that way, "mixed" when the volumes differ
 *  (some by reflink, some by hook, some not captured:
 *  harvbk_backup_info_volume_capture() says which), "none" when none was
 *  captured (every volume read from where it is; also entries written
 *  before 1.1). A newer library may record other names. Static or borrowed
 *  from the info; NULL for NULL. Since 1.1. */
HARVBK_API const char *harvbk_backup_info_capture(const harvbk_backup_info *info);
/** How volume i was captured: "reflink", "hook" or "none"; NULL when out of
 *  range. Since 1.1. */
HARVBK_API const char *harvbk_backup_info_volume_capture(const harvbk_backup_info *info,
                                                         size_t i);
/** Name of the schedule (in the entry's namespace) that made this backup or
 *  snapshot, NULL when it was not made by a schedule (harvbk/schedule.h). */
HARVBK_API const char *harvbk_backup_info_schedule(const harvbk_backup_info *info);
/** JSON object describing the backup in *out (free with harvbk_string_free()).
 *  Keys: namespace, name, vm, state, logical_bytes, uploaded_bytes, error,
 *  created, volumes (name, size, capture), crash_consistent, thaw_failed,
 *  frozen_ms (null when not frozen), capture, ... */
HARVBK_API int harvbk_backup_info_to_json(const harvbk_backup_info *info, char **out);

/** All backups of the context's synced catalog plus this context's unfinished
 *  ones (InProgress or Error), sorted by namespace then name, in *out (caller
 *  frees). Answers from the state directory, also while the target is
 *  unreachable (harvbk_backup_list_synced_at() says how old the catalog is);
 *  when the catalog was never synced with the configured target, a sync runs
 *  first (its errors are returned: HARVBK_E_TARGET, ...). */
HARVBK_API int harvbk_backup_list_get(harvbk_backup_list **out, harvbk_ctx *ctx);
HARVBK_API size_t harvbk_backup_list_count(const harvbk_backup_list *list);
/** Borrowed entry i, NULL when out of range. */
HARVBK_API const harvbk_backup_info *harvbk_backup_list_at(const harvbk_backup_list *list,
                                                           size_t i);
HARVBK_API void harvbk_backup_list_free(harvbk_backup_list *list);

/* ---- The synced catalog (since 1.1; docs/CATALOG.md) ---- */

/** When the catalog the list was made from was last synced with the target,
 *  in milliseconds since the Unix epoch (0: never, or NULL). */
HARVBK_API int64_t harvbk_backup_list_synced_at(const harvbk_backup_list *list);

/* Flags of harvbk_backup_info_catalog_flags(). */
#define HARVBK_BACKUP_FLAG_GONE 0x1u           /* its manifest vanished from the target at
                                                  the last sync (state Error); forgotten
                                                  at the next sync unless it returns */
#define HARVBK_BACKUP_FLAG_DELETE_PENDING 0x2u /* deleted while the target was
                                                  unreachable; the next successful sync
                                                  finishes the deletion */
#define HARVBK_BACKUP_FLAG_INDEX_MISSING 0x4u  /* Ready manifest, but an index is missing
                                                  (state Error; found by a sync) */
#define HARVBK_BACKUP_FLAG_LOCAL 0x8u          /* from this context's local record
                                                  (InProgress or Error), not the catalog */

/** HARVBK_BACKUP_FLAG_* of a backup (0 for NULL or a snapshot). */
HARVBK_API unsigned int harvbk_backup_info_catalog_flags(const harvbk_backup_info *info);
/** When the catalog entry was last confirmed by a sync, ms since the Unix
 *  epoch (the catalog's last sync; 0 for local records, snapshots, NULL). */
HARVBK_API int64_t harvbk_backup_info_synced_at(const harvbk_backup_info *info);

/**
 * Drop backup NAMESPACE/NAME from this context's catalog only: nothing in the
 * target is touched (a restore-only cluster never destroys the source's
 * backups). A later sync does not bring it back unless its manifest changes
 * (a different size or modification time in the listing: the backup was
 * deleted and written again). Works while the target is unreachable or
 * read-only. Errors: HARVBK_E_INVALID, HARVBK_E_NOTFOUND (not in the catalog),
 * HARVBK_E_IO.
 */
HARVBK_API int harvbk_backup_forget(harvbk_ctx *ctx, const char *namespace_, const char *name);

/* ---- Verify, delete, gc ---- */

#define HARVBK_OP_OPTIONS_VERSION 1

/** Options of operations that only report progress (verify, gc). */
typedef struct harvbk_op_options {
    unsigned int version; /* HARVBK_OP_OPTIONS_VERSION */
    harvbk_progress_cb progress_cb;
    void *progress_payload;
} harvbk_op_options;

#define HARVBK_OP_OPTIONS_INIT { HARVBK_OP_OPTIONS_VERSION, 0, 0 }

HARVBK_API int harvbk_op_options_init(harvbk_op_options *opts, unsigned int version);

/**
 * Start verifying a backup: every chunk it references is read and checked.
 * The operation ends with HARVBK_E_CHUNK (message names the chunk and the
 * volume) when one is missing or corrupt. `opts` may be NULL.
 */
HARVBK_API int harvbk_backup_verify(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                                    const char *name, const harvbk_op_options *opts);

/** Delete a backup from the target (its manifest and indexes; chunks are
 *  freed by gc) and from the catalog.
 *  Errors: HARVBK_E_NOTFOUND, HARVBK_E_BUSY (being written or restored),
 *  HARVBK_E_READ_ONLY (the target is read-only: use harvbk_backup_forget()),
 *  HARVBK_E_TARGET (unreachable). When the target is unreachable and the
 *  backup is in the catalog, the deletion is recorded as pending
 *  (HARVBK_BACKUP_FLAG_DELETE_PENDING) and finished by the next successful
 *  sync; this function still returns HARVBK_E_TARGET (the backup is not
 *  deleted yet; the message says it is pending): use harvbk_backup_delete_ex()
 *  to have a deferred deletion reported as success. */
HARVBK_API int harvbk_backup_delete(harvbk_ctx *ctx, const char *namespace_, const char *name);

/** harvbk_backup_delete() that accepts a deferred deletion (since 1.1): 0 with
 *  *out_deferred (may be NULL) 0 when the backup was deleted, 0 with
 *  *out_deferred 1 when the target was unreachable and the deletion is pending
 *  in the catalog (finished by the next successful sync). Other errors as
 *  harvbk_backup_delete(). */
HARVBK_API int harvbk_backup_delete_ex(harvbk_ctx *ctx, const char *namespace_, const char *name,
                                       int *out_deferred);

/**
 * Start garbage collection of the target: removes chunks no backup references.
 * Safe against backups running from other contexts (see docs/FORMAT.md).
 * Ends with HARVBK_E_BUSY when a writer holds the store.
 * Progress (harvbk_op_options.progress_cb, harvbk_op_progress) is in bytes of
 * stored chunks: marking reports nothing; listing adds the stored size of every
 * chunk of the store to done while total stays 0 (not known yet); then total
 * becomes the listed bytes plus the bytes to remove (the progress hook is
 * called with it before anything is deleted, and may still cancel), and each
 * removal adds its bytes, so done == total when the sweep is complete.
 * harvbk_snapshot_gc() reports the same way.
 */
HARVBK_API int harvbk_gc(harvbk_op **out, harvbk_ctx *ctx, const harvbk_op_options *opts);

/** After a gc operation ended: chunks and bytes it removed. */
HARVBK_API int harvbk_gc_result(const harvbk_op *op, uint64_t *out_chunks, uint64_t *out_bytes);

#ifdef __cplusplus
}
#endif
#endif
