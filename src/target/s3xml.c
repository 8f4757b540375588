/*
 * target/s3xml.c - the XML answers of S3 servers, read without trusting them
 * (target/s3xml.h): flat scanning, strict entity decoding, bounded strings,
 * listings that must advance.
 */
#include "s3xml.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- XML: flat scanning, strict entity decoding ---- */

/* Next element <name ...>content</name> (or <name/>) in [p, end): content
 * bounds in *cs and *cl, *after past its end. */
bool hb_s3_xml_next(const char *p, const char *end, const char *name, const char **cs,
                    size_t *cl, const char **after)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < nl + 2)
            return false;
        const char *q = lt + 1;
        if ((size_t)(end - q) > nl && memcmp(q, name, nl) == 0 &&
            (q[nl] == '>' || q[nl] == ' ' || q[nl] == '/' || q[nl] == '\t' || q[nl] == '\r' ||
             q[nl] == '\n')) {
            const char *gt = memchr(q + nl, '>', (size_t)(end - (q + nl)));
            if (!gt)
                return false;
            if (gt[-1] == '/') { /* <name/> */
                *cs = gt + 1;
                *cl = 0;
                *after = gt + 1;
                return true;
            }
            const char *c = gt + 1;
            /* closing tag */
            char close[64];
            if (nl + 4 > sizeof close)
                return false;
            close[0] = '<';
            close[1] = '/';
            memcpy(close + 2, name, nl);
            close[nl + 2] = '>';
            const char *ce = memmem(c, (size_t)(end - c), close, nl + 3);
            if (!ce)
                return false;
            *cs = c;
            *cl = (size_t)(ce - c);
            *after = ce + nl + 3;
            return true;
        }
        p = lt + 1;
    }
    return false;
}

static int utf8_put(hb_buf *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | (cp >> 6));
        u[1] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | (cp >> 12));
        u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | (cp >> 18));
        u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (uint8_t)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return hb_buf_append(b, u, n);
}

/* Decode the text s[0..n) into out (replacing it, NUL-terminated). False on
 * a malformed or unknown entity, a NUL, or when the result exceeds max. */
bool hb_s3_xml_text(const char *s, size_t n, size_t max, hb_buf *out)
{
    hb_buf_reset(out);
    if (hb_buf_append(out, "", 0) != 0 || hb_buf_reserve(out, HB_MIN(n, max) + 1) != 0)
        return false;
    for (size_t i = 0; i < n;) {
        if (out->len > max)
            return false;
        char ch = s[i];
        if (ch == '\0')
            return false;
        if (ch != '&') {
            if (hb_buf_append(out, &ch, 1) != 0)
                return false;
            i++;
            continue;
        }
        const char *semi = memchr(s + i, ';', HB_MIN(n - i, (size_t)12));
        if (!semi)
            return false;
        size_t el = (size_t)(semi - (s + i)) - 1; /* between & and ; */
        const char *ent = s + i + 1;
        int rc = 0;
        if (el == 3 && !memcmp(ent, "amp", 3))
            rc = hb_buf_append(out, "&", 1);
        else if (el == 2 && !memcmp(ent, "lt", 2))
            rc = hb_buf_append(out, "<", 1);
        else if (el == 2 && !memcmp(ent, "gt", 2))
            rc = hb_buf_append(out, ">", 1);
        else if (el == 4 && !memcmp(ent, "quot", 4))
            rc = hb_buf_append(out, "\"", 1);
        else if (el == 4 && !memcmp(ent, "apos", 4))
            rc = hb_buf_append(out, "'", 1);
        else if (el >= 2 && ent[0] == '#') {
            bool hex = ent[1] == 'x' || ent[1] == 'X';
            size_t k = hex ? 2 : 1;
            if (k >= el)
                return false;
            uint32_t cp = 0;
            for (; k < el; k++) {
                char d = ent[k];
                int v;
                if (d >= '0' && d <= '9')
                    v = d - '0';
                else if (hex && d >= 'a' && d <= 'f')
                    v = d - 'a' + 10;
                else if (hex && d >= 'A' && d <= 'F')
                    v = d - 'A' + 10;
                else
                    return false;
                cp = cp * (hex ? 16u : 10u) + (uint32_t)v;
                if (cp > 0x10ffff)
                    return false;
            }
            if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                return false;
            rc = utf8_put(out, cp);
        } else {
            return false;
        }
        if (rc)
            return false;
        i += el + 2;
    }
    if (out->len > max)
        return false;
    if (hb_buf_reserve(out, out->len + 1) != 0)
        return false;
    out->data[out->len] = '\0';
    return true;
}

