/*
 * store/store.h - the content-addressed chunk store, one format for the local
 * snapshot store and every backup target (docs/FORMAT.md is the reference).
 *
 * Keys in the target (format 1):
 *   harvbk-store.json                       store config, written once at creation
 *   chunks/<aa>/<bb>/<64 hex>               chunk objects (id = SHA-256 of plaintext)
 *   <kind>/<ns>/<name>/manifest.json        entry manifest, written LAST (= commit)
 *   <kind>/<ns>/<name>/<volume>.idx         per-volume chunk index
 *   locks/<role>-<owner>.json               leases of writers and gc (heartbeat)
 *   images/<ns>/<name>.json                 image records (optional area, shared by
 *                                           every entry; never deleted by the store)
 * <kind> is "backups" (later "snapshots"). Temporaries are the backend's business.
 *
 * An encrypted store (format 1.1, FORMAT.md section 10; store/crypt.c,
 * store/keys.c) has the same keys: chunk ids are HMAC-SHA-256, chunk payloads
 * AES-256-GCM, and indexes, manifests and image records are stored in sealed
 * envelopes (hb_store_seal/unseal), all under keys derived from the store key
 * that the config's key slots wrap. hb_store->crypt says which kind a store is.
 */
#ifndef HB_STORE_H
#define HB_STORE_H

#include "../core/crypt.h"
#include "../core/digestset.h"
#include "../core/hb.h"
#include "../target/target.h"

#include <stdatomic.h>

#define HB_FORMAT_MAJOR 1
#define HB_FORMAT_MINOR 0
/* The minor version an encrypted store's config says (FORMAT.md section 10):
 * a 1.0 reader refuses its "encryption"/"chunk_id" values with
 * HARVBK_E_FORMAT. Plaintext stores stay 1.0 (readable by every 1.x). */
#define HB_FORMAT_MINOR_ENCRYPTED 1
#define HB_KIND_BACKUPS "backups"

/* ---- encryption at rest (store/crypt.c, store/keys.c; FORMAT.md section 10) ---- */
#define HB_STORE_KEY_LEN 32      /* the store master key */
#define HB_STORE_FP_HEX 32       /* its fingerprint: 16 bytes in hex */
#define HB_KEY_ID_HEX 16         /* a key slot's id: 8 bytes in hex */
#define HB_KEYS_MAX 32           /* key slots a store may have */
/* The unlocked key of an encrypted store (derived keys in secure memory),
 * reference-counted, shared by every handle on the store and thread-safe. */
typedef struct hb_store_crypt hb_store_crypt;
hb_store_crypt *hb_store_crypt_ref(hb_store_crypt *c);   /* NULL ok */
void hb_store_crypt_unref(hb_store_crypt *c);            /* wipes with the last; NULL ok */
const char *hb_store_crypt_fingerprint(const hb_store_crypt *c); /* 32 hex; "" for NULL */
/* The id of the key slot whose key unwrapped it ("" for NULL). */
const char *hb_store_crypt_slot(const hb_store_crypt *c);
/* The id of the store it belongs to ("" for NULL). */
const char *hb_store_crypt_store_id(const hb_store_crypt *c);

/* An encrypted store's key slots (keys.c). kdf 0: a derivation this library
 * does not know (a newer writer's), kept but never used. */
enum { HB_KDF_HKDF = 1, HB_KDF_SCRYPT = 2 };
typedef struct hb_key_slot {
    char id[HB_KEY_ID_HEX + 1];
    int kdf;
    uint8_t salt[32];
    uint64_t n, r, p;          /* scrypt costs */
    uint8_t nonce[12];
    uint8_t wrapped[48];
    int64_t created;           /* 0: unknown */
} hb_key_slot;
typedef struct hb_keyring {
    bool encrypted;
    char store_id[37];
    char fingerprint[HB_STORE_FP_HEX + 1];
    hb_key_slot *slots;
    size_t n;
} hb_keyring;
const char *hb_kdf_name(int kdf); /* "hkdf-sha256", "scrypt" */
void hb_keyring_clear(hb_keyring *r);
/* The store config's keys, read from the target without any key (a
 * plaintext store: r->encrypted false; r->store_id is set either way).
 * HARVBK_E_NOTFOUND when the target holds no store. */
