/*
 * harvbk/key.h - keys of encrypted stores (since 1.1).
 *
 * A backup target's store, and the context's snapshot store, can be
 * encrypted at rest (docs/FORMAT.md section 10): chunks, indexes, manifests
 * and image records are encrypted with AES-256-GCM under a random store key,
 * and chunk ids are HMAC-SHA-256 under a key derived from it (so ids reveal
 * nothing, and dedup still works within the store). The store key itself is
 * kept in the store's config, wrapped by each of up to 32 user keys:
 *
 *   - a key file: 32..4096 bytes of key material (e.g. 32 random bytes:
 *     `head -c 32 /dev/urandom > store.key`), turned into a key-encryption
 *     key with HKDF-SHA-256;
 *   - a passphrase (1..1024 bytes; from a file: its first line), turned into
 *     one with scrypt (N 2^15, r 8, p 1, a random salt per key).
 *
 * Any one of them opens the store; keys are added and removed without
 * touching a chunk (harvbk_store_key_add/remove), so rotating a user key is
 * add the new one, switch the configuration to it, remove the old one. (The
 * store key itself never changes: a store whose store key leaked needs a new
 * store.)
 *
 * Where a context gets a store's key: the target configuration's key file or
 * passphrase file (HARVBK_TARGET_KEY_FILE / HARVBK_TARGET_PASSPHRASE_FILE:
 * only the path is recorded in the state directory; the file is read at every
 * use), or a key given for the session (harvbk_target_config_set_key,
 * harvbk_ctx_set_target_key; the snapshot store: its options' key_file /
 * passphrase_file, or harvbk_snapshot_store_set_key), like the S3 secret:
 * held in memory only, never written to the state directory. Key and
 * passphrase files must not be accessible by group or others: such a file is
 * refused with HARVBK_E_PERM and a message saying so.
 *
 * A missing or wrong key is HARVBK_E_KEY, reported when the store is opened,
 * before anything but its config is read or written. Key material is kept in
 * memory locked with mlock() where the process may, excluded from core dumps,
 * and wiped (OPENSSL_cleanse) when freed.
 *
 * Thread-safety: a harvbk_key is immutable once made and may be used from any
 * thread; the functions taking a context are as thread-safe as the others.
 */
#ifndef HARVBK_KEY_H
#define HARVBK_KEY_H

#include "common.h"
#include "context.h"
#include "target.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A user key (a key file's bytes or a passphrase); opaque, in locked memory. */
typedef struct harvbk_key harvbk_key;

/**
 * A key from a key file (its bytes as they are, 32..4096). The file must be a
 * regular file neither group nor others may access. *out is the caller's
 * (harvbk_key_free). Errors: HARVBK_E_INVALID (too short, too long, not a
 * regular file), HARVBK_E_PERM (accessible by group or others: the message
 * says "chmod 600"), HARVBK_E_NOTFOUND, HARVBK_E_IO.
 */
HARVBK_API int harvbk_key_from_file(harvbk_key **out, const char *path);
/** A passphrase from the first line of a file (trailing "\r\n" dropped); the
 *  same file rules. HARVBK_E_INVALID when empty or longer than 1024 bytes. */
HARVBK_API int harvbk_key_from_passphrase_file(harvbk_key **out, const char *path);
/** A key from bytes in memory, like a key file's content (32..4096 bytes; a
 *  copy is kept). HARVBK_E_INVALID otherwise. */
HARVBK_API int harvbk_key_from_bytes(harvbk_key **out, const void *data, size_t len);
/** A passphrase (1..1024 bytes, NUL-terminated; a copy is kept). */
HARVBK_API int harvbk_key_from_passphrase(harvbk_key **out, const char *passphrase);
/** Wipe and free a key. NULL is a no-op. */
HARVBK_API void harvbk_key_free(harvbk_key *key);

/**
 * Give a target configuration a key for this session (copied; NULL removes
 * it). It is used by harvbk_ctx_set_target() to create or open the store and
 * kept by the context in memory afterwards; it is never written to the state
 * directory, never returned (harvbk_ctx_get_target() leaves it out; its
 * HARVBK_TARGET_ENCRYPT reads "1" all the same) and it
 * takes precedence over the key file and passphrase file settings. A key
 * implies HARVBK_TARGET_ENCRYPT. Errors: HARVBK_E_INVALID, HARVBK_E_NOMEM.
 */
HARVBK_API int harvbk_target_config_set_key(harvbk_target_config *cfg, const harvbk_key *key);
/** 1 when the configuration holds a session key, else 0. */
HARVBK_API int harvbk_target_config_has_key(const harvbk_target_config *cfg);

