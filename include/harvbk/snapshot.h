/*
 * harvbk/snapshot.h - VM snapshots in the context's local snapshot store:
 * create, list, show, verify, delete, garbage-collect, and where the store is.
 *
 * A snapshot is a point-in-time copy of all of a VM's volumes and its
 * metadata, kept in the context's own local store (no backup target needed):
 * by default the directory "snapshot-store" inside the state directory, or a
 * directory set with harvbk_snapshot_store_set(). The store has the same
 * format as a backup target (docs/FORMAT.md): content-addressed, deduplicated,
 * compressed chunks checked on every read, so snapshots of a VM share every
 * chunk that did not change. A snapshot is named NAMESPACE/NAME, its namespace
 * is the VM's; snapshot names and backup names are separate (a snapshot and a
 * backup may have the same name). Its state is InProgress while it is written,
 * Ready once its manifest is committed, Error when it failed or its process
 * died (the next harvbk_ctx_open() finds out). docs/SNAPSHOTS.md has the rules.
 *
 * Snapshots are described with the same info and list types as backups
 * (harvbk_backup_info, harvbk_backup_list and their accessors and JSON).
 * Space limits on snapshots: see harvbk/quota.h. Restoring a snapshot: see
 * harvbk_snapshot_restore() in harvbk/restore.h.
 *
 * Thread-safety: all functions may be called from any thread with a shared
 * context; several processes may use one state directory at once.
 */
#ifndef HARVBK_SNAPSHOT_H
#define HARVBK_SNAPSHOT_H

#include "backup.h"
#include "common.h"
#include "context.h"
#include "operation.h"
#include "vm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The local snapshot store ---- */

#define HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION 2 /* 2 since 1.1 (encryption); 1 still accepted */

/** Flags of harvbk_snapshot_store_options.flags (version 2). */
#define HARVBK_SNAPSHOT_STORE_ENCRYPT 0x1u /* the store is encrypted (harvbk/key.h): a new
                                              store is created encrypted, a plaintext one is
                                              refused (HARVBK_E_KEY when it is opened); any
                                              key_file or passphrase_file implies it */

typedef struct harvbk_snapshot_store_options {
    unsigned int version;      /* HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION */
    /* Directory of the store (absolute, created when missing); NULL or "":
     * "<state_dir>/snapshot-store". */
    const char *dir;
    /* Bytes per chunk when the store is created: a power of two from 64 KiB
     * to 64 MiB; 0: 4 MiB. An existing store keeps its own. */
    uint32_t chunk_size;
    /* Codec of new chunks: "zstd" (NULL: default), "lz4", "gzip", "none". */
    const char *codec;
    /* ---- version 2 (since 1.1): encryption at rest ---- */
    unsigned int flags;        /* HARVBK_SNAPSHOT_STORE_* */
    /* Absolute path of the store's key file or passphrase file (at most one;
     * NULL: none): the path is recorded, the file read at every use (it must
     * not be accessible by group or others). Without either, an encrypted
     * store needs harvbk_snapshot_store_set_key() in every process. */
    const char *key_file;
    const char *passphrase_file;
} harvbk_snapshot_store_options;