int hb_store_keyring_read(hb_target *t, hb_keyring *r, hb_err *e);
/* Which slot key opens: 0 with *slot, HARVBK_E_KEY (wrong or NULL key, with
 * a message), HARVBK_E_CORRUPT (a damaged slot), HARVBK_E_NOMEM. */
int hb_keyring_match(const hb_keyring *r, const hb_key *key, size_t *slot, hb_err *e);
/* Unwrap the store key with key: *out (unref it) and the slot. Errors as
 * hb_keyring_match. */
int hb_keyring_unlock(const hb_keyring *r, const hb_key *key, hb_store_crypt **out,
                      size_t *slot, hb_err *e);

/* ---- chunk objects ---- */
#define HB_CHUNK_HEADER_LEN 32
#define HB_CHUNK_KEY_LEN 80 /* "chunks/aa/bb/" + 64 hex + NUL fits */

/* "chunks/aa/bb/<hex>" */
void hb_chunk_key(const uint8_t id[HB_DIGEST_LEN], char out[HB_CHUNK_KEY_LEN]);
/* Parse a chunk key back into an id; false when key is not a chunk key. */
bool hb_chunk_key_parse(const char *key, uint8_t id[HB_DIGEST_LEN]);
/* Build the chunk object (header + compressed payload) for raw data into out.
 * If compression does not shrink the data, codec "none" is recorded. */
int hb_chunk_encode(int codec, int level, const void *raw, size_t len, hb_buf *out, hb_err *e);
/* Check header, decompress into raw (capacity raw_cap), re-hash and compare
 * with id. Any mismatch: HARVBK_E_CHUNK with the chunk's hex id in the message. */
int hb_chunk_decode(const void *obj, size_t objlen, const uint8_t id[HB_DIGEST_LEN], void *raw,
                    size_t raw_cap, size_t *raw_len, hb_err *e);
/* The same for a store: with a key (c not NULL) the payload is encrypted
 * after compression (flag bit 0, nonce in the header, tag after the
 * payload; the header and the id are authenticated), and decoding decrypts
 * it in place in obj before anything else uses it; a chunk whose flag does
 * not match the store (an encrypted one without a key: HARVBK_E_FORMAT; a
 * plaintext one in an encrypted store: HARVBK_E_CHUNK) is refused. */
int hb_chunk_encode_ex(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN], int codec,
                       int level, const void *raw, size_t len, hb_buf *out, hb_err *e);
int hb_chunk_decode_ex(const hb_store_crypt *c, void *obj, size_t objlen,
                       const uint8_t id[HB_DIGEST_LEN], void *raw, size_t raw_cap,
                       size_t *raw_len, hb_err *e);

/* ---- per-volume index ---- */
typedef struct hb_index {
    uint64_t volume_size;
    uint32_t chunk_size;
    uint64_t count;   /* ceil(volume_size / chunk_size) */
    uint8_t *ids;     /* count * 32 bytes; all-zero id = hole / zero chunk */
} hb_index;

int hb_index_init(hb_index *ix, uint64_t volume_size, uint32_t chunk_size); /* ids zeroed */
void hb_index_clear(hb_index *ix);
static inline uint8_t *hb_index_id(const hb_index *ix, uint64_t i) { return ix->ids + i * 32; }
static inline bool hb_index_is_hole(const hb_index *ix, uint64_t i)
{
    return hb_is_zero(ix->ids + i * 32, 32);
}
/* Length of chunk i (the last one may be short). */
uint32_t hb_index_chunk_len(const hb_index *ix, uint64_t i);
int hb_index_encode(const hb_index *ix, hb_buf *out, hb_err *e);
/* HARVBK_E_CORRUPT for truncation/bad checksum, HARVBK_E_FORMAT for newer versions. */
int hb_index_decode(const void *data, size_t len, hb_index *ix, hb_err *e);

