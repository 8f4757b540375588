/*
 * store/internal.h - helpers shared by the files of src/store only (never
 * included from other layers): little-endian fields and the payload codecs.
 *
 * Codecs: each thread keeps its own cached compression contexts (zstd CCtx/DCtx, zlib
 * streams), created on first use and freed when the thread exits, so the hot
 * path allocates nothing per chunk.
 */
#ifndef HB_STORE_INTERNAL_H
#define HB_STORE_INTERNAL_H

#include "../core/hb.h"
#include "../core/crypt.h"
#include "../target/config.h"
#include "store.h"

#include <string.h>

/* ---- little-endian fields ---- */
static inline void hb_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hb_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t hb_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t hb_get_le64(const uint8_t *p)
{
    return (uint64_t)hb_get_le32(p) | (uint64_t)hb_get_le32(p + 4) << 32;
}

/* ---- payload codecs ---- */

#define HB_CODEC_MAX HB_CODEC_GZIP /* highest codec id of format 1 */

/* Default level of a codec when the caller passes 0 (zstd 1, gzip 1). */
int hb_codec_default_level(int codec);

/* Worst-case compressed size of len bytes (0 when codec is unknown). */
size_t hb_codec_bound(int codec, size_t len);

/*
 * Compress len bytes of src into dst (capacity cap). Returns 0 with *out_len
 * set, 1 when the output would not fit in cap (the caller stores the data
 * uncompressed), HARVBK_E_NOMEM when a context cannot be allocated, or
 * HARVBK_E_INVALID for an unknown codec. level 0 = the codec's default.
 */
int hb_codec_compress(int codec, int level, const void *src, size_t len, void *dst, size_t cap,
                      size_t *out_len, hb_err *e);

/*
 * Decompress exactly: the payload must expand to exactly `expect` bytes
 * written into dst (capacity >= expect). Returns 0, HARVBK_E_NOMEM, or
 * HARVBK_E_CHUNK with a short reason in *why (static string).
 */
int hb_codec_decompress(int codec, const void *src, size_t len, void *dst, size_t expect,
                        const char **why);

/* ---- the store config (store.c; its name: target/config.h) ---- */
struct cJSON;
typedef struct hb_store_config {
    char id[37];
    uint32_t chunk_size;
    int codec;
    hb_keyring ring;           /* ring.encrypted false: a plaintext store */
} hb_store_config;
/* Parse a store config (docs/FORMAT.md section 3); *root (may be NULL)
 * receives the parsed tree (caller deletes) to rewrite it. */
int hb_store_config_parse(const void *data, size_t len, hb_store_config *sc,
                          struct cJSON **root, hb_err *e);
/* Read and parse the target's store config (HARVBK_E_NOTFOUND when absent). */
int hb_store_config_read(hb_target *t, hb_store_config *sc, struct cJSON **root, hb_err *e);
void hb_store_config_clear(hb_store_config *sc);

/* ---- key slots (keys.c) ---- */
/* The "key_fingerprint" and "keys" of an encrypted config. */
int hb_keyring_parse(const struct cJSON *root, const char *store_id, hb_keyring *r, hb_err *e);
/* The JSON object of a new slot wrapping c's master key under key. */
int hb_keyring_slot_new(const hb_store_crypt *c, const hb_key *key, struct cJSON **out,
                        char id_out[HB_KEY_ID_HEX + 1], hb_err *e);

/* ---- the store key (crypt.c) ---- */
int hb_store_crypt_new(hb_store_crypt **out, const char *store_id,
                       const uint8_t master[HB_STORE_KEY_LEN], hb_err *e);
void hb_store_crypt_set_slot(hb_store_crypt *c, const char *id);
const uint8_t *hb_store_crypt_master(const hb_store_crypt *c);
/* Chunk id under c (HMAC-SHA-256), or SHA-256 when c is NULL. */
void hb_crypt_chunk_id(const hb_store_crypt *c, const void *data, size_t len,
                       uint8_t id[HB_DIGEST_LEN]);
/* Encrypt a chunk object's payload: obj is the 32-byte header (flags and
 * lengths set) followed by room for plen bytes and the tag; the plen bytes
 * come from `in` (NULL: they are in obj already, encrypted in place).
 * Writes the nonce into the header and the 16-byte tag after the payload. */
int hb_crypt_chunk_seal(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN], uint8_t *obj,
                        const void *in, size_t plen);
/* Decrypt the clen payload bytes of obj (tag after them) into out (may be
 * the payload itself). HARVBK_E_CHUNK when it does not authenticate. */
int hb_crypt_chunk_open(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN],
                        const uint8_t *obj, size_t clen, uint8_t *out);

#endif
