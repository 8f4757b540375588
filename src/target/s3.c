/*
 * target/s3.c - the S3 backend (s3://bucket/prefix), docs/S3.md.
 *
 * Object "a/b" of the store is the S3 object "<prefix>/a/b" in the bucket.
 * The prefix is taken literally from the URL (no percent-decoding); leading
 * and trailing '/' are dropped. Requests are signed with AWS Signature
 * Version 4 (target/sigv4.c, payload hash always computed and signed) and
 * sent with libcurl (target/http.c: kept-alive connections, TLS always
 * verified). Addressing is path style (<endpoint>/<bucket>/<key>) unless
 * virtual-hosted style is asked for (<bucket>.<endpoint host>/<key>).
 *
 * Every operation maps onto one S3 call, or a few:
 *   put      PutObject; objects larger than the multipart threshold (64 MiB)
 *            go up as a multipart upload (aborted on failure). A PUT is
 *            atomic and durable when it returns, so no deferred puts and no
 *            barrier are needed (put_deferred/sync stay NULL).
 *   get      GetObject, refusing a body larger than the caller's maximum
 *            before buffering it (Content-Length, else as it streams).
 *   head     HeadObject.
 *   del      DeleteObject (absent objects are success).
 *   del_many DeleteObjects, batches of 1000 keys with Content-MD5.
 *   list     ListObjectsV2, paginated with continuation tokens.
 *   ping     ListObjectsV2 of one key under the prefix (checks the endpoint,
 *            the credentials and the bucket).
 *   cleanup  nothing: S3 writers leave no temporaries (a PUT never shows a
 *            partial object; parts of an aborted multipart upload are not
 *            objects and are removed by the abort or a lifecycle rule).
 *
 * Retries: transport failures (refused, reset, dropped, timeouts, partial
 * bodies) and HTTP 408, 429, 500, 502, 503 (SlowDown), 504 are retried with
 * exponential backoff and full jitter (50 ms doubling to 2 s) at most
 * S3_MAX_ATTEMPTS times and within a time budget (3 timeouts, at least 30 s).
 * An endpoint that refuses connections, cannot be resolved, or lets a
 * connection or transfer stall for the timeout is "unreachable": it is
 * retried only while the first attempt is younger than the timeout, so an
 * unreachable target fails within the configured timeout (default 10 s;
 * a stalled transfer: one timeout after its last byte).
 * Other 4xx answers are final. Errors name the endpoint and the S3 error
 * code, never the secret or the Authorization header.
 *
 * A hostile server gets nothing for free: response bodies are bounded (the
 * caller's maximum for objects, 32 MiB per listing page, 1 MiB for control
 * answers, 64 KiB of an error document), XML is scanned without recursion and
 * entity-decoded strictly, listings must advance (keys strictly increasing,
 * continuation tokens present and bounded), and keys not under the prefix or
 * not valid store keys are ignored.
 */
#include "target.h"

#include "../core/base64.h"
#include "http.h"
#include "s3xml.h"
#include "sigv4.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define S3_DEFAULT_PARALLEL 8u
#define S3_MAX_PARALLEL 256u
#define S3_MAX_ATTEMPTS 8
#define S3_BACKOFF_BASE_MS 50u
#define S3_BACKOFF_CAP_MS 2000u
#define S3_LIST_PAGE_MAX (32u << 20)
#define S3_CONTROL_MAX (1u << 20)
#define S3_DELETE_BATCH 1000u
#define S3_MULTIPART_THRESHOLD (64ull << 20)
#define S3_PART_SIZE (16ull << 20)
#define S3_MIN_PART (5ull << 20)
#define S3_MAX_PARTS 10000u
#define S3_DEFAULT_REGION "us-east-1"

typedef struct s3_target {
    hb_target base; /* first: the hb_target pointer is the s3_target pointer */
    hb_http *http;
    char *endpoint;    /* "scheme://host[:port][/path]" for messages (no secret) */
    char *url_base;    /* "scheme://<Host header><basepath>" */
    char *host_hdr;    /* Host header: host[:port], or bucket.host[:port] */
    char *root_path;   /* canonical path of the bucket root: "<basepath>/<bucket>" or
                          "<basepath>" (virtual-hosted); never ends with '/' */
    char *bucket;
    char *prefix;      /* "" or "<prefix>/" (raw) */
    char *region, *akid, *secret;
    unsigned timeout_ms;
    uint64_t mp_threshold, part_size;
    atomic_uint_fast64_t n_req, n_retry, n_put, n_get, n_head, n_del, n_list, n_mpu;
    atomic_uint_fast64_t bytes_up, bytes_down;
} s3_target;