/* ---- manifests ---- */
typedef struct hb_manifest_volume {
    char *name;
    uint64_t size;
    uint64_t chunks;          /* index entries */
    uint64_t data_chunks;     /* entries that are not holes */
    char index_sha256[HB_DIGEST_HEX_LEN + 1];
    char capture[HB_CAPTURE_MAX]; /* how it was captured (optional key, 1.1); "": none */
} hb_manifest_volume;

typedef struct hb_manifest {
    int format_major, format_minor;
    char *kind;               /* "backup" */
    char *ns, *name;          /* entry namespace/name */
    char *vm_ns, *vm_name;    /* source VM */
    char *writer;             /* context id that wrote it */
    char *schedule;           /* the schedule that made it (optional, 1.1); NULL: none */
    int64_t created, completed;
    int64_t completed_ms;     /* completion in ms since the epoch (orders backups) */
    uint32_t chunk_size;
    int codec;
    bool crash_consistent;
    bool thaw_failed;         /* the thaw hook failed (optional key, 1.1) */
    hb_freeze_rec freeze;     /* frozen_ms and capture (optional keys, 1.1) */
    uint64_t logical_bytes;   /* sum of volume sizes */
    uint64_t uploaded_bytes;  /* bytes written to the target by this entry */
    hb_buf metadata;          /* opaque VM metadata document (base64 in JSON) */
    char **images; size_t nimages;
    hb_manifest_volume *vols; size_t nvols;
} hb_manifest;

/* Largest manifest document (JSON text) written or read: a reader refuses a
 * larger object as corrupt without reading it, so a writer refuses to produce
 * one (HARVBK_E_INVALID). The VM metadata, base64-encoded, is most of it. */
#define HB_MANIFEST_MAX (64u * 1024u * 1024u)

void hb_manifest_init(hb_manifest *m);
void hb_manifest_clear(hb_manifest *m);
int hb_manifest_encode(const hb_manifest *m, hb_buf *out, hb_err *e);
/* Strict: HARVBK_E_CORRUPT for malformed/truncated/invalid names,
 * HARVBK_E_FORMAT for a newer major format. */
int hb_manifest_decode(const void *data, size_t len, hb_manifest *m, hb_err *e);

/* ---- the store ---- */
typedef struct hb_store {
    hb_target *t;             /* owned */
    uint32_t chunk_size;
    int codec;
    int level;                /* compression level used when writing */
    char id[37];
    const hb_logger *log;
    hb_store_crypt *crypt;    /* the store key (a reference); NULL: a plaintext store */
    char key_slot[HB_KEY_ID_HEX + 1]; /* the key slot that opened it ("" when plaintext) */
} hb_store;

/* Open the store in target t (taking ownership of t, also on failure).
 * When the target holds no store yet it is created with cfg's codec and chunk
 * size (defaults: zstd, hb_target_cfg_default_chunk_size()). HARVBK_E_FORMAT for a newer major format. */
int hb_store_open(hb_store **out, hb_target *t, const hb_target_cfg *cfg, hb_err *e);
/* The same; with create false a target without a store is HARVBK_E_TARGET
 * (a store that vanished, e.g. an unmounted directory, is never re-created
 * silently). */
int hb_store_open_ex(hb_store **out, hb_target *t, const hb_target_cfg *cfg, bool create,
                     hb_err *e);
/* The same with encryption: the store's key comes from cfg (its session key,
 * else its key file, else its passphrase file, each read now), or is `reuse`
 * (an unlocked key of this very store: same id and fingerprint; then nothing
 * is derived). When encryption is wanted (cfg->encrypt or any key) a new
 * store is created encrypted, a plaintext one is refused (HARVBK_E_KEY); an
 * encrypted store without a key, or with a wrong one, is HARVBK_E_KEY; a key
 * file that group or others may access is HARVBK_E_PERM. All of it before
 * anything but the store config is read or written. */
