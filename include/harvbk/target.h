/*
 * harvbk/target.h - backup target configuration.
 *
 * A backup target is named by a URL:
 *   file:///absolute/path          local directory (the embedded default)
 *   nfs://server/export/path       NFS through libnfs (no kernel mount)
 *   s3://bucket/prefix             S3 with endpoint, region, keys, CA certificate
 * Settings are keyed by an enum so new settings never change a structure.
 *
 * Thread-safety: a harvbk_target_config is a plain value; do not modify one
 * from two threads at once.
 */
#ifndef HARVBK_TARGET_H
#define HARVBK_TARGET_H

#include "common.h"
#include "context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct harvbk_target_config harvbk_target_config;

/** Keys of target settings. Values are always strings. Numbers fixed forever. */
typedef enum harvbk_target_key {
    HARVBK_TARGET_URL = 1,               /* file:///p, nfs://h/export/p, s3://bucket/prefix */
    HARVBK_TARGET_ENDPOINT = 2,          /* S3 endpoint URL, e.g. https://s3.example:9000 */
    HARVBK_TARGET_REGION = 3,            /* S3 region */
    HARVBK_TARGET_ACCESS_KEY_ID = 4,     /* S3 access key id */
    HARVBK_TARGET_SECRET_ACCESS_KEY = 5, /* S3 secret; write-only, never returned or logged */
    HARVBK_TARGET_CA_CERT_FILE = 6,      /* PEM file with the CA certificate(s) to trust */
    HARVBK_TARGET_VIRTUAL_HOSTED = 7,    /* "1": virtual-hosted style, "0": path style (default) */
    HARVBK_TARGET_REFRESH_INTERVAL = 8,  /* seconds between metadata syncs; "0" = on demand */
    HARVBK_TARGET_CODEC = 9,             /* "zstd" (default), "lz4", "gzip", "none" */
    HARVBK_TARGET_CHUNK_SIZE = 10,       /* bytes, power of two 64 KiB..64 MiB; default 1 MiB
                                            (4 MiB for s3:// and nfs://); fixed when the store
                                            is created */
    HARVBK_TARGET_TIMEOUT_MS = 11,       /* connect/request timeout; default 10000 */
    HARVBK_TARGET_PARALLEL = 12,         /* requests in flight; default automatic */
    HARVBK_TARGET_STORE_SECRET = 13,     /* "1": persist the secret in the state dir (0600) */
    HARVBK_TARGET_READ_ONLY = 14,        /* "1": never write to the target (since 1.1): every
                                            write (backup, delete, gc, store creation, leases,
                                            claims, cleanup of temporaries) is refused with
                                            HARVBK_E_READ_ONLY; list, sync, verify and
                                            restore work. For restore-only (disaster
                                            recovery) clusters. Default "0". */
    /* Encryption at rest (since 1.1; docs/FORMAT.md section 10, harvbk/key.h):
     * chunks, indexes, manifests and image records are encrypted with
     * AES-256-GCM under a random store key, which key files or passphrases
     * unlock. The key never enters the state directory: only these paths
     * are recorded; a key given for the session (harvbk_target_config_set_key,
     * harvbk_ctx_set_target_key) is never written anywhere. */
    HARVBK_TARGET_ENCRYPT = 15,          /* "1": the store is encrypted: a new store is created
                                            encrypted, an existing plaintext one is refused
                                            (HARVBK_E_KEY). Any key (file, passphrase file or
                                            session key) implies it. Default "0". */
    HARVBK_TARGET_KEY_FILE = 16,         /* absolute path of a key file: 32..4096 bytes of key
                                            material (e.g. 32 random bytes), read at every use;
                                            it must not be accessible by group or others
                                            (HARVBK_E_PERM) */
    HARVBK_TARGET_PASSPHRASE_FILE = 17   /* absolute path of a file whose first line is a
                                            passphrase (scrypt); same permission rule */
} harvbk_target_key;

/** New empty configuration in *out; free with harvbk_target_config_free(). */
HARVBK_API int harvbk_target_config_new(harvbk_target_config **out);
/** Free a configuration. NULL is a no-op. Secrets are wiped from memory. */
HARVBK_API void harvbk_target_config_free(harvbk_target_config *cfg);

/** Set one setting (value copied; NULL clears it). Errors: HARVBK_E_INVALID for
 *  an unknown key or a value that does not parse. */
HARVBK_API int harvbk_target_config_set(harvbk_target_config *cfg, harvbk_target_key key,
                                        const char *value);

/**
 * Read one setting into buf (NUL-terminated, truncated to size); *out_len (may be
 * NULL) receives the full length. Unset settings read as "". The secret access
 * key reads as "" whether set or not; use harvbk_target_config_has_secret().
 */
HARVBK_API int harvbk_target_config_get(const harvbk_target_config *cfg, harvbk_target_key key,
                                        char *buf, size_t size, size_t *out_len);

/** 1 when a secret access key is set, else 0. */
HARVBK_API int harvbk_target_config_has_secret(const harvbk_target_config *cfg);