static const hb_target_ops s3_ops;

/* ---- small helpers ---- */

static char *key_full(const s3_target *s, const char *key)
{
    return hb_asprintf("%s%s", s->prefix, key);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static unsigned backoff_ms(int attempt)
{
    uint64_t d = (uint64_t)S3_BACKOFF_BASE_MS << (attempt < 16 ? attempt : 16);
    if (d > S3_BACKOFF_CAP_MS)
        d = S3_BACKOFF_CAP_MS;
    uint32_t r;
    hb_random(&r, sizeof r);
    /* "full jitter" on the upper half: [d/2, d] */
    return (unsigned)(d / 2 + r % (d / 2 + 1));
}

static void md5_base64(const void *data, size_t len, char out[32])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, d, &n, EVP_md5(), NULL) != 1 || n != 16)
        return;
    char *b = hb_base64_encode(d, 16);
    if (b) {
        snprintf(out, 32, "%s", b);
        hb_free(b);
    }
}

/* ---- requests ---- */

typedef struct s3_call {
    const char *method;
    const char *key;          /* store key (relative to the prefix), NULL: the bucket */
    const hb_kv *query;
    size_t nquery;
    const void *body;
    size_t body_len;
    const char *content_type; /* sent and signed when set */
    const char *content_md5;  /* sent and signed when set */
    size_t max_body;
    char *code_out;           /* when set (128 bytes): the S3 error code of a final failure */
} s3_call;

/* Canonical path (= the path sent) of a store key or the bucket root. */
static int build_path(const s3_target *s, const char *key, hb_buf *out)
{
    hb_buf_reset(out);
    int rc = hb_buf_append_str(out, s->root_path);
    if (rc == 0)
        rc = hb_buf_append_str(out, "/");
    if (rc == 0 && key) {
        char *full = key_full(s, key);
        if (!full)
            return HARVBK_E_NOMEM;
        rc = hb_sigv4_uri_encode(out, full, strlen(full), true);
        hb_free(full);
    }
    return rc;
}

