/*
 * store/codec.c - zstd, lz4 and gzip payload compression with per-thread
 * cached contexts.
 *
 * gzip payloads use the gzip wrapper (RFC 1952, zlib windowBits 15+16), so a
 * stored payload can be checked with any gzip tool; see docs/FORMAT.md.
 */
#include "internal.h"

#include <limits.h>
#include <string.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#define GZIP_WINDOW_BITS (15 + 16)

/* ---- per-thread contexts ---- */

typedef struct codec_tls {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    z_stream def;
    bool def_ready;
    int def_level;
    z_stream inf;
    bool inf_ready;
} codec_tls;

static _Thread_local codec_tls *tls_ctx;
static pthread_key_t tls_key;
static bool tls_key_ok;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* Runs at thread exit (pthread key destructor) so worker threads that come and
 * go do not leak their contexts. */
static void tls_destroy(void *p)
{
    codec_tls *t = p;
    if (!t)
        return;
    ZSTD_freeCCtx(t->zc);
    ZSTD_freeDCtx(t->zd);
    if (t->def_ready)
        deflateEnd(&t->def);
    if (t->inf_ready)
        inflateEnd(&t->inf);
    if (tls_ctx == t)
        tls_ctx = NULL;
    hb_free(t);
}

static void tls_key_init(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

static codec_tls *tls_get(void)
{
    if (tls_ctx)
        return tls_ctx;
    pthread_once(&tls_once, tls_key_init);
    codec_tls *t = hb_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (tls_key_ok)
        pthread_setspecific(tls_key, t);
    tls_ctx = t;
    return t;
}

static int nomem(hb_err *e, const char *what)
{
    return hb_seterr(e, HARVBK_E_NOMEM, "cannot allocate a %s context", what);
}

/* ---- public (store-private) API ---- */

int hb_codec_default_level(int codec)
{
    switch (codec) {
    case HB_CODEC_ZSTD:
        return 1;
    case HB_CODEC_GZIP:
        return 1;
    default:
        return 0;
    }
}

size_t hb_codec_bound(int codec, size_t len)
{
    switch (codec) {
    case HB_CODEC_NONE:
        return len;
    case HB_CODEC_ZSTD:
        return ZSTD_compressBound(len);
    case HB_CODEC_LZ4:
        return len > LZ4_MAX_INPUT_SIZE ? len : (size_t)LZ4_compressBound((int)len);
    case HB_CODEC_GZIP:
        return len > ULONG_MAX / 2 ? len : (size_t)compressBound((uLong)len) + 18;
    default:
        return 0;
    }
}

static int zstd_compress(int level, const void *src, size_t len, void *dst, size_t cap,
                         size_t *out_len, hb_err *e)
{
    codec_tls *t = tls_get();
    if (!t)
        return nomem(e, "zstd");
    if (!t->zc && !(t->zc = ZSTD_createCCtx()))
        return nomem(e, "zstd");
    size_t r = ZSTD_compressCCtx(t->zc, dst, cap, src, len, level);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return nomem(e, "zstd");
        return 1; /* does not fit (or cannot compress): store as is */
    }
    *out_len = r;
    return 0;
}

static int lz4_compress(const void *src, size_t len, void *dst, size_t cap, size_t *out_len)
{
    if (len > LZ4_MAX_INPUT_SIZE)
        return 1;
    int icap = cap > INT_MAX ? INT_MAX : (int)cap;
    int r = LZ4_compress_default(src, dst, (int)len, icap);
    if (r <= 0)
        return 1;
    *out_len = (size_t)r;
    return 0;
}

static int gzip_compress(int level, const void *src, size_t len, void *dst, size_t cap,
                         size_t *out_len, hb_err *e)
{
    if (len > UINT_MAX)
        return 1;
    codec_tls *t = tls_get();
    if (!t)
        return nomem(e, "zlib");
    if (t->def_ready && t->def_level != level) {
        deflateEnd(&t->def);
        t->def_ready = false;
    }
    if (!t->def_ready) {
        memset(&t->def, 0, sizeof t->def);
        int rc = deflateInit2(&t->def, level, Z_DEFLATED, GZIP_WINDOW_BITS, 8,
                              Z_DEFAULT_STRATEGY);
        if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? nomem(e, "zlib")
                                     : hb_seterr(e, HARVBK_E_INVALID, "bad gzip level %d", level);
        t->def_ready = true;
        t->def_level = level;
    } else if (deflateReset(&t->def) != Z_OK) {
        return hb_seterr(e, HARVBK_E_ERROR, "zlib deflateReset failed");
    }
    t->def.next_in = (Bytef *)src;
    t->def.avail_in = (uInt)len;
    t->def.next_out = dst;
    t->def.avail_out = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    int rc = deflate(&t->def, Z_FINISH);
    if (rc != Z_STREAM_END)
        return 1; /* output space exhausted: store as is */
    *out_len = (size_t)t->def.total_out;
    return 0;
}

