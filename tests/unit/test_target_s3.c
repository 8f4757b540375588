/* tests/unit/test_target_s3.c - the S3 backend against a hostile or broken
 * server: a small real HTTP/1.1 server on 127.0.0.1 (a thread of this test)
 * answers what no well-behaved S3 server would (s3rver cannot be made to):
 *   listings with XML entities, foreign and invalid keys, several pages;
 *   listings that repeat their continuation token, go backwards, or carry a
 *   malformed entity -> HARVBK_E_TARGET, no endless loop;
 *   an object larger than the reader's maximum -> HARVBK_E_CORRUPT before
 *   its body is read; 503 SlowDown retried; 404/403 mapped;
 *   DeleteObjects with per-key errors (and its Content-MD5 checked);
 *   a multipart upload whose part fails -> aborted;
 *   configurations that cannot work -> HARVBK_E_INVALID at open.
 * The real server tests (signatures checked by botocore, faults, TLS) are in
 * tests/s3/. */
#include "testutil.h"

#include "core/base64.h"
#include "core/hb.h"
#include "target/config.h"
#include "target/target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the server ---- */

typedef struct req {
    char method[16];
    char target[4096]; /* path?query as sent */
    char md5[64];      /* Content-MD5 header */
    char *body;
    size_t body_len;
} req;

typedef struct resp {
    int status;
    char headers[512]; /* extra header lines, each ending in \r\n */
    char *body;        /* malloc'd or NULL */
    long claim_length; /* >= 0: Content-Length to announce instead of the body's */
} resp;

typedef void (*handler_fn)(const req *rq, resp *rs, int n);

static handler_fn g_handler;
/* handlers run on the server thread: they record broken expectations here and
 * the test thread asserts none was recorded (no cmocka call off its thread) */
static char g_bad[256];
#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c) && !g_bad[0])                                                 \
            snprintf(g_bad, sizeof g_bad, "%s:%d: %s", __FILE__, __LINE__, #c); \
    } while (0)
static int g_port, g_listen = -1;
static int g_nreq;
static char g_log[64][160]; /* "METHOD target" of the first requests */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t g_thread;

static ssize_t read_some(int fd, char *b, size_t n)
{
    ssize_t r;
    do
        r = read(fd, b, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static void write_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        b += w;
        n -= (size_t)w;
    }
}

static void serve(int fd)
{
    const size_t cap = 8u << 20;
    char *buf = malloc(cap);
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have >= cap)
                goto out;
            ssize_t r = read_some(fd, buf + have, cap - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t hlen = (size_t)(end - buf) + 4;
        *end = '\0'; /* the head as a string while it is parsed */
        req rq;
        memset(&rq, 0, sizeof rq);
        sscanf(buf, "%15s %4095s", rq.method, rq.target);
        size_t clen = 0;
        for (char *l = buf; l < end;) {
            char *eol = strstr(l, "\r\n");
            if (!strncasecmp(l, "Content-Length:", 15))
                clen = strtoul(l + 15, NULL, 10);
            if (!strncasecmp(l, "Content-MD5:", 12))
                sscanf(l + 12, " %63s", rq.md5);
            l = eol ? eol + 2 : end;
        }
        if (hlen + clen > cap)
            goto out;
        *end = '\r';
        while (have < hlen + clen) {
            ssize_t r = read_some(fd, buf + have, cap - have);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        rq.body = buf + hlen;
        rq.body_len = clen;
        pthread_mutex_lock(&g_mu);
        int n = g_nreq++;
        if (n < 64)
            snprintf(g_log[n], sizeof g_log[n], "%.15s %.140s", rq.method, rq.target);
        handler_fn h = g_handler;
        pthread_mutex_unlock(&g_mu);
        resp rs;
        memset(&rs, 0, sizeof rs);
        rs.status = 200;
        rs.claim_length = -1;
        h(&rq, &rs, n);
        size_t blen = rs.body ? strlen(rs.body) : 0;
        bool head = !strcmp(rq.method, "HEAD");
        char hdr[1024];
        int hl = snprintf(hdr, sizeof hdr,
                          "HTTP/1.1 %d X\r\nContent-Length: %ld\r\n%sConnection: keep-alive\r\n\r\n",
                          rs.status, rs.claim_length >= 0 ? rs.claim_length : (long)blen,
                          rs.headers);
        write_all(fd, hdr, (size_t)hl);
        if (!head && blen)
            write_all(fd, rs.body, blen);
        free(rs.body);
        bool close_now = rs.claim_length >= 0;
        memmove(buf, buf + hlen + clen, have - hlen - clen);
        have -= hlen + clen;
        if (close_now)
            break;
    }
out:
    free(buf);
    close(fd);
}