/**
 * Give the context the target's key for this session only (copied; NULL
 * removes it): every process that opens the context and whose configuration
 * names no key file supplies it once, like harvbk_ctx_set_target_secret().
 * An open store is reopened with it on next use. Errors: HARVBK_E_NOTARGET,
 * HARVBK_E_BUSY (operations of the context run), HARVBK_E_INVALID.
 */
HARVBK_API int harvbk_ctx_set_target_key(harvbk_ctx *ctx, const harvbk_key *key);
/** The same for the context's snapshot store (harvbk_snapshot_store_set()
 *  with HARVBK_SNAPSHOT_STORE_ENCRYPT). Errors: HARVBK_E_BUSY,
 *  HARVBK_E_INVALID. */
HARVBK_API int harvbk_snapshot_store_set_key(harvbk_ctx *ctx, const harvbk_key *key);

/** Which store of a context. Numbers fixed forever. */
typedef enum harvbk_store_kind {
    HARVBK_STORE_TARGET = 1,    /* the backup target's store */
    HARVBK_STORE_SNAPSHOTS = 2  /* the context's local snapshot store */
} harvbk_store_kind;

/**
 * Add `key` to the keys of an encrypted store: the store key is wrapped
 * under it in a new key slot of the store's config (nothing else is
 * written). The store must open with the context's current key. id_buf (may
 * be NULL) receives the new key's id (16 hex digits and a NUL: id_size >= 17).
 * Errors: HARVBK_E_KEY (the context cannot open the store), HARVBK_E_EXISTS
 * (key opens the store already), HARVBK_E_STATE (the store is not
 * encrypted), HARVBK_E_INVALID (32 keys already), HARVBK_E_BUSY (another
 * process rewrote the store's config at the same instant: try again),
 * HARVBK_E_READ_ONLY, HARVBK_E_TARGET, HARVBK_E_NOTARGET.
 */
HARVBK_API int harvbk_store_key_add(harvbk_ctx *ctx, harvbk_store_kind store,
                                    const harvbk_key *key, char *id_buf, size_t id_size);
/**
 * Remove the key `id` (16 hex digits, as listed) from an encrypted store. The
 * key the context opened the store with cannot be removed (switch the
 * configuration to another key first), nor the last one: HARVBK_E_STATE.
 * Errors also: HARVBK_E_NOTFOUND, HARVBK_E_KEY, HARVBK_E_BUSY, as above.
 */
HARVBK_API int harvbk_store_key_remove(harvbk_ctx *ctx, harvbk_store_kind store,
                                       const char *id);

/** The keys of a store, as listed by harvbk_store_keys_get(). */
typedef struct harvbk_store_keys harvbk_store_keys;
/**
 * What the store's config says about its encryption, read from the store
 * without needing a key; with the context's key (when it has one) it also
 * tells which key slot that key opens. *out is the caller's
 * (harvbk_store_keys_free). Errors: HARVBK_E_NOTARGET, HARVBK_E_TARGET,
 * HARVBK_E_NOTFOUND (no snapshot store yet), HARVBK_E_CORRUPT,
 * HARVBK_E_FORMAT; a wrong key is not an error here (unlocked is 0).
 */
HARVBK_API int harvbk_store_keys_get(harvbk_ctx *ctx, harvbk_store_kind store,
                                     harvbk_store_keys **out);
/** 1 when the store is encrypted. */
HARVBK_API int harvbk_store_keys_encrypted(const harvbk_store_keys *keys);
/** The store key's fingerprint, 32 hex digits ("" for a plaintext store):
 *  the same for every user key of the store; borrowed from keys. */
HARVBK_API const char *harvbk_store_keys_fingerprint(const harvbk_store_keys *keys);
/** 1 when the context's key opens the store. */
HARVBK_API int harvbk_store_keys_unlocked(const harvbk_store_keys *keys);
/** Number of key slots. */
HARVBK_API size_t harvbk_store_keys_count(const harvbk_store_keys *keys);
/** Id of slot i (16 hex digits; "" out of range). */
HARVBK_API const char *harvbk_store_keys_id(const harvbk_store_keys *keys, size_t i);
/** Kind of slot i: "key-file", "passphrase", or "unknown" (a derivation of a
 *  newer library, kept and never used). */
HARVBK_API const char *harvbk_store_keys_kind(const harvbk_store_keys *keys, size_t i);
/** When slot i was added, seconds since the epoch (0: unknown). */
HARVBK_API int64_t harvbk_store_keys_created(const harvbk_store_keys *keys, size_t i);
/** 1 when slot i is the one the context's key opens. */
HARVBK_API int harvbk_store_keys_in_use(const harvbk_store_keys *keys, size_t i);
/** Free the list. NULL is a no-op. */
HARVBK_API void harvbk_store_keys_free(harvbk_store_keys *keys);

#ifdef __cplusplus
}
#endif
#endif
