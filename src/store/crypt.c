/*
 * store/crypt.c - the unlocked key of an encrypted store (docs/FORMAT.md
 * section 10): keys derived from the store master key, keyed chunk ids,
 * encrypted chunk payloads and the sealed envelope of indexes, manifests and
 * image records.
 *
 * From the 32-byte master key M and the store id (salt), HKDF-SHA-256
 * derives:
 *   data key         info "harvbk 1.1 data"         AES-256-GCM of chunks and envelopes
 *   chunk id key     info "harvbk 1.1 chunk id"     HMAC-SHA-256 of a chunk's plaintext
 *   fingerprint      info "harvbk 1.1 fingerprint"  16 bytes, shown as 32 hex
 * All three live in secure memory (core/crypt.h) with M, and are wiped when
 * the last reference goes.
 */
#include "../core/crypt.h"
#include "internal.h"
#include "store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define INFO_DATA "harvbk 1.1 data"
#define INFO_ID "harvbk 1.1 chunk id"
#define INFO_FP "harvbk 1.1 fingerprint"
#define FP_BYTES 16

/* the secure block: M, data key, id key */
#define OFF_MASTER 0
#define OFF_DATA 32
#define OFF_ID 64
#define SECURE_LEN 96

struct hb_store_crypt {
    atomic_uint refs;
    uint8_t *k;                           /* secure memory, SECURE_LEN bytes */
    char store_id[37];
    char fingerprint[HB_STORE_FP_HEX + 1];
    char slot[HB_KEY_ID_HEX + 1];         /* the key slot that unwrapped it */
};

int hb_store_crypt_new(hb_store_crypt **out, const char *store_id,
                       const uint8_t master[HB_STORE_KEY_LEN], hb_err *e)
{
    *out = NULL;
    hb_store_crypt *c = hb_calloc(1, sizeof *c);
    uint8_t *k = c ? hb_secure_alloc(SECURE_LEN) : NULL;
    if (!k) {
        hb_free(c);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate memory for the store key");
    }
    c->k = k;
    atomic_init(&c->refs, 1);
    snprintf(c->store_id, sizeof c->store_id, "%s", store_id);
    memcpy(k + OFF_MASTER, master, HB_STORE_KEY_LEN);
    uint8_t fp[FP_BYTES];
    size_t sl = strlen(store_id);
    if (hb_hkdf_sha256(master, HB_STORE_KEY_LEN, store_id, sl, INFO_DATA, k + OFF_DATA, 32) ||
        hb_hkdf_sha256(master, HB_STORE_KEY_LEN, store_id, sl, INFO_ID, k + OFF_ID, 32) ||
        hb_hkdf_sha256(master, HB_STORE_KEY_LEN, store_id, sl, INFO_FP, fp, sizeof fp)) {
        hb_store_crypt_unref(c);
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot derive the store's keys (OpenSSL failed)");
    }
    hb_hex(fp, sizeof fp, c->fingerprint);
    *out = c;
    return 0;
}

hb_store_crypt *hb_store_crypt_ref(hb_store_crypt *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void hb_store_crypt_unref(hb_store_crypt *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    hb_secure_free(c->k, SECURE_LEN);
    hb_free(c);
}

const char *hb_store_crypt_fingerprint(const hb_store_crypt *c)
{
    return c ? c->fingerprint : "";
}

const char *hb_store_crypt_slot(const hb_store_crypt *c)
{
    return c ? c->slot : "";
}

void hb_store_crypt_set_slot(hb_store_crypt *c, const char *id)
{
    snprintf(c->slot, sizeof c->slot, "%s", id);
}

const char *hb_store_crypt_store_id(const hb_store_crypt *c)
{
    return c ? c->store_id : "";
}

const uint8_t *hb_store_crypt_master(const hb_store_crypt *c)
{
    return c->k + OFF_MASTER;
}

/* ---- chunk ids ---- */

void hb_crypt_chunk_id(const hb_store_crypt *c, const void *data, size_t len,
                       uint8_t id[HB_DIGEST_LEN])
{
    if (c)
        hb_hmac_sha256(c->k + OFF_ID, 32, data, len, id);
    else
        hb_sha256(data, len, id);
}

void hb_store_chunk_id(const hb_store *st, const void *data, size_t len,
                       uint8_t id[HB_DIGEST_LEN])
{
    hb_crypt_chunk_id(st ? st->crypt : NULL, data, len, id);
}

/* ---- chunk payloads: header + id are the additional data ---- */

int hb_crypt_chunk_seal(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN], uint8_t *obj,
                        const void *in, size_t plen)
{
    uint8_t *h = obj, *payload = obj + HB_CHUNK_HEADER_LEN;
    hb_random(h + 16, HB_GCM_NONCE_LEN);
    return hb_gcm_seal(c->k + OFF_DATA, h + 16, h, HB_CHUNK_HEADER_LEN, id, HB_DIGEST_LEN,
                       in ? in : payload, plen, payload, payload + plen);
}

