/*
 * target/sigv4.c - AWS Signature Version 4 (see sigv4.h for the rules).
 */
#include "sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void hb_sigv4_amz_date(time_t t, char out[HB_SIGV4_DATE_LEN + 1])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, HB_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static bool unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int hb_sigv4_uri_encode(hb_buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    if (hb_buf_reserve(out, out->len + 3 * n + 1))
        return HARVBK_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved(ch) || (keep_slash && ch == '/')) {
            out->data[out->len++] = ch;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = (uint8_t)hex[ch >> 4];
            out->data[out->len++] = (uint8_t)hex[ch & 15];
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

void hb_sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
    uint8_t d[HB_DIGEST_LEN];
    hb_sha256(data, len, d);
    hb_hex(d, sizeof d, hex);
}

static int hmac(const void *key, size_t klen, const void *data, size_t n, uint8_t out[32])
{
    unsigned int olen = 0;
    if (!HMAC(EVP_sha256(), key, (int)klen, data, n, out, &olen) || olen != 32)
        return HARVBK_E_NOMEM;
    return 0;
}

int hb_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32])
{
    if (!secret || !date8 || !region || !service)
        return HARVBK_E_INVALID;
    size_t slen = strlen(secret);
    char *k = hb_malloc(slen + 5);
    if (!k)
        return HARVBK_E_NOMEM;
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen + 1);
    uint8_t a[32], b[32];
    int rc = hmac(k, slen + 4, date8, strlen(date8), a);
    if (rc == 0)
        rc = hmac(a, 32, region, strlen(region), b);
    if (rc == 0)
        rc = hmac(b, 32, service, strlen(service), a);
    if (rc == 0)
        rc = hmac(a, 32, "aws4_request", 12, key);
    OPENSSL_cleanse(k, slen + 4);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    hb_free(k);
    return rc;
}

/* ---- canonical query ---- */

typedef struct enc_pair {
    char *name, *value; /* encoded */
} enc_pair;

static int pair_cmp(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s)
{
    hb_buf b = HB_BUF_INIT;
    if (hb_sigv4_uri_encode(&b, s ? s : "", s ? strlen(s) : 0, false) != 0) {
        hb_buf_free(&b);
        return NULL;
    }
    if (!b.data) /* empty string */
        return hb_strdup("");
    return (char *)b.data;
}

int hb_sigv4_canonical_query(const hb_kv *q, size_t n, hb_buf *out)
{
    hb_buf_reset(out);
    if (hb_buf_reserve(out, 1))
        return HARVBK_E_NOMEM;
    out->data[0] = '\0';
    if (n == 0)
        return 0;
    enc_pair *v = hb_calloc(n, sizeof *v);
    if (!v)
        return HARVBK_E_NOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i].name = encode_dup(q[i].name);
        v[i].value = encode_dup(q[i].value);
        if (!v[i].name || !v[i].value)
            rc = HARVBK_E_NOMEM;
    }
    if (rc == 0)
        qsort(v, n, sizeof *v, pair_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = hb_buf_append_str(out, "&");
        if (rc == 0)
            rc = hb_buf_append_str(out, v[i].name);
        if (rc == 0)
            rc = hb_buf_append_str(out, "=");
        if (rc == 0)
            rc = hb_buf_append_str(out, v[i].value);
    }
    for (size_t i = 0; i < n; i++) {
        hb_free(v[i].name);
        hb_free(v[i].value);
    }
    hb_free(v);
    return rc;
}

/* ---- canonical headers ---- */

typedef struct hdr {
    char *name;  /* lower-cased */
    char *value; /* trimmed, spaces collapsed */
    size_t pos;  /* original position: repeated names keep their order */
} hdr;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static char *lower_dup(const char *s)
{
    char *d = hb_strdup(s);
    if (d)
        for (char *p = d; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    return d;
}

static char *norm_value(const char *s)
{
    size_t n = strlen(s);
    char *d = hb_malloc(n + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '\t') {
            space = o > 0;
            continue;
        }
        if (space)
            d[o++] = ' ';
        space = false;
        d[o++] = ch;
    }
    d[o] = '\0';
    return d;
}