int hb_codec_compress(int codec, int level, const void *src, size_t len, void *dst, size_t cap,
                      size_t *out_len, hb_err *e)
{
    if (level == 0)
        level = hb_codec_default_level(codec);
    switch (codec) {
    case HB_CODEC_NONE:
        if (cap < len)
            return 1;
        if (len)
            memcpy(dst, src, len);
        *out_len = len;
        return 0;
    case HB_CODEC_ZSTD:
        return zstd_compress(level, src, len, dst, cap, out_len, e);
    case HB_CODEC_LZ4:
        return lz4_compress(src, len, dst, cap, out_len);
    case HB_CODEC_GZIP:
        return gzip_compress(level, src, len, dst, cap, out_len, e);
    default:
        return hb_seterr(e, HARVBK_E_INVALID, "unknown codec %d", codec);
    }
}

static int zstd_decompress(const void *src, size_t len, void *dst, size_t expect,
                           const char **why)
{
    codec_tls *t = tls_get();
    if (!t || (!t->zd && !(t->zd = ZSTD_createDCtx())))
        return HARVBK_E_NOMEM;
    unsigned long long fcs = ZSTD_getFrameContentSize(src, len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR) {
        *why = "zstd frame header is malformed";
        return HARVBK_E_CHUNK;
    }
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != (unsigned long long)expect) {
        *why = "zstd frame size differs from the raw length in the header";
        return HARVBK_E_CHUNK;
    }
    size_t r = ZSTD_decompressDCtx(t->zd, dst, expect, src, len);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
            return HARVBK_E_NOMEM;
        *why = "zstd data is malformed";
        return HARVBK_E_CHUNK;
    }
    if (r != expect) {
        *why = "zstd data decompresses to fewer bytes than the header says";
        return HARVBK_E_CHUNK;
    }
    return 0;
}

static int lz4_decompress(const void *src, size_t len, void *dst, size_t expect,
                          const char **why)
{
    if (len > INT_MAX || expect > INT_MAX) {
        *why = "lz4 payload too large";
        return HARVBK_E_CHUNK;
    }
    int r = LZ4_decompress_safe(src, dst, (int)len, (int)expect);
    if (r < 0) {
        *why = "lz4 data is malformed";
        return HARVBK_E_CHUNK;
    }
    if ((size_t)r != expect) {
        *why = "lz4 data decompresses to fewer bytes than the header says";
        return HARVBK_E_CHUNK;
    }
    return 0;
}

static int gzip_decompress(const void *src, size_t len, void *dst, size_t expect,
                           const char **why)
{
    if (len > UINT_MAX || expect > UINT_MAX) {
        *why = "gzip payload too large";
        return HARVBK_E_CHUNK;
    }
    codec_tls *t = tls_get();
    if (!t)
        return HARVBK_E_NOMEM;
    if (!t->inf_ready) {
        memset(&t->inf, 0, sizeof t->inf);
        int rc = inflateInit2(&t->inf, GZIP_WINDOW_BITS);
        if (rc != Z_OK)
            return HARVBK_E_NOMEM;
        t->inf_ready = true;
    } else if (inflateReset(&t->inf) != Z_OK) {
        return HARVBK_E_NOMEM;
    }
    /* zlib wants a non-NULL output pointer even for empty output */
    uint8_t dummy;
    t->inf.next_in = (Bytef *)src;
    t->inf.avail_in = (uInt)len;
    t->inf.next_out = expect ? dst : &dummy;
    t->inf.avail_out = (uInt)expect;
    int rc = inflate(&t->inf, Z_FINISH);
    if (rc == Z_MEM_ERROR)
        return HARVBK_E_NOMEM;
    if (rc == Z_STREAM_END) {
        if (t->inf.avail_in != 0) {
            *why = "gzip payload has trailing bytes";
            return HARVBK_E_CHUNK;
        }
        if (t->inf.total_out != expect) {
            *why = "gzip data decompresses to fewer bytes than the header says";
            return HARVBK_E_CHUNK;
        }
        return 0;
    }
    if (rc == Z_BUF_ERROR && t->inf.avail_out == 0)
        *why = "gzip data expands beyond the raw length in the header";
    else if (rc == Z_BUF_ERROR)
        *why = "gzip data is truncated";
    else
        *why = "gzip data is malformed";
    return HARVBK_E_CHUNK;
}

int hb_codec_decompress(int codec, const void *src, size_t len, void *dst, size_t expect,
                        const char **why)
{
    switch (codec) {
    case HB_CODEC_NONE:
        if (len != expect) {
            *why = "uncompressed payload length differs from the raw length";
            return HARVBK_E_CHUNK;
        }
        if (len)
            memcpy(dst, src, len);
        return 0;
    case HB_CODEC_ZSTD:
        return zstd_decompress(src, len, dst, expect, why);
    case HB_CODEC_LZ4:
        return lz4_decompress(src, len, dst, expect, why);
    case HB_CODEC_GZIP:
        return gzip_decompress(src, len, dst, expect, why);
    default:
        *why = "unknown codec";
        return HARVBK_E_CHUNK;
    }
}