/* The decoded text of the first <name> in [p, end) into out; false if absent
 * or malformed. */
bool hb_s3_xml_get(const char *p, const char *end, const char *name, size_t max, hb_buf *out)
{
    const char *cs, *after;
    size_t cl;
    if (!hb_s3_xml_next(p, end, name, &cs, &cl, &after))
        return false;
    return hb_s3_xml_text(cs, cl, max, out);
}

int hb_s3_xml_escape(hb_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && rc == 0; s++) {
        switch (*s) {
        case '&': rc = hb_buf_append_str(b, "&amp;"); break;
        case '<': rc = hb_buf_append_str(b, "&lt;"); break;
        case '>': rc = hb_buf_append_str(b, "&gt;"); break;
        case '"': rc = hb_buf_append_str(b, "&quot;"); break;
        case '\'': rc = hb_buf_append_str(b, "&apos;"); break;
        default: rc = hb_buf_append(b, s, 1); break;
        }
    }
    if (rc == 0)
        rc = hb_buf_append_str(b, "");
    return rc;
}

/* "2009-10-12T17:50:30.000Z" -> seconds; 0 when it does not parse. */
int64_t hb_s3_parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
        return 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    return t < 0 ? 0 : (int64_t)t;
}

bool hb_s3_parse_u64(const char *s, uint64_t *out)
{
    uint64_t x = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *out = x;
    return true;
}

void hb_s3_sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* ---- answers ---- */

void hb_s3_error_text(const void *body, size_t len, char *code, size_t csize, char *msg,
                      size_t msize)
{
    if (csize)
        code[0] = '\0';
    if (msize)
        msg[0] = '\0';
    if (!body || len == 0)
        return;
    const char *p = body, *end = p + len;
    hb_buf t = HB_BUF_INIT;
    if (csize && hb_s3_xml_get(p, end, "Code", 128, &t)) {
        snprintf(code, csize, "%s", (char *)t.data);
        hb_s3_sanitize(code);
    }
    if (msize && hb_s3_xml_get(p, end, "Message", 1024, &t)) {
        snprintf(msg, msize, "%s", (char *)t.data);
        hb_s3_sanitize(msg);
    }
    hb_buf_free(&t);
}

bool hb_s3_has_error(const void *body, size_t len)
{
    const char *cs, *after;
    size_t cl;
    return body && hb_s3_xml_next(body, (const char *)body + len, "Error", &cs, &cl, &after);
}

bool hb_s3_upload_id(const void *body, size_t len, hb_buf *id)
{
    return body && hb_s3_xml_get(body, (const char *)body + len, "UploadId", 1024, id) &&
           id->len > 0;
}

size_t hb_s3_delete_errors(const void *body, size_t len, char *first, size_t fsize)
{
    if (fsize)
        first[0] = '\0';
    if (!body)
        return 0;
    const char *p = body, *end = p + len;
    const char *cs, *after;
    size_t cl, nerr = 0;
    hb_buf t = HB_BUF_INIT;
    while (hb_s3_xml_next(p, end, "Error", &cs, &cl, &after)) {
        char code[128] = "";
        if (hb_s3_xml_get(cs, cs + cl, "Code", 128, &t))
            snprintf(code, sizeof code, "%s", (char *)t.data);
        if (strcmp(code, "NoSuchKey") != 0) {
            if (nerr++ == 0 && fsize) {
                char k[160] = "";
                if (hb_s3_xml_get(cs, cs + cl, "Key", 4096, &t))
                    snprintf(k, sizeof k, "%s", (char *)t.data);
                snprintf(first, fsize, "%s: %s", k, code[0] ? code : "error");
                hb_s3_sanitize(first);
            }
        }
        p = after;
    }
    hb_buf_free(&t);
    return nerr;
}