static int canonical_headers(const hb_kv *h, size_t n, hb_buf *canon, hb_buf *signed_names)
{
    hdr *v = hb_calloc(n ? n : 1, sizeof *v);
    if (!v)
        return HARVBK_E_NOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        v[i].name = lower_dup(h[i].name);
        v[i].value = norm_value(h[i].value ? h[i].value : "");
        v[i].pos = i;
        if (!v[i].name || !v[i].value)
            rc = HARVBK_E_NOMEM;
    }
    if (rc == 0)
        qsort(v, n, sizeof *v, hdr_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool same = i > 0 && strcmp(v[i].name, v[i - 1].name) == 0;
        if (same) {
            rc = hb_buf_append_str(canon, ",");
        } else {
            if (i > 0)
                rc = hb_buf_append_str(canon, "\n");
            if (rc == 0 && i > 0)
                rc = hb_buf_append_str(signed_names, ";");
            if (rc == 0)
                rc = hb_buf_append_str(signed_names, v[i].name);
            if (rc == 0)
                rc = hb_buf_append_str(canon, v[i].name);
            if (rc == 0)
                rc = hb_buf_append_str(canon, ":");
        }
        if (rc == 0)
            rc = hb_buf_append_str(canon, v[i].value);
    }
    if (rc == 0 && n)
        rc = hb_buf_append_str(canon, "\n");
    for (size_t i = 0; i < n; i++) {
        hb_free(v[i].name);
        hb_free(v[i].value);
    }
    hb_free(v);
    return rc;
}

static bool date_ok(const char *d)
{
    if (!d || strlen(d) != HB_SIGV4_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return false;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return false;
    return true;
}

int hb_sigv4_sign(const hb_sigv4_req *r, const hb_sigv4_creds *c, char **auth,
                  char sig_hex[65], hb_buf *creq_out, hb_buf *sts_out)
{
    *auth = NULL;
    if (!r || !c || !r->method || !r->canonical_uri || !r->payload_hash || !c->access_key_id ||
        !c->secret || !c->region || !c->service || !date_ok(r->amz_date))
        return HARVBK_E_INVALID;
    hb_buf creq = HB_BUF_INIT, query = HB_BUF_INIT, canon = HB_BUF_INIT, names = HB_BUF_INIT,
           sts = HB_BUF_INIT;
    char date8[9];
    memcpy(date8, r->amz_date, 8);
    date8[8] = '\0';
    int rc = hb_sigv4_canonical_query(r->query, r->nquery, &query);
    if (rc == 0)
        rc = canonical_headers(r->headers, r->nheaders, &canon, &names);
    if (rc == 0) {
        char *s = hb_asprintf("%s\n%s\n%s\n%s\n%s\n%s", r->method, r->canonical_uri,
                              query.data ? (char *)query.data : "",
                              canon.data ? (char *)canon.data : "",
                              names.data ? (char *)names.data : "", r->payload_hash);
        rc = s ? hb_buf_append_str(&creq, s) : HARVBK_E_NOMEM;
        hb_free(s);
    }
    char creq_hash[65];
    if (rc == 0) {
        hb_sigv4_sha256_hex(creq.data, creq.len, creq_hash);
        char *s = hb_asprintf(ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", r->amz_date, date8,
                              c->region, c->service, creq_hash);
        rc = s ? hb_buf_append_str(&sts, s) : HARVBK_E_NOMEM;
        hb_free(s);
    }
    uint8_t key[32], sig[32];
    char hex[65];
    if (rc == 0)
        rc = hb_sigv4_signing_key(c->secret, date8, c->region, c->service, key);
    if (rc == 0) {
        rc = hmac(key, sizeof key, sts.data, sts.len, sig);
        OPENSSL_cleanse(key, sizeof key);
    }
    if (rc == 0) {
        hb_hex(sig, sizeof sig, hex);
        *auth = hb_asprintf(ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                      "Signature=%s",
                            c->access_key_id, date8, c->region, c->service,
                            names.data ? (char *)names.data : "", hex);
        if (!*auth)
            rc = HARVBK_E_NOMEM;
        else if (sig_hex)
            memcpy(sig_hex, hex, 65);
    }
    if (rc == 0 && creq_out) {
        hb_buf_reset(creq_out);
        rc = hb_buf_append_str(creq_out, (char *)creq.data);
    }
    if (rc == 0 && sts_out) {
        hb_buf_reset(sts_out);
        rc = hb_buf_append_str(sts_out, (char *)sts.data);
    }
    if (rc && *auth) {
        hb_free(*auth);
        *auth = NULL;
    }
    hb_buf_free(&creq);
    hb_buf_free(&query);
    hb_buf_free(&canon);
    hb_buf_free(&names);
    hb_buf_free(&sts);
    return rc;
}