int hb_store_open_key(hb_store **out, hb_target *t, const hb_target_cfg *cfg, bool create,
                      hb_store_crypt *reuse, hb_err *e);
void hb_store_close(hb_store *st);

/* Chunk id of data in this store: SHA-256, or HMAC-SHA-256 under the
 * store's chunk id key when it is encrypted. */
void hb_store_chunk_id(const hb_store *st, const void *data, size_t len,
                       uint8_t id[HB_DIGEST_LEN]);

/* Sealed envelopes of metadata objects (FORMAT.md section 10: indexes,
 * manifests, image records): in an encrypted store, b's content is replaced
 * by the envelope (48 bytes longer) bound to the object's key, or the
 * envelope by its content (HARVBK_E_CORRUPT when it does not authenticate or
 * is not an envelope). Plaintext stores: no-ops. */
#define HB_ENVELOPE_HEADER_LEN 32
#define HB_ENVELOPE_OVERHEAD (HB_ENVELOPE_HEADER_LEN + 16)
int hb_store_seal(const hb_store *st, const char *key, hb_buf *b, hb_err *e);
int hb_store_unseal(const hb_store *st, const char *key, hb_buf *b, hb_err *e);
/* The largest stored object whose content is at most plain_max bytes. */
size_t hb_store_sealed_max(const hb_store *st, size_t plain_max);
/* Put / get a metadata object through the envelope (get: content of at most
 * max bytes, else HARVBK_E_CORRUPT unread). *out_stored (may be NULL): bytes
 * written. */
int hb_store_meta_put(hb_store *st, const char *key, const void *data, size_t len,
                      uint64_t *out_stored, hb_err *e);
int hb_store_meta_get(hb_store *st, const char *key, hb_buf *out, size_t max, hb_err *e);

/* Key slots of an open encrypted store (store/keys.c). Add: wrap the store
 * key under key (HARVBK_E_EXISTS when key opens it already; HARVBK_E_STATE
 * for a plaintext store); id_out gets the new slot's id. Remove the slot
 * `id`: never the last one, nor the one this handle was opened with
 * (HARVBK_E_STATE); HARVBK_E_NOTFOUND. Both rewrite harvbk-store.json and read
 * it back: HARVBK_E_BUSY when another writer's rewrite replaced ours. No
 * chunk, index or manifest is touched. */
int hb_store_key_add(hb_store *st, const hb_key *key, char id_out[HB_KEY_ID_HEX + 1], hb_err *e);
int hb_store_key_remove(hb_store *st, const char *id, hb_err *e);

/* Chunks. scratch is a caller buffer reused across calls (one per thread). */
int hb_store_chunk_put(hb_store *st, const uint8_t id[HB_DIGEST_LEN], const void *raw,
                       size_t len, hb_buf *scratch, uint64_t *out_stored, hb_err *e);
/* The same without the per-chunk durability cost: the chunk need be neither
 * durable nor visible (exists/get may not find it) until hb_store_chunk_sync()
 * returns 0. A writer takes a token with hb_store_chunk_sync_token() before
 * its first deferred put and must call hb_store_chunk_sync(token) before it
 * writes anything that references the chunks (indexes, manifests): that
 * barrier makes every deferred put that returned before it durable and
 * visible, and fails when any deferred put since the token was dropped
 * (target/target.h, put_deferred and sync). */
int hb_store_chunk_put_deferred(hb_store *st, const uint8_t id[HB_DIGEST_LEN], const void *raw,
                                size_t len, hb_buf *scratch, uint64_t *out_stored, hb_err *e);
uint64_t hb_store_chunk_sync_token(hb_store *st);
int hb_store_chunk_sync(hb_store *st, uint64_t token, hb_err *e);
/* 1 present, 0 absent, < 0 error. */
int hb_store_chunk_exists(hb_store *st, const uint8_t id[HB_DIGEST_LEN], hb_err *e);
/* Missing or corrupt: HARVBK_E_CHUNK naming the chunk. */
int hb_store_chunk_get(hb_store *st, const uint8_t id[HB_DIGEST_LEN], void *raw, size_t raw_cap,
                       size_t *out_len, hb_buf *scratch, hb_err *e);