/* ---- listings ---- */

int hb_s3_list_page(hb_s3_list *l, const void *body, size_t len, hb_list_cb cb, void *ud,
                    hb_err *e)
{
    const char *p = body;
    const char *end = p ? p + len : NULL;
    const char *ep = l->endpoint ? l->endpoint : "?";
    l->more = false;
    if (!p || !memmem(p, len, "<ListBucketResult", 17))
        return hb_seterr(e, HARVBK_E_TARGET,
                         "S3 endpoint %s: the answer to ListObjectsV2 is not a listing", ep);
    size_t flen = strlen(l->full);
    const char *cs, *after;
    size_t cl, nkeys = 0;
    while (hb_s3_xml_next(p, end, "Contents", &cs, &cl, &after)) {
        p = after;
        nkeys++;
        if (!hb_s3_xml_get(cs, cs + cl, "Key", 4 * HB_S3_KEY_MAX, &l->key))
            return hb_seterr(e, HARVBK_E_TARGET, "S3 endpoint %s: malformed key in a listing",
                             ep);
        const char *k = (const char *)l->key.data;
        /* S3 lists in UTF-8 binary order: a key not after the previous one
         * means a broken (or hostile) server that could loop */
        if (l->last.len && strcmp(k, (const char *)l->last.data) <= 0)
            return hb_seterr(e, HARVBK_E_TARGET, "S3 endpoint %s: the listing is not in key order",
                             ep);
        hb_buf_reset(&l->last);
        if (hb_buf_append_str(&l->last, k) != 0)
            return hb_seterr(e, HARVBK_E_NOMEM, NULL);
        if (strncmp(k, l->full, flen) != 0 || strlen(k) <= l->plen || !hb_key_valid(k + l->plen))
            continue; /* not ours */
        uint64_t size = 0;
        int64_t mtime = 0;
        if (hb_s3_xml_get(cs, cs + cl, "Size", 32, &l->tmp) &&
            !hb_s3_parse_u64((char *)l->tmp.data, &size))
            size = 0;
        if (hb_s3_xml_get(cs, cs + cl, "LastModified", 64, &l->tmp))
            mtime = hb_s3_parse_time((char *)l->tmp.data);
        int r = cb(k + l->plen, size, mtime, ud);
        if (r)
            return r;
    }
    const char *b = body;
    if (!(hb_s3_xml_get(b, b + len, "IsTruncated", 16, &l->tmp) &&
          strcmp((char *)l->tmp.data, "true") == 0))
        return 0; /* the last page */
    l->empty_pages = nkeys ? 0 : l->empty_pages + 1;
    hb_buf prev = l->token;
    l->token = (hb_buf)HB_BUF_INIT;
    bool ok = hb_s3_xml_get(b, b + len, "NextContinuationToken", HB_S3_TOKEN_MAX, &l->token) &&
              l->token.len > 0 &&
              !(prev.len == l->token.len && memcmp(prev.data, l->token.data, prev.len) == 0);
    hb_buf_free(&prev);
    if (!ok || l->empty_pages > HB_S3_EMPTY_PAGES_MAX)
        return hb_seterr(e, HARVBK_E_TARGET,
                         "S3 endpoint %s: the listing does not advance (missing, repeated or "
                         "endless continuation tokens)",
                         ep);
    l->more = true;
    return 0;
}

void hb_s3_list_free(hb_s3_list *l)
{
    hb_buf_free(&l->last);
    hb_buf_free(&l->token);
    hb_buf_free(&l->key);
    hb_buf_free(&l->tmp);
}
