/* fuzz_s3_xml - what an S3 server answers, parsed without trusting it
 * (target/s3xml.h): ListObjectsV2 pages one after the other, error
 * documents, DeleteObjects results, CreateMultipartUpload answers, and the
 * entity decoder against the escaper.
 *
 * Input: a first line "<store prefix> <listed prefix>" (either may be empty),
 * then the bodies of consecutive listing pages separated by a line
 * "==PAGE==". Every body is also read as each other kind of answer. */
#include "fuzz.h"
#include "target/s3xml.h"

#define SEP "\n==PAGE==\n"

typedef struct seen {
    hb_buf last;   /* previous key handed out */
    size_t n;
    const char *list_prefix;
} seen;

static int on_key(const char *key, uint64_t size, int64_t mtime, void *ud)
{
    seen *s = ud;
    (void)size;
    FUZZ_CHECK(hb_key_valid(key));
    FUZZ_CHECK(strncmp(key, s->list_prefix, strlen(s->list_prefix)) == 0);
    FUZZ_CHECK(mtime >= 0);
    if (s->n)
        FUZZ_CHECK(strcmp(key, (const char *)s->last.data) > 0);
    hb_buf_reset(&s->last);
    FUZZ_CHECK(hb_buf_append_str(&s->last, key) == 0);
    s->n++;
    return s->n == 5000 ? 77 : 0; /* a caller that stops the listing */
}

static void other_answers(const uint8_t *p, size_t n)
{
    char code[128], msg[300], first[300];
    hb_s3_error_text(p, n, code, sizeof code, msg, sizeof msg);
    FUZZ_CHECK(strlen(code) < sizeof code && strlen(msg) < sizeof msg);
    for (const char *c = code; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
    for (const char *c = msg; *c; c++)
        FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
    (void)hb_s3_has_error(p, n);
    hb_buf id = HB_BUF_INIT;
    if (hb_s3_upload_id(p, n, &id))
        FUZZ_CHECK(id.len > 0 && id.len <= 1024 && strlen((char *)id.data) == id.len);
    hb_buf_free(&id);
    size_t nerr = hb_s3_delete_errors(p, n, first, sizeof first);
    FUZZ_CHECK(nerr > 0 || first[0] == '\0');
    /* a decoded text, escaped again, decodes to itself */
    hb_buf t = HB_BUF_INIT, esc = HB_BUF_INIT, back = HB_BUF_INIT;
    if (hb_s3_xml_text((const char *)p, n, n * 4 + 8, &t)) {
        FUZZ_CHECK(strlen((char *)t.data) == t.len);
        FUZZ_CHECK(hb_s3_xml_escape(&esc, (const char *)t.data) == 0);
        FUZZ_CHECK(hb_s3_xml_text((const char *)esc.data, esc.len, t.len, &back));
        FUZZ_CHECK(back.len == t.len && memcmp(back.data, t.data, t.len) == 0);
    }
    hb_buf_free(&t);
    hb_buf_free(&esc);
    hb_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    if (hl > 1500)
        return 0;
    char *head = fuzz_cstr(data, hl);
    char *sp = strchr(head, ' ');
    const char *store_prefix = head, *list_prefix = "";
    if (sp) {
        *sp = '\0';
        list_prefix = sp + 1;
    }
    char *full = hb_asprintf("%s%s", store_prefix, list_prefix);
    FUZZ_CHECK(full);
    hb_s3_list l = HB_S3_LIST_INIT(full, strlen(store_prefix), "fuzz");
    seen s = { HB_BUF_INIT, 0, list_prefix };
    hb_err e;
    fuzz_reader r = { nl ? nl + 1 : data + size, data + size };
    const uint8_t *page;
    size_t plen;
    bool listing = true;
    while (fuzz_next(&r, SEP, &page, &plen)) {
        other_answers(page, plen);
        if (!listing)
            continue;
        /* the body as the HTTP layer gives it: NUL-terminated after len */
        char *body = fuzz_cstr(page, plen);
        hb_err_clear(&e);
        int rc = hb_s3_list_page(&l, body, plen, on_key, &s, &e);
        free(body);
        if (rc == 77) {
            listing = false;
        } else if (rc) {
            FUZZ_CHECK(rc == HARVBK_E_TARGET || rc == HARVBK_E_NOMEM);
            FUZZ_CHECK(e.code == rc && e.msg[0]);
            listing = false;
        } else if (!l.more) {
            listing = false; /* the last page: a caller stops here */
        } else {
            FUZZ_CHECK(l.token.len > 0 && l.token.len <= HB_S3_TOKEN_MAX);
        }
    }
    hb_s3_list_free(&l);
    hb_buf_free(&s.last);
    hb_free(full);
    free(head);
    return 0;
}