static bool retryable_status(long st)
{
    return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* "Code: Message" of an S3 error document (sanitised, bounded). */
static void error_text(const hb_http_resp *rs, char *code, size_t csize, char *msg, size_t msize)
{
    hb_s3_error_text(rs->body.data, rs->body.len, code, csize, msg, msize);
}

static const char *op_name(const s3_call *c)
{
    return c->key ? c->method : (strcmp(c->method, "GET") == 0 ? "LIST" : c->method);
}

/* One S3 call with retries. 0 for a 2xx answer (rs holds it); else an error
 * in e. rs->body must be freed by the caller in every case. */
static int s3_do(s3_target *s, const s3_call *c, hb_http_resp *rs, hb_err *e)
{
    hb_buf path = HB_BUF_INIT, query = HB_BUF_INIT;
    char *url = NULL;
    int rc = build_path(s, c->key, &path);
    if (rc == 0)
        rc = hb_sigv4_canonical_query(c->query, c->nquery, &query);
    if (rc == 0)
        url = hb_asprintf("%s%s%s%s", s->url_base, (char *)path.data, query.len ? "?" : "",
                          query.len ? (char *)query.data : "");
    if (rc == 0 && !url)
        rc = HARVBK_E_NOMEM;
    if (rc) {
        hb_buf_free(&path);
        hb_buf_free(&query);
        hb_free(url);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    char payload[65];
    hb_sigv4_sha256_hex(c->body ? c->body : "", c->body_len, payload);
    hb_sigv4_creds cr = { s->akid, s->secret, s->region, "s3" };
    const uint64_t t0 = hb_mono_ms();
    /* budgets: unreachable endpoints (refused, unresolvable, timeouts) only
     * within the timeout; other transient failures within a few timeouts */
    const uint64_t budget_unreach = s->timeout_ms;
    const uint64_t budget = HB_MAX((uint64_t)s->timeout_ms * 3, 30000u);
    int attempt = 0;
    for (;;) {
        char date[HB_SIGV4_DATE_LEN + 1];
        hb_sigv4_amz_date(time(NULL), date);
        hb_kv sh[5];
        size_t nsh = 0;
        sh[nsh++] = (hb_kv){ "host", s->host_hdr };
        sh[nsh++] = (hb_kv){ "x-amz-content-sha256", payload };
        sh[nsh++] = (hb_kv){ "x-amz-date", date };
        if (c->content_type)
            sh[nsh++] = (hb_kv){ "content-type", c->content_type };
        if (c->content_md5)
            sh[nsh++] = (hb_kv){ "content-md5", c->content_md5 };
        hb_sigv4_req sr = { c->method, (char *)path.data, c->query, c->nquery, sh, nsh,
                            payload, date };
        char *auth = NULL;
        rc = hb_sigv4_sign(&sr, &cr, &auth, NULL, NULL, NULL);
        if (rc) {
            rc = hb_seterr(e, rc, "cannot sign the request");
            break;
        }
        char h_host[600], h_sha[100], h_date[64], h_ct[160], h_md5[64];
        char *h_auth = hb_asprintf("Authorization: %s", auth);
        hb_free(auth);
        if (!h_auth) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        snprintf(h_host, sizeof h_host, "Host: %s", s->host_hdr);
        snprintf(h_sha, sizeof h_sha, "x-amz-content-sha256: %s", payload);
        snprintf(h_date, sizeof h_date, "x-amz-date: %s", date);
        const char *hdrs[7];
        size_t nh = 0;
        hdrs[nh++] = h_host;
        hdrs[nh++] = h_sha;
        hdrs[nh++] = h_date;
        hdrs[nh++] = h_auth;
        if (c->content_type) {
            snprintf(h_ct, sizeof h_ct, "Content-Type: %s", c->content_type);
            hdrs[nh++] = h_ct;
        } else {
            hdrs[nh++] = "Content-Type:"; /* none (curl would add a form type) */
        }
        if (c->content_md5) {
            snprintf(h_md5, sizeof h_md5, "Content-MD5: %s", c->content_md5);
            hdrs[nh++] = h_md5;
        }
        hb_http_req rq = { c->method, url, hdrs, nh, c->body, c->body_len, c->max_body };
        atomic_fetch_add(&s->n_req, 1);
        int hr = hb_http_do(s->http, &rq, rs);
        OPENSSL_cleanse(h_auth, strlen(h_auth)); /* holds no secret, but a valid signature */
        hb_free(h_auth);
        if (hr == HARVBK_E_NOMEM) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            break;
        }
        attempt++;
        uint64_t elapsed = hb_mono_ms() - t0;
        if (hr == 0 && rs->too_large) {
            rc = hb_seterr(e, HARVBK_E_CORRUPT, "object is %llu bytes, more than the %zu expected",
                           (unsigned long long)rs->length, c->max_body);
            break;
        }
        if (hr == 0 && rs->status >= 200 && rs->status < 300) {
            if (strcmp(c->method, "GET") == 0)
                atomic_fetch_add(&s->bytes_down, rs->body.len);
            else
                atomic_fetch_add(&s->bytes_up, c->body_len);
            rc = 0;
            break;
        }
        bool retry;
        bool unreach = hr != 0 && rs->unreachable;
        if (hr != 0)
            retry = hb_http_transient(rs->curl_code);
        else
            retry = retryable_status(rs->status);
        unsigned wait = backoff_ms(attempt - 1);
        uint64_t limit = unreach ? budget_unreach : budget;
        if (retry && attempt < S3_MAX_ATTEMPTS && elapsed + wait < limit) {
            atomic_fetch_add(&s->n_retry, 1);
            if (hr != 0)
                hb_log_debug(s->base.log, "S3 %s %s: %s; retry %d in %u ms", op_name(c),
                             s->endpoint, rs->curl_msg, attempt, wait);
            else
                hb_log_debug(s->base.log, "S3 %s %s: HTTP %ld; retry %d in %u ms", op_name(c),
                             s->endpoint, rs->status, attempt, wait);
            sleep_ms(wait);
            continue;
        }
        /* final failure */
        if (hr != 0) {
            if (hb_http_tls_verify_failed(rs->curl_code))
                rc = hb_seterr(e, HARVBK_E_TARGET,
                               "TLS verification of S3 endpoint %s failed: %s (give the CA "
                               "certificate that signed the server's certificate with "
                               "--ca-cert / HARVBK_TARGET_CA_CERT_FILE)",
                               s->endpoint, rs->curl_msg);
            else if (unreach)
                rc = hb_seterr(e, HARVBK_E_TARGET,
                               "cannot reach S3 endpoint %s: %s (%d attempt%s in %.1f s)",
                               s->endpoint, rs->curl_msg, attempt, attempt == 1 ? "" : "s",
                               (double)elapsed / 1000.0);
            else
                rc = hb_seterr(e, HARVBK_E_TARGET, "S3 endpoint %s: %s failed: %s (%d attempt%s)",
                               s->endpoint, op_name(c), rs->curl_msg, attempt,
                               attempt == 1 ? "" : "s");
            break;
        }
        char code[128], msg[300];
        error_text(rs, code, sizeof code, msg, sizeof msg);
        if (c->code_out)
            snprintf(c->code_out, 128, "%s", code);
        bool no_body = !rs->body.len;
        if (rs->status == 404 && c->key &&
            (!strcmp(code, "NoSuchKey") ||
             (no_body && (!strcmp(c->method, "HEAD") || !strcmp(c->method, "GET") ||
                          !strcmp(c->method, "DELETE"))))) {
            rc = hb_seterr(e, HARVBK_E_NOTFOUND, "object not found");
            break;
        }
        if (rs->status == 404 && (!strcmp(code, "NoSuchBucket") || (!c->key && !code[0]))) {
            rc = hb_seterr(e, HARVBK_E_TARGET, "bucket '%s' does not exist at S3 endpoint %s",
                           s->bucket, s->endpoint);
            break;
        }
        int ecode = (rs->status == 401 || rs->status == 403) ? HARVBK_E_PERM : HARVBK_E_TARGET;
        rc = hb_seterr(e, ecode, "S3 endpoint %s: %s: HTTP %ld%s%s%s%s%s", s->endpoint,
                       op_name(c), rs->status, code[0] ? " " : "", code, msg[0] ? " (" : "",
                       msg, msg[0] ? ")" : "");
        if (retry)
            hb_err_prefix(e, "gave up after %d attempts", attempt);
        break;
    }
    hb_buf_free(&path);
    hb_buf_free(&query);
    hb_free(url);
    return rc;
}

/* ---- put (single and multipart) ---- */

static int mpu_abort(s3_target *s, const char *key, const char *upload_id)
{
    hb_kv q[] = { { "uploadId", upload_id } };
    s3_call c = { "DELETE", key, q, 1, NULL, 0, NULL, NULL, S3_CONTROL_MAX, NULL };
    hb_http_resp rs = { 0 };
    hb_err e;
    int rc = s3_do(s, &c, &rs, &e);
    hb_buf_free(&rs.body);
    if (rc)
        hb_log_warn(s->base.log, "cannot abort the multipart upload of %s: %s", key, e.msg);
    return rc;
}

static int s3_put_multipart(s3_target *s, const char *key, const uint8_t *data, size_t len,
                            hb_err *e)
{
    atomic_fetch_add(&s->n_mpu, 1);
    hb_kv q0[] = { { "uploads", NULL } };
    s3_call c0 = { "POST", key, q0, 1, NULL, 0, "application/octet-stream", NULL,
                   S3_CONTROL_MAX, NULL };
    hb_http_resp rs = { 0 };
    int rc = s3_do(s, &c0, &rs, e);
    hb_buf id = HB_BUF_INIT, done = HB_BUF_INIT;
    if (rc == 0) {
        if (!hb_s3_upload_id(rs.body.data, rs.body.len, &id))
            rc = hb_seterr(e, HARVBK_E_TARGET,
                           "S3 endpoint %s: no UploadId in the answer to CreateMultipartUpload",
                           s->endpoint);
    }
    if (rc) {
        hb_buf_free(&rs.body);
        hb_buf_free(&id);
        return rc;
    }
    const char *upload_id = (const char *)id.data;
    size_t part = (size_t)s->part_size;
    size_t nparts = (len + part - 1) / part;
    if (nparts > S3_MAX_PARTS)
        part = (len + S3_MAX_PARTS - 1) / S3_MAX_PARTS, nparts = (len + part - 1) / part;
    rc = hb_buf_append_str(&done, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/"
                                  "doc/2006-03-01/\">");
    for (size_t i = 0; i < nparts && rc == 0; i++) {
        size_t off = i * part, n = HB_MIN(part, len - off);
        char num[24];
        snprintf(num, sizeof num, "%zu", i + 1);
        hb_kv q[] = { { "partNumber", num }, { "uploadId", upload_id } };
        s3_call c = { "PUT", key, q, 2, data + off, n, NULL, NULL, S3_CONTROL_MAX, NULL };
        rc = s3_do(s, &c, &rs, e);
        if (rc == 0 && !rs.etag[0])
            rc = hb_seterr(e, HARVBK_E_TARGET, "S3 endpoint %s: no ETag for part %zu",
                           s->endpoint, i + 1);
        if (rc == 0) {
            char *x = hb_asprintf("<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
            rc = x ? hb_buf_append_str(&done, x) : HARVBK_E_NOMEM;
            hb_free(x);
            if (rc == 0)
                rc = hb_s3_xml_escape(&done, rs.etag);
            if (rc == 0)
                rc = hb_buf_append_str(&done, "</ETag></Part>");
            if (rc)
                rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
        }
    }
    if (rc == 0 && hb_buf_append_str(&done, "</CompleteMultipartUpload>") != 0)
        rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (rc == 0) {
        hb_kv q[] = { { "uploadId", upload_id } };
        char ecode[128] = "";
        s3_call c = { "POST", key, q, 1, done.data, done.len, "application/xml", NULL,
                      S3_CONTROL_MAX, ecode };
        rc = s3_do(s, &c, &rs, e);
        if (rc && !strcmp(ecode, "NoSuchUpload")) {
            /* a retry of a completion whose answer was lost: the upload is
             * gone because it completed; the object must be there, whole */
            hb_err he;
            uint64_t size = 0;
            s3_call hc = { "HEAD", key, NULL, 0, NULL, 0, NULL, NULL, 0, NULL };
            hb_http_resp hr = { 0 };
            if (s3_do(s, &hc, &hr, &he) == 0 && hr.has_length && (size = hr.length) == len) {
                hb_err_clear(e);
                rc = 0;
            }
            hb_buf_free(&hr.body);
        }
        /* S3 may answer 200 and still report an error in the body */
        if (rc == 0 && hb_s3_has_error(rs.body.data, rs.body.len)) {
            char code[128], msg[300];
            error_text(&rs, code, sizeof code, msg, sizeof msg);
            rc = hb_seterr(e, HARVBK_E_TARGET,
                           "S3 endpoint %s: CompleteMultipartUpload failed: %s (%s)",
                           s->endpoint, code, msg);
        }
    }
    if (rc)
        mpu_abort(s, key, upload_id);
    hb_buf_free(&rs.body);
    hb_buf_free(&id);
    hb_buf_free(&done);
    return rc;
}

static int s3_put(hb_target *t, const char *key, const void *data, size_t len, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    atomic_fetch_add(&s->n_put, 1);
    if ((uint64_t)len > s->mp_threshold)
        return s3_put_multipart(s, key, data, len, e);
    s3_call c = { "PUT", key, NULL, 0, data, len, NULL, NULL, S3_CONTROL_MAX, NULL };
    hb_http_resp rs = { 0 };
    int rc = s3_do(s, &c, &rs, e);
    hb_buf_free(&rs.body);
    return rc;
}

/* ---- get, head, del ---- */

static int s3_get_max(hb_target *t, const char *key, hb_buf *out, size_t max, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    atomic_fetch_add(&s->n_get, 1);
    hb_buf_reset(out);
    s3_call c = { "GET", key, NULL, 0, NULL, 0, NULL, NULL, max, NULL };
    hb_http_resp rs = { 0 };
    rs.body = *out; /* read straight into the caller's buffer */
    int rc = s3_do(s, &c, &rs, e);
    *out = rs.body;
    if (rc) {
        hb_buf_reset(out);
        return rc;
    }
    if (hb_buf_reserve(out, out->len + 1) != 0) {
        hb_buf_reset(out);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    out->data[out->len] = '\0';
    return 0;
}

static int s3_get(hb_target *t, const char *key, hb_buf *out, hb_err *e)
{
    return s3_get_max(t, key, out, SIZE_MAX - 1, e);
}

static int s3_head(hb_target *t, const char *key, uint64_t *size, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    atomic_fetch_add(&s->n_head, 1);
    s3_call c = { "HEAD", key, NULL, 0, NULL, 0, NULL, NULL, 0, NULL };
    hb_http_resp rs = { 0 };
    int rc = s3_do(s, &c, &rs, e);
    if (rc == 0 && !rs.has_length)
        rc = hb_seterr(e, HARVBK_E_TARGET, "S3 endpoint %s: HEAD answer without a size",
                       s->endpoint);
    if (rc == 0)
        *size = rs.length;
    hb_buf_free(&rs.body);
    return rc;
}

static int s3_del(hb_target *t, const char *key, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    atomic_fetch_add(&s->n_del, 1);
    s3_call c = { "DELETE", key, NULL, 0, NULL, 0, NULL, NULL, S3_CONTROL_MAX, NULL };
    hb_http_resp rs = { 0 };
    int rc = s3_do(s, &c, &rs, e);
    hb_buf_free(&rs.body);
    if (rc == HARVBK_E_NOTFOUND) {
        hb_err_clear(e);
        rc = 0;
    }
    return rc;
}

/* One DeleteObjects request of at most S3_DELETE_BATCH keys. */
static int delete_batch(s3_target *s, const char *const *keys, size_t n, hb_err *e)
{
    hb_buf body = HB_BUF_INIT;
    int rc = hb_buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete xmlns="
                                      "\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true"
                                      "</Quiet>");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *full = key_full(s, keys[i]);
        rc = full ? hb_buf_append_str(&body, "<Object><Key>") : HARVBK_E_NOMEM;
        if (rc == 0)
            rc = hb_s3_xml_escape(&body, full);
        if (rc == 0)
            rc = hb_buf_append_str(&body, "</Key></Object>");
        hb_free(full);
    }
    if (rc == 0)
        rc = hb_buf_append_str(&body, "</Delete>");
    if (rc) {
        hb_buf_free(&body);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    char md5[32];
    md5_base64(body.data, body.len, md5);
    hb_kv q[] = { { "delete", NULL } };
    s3_call c = { "POST", NULL, q, 1, body.data, body.len, "application/xml",
                  md5[0] ? md5 : NULL, S3_LIST_PAGE_MAX, NULL };
    hb_http_resp rs = { 0 };
    rc = s3_do(s, &c, &rs, e);
    if (rc == 0 && rs.body.data) {
        /* per-key errors (absent keys are not errors) */
        char first[300];
        size_t nerr = hb_s3_delete_errors(rs.body.data, rs.body.len, first, sizeof first);
        if (nerr)
            rc = hb_seterr(e, HARVBK_E_TARGET,
                           "S3 endpoint %s: DeleteObjects could not delete %zu of %zu "
                           "object(s), first %s",
                           s->endpoint, nerr, n, first);
    }
    hb_buf_free(&rs.body);
    hb_buf_free(&body);
    return rc;
}

static int s3_del_many(hb_target *t, const char *const *keys, size_t n, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    for (size_t i = 0; i < n; i += S3_DELETE_BATCH) {
        atomic_fetch_add(&s->n_del, 1);
        int rc = delete_batch(s, keys + i, HB_MIN((size_t)S3_DELETE_BATCH, n - i), e);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- list ---- */

static int s3_list(hb_target *t, const char *prefix, hb_list_cb cb, void *ud, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    char *full = key_full(s, prefix ? prefix : "");
    if (!full)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_s3_list l = HB_S3_LIST_INIT(full, strlen(s->prefix), s->endpoint);
    hb_http_resp rs = { 0 };
    int rc = 0;
    bool first = true;
    for (;;) {
        atomic_fetch_add(&s->n_list, 1);
        hb_kv q[5];
        size_t nq = 0;
        q[nq++] = (hb_kv){ "list-type", "2" };
        q[nq++] = (hb_kv){ "max-keys", "1000" };
        q[nq++] = (hb_kv){ "prefix", full };
        if (!first)
            q[nq++] = (hb_kv){ "continuation-token", (char *)l.token.data };
        s3_call c = { "GET", NULL, q, nq, NULL, 0, NULL, NULL, S3_LIST_PAGE_MAX, NULL };
        rc = s3_do(s, &c, &rs, e);
        if (rc)
            break;
        first = false;
        rc = hb_s3_list_page(&l, rs.body.data, rs.body.len, cb, ud, e);
        if (rc || !l.more)
            break;
    }
    hb_buf_free(&rs.body);
    hb_s3_list_free(&l);
    hb_free(full);
    return rc;
}

/* ---- ping, cleanup, close ---- */

static int s3_ping(hb_target *t, hb_err *e)
{
    s3_target *s = (s3_target *)t;
    char *full = key_full(s, "");
    if (!full)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    hb_kv q[] = { { "list-type", "2" }, { "max-keys", "1" }, { "prefix", full } };
    s3_call c = { "GET", NULL, q, 3, NULL, 0, NULL, NULL, S3_LIST_PAGE_MAX, NULL };
    hb_http_resp rs = { 0 };
    int rc = s3_do(s, &c, &rs, e);
    hb_buf_free(&rs.body);
    hb_free(full);
    return rc;
}

static int s3_cleanup(hb_target *t, const char *owner, int64_t max_age_s, hb_err *e)
{
    (void)t;
    (void)owner;
    (void)max_age_s;
    (void)e;
    return 0; /* S3 writers leave no temporaries */
}

static void s3_free(s3_target *s)
{
    hb_http_free(s->http);
    hb_free(s->endpoint);
    hb_free(s->url_base);
    hb_free(s->host_hdr);
    hb_free(s->root_path);
    hb_free(s->bucket);
    hb_free(s->prefix);
    hb_free(s->region);
    hb_free(s->akid);
    hb_secure_strfree(s->secret);
    hb_free(s);
}

static void s3_close(hb_target *t)
{
    s3_target *s = (s3_target *)t;
    hb_log_debug(t->log,
                 "S3 %s: %llu requests (%llu retried), %llu put, %llu get, %llu head, %llu "
                 "delete, %llu list pages, %llu multipart; %llu bytes up, %llu down",
                 s->endpoint, (unsigned long long)s->n_req, (unsigned long long)s->n_retry,
                 (unsigned long long)s->n_put, (unsigned long long)s->n_get,
                 (unsigned long long)s->n_head, (unsigned long long)s->n_del,
                 (unsigned long long)s->n_list, (unsigned long long)s->n_mpu,
                 (unsigned long long)s->bytes_up, (unsigned long long)s->bytes_down);
    s3_free(s);
}

static const hb_target_ops s3_ops = {
    .scheme = "s3",
    .put = s3_put,
    .get = s3_get,
    .head = s3_head,
    .del = s3_del,
    .del_many = s3_del_many,
    .list = s3_list,
    .cleanup = s3_cleanup,
    .ping = s3_ping,
    .close = s3_close,
    .get_max = s3_get_max,
    .put_deferred = NULL,
    .sync = NULL,
};

bool hb_target_s3_stats(hb_target *t, hb_s3_stats *out)
{
    if (!t || t->ops != &s3_ops || !out)
        return false;
    s3_target *s = (s3_target *)t;
    out->requests = atomic_load(&s->n_req);
    out->retries = atomic_load(&s->n_retry);
    out->puts = atomic_load(&s->n_put);
    out->gets = atomic_load(&s->n_get);
    out->heads = atomic_load(&s->n_head);
    out->deletes = atomic_load(&s->n_del);
    out->list_pages = atomic_load(&s->n_list);
    out->multipart = atomic_load(&s->n_mpu);
    out->bytes_up = atomic_load(&s->bytes_up);
    out->bytes_down = atomic_load(&s->bytes_down);
    return true;
}

/* ---- open ---- */

static uint64_t env_u64(const char *name, uint64_t dflt, uint64_t min, uint64_t max)
{
    const char *v = getenv(name);
    uint64_t x;
    if (!v || !hb_s3_parse_u64(v, &x) || x < min || x > max)
        return dflt;
    return x;
}

/* A DNS name usable as the first label of a virtual-hosted host. */
static bool dns_bucket(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            return false;
    }
    return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

int hb_target_s3_open(hb_target **out, const hb_target_cfg *cfg, hb_err *e)
{
    *out = NULL;
    if (!cfg || !cfg->url || strncmp(cfg->url, "s3://", 5) != 0)
        return hb_seterr(e, HARVBK_E_INVALID, "S3 target needs an s3://bucket/prefix URL");
    const char *rest = cfg->url + 5;
    size_t blen = strcspn(rest, "/");
    if (blen == 0 || blen > 255)
        return hb_seterr(e, HARVBK_E_INVALID, "s3:// target URL needs a bucket");
    if (!cfg->access_key_id || !*cfg->access_key_id)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "S3 target needs an access key id (--access-key-id)");
    if (!cfg->secret_access_key || !*cfg->secret_access_key)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "S3 target needs the secret access key: give it with "
                         "--secret-access-key-file or $AWS_SECRET_ACCESS_KEY "
                         "(harvbk_ctx_set_target_secret() in the C API), or store it with "
                         "--store-secret");
    s3_target *s = hb_calloc(1, sizeof *s);
    if (!s)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc = 0;
    s->bucket = hb_strndup(rest, blen);
    /* prefix: literal, without leading/trailing '/' */
    const char *p = rest + blen;
    while (*p == '/')
        p++;
    size_t pl = strlen(p);
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    s->prefix = pl ? hb_asprintf("%.*s/", (int)pl, p) : hb_strdup("");
    s->region = hb_strdup(cfg->region && *cfg->region ? cfg->region : S3_DEFAULT_REGION);
    s->akid = hb_strdup(cfg->access_key_id);
    s->secret = hb_secure_strdup(cfg->secret_access_key);
    if (!s->bucket || !s->prefix || !s->region || !s->akid || !s->secret) {
        s3_free(s);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    if (strlen(s->prefix) > 512) {
        s3_free(s);
        return hb_seterr(e, HARVBK_E_INVALID, "S3 prefix longer than 512 bytes");
    }
    bool vhost = cfg->virtual_hosted;
    if (vhost && !dns_bucket(s->bucket)) {
        s3_free(s);
        return hb_seterr(e, HARVBK_E_INVALID,
                         "bucket '%.64s' cannot be used with virtual-hosted style (3 to 63 of "
                         "a-z, 0-9, '-', '.'); use path style",
                         rest);
    }
    /* endpoint: scheme://host[:port][/base/path] */
    char *ep = cfg->endpoint && *cfg->endpoint
                   ? hb_strdup(cfg->endpoint)
                   : hb_asprintf("https://s3.%s.amazonaws.com", s->region);
    if (!ep) {
        s3_free(s);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    const char *scheme;
    const char *hp;
    if (!strncasecmp(ep, "https://", 8)) {
        scheme = "https";
        hp = ep + 8;
    } else if (!strncasecmp(ep, "http://", 7)) {
        scheme = "http";
        hp = ep + 7;
    } else {
        hb_free(ep);
        s3_free(s);
        return hb_seterr(e, HARVBK_E_INVALID, "S3 endpoint must be an http:// or https:// URL");
    }
    size_t hl = strcspn(hp, "/?#");
    const char *bp = hp + hl;
    size_t bl = strlen(bp);
    while (bl > 0 && bp[bl - 1] == '/')
        bl--;
    if (hl == 0 || memchr(hp, '@', hl) || strpbrk(bp, "?#") ||
        strspn(bp, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/") <
            strlen(bp)) {
        hb_free(ep);
        s3_free(s);
        return hb_seterr(e, HARVBK_E_INVALID,
                         "S3 endpoint must be scheme://host[:port][/path] without credentials, "
                         "query or special characters in the path");
    }
    /* host in lower case (Host is signed; servers compare it as sent) */
    char *host = hb_strndup(hp, hl);
    if (host)
        for (char *h = host; *h; h++)
            if (*h >= 'A' && *h <= 'Z')
                *h = (char)(*h - 'A' + 'a');
    if (vhost && host) {
        size_t nl = host[0] == '[' ? 0 : strcspn(host, ":");
        if (nl == 0 || strspn(host, "0123456789.") >= nl) {
            hb_free(host);
            hb_free(ep);
            s3_free(s);
            return hb_seterr(e, HARVBK_E_INVALID,
                             "virtual-hosted style needs an endpoint with a DNS name (the "
                             "bucket becomes its first label), not an IP address; use path "
                             "style or a name such as localhost");
        }
    }
    s->endpoint = hb_asprintf("%s://%s%.*s", scheme, host ? host : "", (int)bl, bp);
    s->host_hdr = vhost ? hb_asprintf("%s.%s", s->bucket, host ? host : "") : hb_strdup(host);
    s->url_base = s->host_hdr ? hb_asprintf("%s://%s", scheme, s->host_hdr) : NULL;
    s->root_path = vhost ? hb_asprintf("%.*s", (int)bl, bp)
                         : hb_asprintf("%.*s/%s", (int)bl, bp, s->bucket);
    hb_free(host);
    hb_free(ep);
    if (!s->endpoint || !s->host_hdr || !s->url_base || !s->root_path) {
        s3_free(s);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HB_DEFAULT_TIMEOUT_MS;
    s->mp_threshold = env_u64("HARVBK_S3_MULTIPART_THRESHOLD", S3_MULTIPART_THRESHOLD,
                              S3_MIN_PART, 5ull << 30);
    s->part_size = env_u64("HARVBK_S3_PART_SIZE", S3_PART_SIZE, S3_MIN_PART, 5ull << 30);
    hb_http_cfg hc = { cfg->ca_cert_file && *cfg->ca_cert_file ? cfg->ca_cert_file : NULL,
                       s->timeout_ms, s->timeout_ms,
                       (unsigned)HB_MIN((uint64_t)UINT32_MAX,
                                        HB_MAX((uint64_t)s->timeout_ms * 30, 300000u)) };
    if (hc.ca_file && access(hc.ca_file, R_OK) != 0) {
        int err = errno;
        s3_free(s);
        return hb_seterr(e, HARVBK_E_INVALID, "cannot read the CA certificate file '%s': %s",
                         hc.ca_file, strerror(err));
    }
    rc = hb_http_new(&s->http, &hc, e);
    if (rc) {
        s3_free(s);
        return rc;
    }
    atomic_init(&s->base.lost, 0);
    s->base.ops = &s3_ops;
    unsigned par = (unsigned)env_u64("HARVBK_TARGET_PARALLEL", S3_DEFAULT_PARALLEL, 1,
                                     S3_MAX_PARALLEL);
    s->base.parallel = par;
    s->base.min_workers = par; /* round trips are latency, not CPU */
    s->base.list_per_head = 1000; /* a HEAD against a ListObjectsV2 page */
    *out = &s->base;
    return 0;
}
