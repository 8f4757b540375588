/*
 * target/http.c - libcurl wrapper (see http.h).
 */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define POOL_MAX 64            /* idle easy handles kept */
#define RECV_BUFFER (256 * 1024)
#define SEND_BUFFER (1024 * 1024)

struct hb_http {
    char *ca_file;
    unsigned connect_timeout_ms, stall_timeout_ms, total_timeout_ms;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    size_t npool;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)handle;
    (void)access;
    hb_http *h = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&h->share_mu[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *ud)
{
    (void)handle;
    hb_http *h = ud;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&h->share_mu[data]);
}

int hb_http_new(hb_http **out, const hb_http_cfg *cfg, hb_err *e)
{
    *out = NULL;
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return hb_seterr(e, HARVBK_E_TARGET, "cannot initialise libcurl: %s",
                         curl_easy_strerror(g_curl_init_rc));
    hb_http *h = hb_calloc(1, sizeof *h);
    if (!h)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    if (cfg->ca_file && !(h->ca_file = hb_strdup(cfg->ca_file))) {
        hb_free(h);
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    }
    h->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
    h->stall_timeout_ms = cfg->stall_timeout_ms ? cfg->stall_timeout_ms : h->connect_timeout_ms;
    h->total_timeout_ms = cfg->total_timeout_ms;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_mu[i], NULL);
    pthread_mutex_init(&h->pool_mu, NULL);
    h->share = curl_share_init();
    if (h->share) {
        curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
        curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    *out = h;
    return 0;
}

void hb_http_free(hb_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->share_mu[i]);
    pthread_mutex_destroy(&h->pool_mu);
    hb_free(h->ca_file);
    hb_free(h);
}

static CURL *pool_get(hb_http *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->pool_mu);
    if (h->npool)
        c = h->pool[--h->npool];
    pthread_mutex_unlock(&h->pool_mu);
    return c ? c : curl_easy_init();
}

/* broken: the handle's connection state is unknown, do not keep it */
static void pool_put(hb_http *h, CURL *c, bool broken)
{
    if (!c)
        return;
    if (!broken) {
        pthread_mutex_lock(&h->pool_mu);
        if (h->npool < POOL_MAX) {
            h->pool[h->npool++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&h->pool_mu);
    }
    if (c)
        curl_easy_cleanup(c);
}

/* ---- response capture ---- */

static bool status_ok(long st)
{
    return st >= 200 && st < 300;
}

static bool hdr_is(const char *line, size_t n, const char *name, size_t *voff)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    size_t i = nl + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    *voff = i;
    return true;
}

size_t hb_http_capture_header(hb_http_capture *c, const char *p, size_t n)
{
    /* strip CRLF */
    size_t len = n;
    while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
        len--;
    if (len >= 12 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        long st = 0;
        if (sp && (size_t)(sp - p) + 4 <= len)
            for (int i = 1; i <= 3; i++)
                st = st * 10 + (sp[i] >= '0' && sp[i] <= '9' ? sp[i] - '0' : 0);
        c->status = st;
        c->rs->etag[0] = '\0';
        c->rs->has_length = false;
        return n;
    }
    size_t v;
    if (hdr_is(p, len, "ETag", &v)) {
        size_t vl = HB_MIN(len - v, sizeof c->rs->etag - 1);
        memcpy(c->rs->etag, p + v, vl);
        c->rs->etag[vl] = '\0';
    } else if (hdr_is(p, len, "Content-Length", &v)) {
        uint64_t x = 0;
        bool ok = v < len;
        for (size_t i = v; i < len && ok; i++) {
            if (p[i] < '0' || p[i] > '9' || x > (UINT64_MAX - 9) / 10)
                ok = false;
            else
                x = x * 10 + (uint64_t)(p[i] - '0');
        }
        if (ok) {
            c->rs->length = x;
            c->rs->has_length = true;
            if (!c->head && status_ok(c->status)) {
                if (x > c->max_body) {
                    c->rs->too_large = true;
                    return 0; /* abort: never buffer more than asked */
                }
                if (x < SIZE_MAX && hb_buf_reserve(&c->rs->body, (size_t)x + 1) != 0)
                    return 0;
            }
        }
    }
    return n;
}

