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
#include "../target/config.h"

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

#endif