static void *server_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve(fd); /* one connection at a time is enough here */
    }
}

static int server_start(void **state)
{
    (void)state;
    g_listen = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g_listen, (struct sockaddr *)&a, sizeof a) || listen(g_listen, 16))
        return -1;
    socklen_t l = sizeof a;
    getsockname(g_listen, (struct sockaddr *)&a, &l);
    g_port = ntohs(a.sin_port);
    return pthread_create(&g_thread, NULL, server_main, NULL);
}

static int server_stop(void **state)
{
    (void)state;
    shutdown(g_listen, SHUT_RDWR);
    close(g_listen);
    pthread_join(g_thread, NULL);
    return 0;
}

static void use(handler_fn h)
{
    pthread_mutex_lock(&g_mu);
    g_handler = h;
    g_nreq = 0;
    g_bad[0] = '\0';
    memset(g_log, 0, sizeof g_log);
    pthread_mutex_unlock(&g_mu);
}

static int nreq(void)
{
    pthread_mutex_lock(&g_mu);
    int n = g_nreq;
    pthread_mutex_unlock(&g_mu);
    if (g_bad[0])
        fail_msg("server saw: %s", g_bad);
    return n;
}

/* ---- the client ---- */

static hb_target *open_s3(const char *url, bool vhost, hb_err *e)
{
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", g_port);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, url, e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, ep, e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ACCESS_KEY_ID, "AKID", e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_SECRET_ACCESS_KEY, "s3cr3t", e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_TIMEOUT_MS, "2000", e), 0);
    c.virtual_hosted = vhost;
    hb_target *t = NULL;
    int rc = hb_target_open(&t, &c, "unit", NULL, e);
    hb_target_cfg_clear(&c);
    return rc ? NULL : t;
}

static char *dupf(const char *fmt, ...) HB_PRINTF(1, 2);
static char *dupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

typedef struct seen {
    char keys[16][256];
    uint64_t sizes[16];
    int64_t mtimes[16];
    int n;
} seen;

static int seen_cb(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    seen *s = ud;
    if (s->n < 16) {
        snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
        s->sizes[s->n] = size;
        s->mtimes[s->n] = mtime;
    }
    s->n++;
    return 0;
}

#define LIST_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"x\">"

static void h_list_pages(const req *rq, resp *rs, int n)
{
    (void)n;
    EXPECT(!strcmp(rq->method, "GET"));
    if (!strstr(rq->target, "continuation-token=")) {
        /* path style, canonical query, prefix encoded */
        EXPECT(strstr(rq->target, "/bkt/?list-type=2&max-keys=1000&prefix=p%20q%2F"));
        rs->body = dupf(LIST_HEAD "<IsTruncated>true</IsTruncated>"
                                  "<NextContinuationToken>tok+1/&amp;</NextContinuationToken>"
                                  "<Contents><Key>p q/a&amp;b</Key><Size>12</Size>"
                                  "<LastModified>2024-06-01T12:00:00.000Z</LastModified>"
                                  "</Contents>"
                                  "<Contents><Key>p q/c&#x41;&#66;&lt;</Key><Size>7</Size>"
                                  "</Contents>"
                                  "<Contents><Key>p q/d/../e</Key><Size>1</Size></Contents>"
                                  "</ListBucketResult>");
    } else {
        /* the token is sent back decoded and then encoded */
        EXPECT(strstr(rq->target, "continuation-token=tok%2B1%2F%26"));
        rs->body = dupf(LIST_HEAD "<IsTruncated>false</IsTruncated>"
                                  "<Contents><Key>p q/\xc3\xbc</Key><Size>3</Size></Contents>"
                                  "<Contents><Key>zzz-not-ours</Key><Size>3</Size></Contents>"
                                  "</ListBucketResult>");
    }
}

