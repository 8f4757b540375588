/*
 * store/index.c - per-volume chunk indexes (docs/FORMAT.md "Index objects"):
 * a 32-byte header, 32 bytes per chunk, a SHA-256 trailer.
 */
#include "internal.h"
#include "store.h"

#include <string.h>

static const uint8_t index_magic[4] = { 'H', 'B', 'I', '1' };

#define INDEX_VERSION 1u
#define INDEX_HEADER_LEN 32u
#define INDEX_TRAILER_LEN HB_DIGEST_LEN

static uint64_t chunk_count(uint64_t size, uint32_t chunk_size)
{
    return size / chunk_size + (size % chunk_size != 0);
}

int hb_index_init(hb_index *ix, uint64_t volume_size, uint32_t chunk_size)
{
    memset(ix, 0, sizeof *ix);
    if (chunk_size == 0)
        return HARVBK_E_INVALID;
    uint64_t count = chunk_count(volume_size, chunk_size);
    if (count > SIZE_MAX / HB_DIGEST_LEN - 1)
        return HARVBK_E_NOMEM;
    /* at least one byte so an empty volume still has a valid pointer */
    uint8_t *ids = hb_calloc((size_t)(count ? count : 1), HB_DIGEST_LEN);
    if (!ids)
        return HARVBK_E_NOMEM;
    ix->volume_size = volume_size;
    ix->chunk_size = chunk_size;
    ix->count = count;
    ix->ids = ids;
    return 0;
}

void hb_index_clear(hb_index *ix)
{
    if (!ix)
        return;
    hb_free(ix->ids);
    memset(ix, 0, sizeof *ix);
}

uint32_t hb_index_chunk_len(const hb_index *ix, uint64_t i)
{
    if (i + 1 == ix->count && ix->volume_size % ix->chunk_size)
        return (uint32_t)(ix->volume_size % ix->chunk_size);
    return ix->chunk_size;
}

int hb_index_encode(const hb_index *ix, hb_buf *out, hb_err *e)
{
    if (ix->chunk_size == 0 || ix->count != chunk_count(ix->volume_size, ix->chunk_size))
        return hb_seterr(e, HARVBK_E_INVALID,
                         "index has %llu entries but a %llu-byte volume with %u-byte chunks "
                         "needs %llu",
                         (unsigned long long)ix->count, (unsigned long long)ix->volume_size,
                         ix->chunk_size,
                         ix->chunk_size ? (unsigned long long)chunk_count(ix->volume_size,
                                                                          ix->chunk_size)
                                        : 0ull);
    size_t body = (size_t)ix->count * HB_DIGEST_LEN;
    size_t total = INDEX_HEADER_LEN + body + INDEX_TRAILER_LEN;
    hb_buf_reset(out);
    if (hb_buf_reserve(out, total) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate %zu bytes for an index", total);
    uint8_t *p = out->data;
    memset(p, 0, INDEX_HEADER_LEN);
    memcpy(p, index_magic, 4);
    hb_put_le32(p + 4, INDEX_VERSION);
    hb_put_le32(p + 8, ix->chunk_size);
    hb_put_le64(p + 16, ix->volume_size);
    hb_put_le64(p + 24, ix->count);
    if (body)
        memcpy(p + INDEX_HEADER_LEN, ix->ids, body);
    hb_sha256(p, INDEX_HEADER_LEN + body, p + INDEX_HEADER_LEN + body);
    out->len = total;
    return 0;
}

int hb_index_decode(const void *data, size_t len, hb_index *ix, hb_err *e)
{
    memset(ix, 0, sizeof *ix);
    const uint8_t *p = data;
    if (!data || len < INDEX_HEADER_LEN + INDEX_TRAILER_LEN)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "index is corrupt: %zu bytes is shorter than header and trailer", len);
    if (memcmp(p, index_magic, 4) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "index is corrupt: bad magic (not a HBI1 index)");
    uint32_t version = hb_get_le32(p + 4);
    if (version > INDEX_VERSION)
        return hb_seterr(e, HARVBK_E_FORMAT,
                         "index version %u is newer than this library supports (%u)", version,
                         INDEX_VERSION);
    if (version == 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "index is corrupt: version 0");
    uint32_t chunk_size = hb_get_le32(p + 8);
    uint64_t size = hb_get_le64(p + 16), count = hb_get_le64(p + 24);
    if (hb_get_le32(p + 12) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "index is corrupt: reserved header bytes not zero");
    if (chunk_size == 0 || chunk_size > HB_MAX_CHUNK_SIZE)
        return hb_seterr(e, HARVBK_E_CORRUPT, "index is corrupt: invalid chunk size %u",
                         chunk_size);
    if (count != chunk_count(size, chunk_size))
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "index is corrupt: %llu entries for a %llu-byte volume of %u-byte "
                         "chunks",
                         (unsigned long long)count, (unsigned long long)size, chunk_size);
    size_t max_count = (len - INDEX_HEADER_LEN - INDEX_TRAILER_LEN) / HB_DIGEST_LEN;
    if (count > max_count ||
        len != INDEX_HEADER_LEN + (size_t)count * HB_DIGEST_LEN + INDEX_TRAILER_LEN)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "index is corrupt: %zu bytes, expected %llu for %llu entries (truncated?)",
                         len,
                         (unsigned long long)count * HB_DIGEST_LEN + INDEX_HEADER_LEN +
                             INDEX_TRAILER_LEN,
                         (unsigned long long)count);
    size_t body = (size_t)count * HB_DIGEST_LEN;
    uint8_t sum[HB_DIGEST_LEN];
    hb_sha256(p, INDEX_HEADER_LEN + body, sum);
    if (memcmp(sum, p + INDEX_HEADER_LEN + body, HB_DIGEST_LEN) != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "index is corrupt: checksum trailer mismatch");
    uint8_t *ids = hb_malloc(body ? body : 1);
    if (!ids)
        return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate an index of %zu bytes", body);
    if (body)
        memcpy(ids, p + INDEX_HEADER_LEN, body);
    ix->volume_size = size;
    ix->chunk_size = chunk_size;
    ix->count = count;
    ix->ids = ids;
    return 0;
}
