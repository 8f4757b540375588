/*
 * target/s3xml.h - reading the XML answers of an S3 server (ListObjectsV2
 * pages, error documents, DeleteObjects results, CreateMultipartUpload) and
 * writing XML-escaped text (s3xml.c). Pure functions over bytes that make no
 * request: target/s3.c sends the requests, and the fuzz targets of
 * tests/fuzz feed these functions directly.
 *
 * Everything here treats the server as hostile: the XML is scanned flat
 * (no recursion, no DTD, no external entity), strings are entity-decoded
 * strictly and bounded, and text shown in messages is sanitised.
 */
#ifndef HB_TARGET_S3XML_H
#define HB_TARGET_S3XML_H

#include "target.h"

/* Next element <name ...>content</name> (or <name/>) in [p, end): content
 * bounds in *cs and *cl, *after past its end. name is at most 60 bytes. */
bool hb_s3_xml_next(const char *p, const char *end, const char *name, const char **cs,
                    size_t *cl, const char **after);
/* Decode the text s[0..n) into out (replacing it, NUL-terminated). False on
 * a malformed or unknown entity, a NUL, or when the result exceeds max. */
bool hb_s3_xml_text(const char *s, size_t n, size_t max, hb_buf *out);
/* The decoded text of the first <name> in [p, end) into out; false if absent
 * or malformed. */
bool hb_s3_xml_get(const char *p, const char *end, const char *name, size_t max, hb_buf *out);
/* Append s XML-escaped (& < > " ') to b, NUL-terminated. 0 or HARVBK_E_NOMEM. */
int hb_s3_xml_escape(hb_buf *b, const char *s);

/* "2009-10-12T17:50:30.000Z" -> seconds since the epoch; 0 when it does not parse. */
int64_t hb_s3_parse_time(const char *s);
/* A decimal number without sign or spaces that fits 64 bits. */
bool hb_s3_parse_u64(const char *s, uint64_t *out);
/* Control characters of server text replaced by spaces (in place). */
void hb_s3_sanitize(char *s);

/* "Code" and "Message" of an error document into code/msg (sanitised,
 * truncated to the sizes; "" when absent). */
void hb_s3_error_text(const void *body, size_t len, char *code, size_t csize, char *msg,
                      size_t msize);
/* Does the document hold an <Error> element? (CompleteMultipartUpload may
 * answer 200 with an error in its body.) */
bool hb_s3_has_error(const void *body, size_t len);
/* The UploadId of a CreateMultipartUpload answer into id (NUL-terminated);
 * false when absent, empty or malformed. */
bool hb_s3_upload_id(const void *body, size_t len, hb_buf *id);
/* The per-key errors of a DeleteObjects answer other than NoSuchKey (an
 * absent key is no error): their number, and "key: code" of the first into
 * first (sanitised, truncated to fsize; "" when none). */
size_t hb_s3_delete_errors(const void *body, size_t len, char *first, size_t fsize);

/* Listing: one ListObjectsV2 page after the other. The state carried from
 * page to page is kept in hb_s3_list (init with HB_S3_LIST_INIT, free with
 * hb_s3_list_free). */
#define HB_S3_KEY_MAX 1024u       /* longest S3 key */
#define HB_S3_TOKEN_MAX 4096u     /* longest continuation token accepted */
#define HB_S3_EMPTY_PAGES_MAX 100u /* truncated pages without a key in a row */
typedef struct hb_s3_list {
    const char *full;   /* the prefix listed, as sent: "<store prefix><list prefix>" */
    size_t plen;        /* length of the store prefix: keys given to cb drop it */
    const char *endpoint; /* for messages */
    hb_buf last;        /* last key seen: keys must increase strictly */
    hb_buf token;       /* continuation token for the next page ("" before) */
    hb_buf key, tmp;    /* scratch */
    unsigned empty_pages;
    bool more;          /* after a page: another page follows (ask with token) */
} hb_s3_list;
#define HB_S3_LIST_INIT(full_, plen_, endpoint_)                                              \
    { (full_), (plen_), (endpoint_), HB_BUF_INIT, HB_BUF_INIT, HB_BUF_INIT, HB_BUF_INIT, 0,  \
      false }
/* Parse one page of the listing: cb(key without the store prefix, size,
 * mtime, ud) for every key under the listed prefix that is a valid store key
 * (others are skipped). Sets l->more and, when set, l->token. 0;
 * HARVBK_E_TARGET for a body that is not a listing, a malformed key, keys
 * out of order, or a listing that does not advance (missing, repeated or
 * endless continuation tokens); HARVBK_E_NOMEM; or cb's non-zero return. */
int hb_s3_list_page(hb_s3_list *l, const void *body, size_t len, hb_list_cb cb, void *ud,
                    hb_err *e);
void hb_s3_list_free(hb_s3_list *l);

#endif