static void test_list_pages_entities_and_foreign_keys(void **state)
{
    (void)state;
    use(h_list_pages);
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = open_s3("s3://bkt/p q", false, &e);
    assert_non_null(t);
    seen s = { .n = 0 };
    assert_int_equal(hb_target_list(t, "", seen_cb, &s, &e), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.keys[0], "a&b");
    assert_int_equal(s.sizes[0], 12);
    assert_int_equal(s.mtimes[0], 1717243200);
    assert_string_equal(s.keys[1], "cAB<");
    assert_int_equal(s.mtimes[1], 0);
    assert_string_equal(s.keys[2], "\xc3\xbc"); /* "d/../e" is not a valid key: skipped */
    assert_int_equal(nreq(), 2);
    hb_target_close(t);
}

static void h_list_repeat(const req *rq, resp *rs, int n)
{
    (void)rq;
    rs->body = dupf(LIST_HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken>same"
                              "</NextContinuationToken><Contents><Key>x/k%d</Key></Contents>"
                              "</ListBucketResult>",
                    n);
}

static void h_list_backwards(const req *rq, resp *rs, int n)
{
    (void)rq;
    rs->body = dupf(LIST_HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken>t%d"
                              "</NextContinuationToken><Contents><Key>x/k</Key></Contents>"
                              "</ListBucketResult>",
                    n);
}

static void h_list_empty_forever(const req *rq, resp *rs, int n)
{
    (void)rq;
    rs->body = dupf(LIST_HEAD "<IsTruncated>true</IsTruncated><NextContinuationToken>t%d"
                              "</NextContinuationToken></ListBucketResult>",
                    n);
}

static void h_list_bad_entity(const req *rq, resp *rs, int n)
{
    (void)rq;
    (void)n;
    rs->body = dupf(LIST_HEAD "<IsTruncated>false</IsTruncated><Contents><Key>x/a&bogus;"
                              "</Key></Contents></ListBucketResult>");
}

static void h_not_xml(const req *rq, resp *rs, int n)
{
    (void)rq;
    (void)n;
    rs->body = dupf("<html>hello</html>");
}

static void test_hostile_listings_fail_cleanly(void **state)
{
    (void)state;
    struct {
        handler_fn h;
        const char *msg;
        int max_requests;
    } cases[] = {
        { h_list_repeat, "does not advance", 2 },
        { h_list_backwards, "not in key order", 2 },
        { h_list_empty_forever, "does not advance", 102 },
        { h_list_bad_entity, "malformed key", 1 },
        { h_not_xml, "not a listing", 1 },
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(cases); i++) {
        use(cases[i].h);
        hb_err e;
        hb_err_clear(&e);
        hb_target *t = open_s3("s3://bkt/x", false, &e);
        assert_non_null(t);
        seen s = { .n = 0 };
        int rc = hb_target_list(t, "", seen_cb, &s, &e);
        fprintf(stderr, "case %zu: %s\n", i, e.msg);
        assert_int_equal(rc, HARVBK_E_TARGET);
        assert_non_null(strstr(e.msg, cases[i].msg));
        assert_true(nreq() <= cases[i].max_requests);
        hb_target_close(t);
    }
}

static void h_objects(const req *rq, resp *rs, int n)
{
    if (strstr(rq->target, "/big")) {
        rs->claim_length = 1L << 40; /* announces a TiB, sends nothing */
    } else if (strstr(rq->target, "/slow")) {
        if (n < 2) { /* twice SlowDown, then the object */
            rs->status = 503;
            rs->body = dupf("<Error><Code>SlowDown</Code><Message>Reduce your request rate."
                            "</Message></Error>");
        } else {
            rs->body = dupf("hello");
        }
    } else if (strstr(rq->target, "/missing")) {
        rs->status = 404;
        if (strcmp(rq->method, "HEAD") != 0)
            rs->body = dupf("<Error><Code>NoSuchKey</Code></Error>");
    } else if (strstr(rq->target, "/denied")) {
        rs->status = 403;
        rs->body = dupf("<Error><Code>AccessDenied</Code><Message>no \x01 way</Message></Error>");
    } else if (strstr(rq->target, "/bad")) {
        rs->status = 400;
        rs->body = dupf("<Error><Code>InvalidArgument</Code></Error>");
    }
}