/* A hint that chunk id will be fetched soon (hb_target_prefetch). */
void hb_store_chunk_prefetch(hb_store *st, const uint8_t id[HB_DIGEST_LEN]);
typedef int (*hb_chunk_list_cb)(const uint8_t id[HB_DIGEST_LEN], uint64_t size, int64_t mtime,
                                void *ud);
int hb_store_chunk_list(hb_store *st, hb_chunk_list_cb cb, void *ud, hb_err *e);

/* Entries (backups). kind_dir is HB_KIND_BACKUPS. */
char *hb_key_manifest(const char *kind_dir, const char *ns, const char *name);
/* The images area: "images/<ns>/<name>.json" (NULL for invalid names). The
 * record's JSON is the state layer's business (state/image.h); the store
 * never lists, deletes or sweeps this area. */
#define HB_IMAGES_AREA "images"
char *hb_key_image(const char *ns, const char *name);
char *hb_key_index(const char *kind_dir, const char *ns, const char *name, const char *volume);
int hb_store_manifest_read(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                           hb_manifest *m, hb_err *e); /* NOTFOUND, CORRUPT, FORMAT */
int hb_store_manifest_write(hb_store *st, const char *kind_dir, const hb_manifest *m, hb_err *e);
/* Reads the volume's index and checks it against the manifest's sha256. */
int hb_store_index_read(hb_store *st, const char *kind_dir, const hb_manifest *m,
                        const hb_manifest_volume *v, hb_index *ix, hb_err *e);
/* Writes the index; fills v->index_sha256, v->chunks, v->data_chunks; adds
 * the bytes written to *out_bytes (may be NULL). */
int hb_store_index_write(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                         hb_manifest_volume *v, const hb_index *ix, uint64_t *out_bytes,
                         hb_err *e);
/* Enumerate committed entries (those with a manifest): cb(ns, name, ud). */
typedef int (*hb_entry_cb)(const char *ns, const char *name, void *ud);
int hb_store_entry_list(hb_store *st, const char *kind_dir, hb_entry_cb cb, void *ud, hb_err *e);
/* Delete an entry: the manifest first (uncommits), then its other objects. */
int hb_store_entry_delete(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                          hb_err *e);

/* Claims (store/claim.c, docs/FORMAT.md "Claims"): exactly one writer wins
 * an entry name before anything is written under it. hb_store_claim:
 * HARVBK_E_EXISTS when the entry exists or another live writer claims it.
 * `owner` is the writer's lease owner (its claim is live while that lease is). */
typedef struct hb_claim hb_claim;
int hb_store_claim(hb_store *st, const char *kind_dir, const char *ns, const char *name,
                   const char *owner, hb_claim **out, hb_err *e);
/* Right before the commit: the claim is still there and no manifest appeared;
 * strict (after the writer lease lapsed): also no other live claim.
 * HARVBK_E_EXISTS otherwise. */
int hb_store_claim_confirm(hb_claim *c, bool strict, hb_err *e);
/* Remove the claim (after the commit, or on failure); NULL ok. */
void hb_store_claim_release(hb_claim *c);
/* A deleter's claim: published without checks, so creators back off. */
int hb_store_claim_for_delete(hb_store *st, const char *kind_dir, const char *ns,
                              const char *name, const char *owner, hb_claim **out, hb_err *e);
/* Live claims of others on the same name. */
int hb_store_claim_others_live(hb_claim *c, unsigned *out, hb_err *e);
/* Is key a claim under the entry folder "<kind>/<ns>/<name>/"? */
bool hb_store_key_is_claim(const char *entry_prefix, const char *key);

