/*
 * store/chunk.c - chunk objects (docs/FORMAT.md "Chunk objects"): keys, the
 * 32-byte header + payload encoding, verified decoding, and the store calls
 * that put, get, test and list chunks.
 */
#include "internal.h"
#include "store.h"

#include <string.h>

static const uint8_t chunk_magic[4] = { 'H', 'B', 'C', '1' };

#define CHUNK_FLAG_ENCRYPTED 0x01u
#define CHUNK_KEY_PREFIX "chunks/"
#define CHUNK_KEY_STRLEN (sizeof CHUNK_KEY_PREFIX - 1 + 3 + 3 + HB_DIGEST_HEX_LEN)

void hb_chunk_key(const uint8_t id[HB_DIGEST_LEN], char out[HB_CHUNK_KEY_LEN])
{
    char hex[HB_DIGEST_HEX_LEN + 1];
    hb_hex(id, HB_DIGEST_LEN, hex);
    memcpy(out, CHUNK_KEY_PREFIX, 7);
    out[7] = hex[0];
    out[8] = hex[1];
    out[9] = '/';
    out[10] = hex[2];
    out[11] = hex[3];
    out[12] = '/';
    memcpy(out + 13, hex, HB_DIGEST_HEX_LEN + 1);
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

bool hb_chunk_key_parse(const char *key, uint8_t id[HB_DIGEST_LEN])
{
    if (!key || strlen(key) != CHUNK_KEY_STRLEN || memcmp(key, CHUNK_KEY_PREFIX, 7) != 0)
        return false;
    const char *hex = key + 13;
    if (key[9] != '/' || key[12] != '/' || !is_lower_hex(hex, HB_DIGEST_HEX_LEN))
        return false;
    if (memcmp(key + 7, hex, 2) != 0 || memcmp(key + 10, hex + 2, 2) != 0)
        return false;
    return hb_unhex(hex, id, HB_DIGEST_LEN) == 0;
}

int hb_chunk_encode_ex(const hb_store_crypt *c, const uint8_t id[HB_DIGEST_LEN], int codec,
                       int level, const void *raw, size_t len, hb_buf *out, hb_err *e)
{
    if (codec < HB_CODEC_NONE || codec > HB_CODEC_MAX)
        return hb_seterr(e, HARVBK_E_INVALID, "unknown codec %d", codec);
    if (len > UINT32_MAX - HB_GCM_TAG_LEN)
        return hb_seterr(e, HARVBK_E_INVALID, "chunk of %zu bytes is too large", len);
    size_t bound = hb_codec_bound(codec, len);
    if (bound < len)
        bound = len;
    size_t tag = c ? HB_GCM_TAG_LEN : 0;
    hb_buf_reset(out);
    if (hb_buf_reserve(out, HB_CHUNK_HEADER_LEN + bound + tag) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate %zu bytes for a chunk",
                         HB_CHUNK_HEADER_LEN + bound + tag);
    uint8_t *payload = out->data + HB_CHUNK_HEADER_LEN;
    size_t plen = 0;
    int used = codec;
    int rc = codec == HB_CODEC_NONE ? 1
                                    : hb_codec_compress(codec, level, raw, len, payload, bound,
                                                        &plen, e);
    if (rc < 0)
        return rc;
    const void *src = NULL; /* encrypt from here (NULL: the payload, in place) */
    if (rc == 1 || plen >= len) {
        /* incompressible: keep the bytes as they are (a key encrypts them
         * straight from raw, without the copy) */
        used = HB_CODEC_NONE;
        plen = len;
        if (c)
            src = raw;
        else if (len)
            memcpy(payload, raw, len);
    }
    uint8_t *h = out->data;
    memset(h, 0, HB_CHUNK_HEADER_LEN);
    memcpy(h, chunk_magic, 4);
    h[4] = (uint8_t)used;
    h[5] = c ? CHUNK_FLAG_ENCRYPTED : 0; /* flags */
    hb_put_le32(h + 8, (uint32_t)len);
    hb_put_le32(h + 12, (uint32_t)(plen + tag));
    if (c && (rc = hb_crypt_chunk_seal(c, id, h, src, plen)) != 0)
        return hb_seterr(e, rc, "cannot encrypt a chunk (OpenSSL failed)");
    out->len = HB_CHUNK_HEADER_LEN + plen + tag;
    return 0;
}

int hb_chunk_encode(int codec, int level, const void *raw, size_t len, hb_buf *out, hb_err *e)
{
    return hb_chunk_encode_ex(NULL, NULL, codec, level, raw, len, out, e);
}

static int corrupt(hb_err *e, const char *hex, const char *why)
{
    return hb_seterr(e, HARVBK_E_CHUNK, "chunk %s is corrupt: %s", hex, why);
}

int hb_chunk_decode_ex(const hb_store_crypt *c, void *obj, size_t objlen,
                       const uint8_t id[HB_DIGEST_LEN], void *raw, size_t raw_cap,
                       size_t *raw_len, hb_err *e)
{
    char hex[HB_DIGEST_HEX_LEN + 1];
    hb_hex(id, HB_DIGEST_LEN, hex);
    uint8_t *h = obj;
    if (!obj || objlen < HB_CHUNK_HEADER_LEN)
        return hb_seterr(e, HARVBK_E_CHUNK,
                         "chunk %s is corrupt: object is %zu bytes, shorter than its header", hex,
                         objlen);
    if (memcmp(h, chunk_magic, 4) != 0)
        return corrupt(e, hex, "bad magic (not a HBC1 chunk object)");
    unsigned codec = h[4], flags = h[5];
    if ((flags & CHUNK_FLAG_ENCRYPTED) && !c)
        return hb_seterr(e, HARVBK_E_FORMAT,
                         "chunk %s is encrypted but the store is not: this library cannot read "
                         "it without the store's key",
                         hex);
    if (flags & ~CHUNK_FLAG_ENCRYPTED)
        return hb_seterr(e, HARVBK_E_FORMAT,
                         "chunk %s uses flags 0x%02x unknown to this library (format %d.%d)", hex,
                         flags, HB_FORMAT_MAJOR, HB_FORMAT_MINOR_ENCRYPTED);
    if (c && !(flags & CHUNK_FLAG_ENCRYPTED))
        return corrupt(e, hex, "not encrypted, in an encrypted store");
    /* encrypted: bytes 16..27 are the nonce, 28..31 stay zero */
    if (h[6] || h[7] || !hb_is_zero(h + (c ? 28 : 16), c ? 4 : 16))
        return corrupt(e, hex, "reserved header bytes are not zero");
    if (codec > HB_CODEC_MAX)
        return hb_seterr(e, HARVBK_E_CHUNK, "chunk %s is corrupt: unknown codec %u", hex, codec);
    uint32_t rlen = hb_get_le32(h + 8), plen = hb_get_le32(h + 12);
    if (objlen != (size_t)HB_CHUNK_HEADER_LEN + plen)
        return hb_seterr(e, HARVBK_E_CHUNK,
                         "chunk %s is corrupt: object is %zu bytes but its header says %zu",
                         hex, objlen, (size_t)HB_CHUNK_HEADER_LEN + plen);
    if (rlen > raw_cap)
        return hb_seterr(e, HARVBK_E_CHUNK,
                         "chunk %s is corrupt: raw length %u exceeds the expected maximum %zu",
                         hex, rlen, raw_cap);
    uint8_t *payload = h + HB_CHUNK_HEADER_LEN;
    if (c) {
        if (plen < HB_GCM_TAG_LEN)
            return corrupt(e, hex, "payload shorter than its authentication tag");
        plen -= HB_GCM_TAG_LEN;
        /* stored bytes (codec none): decrypt straight into raw, no copy */
        bool direct = codec == HB_CODEC_NONE && plen == rlen;
        /* nothing of the payload is used before it authenticated, bound to
         * this id: a chunk object copied to another chunk's key fails here
         * (and out, the payload or raw, is wiped then) */
        int rc = hb_crypt_chunk_open(c, id, h, plen, direct ? (uint8_t *)raw : payload);
        if (rc == HARVBK_E_CHUNK)
            return corrupt(e, hex,
                           "authentication failed (changed, moved from another chunk's key, or "
                           "written under another store key)");
        if (rc)
            return hb_seterr(e, rc, "cannot decrypt chunk %s (OpenSSL failed)", hex);
        if (direct)
            goto check_id;
    }
    const char *why = "invalid payload";
    int rc = hb_codec_decompress((int)codec, payload, plen, raw, rlen, &why);
    if (rc == HARVBK_E_NOMEM)
        return hb_seterr(e, rc, "cannot allocate a decompression context for chunk %s", hex);
    if (rc != 0)
        return corrupt(e, hex, why);
check_id:;
    uint8_t got[HB_DIGEST_LEN];
    hb_crypt_chunk_id(c, raw, rlen, got);
    if (memcmp(got, id, HB_DIGEST_LEN) != 0)
        return corrupt(e, hex, c ? "content does not match its keyed (HMAC-SHA-256) id"
                                 : "content does not match its SHA-256 id");
    if (raw_len)
        *raw_len = rlen;
    return 0;
}

int hb_chunk_decode(const void *obj, size_t objlen, const uint8_t id[HB_DIGEST_LEN], void *raw,
                    size_t raw_cap, size_t *raw_len, hb_err *e)
{
    /* without a key nothing is written into obj */
    return hb_chunk_decode_ex(NULL, (void *)obj, objlen, id, raw, raw_cap, raw_len, e);
}

/* ---- store calls ---- */

static int chunk_put(hb_store *st, const uint8_t id[HB_DIGEST_LEN], const void *raw, size_t len,
                     hb_buf *scratch, uint64_t *out_stored, bool deferred, hb_err *e)
{
    int rc = hb_chunk_encode_ex(st->crypt, id, st->codec, st->level, raw, len, scratch, e);
    if (rc)
        return rc;
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    rc = deferred ? hb_target_put_deferred(st->t, key, scratch->data, scratch->len, e)
                  : hb_target_put(st->t, key, scratch->data, scratch->len, e);
    if (rc)
        return rc;
    if (out_stored)
        *out_stored = scratch->len;
    return 0;
}

int hb_store_chunk_put(hb_store *st, const uint8_t id[HB_DIGEST_LEN], const void *raw,
                       size_t len, hb_buf *scratch, uint64_t *out_stored, hb_err *e)
{
    return chunk_put(st, id, raw, len, scratch, out_stored, false, e);
}

int hb_store_chunk_put_deferred(hb_store *st, const uint8_t id[HB_DIGEST_LEN], const void *raw,
                                size_t len, hb_buf *scratch, uint64_t *out_stored, hb_err *e)
{
    return chunk_put(st, id, raw, len, scratch, out_stored, true, e);
}

uint64_t hb_store_chunk_sync_token(hb_store *st)
{
    return hb_target_sync_token(st->t);
}

int hb_store_chunk_sync(hb_store *st, uint64_t token, hb_err *e)
{
    return hb_target_sync(st->t, token, e);
}

int hb_store_chunk_exists(hb_store *st, const uint8_t id[HB_DIGEST_LEN], hb_err *e)
{
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    uint64_t size = 0;
    int rc = hb_target_head(st->t, key, &size, e);
    if (rc == HARVBK_E_NOTFOUND) {
        if (e)
            hb_err_clear(e);
        return 0;
    }
    if (rc < 0)
        return rc;
    /* An object too short to hold even the header cannot be a chunk (a
     * damaged or foreign object): report it absent so the writer replaces it
     * instead of deduplicating against it. */
    return size >= HB_CHUNK_HEADER_LEN ? 1 : 0;
}

#define PRESENT_HEAD_MAX 16 /* up to this many checks: one head() each */
#define PRESENT_STOP 1        /* the listing costs more than heads would */

typedef struct present_ctx {
    const hb_dset *ids;
    hb_dset *out; /* the ids present; filled only once `all` is dropped */
    hb_dset *all; /* every chunk listed, while at most all_cap; else NULL */
    size_t all_cap, found; /* found: ids of `ids` present (in `all` or `out`) */
    uint64_t listed, budget;
} present_ctx;

/* One set at a time: while the whole store fits, only `all` is filled; when it
 * outgrows its cap, the ids present so far move from it to `out`. */
static int present_drop_all(present_ctx *p)
{
    size_t pos = 0;
    const uint8_t *id;
    while (hb_dset_next(p->all, &pos, &id))
        if (hb_dset_has(p->ids, id) && hb_dset_add(p->out, id) < 0)
            return HARVBK_E_NOMEM;
    hb_dset_free(p->all);
    p->all = NULL;
    return 0;
}

static int present_one(const uint8_t id[HB_DIGEST_LEN], uint64_t size, int64_t mtime, void *ud)
{
    (void)mtime;
    present_ctx *p = ud;
    if (++p->listed > p->budget)
        return PRESENT_STOP;
    if (size < HB_CHUNK_HEADER_LEN) /* not a chunk: absent, replaced by a put */
        return 0;
    if (p->all && hb_dset_count(p->all) >= p->all_cap && present_drop_all(p) < 0)
        return HARVBK_E_NOMEM; /* over the memory budget */
    bool wanted = hb_dset_has(p->ids, id);
    int added = p->all ? hb_dset_add(p->all, id) : wanted ? hb_dset_add(p->out, id) : 0;
    if (added < 0)
        return HARVBK_E_NOMEM;
    p->found += wanted && added > 0;
    return 0;
}

static int present_heads(hb_store *st, present_ctx *p, hb_err *e)
{
    size_t pos = 0;
    const uint8_t *id;
    while (hb_dset_next(p->ids, &pos, &id)) {
        p->listed++;
        int ex = hb_store_chunk_exists(st, id, e);
        if (ex < 0)
            return ex;
        if (ex == 1 && hb_dset_add(p->out, id) < 0)
            return hb_seterr(e, HARVBK_E_NOMEM, "out of memory checking chunks");
    }
    return 0;
}

/* One listing of chunks/ costs about (chunk objects in the store) /
 * list_per_head checks; `checks` checks cost `checks` requests. The store's
 * size is not known beforehand: list while that costs less than the checks
 * would, else give up the listing and check each id (at most twice the
 * cheaper way). On S3 one listing page costs one request like one HEAD, so
 * the listing is tried from two checks on; on a filesystem a listing walks
 * the chunks/<aa>/<bb>/ directories, worth it from PRESENT_HEAD_MAX on. */
int hb_store_chunks_census(hb_store *st, const hb_dset *ids, uint64_t checks, size_t all_cap,
                           hb_dset **out, bool *complete, uint64_t *listed, size_t *found,
                           hb_err *e)
{
    *out = NULL;
    if (complete)
        *complete = false;
    size_t n = hb_dset_count(ids);
    if (checks < n)
        checks = n;
    uint64_t per = st->t->list_per_head ? st->t->list_per_head : 1000u;
    uint64_t head_max = per >= 1000u ? 1 : PRESENT_HEAD_MAX;
    present_ctx p = { ids, hb_dset_new(n ? n : 1), NULL, complete ? all_cap : 0, 0, 0,
                      checks > UINT64_MAX / per ? UINT64_MAX : checks * per };
    if (!p.out)
        return hb_seterr(e, HARVBK_E_NOMEM, "out of memory checking chunks");
    int rc = 0;
    if (checks <= head_max) {
        rc = present_heads(st, &p, e);
    } else {
        if (p.all_cap) {
            size_t guess = n > p.all_cap ? p.all_cap : n;
            p.all = hb_dset_new(guess > 1024 ? guess : 1024);
            if (!p.all) {
                hb_dset_free(p.out);
                return hb_seterr(e, HARVBK_E_NOMEM, "out of memory checking chunks");
            }
        }
        rc = hb_store_chunk_list(st, present_one, &p, e);
        if (rc == HARVBK_E_NOMEM)
            hb_seterr(e, rc, "out of memory checking chunks");
        if (rc == PRESENT_STOP) { /* a store much larger than the checks */
            hb_dset_free(p.all);
            p.all = NULL;
            hb_dset_free(p.out);
            p.out = hb_dset_new(n ? n : 1);
            p.listed = 0;
            rc = p.out ? present_heads(st, &p, e)
                       : hb_seterr(e, HARVBK_E_NOMEM, "out of memory checking chunks");
            p.listed += p.budget;
        }
    }
    if (rc) {
        hb_dset_free(p.out);
        hb_dset_free(p.all);
        return hb_err_prefix(e, "cannot check which chunks the store holds");
    }
    if (listed)
        *listed = p.listed;
    if (p.all) { /* the whole store, as of the listing: p.out stayed empty */
        hb_dset_free(p.out);
        *out = p.all;
        *complete = true;
    } else {
        *out = p.out;
        p.found = hb_dset_count(p.out);
    }
    if (found)
        *found = p.found;
    return 0;
}

int hb_store_chunks_present(hb_store *st, const hb_dset *ids, hb_dset **out, uint64_t *listed,
                            hb_err *e)
{
    return hb_store_chunks_census(st, ids, 0, 0, out, NULL, listed, NULL, e);
}

/* The largest chunk object a reader whose buffer holds raw_cap bytes accepts
 * (FORMAT.md section 4, step 5: raw length <= chunk size). Writers never store
 * a payload larger than its raw bytes; any codec's worst case is allowed all
 * the same. Anything larger is refused unread. */
static size_t chunk_object_max(const hb_store *st, size_t raw_cap)
{
    size_t m = raw_cap;
    for (int c = HB_CODEC_NONE + 1; c <= HB_CODEC_MAX; c++) {
        size_t b = hb_codec_bound(c, raw_cap);
        if (b > m)
            m = b;
    }
    size_t over = HB_CHUNK_HEADER_LEN + (st->crypt ? HB_GCM_TAG_LEN : 0);
    return m > SIZE_MAX - over ? SIZE_MAX : m + over;
}

int hb_store_chunk_get(hb_store *st, const uint8_t id[HB_DIGEST_LEN], void *raw, size_t raw_cap,
                       size_t *out_len, hb_buf *scratch, hb_err *e)
{
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    hb_err ge;
    hb_err_clear(&ge);
    int rc = hb_target_get_max(st->t, key, scratch, chunk_object_max(st, raw_cap), &ge);
    if (rc == HARVBK_E_NOTFOUND)
        return hb_seterr(e, HARVBK_E_CHUNK, "chunk %s is missing", key + 13);
    if (rc == HARVBK_E_CORRUPT) /* larger than any chunk of this size can be */
        return hb_seterr(e, HARVBK_E_CHUNK, "chunk %s is corrupt: %s", key + 13, ge.msg);
    if (rc) {
        if (e)
            *e = ge;
        return rc;
    }
    return hb_chunk_decode_ex(st->crypt, scratch->data, scratch->len, id, raw, raw_cap, out_len,
                              e);
}

void hb_store_chunk_prefetch(hb_store *st, const uint8_t id[HB_DIGEST_LEN])
{
    char key[HB_CHUNK_KEY_LEN];
    hb_chunk_key(id, key);
    hb_target_prefetch(st->t, key);
}

typedef struct chunk_list_ctx {
    hb_chunk_list_cb cb;
    void *ud;
} chunk_list_ctx;

static int chunk_list_one(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    chunk_list_ctx *c = ud;
    uint8_t id[HB_DIGEST_LEN];
    if (!hb_chunk_key_parse(key, id))
        return 0; /* temporaries and strays are not chunks */
    return c->cb(id, size, mtime, c->ud);
}

int hb_store_chunk_list(hb_store *st, hb_chunk_list_cb cb, void *ud, hb_err *e)
{
    chunk_list_ctx c = { cb, ud };
    return hb_target_list(st->t, CHUNK_KEY_PREFIX, chunk_list_one, &c, e);
}