/**
 * Point the context at a target (the configuration is copied). Opens the store
 * there, creating it when the location is empty, and records the configuration
 * in the state directory. Errors: HARVBK_E_INVALID (bad URL), HARVBK_E_UNSUPPORTED
 * (unknown scheme or a backend this build lacks), HARVBK_E_TARGET (unreachable),
 * HARVBK_E_FORMAT (store of a newer format), HARVBK_E_CORRUPT, HARVBK_E_IO,
 * HARVBK_E_BUSY (operations of the context are running), HARVBK_E_KEY (an
 * encrypted store without its key or with a wrong one, encryption configured
 * for a plaintext store, or asked for a new store without a key: nothing is
 * written then; harvbk/key.h), HARVBK_E_PERM (a key or passphrase file that
 * group or others may access).
 */
HARVBK_API int harvbk_ctx_set_target(harvbk_ctx *ctx, const harvbk_target_config *cfg);

/**
 * Give the context the target's secret access key for this session only: it
 * is kept in memory (wiped when the context is freed or the secret replaced),
 * never written to the state directory and never returned. Use it when the
 * secret was not stored (HARVBK_TARGET_STORE_SECRET "0"): every process that
 * opens the context and talks to the target supplies it once, without
 * harvbk_ctx_set_target() (which rewrites the configuration). It replaces a
 * stored secret for this session; NULL or "" removes the secret from memory.
 * An open store is reopened with the new secret on next use.
 * Errors: HARVBK_E_INVALID (not 1 to 1024 printable characters without
 * spaces), HARVBK_E_NOTARGET, HARVBK_E_BUSY (operations of the context run).
 */
HARVBK_API int harvbk_ctx_set_target_secret(harvbk_ctx *ctx, const char *secret);

/** Copy of the context's target configuration in *out (caller frees).
 *  HARVBK_E_NOTARGET when none is set. */
HARVBK_API int harvbk_ctx_get_target(harvbk_ctx *ctx, harvbk_target_config **out);

/** Check that the configured target is reachable and holds a readable store
 *  (an encrypted one: that the context's key opens it).
 *  Returns 0, HARVBK_E_NOTARGET, HARVBK_E_TARGET, HARVBK_E_FORMAT, HARVBK_E_KEY, ... */
HARVBK_API int harvbk_ctx_check_target(harvbk_ctx *ctx);

/* ---- The synced backup catalog (since 1.1; docs/CATALOG.md) ----
 *
 * The state directory holds a catalog of the target's backups. Listing and
 * showing backups (harvbk_backup_list_get, harvbk_backup_get) answer from it
 * without talking to the target, also while the target is unreachable. A
 * sync brings it in step with the target: it imports backups other contexts
 * (clusters) wrote, updates changed ones, marks backups whose manifest
 * vanished as gone (state Error, HARVBK_BACKUP_FLAG_GONE) and forgets them at
 * the sync after, re-checks that Ready backups still have their indexes
 * (HARVBK_BACKUP_FLAG_INDEX_MISSING), and finishes deletions requested while
 * the target was unreachable. It runs when the target is set, on demand
 * (this function), and every HARVBK_TARGET_REFRESH_INTERVAL seconds while a
 * schedule runner is active. Cost: one listing of the target's backups/
 * (on S3 one LIST request per 1000 objects) plus one GET per manifest that is
 * new or changed (manifests are written once; a change is seen in the size
 * or modification time the listing returns). It writes nothing to the target
 * except to finish pending deletions. */

typedef struct harvbk_sync_result harvbk_sync_result;

/** Counters of a sync, for harvbk_sync_result_count(). Numbers fixed forever. */
typedef enum harvbk_sync_count {
    HARVBK_SYNC_IMPORTED = 1,       /* backups new to the catalog */
    HARVBK_SYNC_UPDATED = 2,        /* backups whose manifest changed */
    HARVBK_SYNC_GONE = 3,           /* backups whose manifest vanished (marked gone) */
    HARVBK_SYNC_FORGOTTEN = 4,      /* gone backups dropped (gone at two syncs in a row) */
    HARVBK_SYNC_UNCHANGED = 5,      /* backups seen unchanged */
    HARVBK_SYNC_INDEX_MISSING = 6,  /* Ready backups with a volume index missing */
    HARVBK_SYNC_DELETED = 7,        /* pending deletions finished */
    HARVBK_SYNC_MANIFEST_READS = 8, /* manifests read (GET requests on S3) */
    HARVBK_SYNC_SKIPPED = 9         /* manifests of forgotten backups skipped */
} harvbk_sync_count;

/**
 * Sync the context's catalog with its target now (synchronous). On success
 * *out (may be NULL: no result wanted) receives the result (caller frees with
 * harvbk_sync_result_free()). On failure the catalog is left as it was and
 * the context's message says why. A catalog file that cannot be read is
 * rebuilt (logged as a warning). Errors: HARVBK_E_NOTARGET, HARVBK_E_TARGET
 * (unreachable), HARVBK_E_FORMAT, HARVBK_E_CORRUPT, HARVBK_E_IO, HARVBK_E_NOMEM.
 * Thread-safe; syncs of several threads or processes on one state directory
 * merge their results.
 */
HARVBK_API int harvbk_target_sync(harvbk_ctx *ctx, harvbk_sync_result **out);
/** One counter of a sync result (0 for NULL or an unknown counter). */
HARVBK_API uint64_t harvbk_sync_result_count(const harvbk_sync_result *result, int what);
/** When the sync completed, milliseconds since the Unix epoch. */
HARVBK_API int64_t harvbk_sync_result_synced_at(const harvbk_sync_result *result);
/** Free a sync result. NULL is a no-op. */
HARVBK_API void harvbk_sync_result_free(harvbk_sync_result *result);

#ifdef __cplusplus
}
#endif
#endif