static void test_objects_size_limit_retries_and_errors(void **state)
{
    (void)state;
    use(h_objects);
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = open_s3("s3://bkt/x", false, &e);
    assert_non_null(t);
    hb_buf b = HB_BUF_INIT;
    assert_int_equal(hb_target_get_max(t, "big", &b, 1 << 20, &e), HARVBK_E_CORRUPT);
    assert_non_null(strstr(e.msg, "more than the 1048576 expected"));
    assert_true(b.cap < (1u << 20)); /* nothing of it was buffered */

    use(h_objects);
    hb_err_clear(&e);
    if (hb_target_get(t, "slow", &b, &e) != 0)
        fail_msg("slow: %s", e.msg);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "hello", 5);
    assert_int_equal(nreq(), 3);

    hb_err_clear(&e);
    assert_int_equal(hb_target_get(t, "missing", &b, &e), HARVBK_E_NOTFOUND);
    uint64_t size;
    assert_int_equal(hb_target_head(t, "missing", &size, &e), HARVBK_E_NOTFOUND);
    assert_int_equal(hb_target_del(t, "missing", &e), 0);
    hb_err_clear(&e);
    assert_int_equal(hb_target_get(t, "denied", &b, &e), HARVBK_E_PERM);
    assert_non_null(strstr(e.msg, "HTTP 403 AccessDenied (no   way)"));
    assert_non_null(strstr(e.msg, "http://127.0.0.1:"));
    hb_err_clear(&e);
    use(h_objects);
    assert_int_equal(hb_target_put(t, "bad", "x", 1, &e), HARVBK_E_TARGET);
    assert_int_equal(nreq(), 1); /* a 400 is final */
    assert_non_null(strstr(e.msg, "InvalidArgument"));
    hb_buf_free(&b);
    hb_target_close(t);
}

static char g_md5_seen[64], g_md5_want[64];

static void h_delete(const req *rq, resp *rs, int n)
{
    (void)n;
    EXPECT(!strcmp(rq->method, "POST"));
    EXPECT(strstr(rq->target, "/bkt/?delete="));
    unsigned char d[16];
    unsigned int dl = 0;
    EVP_Digest(rq->body, rq->body_len, d, &dl, EVP_md5(), NULL);
    char *b64 = hb_base64_encode(d, 16);
    snprintf(g_md5_want, sizeof g_md5_want, "%s", b64);
    hb_free(b64);
    snprintf(g_md5_seen, sizeof g_md5_seen, "%s", rq->md5);
    EXPECT(memmem(rq->body, rq->body_len, "<Key>x/a&amp;b</Key>", 20));
    rs->body = dupf("<DeleteResult><Error><Key>x/gone</Key><Code>NoSuchKey</Code></Error>"
                    "<Error><Key>x/locked</Key><Code>AccessDenied</Code></Error>"
                    "</DeleteResult>");
}

static void test_delete_objects_md5_and_per_key_errors(void **state)
{
    (void)state;
    use(h_delete);
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = open_s3("s3://bkt/x", false, &e);
    const char *keys[] = { "a&b", "gone", "locked" };
    assert_int_equal(hb_target_del_many(t, keys, 3, &e), HARVBK_E_TARGET);
    assert_int_equal(nreq(), 1);
    assert_string_equal(g_md5_seen, g_md5_want);
    assert_non_null(strstr(e.msg, "could not delete 1 of 3"));
    assert_non_null(strstr(e.msg, "x/locked: AccessDenied"));
    hb_target_close(t);
}