#define HARVBK_SNAPSHOT_STORE_OPTIONS_INIT \
    { HARVBK_SNAPSHOT_STORE_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_snapshot_store_options_init(harvbk_snapshot_store_options *opts,
                                                  unsigned int version);

/**
 * Configure the context's snapshot store (recorded in the state directory;
 * `opts` NULL restores the defaults). The store is created on first use.
 * With HARVBK_SNAPSHOT_STORE_ENCRYPT (or a key file / passphrase file) it is
 * encrypted (harvbk/key.h); a key file given is checked now (HARVBK_E_PERM
 * when group or others may access it). An existing plaintext store cannot be
 * encrypted in place.
 * Errors: HARVBK_E_INVALID (relative directory or key path, both a key file
 * and a passphrase file, bad chunk size, codec or flags), HARVBK_E_VERSION,
 * HARVBK_E_BUSY (snapshot operations are running), HARVBK_E_STATE (the
 * current store holds snapshots and `dir` names another directory: delete
 * them first; or encryption is asked for a directory that holds a plaintext
 * store), HARVBK_E_PERM, HARVBK_E_KEY (an encrypted store there that the key
 * given does not open), HARVBK_E_IO.
 */
HARVBK_API int harvbk_snapshot_store_set(harvbk_ctx *ctx,
                                         const harvbk_snapshot_store_options *opts);

/** Absolute directory of the context's snapshot store into buf (NUL-terminated,
 *  truncated to size); *out_len (may be NULL) receives the full length. */
HARVBK_API int harvbk_snapshot_store_dir(harvbk_ctx *ctx, char *buf, size_t size,
                                         size_t *out_len);

/* ---- Creating a snapshot ---- */

/** Flags of harvbk_snapshot_options.flags. */
#define HARVBK_SNAPSHOT_ALLOW_CRASH_CONSISTENT 0x1u /* freeze failure: go on, mark
                                                       the snapshot crash-consistent */
#define HARVBK_SNAPSHOT_NO_REFLINK 0x20u          /* no reflink capture of file
                                                       volumes (since 1.1; a value
                                                       no other options type uses) */

/* Version 2 (since 1.1) added capture_cb .. freeze_deadline_ms. */
#define HARVBK_SNAPSHOT_OPTIONS_VERSION 2

typedef struct harvbk_snapshot_options {
    unsigned int version;           /* HARVBK_SNAPSHOT_OPTIONS_VERSION */
    unsigned int flags;             /* HARVBK_SNAPSHOT_* */
    harvbk_progress_cb progress_cb; /* may be NULL */
    void *progress_payload;
    /* One freeze for the whole VM: called once before the first volume is
     * read, the thaw once after the last one (also on failure or cancel,
     * whenever the freeze succeeded). May be NULL: no freeze. With a
     * capture (below) the thaw comes after the capture, before the reads. */
    harvbk_freeze_cb freeze_cb;
    harvbk_freeze_cb thaw_cb;
    void *freeze_payload;
    /* ---- version 2: the freeze window, as in harvbk_backup_options ---- */
    harvbk_capture_cb capture_cb;         /* NULL: none */
    harvbk_capture_release_cb release_cb; /* required with capture_cb */
    void *capture_payload;
    uint32_t freeze_deadline_ms;          /* 0: none */
} harvbk_snapshot_options;

#define HARVBK_SNAPSHOT_OPTIONS_INIT \
    { HARVBK_SNAPSHOT_OPTIONS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

HARVBK_API int harvbk_snapshot_options_init(harvbk_snapshot_options *opts,
                                            unsigned int version);

/**
 * Start a snapshot named `name` of `vm` into the context's snapshot store. On
 * success *out receives the operation (caller frees; harvbk_op_kind() is
 * "snapshot"). The snapshot is visible as InProgress at once. The VM
 * description is copied.
 * Errors (returned at once): HARVBK_E_INVALID, HARVBK_E_VERSION,
 * HARVBK_E_EXISTS (a snapshot of that name exists or is being created),
 * HARVBK_E_QUOTA (the VM's or its namespace's snapshot usage is already at or
 * over its limit), HARVBK_E_IO.
 * Errors of the running snapshot (from harvbk_op_wait): HARVBK_E_QUOTA (the
 * new data would push the usage over a limit: what the snapshot wrote is
 * removed, the usage is what it was before), HARVBK_E_FREEZE, HARVBK_E_IO,
 * HARVBK_E_CALLBACK (a capture or release hook failed), HARVBK_E_TIMEOUT (the
 * freeze deadline passed), HARVBK_E_CANCELLED, HARVBK_E_BUSY (a gc of the
 * store ran for too long), ...
 */
HARVBK_API int harvbk_snapshot_create(harvbk_op **out, harvbk_ctx *ctx, const harvbk_vm *vm,
                                      const char *name, const harvbk_snapshot_options *opts);

/* ---- Reading snapshots ---- */

/** Snapshot NAMESPACE/NAME in *out (caller frees with harvbk_backup_info_free();
 *  the harvbk_backup_info_* accessors and JSON apply). HARVBK_E_NOTFOUND when
 *  the store has no such snapshot and no record of one being written. */
HARVBK_API int harvbk_snapshot_get(harvbk_backup_info **out, harvbk_ctx *ctx,
                                   const char *namespace_, const char *name);

/** Every snapshot of the store (Ready ones, those InProgress and failed ones),
 *  sorted by namespace then name, in *out (free with harvbk_backup_list_free()). */
HARVBK_API int harvbk_snapshot_list_get(harvbk_backup_list **out, harvbk_ctx *ctx);

/* ---- Verify, delete, gc ---- */

/** Start verifying a snapshot: every chunk it references is read and checked
 *  (HARVBK_E_CHUNK naming the chunk and the volume when one is missing or
 *  corrupt). Deleting it is refused while this runs. `opts` may be NULL. */
HARVBK_API int harvbk_snapshot_verify(harvbk_op **out, harvbk_ctx *ctx, const char *namespace_,
                                      const char *name, const harvbk_op_options *opts);

/**
 * Delete a snapshot: its manifest (from that instant it no longer exists and
 * no longer counts against quotas), its indexes, then the chunks no other
 * snapshot references (when no snapshot is being written meanwhile; else they
 * are left for harvbk_snapshot_gc()).
 * Errors: HARVBK_E_NOTFOUND, HARVBK_E_BUSY (being written, restored or
 * verified, by any process on the state directory).
 */
HARVBK_API int harvbk_snapshot_delete(harvbk_ctx *ctx, const char *namespace_,
                                      const char *name);

/** Start garbage collection of the snapshot store: removes chunks no snapshot
 *  references (e.g. left by a snapshot whose process died). Ends with
 *  HARVBK_E_BUSY while a snapshot is being written. harvbk_gc_result() reads
 *  what it removed. */
HARVBK_API int harvbk_snapshot_gc(harvbk_op **out, harvbk_ctx *ctx,
                                  const harvbk_op_options *opts);

#ifdef __cplusplus
}
#endif
#endif