/* Chunk presence: *out (a new set) holds the ids of `ids` that the store
 * holds as chunk objects (at least a header long). A few ids are checked one
 * by one; more with one listing of chunks/, not a request per chunk.
 * *listed (may be NULL) gets the number of checks or listed objects. Used
 * by writers on the ids they would reuse without reading or uploading. */
int hb_store_chunks_present(hb_store *st, const hb_dset *ids, hb_dset **out, uint64_t *listed,
                            hb_err *e);
/* The same for a writer that will also upload: `checks` (at least the count
 * of ids) is how many one-by-one checks the caller expects to make in all
 * (the ids, plus one per chunk it may upload), which bounds what a listing
 * may cost. When complete is non-NULL and a listing of chunks/ ran to its end
 * having seen at most all_cap chunk objects, *out instead holds EVERY chunk
 * id of the store as of the listing (a superset of the ids present) and
 * *complete is true: an id not in it was absent then. Otherwise *out is as
 * with hb_store_chunks_present and *complete false. *found (may be NULL) gets
 * how many of `ids` the store holds either way. */
int hb_store_chunks_census(hb_store *st, const hb_dset *ids, uint64_t checks, size_t all_cap,
                           hb_dset **out, bool *complete, uint64_t *listed, size_t *found,
                           hb_err *e);

/* Leases (docs/FORMAT.md "Concurrency"): a writer holds "writer", gc holds
 * "gc". A background thread refreshes the lease's heartbeat; a lease whose
 * heartbeat is older than HB_LEASE_TTL_S is dead. */
#define HB_LEASE_TTL_DEFAULT_S 300
/* The TTL in seconds; internal, lowered only by tests. */
extern int hb_lease_ttl_s;
#define HB_LEASE_TTL_S hb_lease_ttl_s
typedef struct hb_lease hb_lease;
int hb_lease_acquire(hb_store *st, const char *role, const char *owner, hb_lease **out, hb_err *e);
void hb_lease_release(hb_lease *l); /* removes the object; NULL ok */
/* 0 while the lease has been continuously alive since it was acquired;
 * HARVBK_E_BUSY when a heartbeat gap exceeded the TTL (the holder was stopped
 * or the target unreachable): a writer must then re-check that every chunk it
 * references still exists before it commits. */
int hb_lease_check(hb_lease *l, hb_err *e);
/* Lapses of this lease so far (a heartbeat gap longer than the TTL, counted
 * once each; a gap still open counts too). A writer notes the number when it
 * starts reading the store and compares before it commits. */
uint64_t hb_lease_lapses(hb_lease *l);
/* Write the heartbeat now (after a lapse: the lease is visible again before
 * the holder looks for the other role). A gap longer than the TTL since the
 * last heartbeat counts as a lapse. */
int hb_lease_renew(hb_lease *l, hb_err *e);
/* Is the lease `role`-`owner` live (as hb_lease_count_live judges it)? An
 * absent lease is not. */
int hb_lease_owner_live(hb_store *st, const char *role, const char *owner, bool *out, hb_err *e);
/* The lease holder's identity (pid, host, boot id, pid namespace) into obj;
 * and whether an object carrying one names a dead process of this host. */
struct cJSON;
int hb_lease_ident_add(struct cJSON *obj);
bool hb_lease_ident_dead(const struct cJSON *obj);
/* An owner id: [A-Za-z0-9._-], 1..128 characters, not starting with '.'. */
bool hb_lease_owner_valid(const char *s);
/* Test only: while non-zero, heartbeats are not written (a stopped holder). */
extern atomic_int hb_lease_test_stall;
/* Is the lease object data[0..len) (at key "locks/<role>-<key_owner>.json",
 * listed with modification time mtime) live at time now? 1 live, 0 not (or
 * self's own). Unreadable objects are judged by their age. */
int hb_lease_object_live(const char *role, const char *self, const char *key_owner,
                         const void *data, size_t len, int64_t mtime, int64_t now);
/* Count live leases of `role` held by owners other than `self` (may be NULL). */
int hb_lease_count_live(hb_store *st, const char *role, const char *self, unsigned *out,
                        hb_err *e);

#endif