int hb_crypt_chunk_open(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN],
                        const uint8_t *obj, size_t clen, uint8_t *out)
{
    const uint8_t *h = obj, *payload = obj + HB_CHUNK_HEADER_LEN;
    return hb_gcm_open(c->k + OFF_DATA, h + 16, h, HB_CHUNK_HEADER_LEN, id, HB_DIGEST_LEN,
                       payload, clen, payload + clen, out);
}

/* ---- envelopes (indexes, manifests, image records) ---- */

static const uint8_t env_magic[4] = { 'H', 'B', 'E', '1' };
#define ENV_VERSION 1

int hb_store_seal(const hb_store *st, const char *key, hb_buf *b, hb_err *e)
{
    if (!st->crypt)
        return 0;
    size_t len = b->len;
    if (len > SIZE_MAX - HB_ENVELOPE_OVERHEAD ||
        hb_buf_reserve(b, len + HB_ENVELOPE_OVERHEAD) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate %zu bytes to encrypt '%s'", len,
                         key);
    uint8_t *p = b->data;
    memmove(p + HB_ENVELOPE_HEADER_LEN, p, len);
    memset(p, 0, HB_ENVELOPE_HEADER_LEN);
    memcpy(p, env_magic, 4);
    p[4] = ENV_VERSION;
    hb_put_le64(p + 8, len);
    hb_random(p + 16, HB_GCM_NONCE_LEN);
    uint8_t *body = p + HB_ENVELOPE_HEADER_LEN;
    int rc = hb_gcm_seal(st->crypt->k + OFF_DATA, p + 16, p, HB_ENVELOPE_HEADER_LEN, key,
                         strlen(key), body, len, body, body + len);
    if (rc)
        return hb_seterr(e, rc, "cannot encrypt '%s' (OpenSSL failed)", key);
    b->len = len + HB_ENVELOPE_OVERHEAD;
    return 0;
}

int hb_store_unseal(const hb_store *st, const char *key, hb_buf *b, hb_err *e)
{
    if (!st->crypt)
        return 0;
    uint8_t *p = b->data;
    if (b->len < HB_ENVELOPE_OVERHEAD || memcmp(p, env_magic, 4) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "'%s' is not encrypted (the store is: it was not written by a holder "
                         "of the store's key)",
                         key);
    if (p[4] != ENV_VERSION)
        return hb_seterr(e, p[4] > ENV_VERSION ? HARVBK_E_FORMAT : HARVBK_E_CORRUPT,
                         "'%s' is an encrypted object of version %u, which this library does not "
                         "read",
                         key, p[4]);
    if (p[5] || p[6] || p[7] || !hb_is_zero(p + 28, 4))
        return hb_seterr(e, HARVBK_E_CORRUPT, "'%s': reserved bytes of its header are not zero",
                         key);
    uint64_t len = hb_get_le64(p + 8);
    if (len != b->len - HB_ENVELOPE_OVERHEAD)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "'%s' is %zu bytes but its header says %llu bytes of content", key,
                         b->len, (unsigned long long)len);
    uint8_t *body = p + HB_ENVELOPE_HEADER_LEN;
    int rc = hb_gcm_open(st->crypt->k + OFF_DATA, p + 16, p, HB_ENVELOPE_HEADER_LEN, key,
                         strlen(key), body, (size_t)len, body + len, body);
    if (rc == HARVBK_E_CHUNK)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "'%s' fails authentication: it was changed, moved from another key, or "
                         "written under another store key",
                         key);
    if (rc)
        return hb_seterr(e, rc, "cannot decrypt '%s' (OpenSSL failed)", key);
    memmove(p, body, (size_t)len);
    hb_cleanse(p + len, HB_ENVELOPE_OVERHEAD);
    b->len = (size_t)len;
    return 0;
}

size_t hb_store_sealed_max(const hb_store *st, size_t plain_max)
{
    if (!st->crypt)
        return plain_max;
    return plain_max > SIZE_MAX - HB_ENVELOPE_OVERHEAD ? SIZE_MAX
                                                        : plain_max + HB_ENVELOPE_OVERHEAD;
}

int hb_store_meta_put(hb_store *st, const char *key, const void *data, size_t len,
                      uint64_t *out_stored, hb_err *e)
{
    if (!st->crypt) {
        int rc = hb_target_put(st->t, key, data, len, e);
        if (!rc && out_stored)
            *out_stored = len;
        return rc;
    }
    hb_buf b = HB_BUF_INIT;
    int rc = hb_buf_append(&b, data, len) ? hb_seterr(e, HARVBK_E_NOMEM, NULL) : 0;
    if (!rc)
        rc = hb_store_seal(st, key, &b, e);
    if (!rc)
        rc = hb_target_put(st->t, key, b.data, b.len, e);
    if (!rc && out_stored)
        *out_stored = b.len;
    hb_buf_free(&b);
    return rc;
}

int hb_store_meta_get(hb_store *st, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    int rc = hb_target_get_max(st->t, key, out, hb_store_sealed_max(st, max), e);
    if (rc == 0)
        rc = hb_store_unseal(st, key, out, e);
    if (rc == 0 && out->len > max)
        rc = hb_seterr(e, HARVBK_E_CORRUPT, "'%s' holds %zu bytes, more than the %zu expected",
                       key, out->len, max);
    return rc;
}
