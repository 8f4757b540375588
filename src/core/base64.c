/* core/base64.c - standard base64 (RFC 4648) with padding; strict decoder:
 * no whitespace, length a multiple of 4, padding only at the end, unused bits 0. */
#include "base64.h"

#include <stdlib.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *hb_base64_encode(const void *data, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    size_t olen = (len + 2) / 3 * 4;
    char *out = malloc(olen + 1);
    if (!out)
        return NULL;
    const uint8_t *p = data;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int hb_base64_decode(const char *s, hb_buf *out, hb_err *e)
{
    if (!s || !out)
        return hb_seterr(e, HARVBK_E_INVALID, "base64: NULL argument");
    hb_buf_reset(out);
    size_t n = strlen(s);
    if (n % 4 != 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "base64: length %zu is not a multiple of 4", n);
    if (hb_buf_reserve(out, n / 4 * 3 + 1) != 0)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int pad = 0;
        if (last && s[i + 3] == '=')
            pad = s[i + 2] == '=' ? 2 : 1;
        int v[4] = { 0, 0, 0, 0 };
        for (int k = 0; k < 4 - pad; k++) {
            v[k] = b64val(s[i + k]);
            if (v[k] < 0) {
                hb_buf_reset(out);
                return hb_seterr(e, HARVBK_E_CORRUPT, "base64: invalid character at offset %zu",
                                 i + (size_t)k);
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if ((pad == 1 && (w & 0xff) != 0) || (pad == 2 && (w & 0xffff) != 0)) {
            hb_buf_reset(out);
            return hb_seterr(e, HARVBK_E_CORRUPT, "base64: non-canonical padding");
        }
        out->data[out->len++] = (uint8_t)(w >> 16);
        if (pad < 2)
            out->data[out->len++] = (uint8_t)(w >> 8);
        if (pad < 1)
            out->data[out->len++] = (uint8_t)w;
    }
    out->data[out->len] = '\0';
    return 0;
}
