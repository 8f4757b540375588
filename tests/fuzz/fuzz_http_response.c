/* fuzz_http_response - the HTTP answers of an S3 server as the client
 * captures them (hb_http_capture_header, hb_http_capture_body,
 * target/http.h): status lines, ETag and Content-Length headers, bodies in
 * pieces, bounded by the caller's maximum (2xx) or the error-document cap.
 *
 * Input: one flags byte (bit 0: a HEAD request; bits 1-3: the maximum body,
 * 0 to 7 KiB), then the response head, header lines ending with "\n"; after
 * the first empty line the body, cut into pieces at every "\n~\n". */
#include "fuzz.h"
#include "target/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    hb_http_resp rs;
    memset(&rs, 0, sizeof rs);
    hb_http_capture c = { &rs, (size_t)((data[0] >> 1) & 7) * 1024, data[0] & 1, 0 };
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    bool aborted = false;
    /* the head: lines as libcurl hands them over, the newline included */
    while (p < end && !aborted) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
        bool blank = n == 1 || (n == 2 && p[0] == '\r');
        char *line = fuzz_cstr((const uint8_t *)p, n); /* an exact-size copy */
        size_t r = hb_http_capture_header(&c, line, n);
        free(line);
        FUZZ_CHECK(r == n || r == 0);
        aborted = r == 0;
        p += n;
        FUZZ_CHECK(strlen(rs.etag) < sizeof rs.etag);
        if (blank)
            break;
    }
    if (aborted) {
        FUZZ_CHECK(rs.too_large);
        FUZZ_CHECK(!c.head && c.status >= 200 && c.status < 300 && rs.length > c.max_body);
    }
    /* the body in pieces */
    size_t got = 0;
    fuzz_reader rd = { (const uint8_t *)p, (const uint8_t *)end };
    const uint8_t *piece;
    size_t n;
    while (!aborted && p < end && fuzz_next(&rd, "\n~\n", &piece, &n)) {
        if (n == 0)
            continue; /* libcurl never hands over an empty piece */
        uint8_t *copy = malloc(n ? n : 1);
        FUZZ_CHECK(copy);
        if (n)
            memcpy(copy, piece, n);
        size_t r = hb_http_capture_body(&c, (const char *)copy, n);
        free(copy);
        FUZZ_CHECK(r == n || r == 0);
        if (r != n) {
            aborted = true;
            FUZZ_CHECK(rs.too_large);
            break;
        }
        got += n;
    }
    bool ok2xx = c.status >= 200 && c.status < 300;
    if (ok2xx)
        FUZZ_CHECK(rs.body.len <= c.max_body);
    else
        FUZZ_CHECK(rs.body.len <= HB_HTTP_ERRBODY_MAX);
    FUZZ_CHECK(rs.body.len <= got);
    if (rs.body.len)
        FUZZ_CHECK(rs.body.data[rs.body.len] == '\0');
    hb_buf_free(&rs.body);
    return 0;
}
