/*
 * target/http.h - a small libcurl wrapper for the network backends: one
 * HTTP/1.1 request at a time per call, from any thread.
 *
 * Connections are kept alive and reused: easy handles live in a pool (a
 * request borrows one and gives it back; curl_easy_reset keeps the handle's
 * connection cache), and the DNS cache and TLS sessions are shared between
 * the handles (CURLSH, with locks). TLS peer and host verification are always
 * on; a CA file replaces the system CA store when given.
 *
 * Timeouts: connecting is bounded by connect_timeout_ms; an established
 * transfer is aborted when it moves no byte for stall_timeout_ms (rounded up
 * to whole seconds, libcurl's granularity) or runs longer than
 * total_timeout_ms.
 */
#ifndef HB_TARGET_HTTP_H
#define HB_TARGET_HTTP_H

#include "../core/hb.h"

typedef struct hb_http hb_http;

typedef struct hb_http_cfg {
    const char *ca_file;          /* PEM bundle, or NULL for the system store */
    unsigned connect_timeout_ms;
    unsigned stall_timeout_ms;
    unsigned total_timeout_ms;
} hb_http_cfg;

int hb_http_new(hb_http **out, const hb_http_cfg *cfg, hb_err *e);
void hb_http_free(hb_http *h);

typedef struct hb_http_req {
    const char *method;               /* GET HEAD PUT POST DELETE */
    const char *url;
    const char *const *headers;       /* "Name: value" lines */
    size_t nheaders;
    const void *body;                 /* PUT/POST body (may be NULL with body_len 0) */
    size_t body_len;
    size_t max_body;                  /* a 2xx response body longer than this is refused */
} hb_http_req;

#define HB_HTTP_ERRBODY_MAX (64u * 1024u) /* kept of a non-2xx response body */

typedef struct hb_http_resp {
    long status;            /* 0 when no HTTP response was received */
    hb_buf body;            /* 2xx: up to max_body; else the first HB_HTTP_ERRBODY_MAX */
    bool too_large;         /* a 2xx body (or its Content-Length) exceeded max_body */
    uint64_t length;        /* Content-Length (HEAD: the object size) */
    bool has_length;
    char etag[160];         /* ETag header, as sent (quotes kept), "" when none */
    int curl_code;          /* CURLcode of a transport failure, 0 otherwise */
    char curl_msg[256];     /* its description */
    bool unreachable;       /* refused, unresolvable, or a timeout (connecting, or
                               no byte moved for the stall timeout) */
} hb_http_resp;

/*
 * Perform one request. Returns 0 when an HTTP response was received (any
 * status; see rs->status), HARVBK_E_TARGET for a transport failure (rs->curl_code,
 * rs->curl_msg), HARVBK_E_NOMEM. rs->body is reset first and must be freed by
 * the caller (hb_buf_free) after the last use of rs.
 */
int hb_http_do(hb_http *h, const hb_http_req *rq, hb_http_resp *rs);

/* The response capture of hb_http_do(): what libcurl's header and body
 * callbacks are given goes through these two, so a test can feed them what a
 * server could send. A header call gets one header line (CRLF included, as
 * libcurl gives it), a body call one piece of the body; each returns n, or 0
 * to abort the transfer (a 2xx body or its Content-Length over max_body:
 * rs->too_large; out of memory). Start with rs reset as hb_http_do() does. */
typedef struct hb_http_capture {
    hb_http_resp *rs;
    size_t max_body;
    bool head;   /* a HEAD request: Content-Length is the object's size */
    long status; /* of the current response head (a 1xx may come first) */
} hb_http_capture;
size_t hb_http_capture_header(hb_http_capture *c, const char *line, size_t n);
size_t hb_http_capture_body(hb_http_capture *c, const char *p, size_t n);

/* Transport failures worth a retry (connection refused/reset/dropped,
 * timeouts, partial transfers); false for TLS verification and other
 * configuration errors. */
bool hb_http_transient(int curl_code);
/* TLS certificate verification (or the CA file) failed. */
bool hb_http_tls_verify_failed(int curl_code);

#endif