static void h_multipart(const req *rq, resp *rs, int n)
{
    (void)n;
    if (!strcmp(rq->method, "POST") && strstr(rq->target, "?uploads=")) {
        rs->body = dupf("<InitiateMultipartUploadResult><UploadId>U&amp;1</UploadId>"
                        "</InitiateMultipartUploadResult>");
    } else if (!strcmp(rq->method, "PUT") && strstr(rq->target, "partNumber=1&uploadId=U%261")) {
        EXPECT(rq->body_len == 5u << 20);
        snprintf(rs->headers, sizeof rs->headers, "ETag: \"etag-1\"\r\n");
    } else if (!strcmp(rq->method, "PUT") && strstr(rq->target, "partNumber=2")) {
        rs->status = 400; /* the second part is refused */
        rs->body = dupf("<Error><Code>EntityTooSmall</Code></Error>");
    } else if (!strcmp(rq->method, "DELETE") && strstr(rq->target, "uploadId=U%261")) {
        rs->status = 204;
    } else {
        rs->status = 500;
    }
}

static void test_multipart_failure_aborts_the_upload(void **state)
{
    (void)state;
    setenv("HARVBK_S3_MULTIPART_THRESHOLD", "5242880", 1);
    setenv("HARVBK_S3_PART_SIZE", "5242880", 1);
    use(h_multipart);
    hb_err e;
    hb_err_clear(&e);
    hb_target *t = open_s3("s3://bkt/x", false, &e);
    unsetenv("HARVBK_S3_MULTIPART_THRESHOLD");
    unsetenv("HARVBK_S3_PART_SIZE");
    size_t len = (5u << 20) + 1000;
    char *data = calloc(1, len);
    assert_int_equal(hb_target_put(t, "obj", data, len, &e), HARVBK_E_TARGET);
    if (!strstr(e.msg, "EntityTooSmall"))
        fail_msg("multipart: %s", e.msg);
    assert_int_equal(nreq(), 4);
    assert_non_null(strstr(g_log[0], "POST /bkt/x/obj?uploads="));
    assert_non_null(strstr(g_log[3], "DELETE /bkt/x/obj?uploadId=U%261"));
    free(data);
    hb_target_close(t);
}

static void test_bad_configurations_are_refused_at_open(void **state)
{
    (void)state;
    hb_err e;
    hb_err_clear(&e);
    /* virtual-hosted style with an IP endpoint */
    assert_null(open_s3("s3://bkt/x", true, &e));
    assert_non_null(strstr(e.msg, "virtual-hosted"));
    /* bucket not DNS-safe for virtual-hosted style */
    hb_target_cfg c;
    hb_target_cfg_init(&c);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_URL, "s3://Bad_Bucket/x", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ENDPOINT, "http://localhost:1", &e), 0);
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_ACCESS_KEY_ID, "A", &e), 0);
    hb_target *t = NULL;
    /* no secret */
    assert_int_equal(hb_target_open(&t, &c, "unit", NULL, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "secret access key"));
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_SECRET_ACCESS_KEY, "S", &e), 0);
    c.virtual_hosted = true;
    assert_int_equal(hb_target_open(&t, &c, "unit", NULL, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "Bad_Bucket"));
    c.virtual_hosted = false;
    /* unreadable CA file */
    assert_int_equal(hb_target_cfg_set(&c, HARVBK_TARGET_CA_CERT_FILE, "/nonexistent/ca.pem", &e),
                     0);
    assert_int_equal(hb_target_open(&t, &c, "unit", NULL, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "/nonexistent/ca.pem"));
    hb_target_cfg_clear(&c);
    /* parallel: 8 by default, HARVBK_TARGET_PARALLEL, and the setting wins */
    use(h_objects);
    t = open_s3("s3://bkt/x", false, &e);
    assert_int_equal(t->parallel, 8);
    assert_int_equal(t->min_workers, 8);
    hb_target_close(t);
    setenv("HARVBK_TARGET_PARALLEL", "3", 1);
    t = open_s3("s3://bkt/x", false, &e);
    unsetenv("HARVBK_TARGET_PARALLEL");
    assert_int_equal(t->parallel, 3);
    hb_target_close(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_pages_entities_and_foreign_keys),
        cmocka_unit_test(test_hostile_listings_fail_cleanly),
        cmocka_unit_test(test_objects_size_limit_retries_and_errors),
        cmocka_unit_test(test_delete_objects_md5_and_per_key_errors),
        cmocka_unit_test(test_multipart_failure_aborts_the_upload),
        cmocka_unit_test(test_bad_configurations_are_refused_at_open),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
