/*
 * target/sigv4.h - AWS Signature Version 4 (header form), computed with
 * OpenSSL. libcurl's CURLOPT_AWS_SIGV4 is not used: curl 7.88 does not
 * canonicalise query strings.
 *
 * The signer is generic (any service), so it can be checked against the
 * published AWS test-suite vectors; target/s3.c uses it with service "s3".
 *
 * Canonical request (what is hashed and signed):
 *   METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n CANONICAL_HEADERS \n
 *   SIGNED_HEADERS \n PAYLOAD_HASH
 * where CANONICAL_URI is the path exactly as sent (S3: each key segment
 * URI-encoded once, '/' kept), CANONICAL_QUERY is "name=value" pairs, each
 * side URI-encoded (unreserved A-Z a-z 0-9 - . _ ~ kept, everything else as
 * %XX upper-case, '/' too), sorted by encoded name then value and joined with
 * '&' (a name without value is "name="), CANONICAL_HEADERS is "name:value\n"
 * per header, names lower-cased and sorted, values trimmed with inner runs of
 * spaces collapsed, repeated names joined with ','.
 *
 * Nothing here logs or keeps the secret; derived keys are wiped after use.
 */
#ifndef HB_TARGET_SIGV4_H
#define HB_TARGET_SIGV4_H

#include "../core/hb.h"

#include <time.h>

/* One header or query parameter (borrowed strings). A query parameter's
 * name and value are raw (not encoded); value NULL means "no value". */
typedef struct hb_kv {
    const char *name;
    const char *value;
} hb_kv;

typedef struct hb_sigv4_creds {
    const char *access_key_id;
    const char *secret;
    const char *region;
    const char *service; /* "s3" */
} hb_sigv4_creds;

typedef struct hb_sigv4_req {
    const char *method;        /* "GET", "PUT", ... */
    const char *canonical_uri; /* encoded path as sent, starting with '/' */
    const hb_kv *query;        /* raw parameters (any order) */
    size_t nquery;
    const hb_kv *headers;      /* every header to sign, host and x-amz-date included */
    size_t nheaders;
    const char *payload_hash;  /* lower-case hex SHA-256 of the body */
    const char *amz_date;      /* "YYYYMMDDTHHMMSSZ", also sent as x-amz-date */
} hb_sigv4_req;

#define HB_SIGV4_DATE_LEN 16 /* strlen("20150830T123600Z") */

/* The x-amz-date form of t (UTC) into out. */
void hb_sigv4_amz_date(time_t t, char out[HB_SIGV4_DATE_LEN + 1]);

/* Append the URI encoding of s[0..n) to out ('/' kept when keep_slash). */
int hb_sigv4_uri_encode(hb_buf *out, const char *s, size_t n, bool keep_slash);

/* The canonical query string of q into out (replacing its content). The same
 * string is what a client sends as its URL query. */
int hb_sigv4_canonical_query(const hb_kv *q, size_t n, hb_buf *out);

/* The signing key: HMAC chain over "AWS4"+secret, date (YYYYMMDD), region,
 * service, "aws4_request". */
int hb_sigv4_signing_key(const char *secret, const char *date8, const char *region,
                         const char *service, uint8_t key[32]);

/* Lower-case hex SHA-256 of data into hex (65 bytes). */
void hb_sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

/*
 * Sign r with c. *auth receives the Authorization header value
 * ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
 * caller frees with hb_free). sig_hex (may be NULL) receives the signature;
 * creq and sts (may be NULL) the canonical request and string to sign (for
 * tests and debugging; they hold no secret). Returns 0, HARVBK_E_NOMEM or
 * HARVBK_E_INVALID (missing field, bad date).
 */
int hb_sigv4_sign(const hb_sigv4_req *r, const hb_sigv4_creds *c, char **auth,
                  char sig_hex[65], hb_buf *creq, hb_buf *sts);

#endif