size_t hb_http_capture_body(hb_http_capture *c, const char *p, size_t n)
{
    hb_buf *b = &c->rs->body;
    if (status_ok(c->status)) {
        if (n > c->max_body || b->len > c->max_body - n) {
            c->rs->too_large = true;
            return 0;
        }
    } else {
        /* error documents: keep the start, drop the rest (the connection
         * stays usable) */
        if (b->len >= HB_HTTP_ERRBODY_MAX)
            return n;
        size_t keep = HB_MIN(n, HB_HTTP_ERRBODY_MAX - b->len);
        if (hb_buf_reserve(b, b->len + keep + 1) != 0)
            return 0;
        memcpy(b->data + b->len, p, keep);
        b->len += keep;
        b->data[b->len] = '\0';
        return n;
    }
    if (hb_buf_reserve(b, b->len + n + 1) != 0)
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t header_cb(char *p, size_t size, size_t nitems, void *ud)
{
    return hb_http_capture_header(ud, p, size * nitems);
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    return hb_http_capture_body(ud, p, size * nmemb);
}

bool hb_http_transient(int code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

bool hb_http_tls_verify_failed(int code)
{
    return code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
           code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_ISSUER_ERROR;
}

#define SETOPT(opt, val)                                      \
    do {                                                      \
        if (crc == CURLE_OK)                                  \
            crc = curl_easy_setopt(c, (opt), (val));          \
    } while (0)

int hb_http_do(hb_http *h, const hb_http_req *rq, hb_http_resp *rs)
{
    hb_buf_reset(&rs->body);
    rs->status = 0;
    rs->too_large = false;
    rs->length = 0;
    rs->has_length = false;
    rs->etag[0] = '\0';
    rs->curl_code = 0;
    rs->curl_msg[0] = '\0';
    rs->unreachable = false;

    CURL *c = pool_get(h);
    if (!c)
        return HARVBK_E_NOMEM;
    curl_easy_reset(c); /* keeps live connections, the DNS and session caches */

    struct curl_slist *hl = NULL;
    for (size_t i = 0; i < rq->nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hl, rq->headers[i]);
        if (!n) {
            curl_slist_free_all(hl);
            pool_put(h, c, false);
            return HARVBK_E_NOMEM;
        }
        hl = n;
    }
    /* no "Expect: 100-continue" round trip, no form content type */
    struct curl_slist *n1 = curl_slist_append(hl, "Expect:");
    if (n1)
        hl = n1;

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    bool head = strcmp(rq->method, "HEAD") == 0;
    hb_http_capture cp = { rs, rq->max_body, head, 0 };
    CURLcode crc = CURLE_OK;
    SETOPT(CURLOPT_URL, rq->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (h->ca_file)
        SETOPT(CURLOPT_CAINFO, h->ca_file);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SETOPT(CURLOPT_LOW_SPEED_TIME, (long)((h->stall_timeout_ms + 999) / 1000));
    if (h->total_timeout_ms)
        SETOPT(CURLOPT_TIMEOUT_MS, (long)h->total_timeout_ms);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
    SETOPT(CURLOPT_UPLOAD_BUFFERSIZE, (long)SEND_BUFFER);
    if (h->share)
        SETOPT(CURLOPT_SHARE, h->share);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, &cp);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, &cp);
    if (head) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(rq->method, "PUT") == 0 || strcmp(rq->method, "POST") == 0) {
        /* the body is sent straight from the caller's memory */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        SETOPT(CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
        if (strcmp(rq->method, "PUT") == 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, "PUT");
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, rq->method);
    }
    SETOPT(CURLOPT_HTTPHEADER, hl);
    if (crc == CURLE_OK)
        crc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (head && crc == CURLE_OK) {
        curl_off_t cl = -1;
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK && cl >= 0) {
            rs->length = (uint64_t)cl;
            rs->has_length = true;
        }
    }
    /* the handle goes back to the pool: no pointer into this frame stays set */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hl);
    int rc = 0;
    if (crc == CURLE_WRITE_ERROR && rs->too_large) {
        rs->status = status ? status : cp.status;
    } else if (crc != CURLE_OK) {
        rs->curl_code = (int)crc;
        snprintf(rs->curl_msg, sizeof rs->curl_msg, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(crc));
        /* trailing newline some messages carry */
        size_t l = strlen(rs->curl_msg);
        while (l > 0 && (rs->curl_msg[l - 1] == '\n' || rs->curl_msg[l - 1] == '\r'))
            rs->curl_msg[--l] = '\0';
        rs->unreachable = crc == CURLE_COULDNT_CONNECT || crc == CURLE_COULDNT_RESOLVE_HOST ||
                          crc == CURLE_OPERATION_TIMEDOUT;
        rc = crc == CURLE_OUT_OF_MEMORY ? HARVBK_E_NOMEM : HARVBK_E_TARGET;
    } else {
        rs->status = status;
    }
    /* an aborted or failed transfer leaves its connection closed by curl;
     * the handle itself stays reusable */
    pool_put(h, c, false);
    return rc;
}
