/*
 * core/hb.h - internal foundation used by every layer: errors with messages,
 * logging, memory, byte buffers, names, hashing, time, ids.
 * Nothing here is exported from the shared library.
 */
#ifndef HB_CORE_H
#define HB_CORE_H

#include <harvbk.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define HB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define HB_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HB_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- errors: a code plus a detailed message ---- */
#define HB_ERRMSG_MAX 512
typedef struct hb_err {
    int code;
    char msg[HB_ERRMSG_MAX];
} hb_err;

/* Set *e (may be NULL) to code + formatted message; returns code. When the
 * message is empty the code's harvbk_strerror() text is used. */
int hb_seterr(hb_err *e, int code, const char *fmt, ...) HB_PRINTF(3, 4);
/* Prefix the existing message of e with "prefix: "; returns e->code. */
int hb_err_prefix(hb_err *e, const char *fmt, ...) HB_PRINTF(2, 3);
void hb_err_clear(hb_err *e);
/* Replace every control character (below 0x20, and 0x7f) of s by '?': error
 * and log messages are one line, and text from a target or a file they quote
 * (a name, a codec, a server's answer) cannot carry terminal escapes. The
 * setters above and hb_log apply it. */
void hb_msg_sanitize(char *s);
/* Map an errno value to a HARVBK_E_* code (ENOENT->NOTFOUND, EACCES->PERM ...). */
int hb_errno_code(int errnum);
/* The code an operation ends with when a caller's callback returned `r` != 0:
 * a specific HARVBK_E_* code (other than HARVBK_E_ERROR) is kept, anything
 * else (-1, a positive value, an unknown code) is HARVBK_E_CALLBACK. */
int hb_callback_code(int r);

/* ---- the calling thread's last error (harvbk_error_last) ----
 * Every failing public call records code + message here, on the thread that
 * made the call; successful calls leave it alone. hb_ctx_fail() does it for
 * calls with a context; calls without one use hb_fail()/hb_fail_err(). A NULL
 * or empty message stores the code's harvbk_strerror() text. Returns code. */
int hb_fail(int code, const char *fmt, ...) HB_PRINTF(2, 3);
int hb_fail_err(const hb_err *e);
/* rc != 0: hb_fail_err(e), or rc with e's message (else harvbk_strerror(rc))
 * when e holds no code. Returns the code stored (0 when rc is 0). */
int hb_fail_rc(int rc, const hb_err *e);

/* ---- logging ---- */
typedef struct hb_logger {
    harvbk_log_cb cb;
    void *payload;
    int level; /* highest level delivered */
} hb_logger;
void hb_log(const hb_logger *lg, int level, const char *fmt, ...) HB_PRINTF(3, 4);
#define hb_log_error(lg, ...) hb_log((lg), HARVBK_LOG_ERROR, __VA_ARGS__)
#define hb_log_warn(lg, ...) hb_log((lg), HARVBK_LOG_WARN, __VA_ARGS__)
#define hb_log_info(lg, ...) hb_log((lg), HARVBK_LOG_INFO, __VA_ARGS__)
#define hb_log_debug(lg, ...) hb_log((lg), HARVBK_LOG_DEBUG, __VA_ARGS__)

/* ---- memory (NULL on failure, never abort) ---- */
void *hb_malloc(size_t n);
void *hb_calloc(size_t n, size_t size);
void *hb_realloc(void *p, size_t n);
char *hb_strdup(const char *s); /* NULL in -> NULL out */
char *hb_strndup(const char *s, size_t n);
char *hb_asprintf(const char *fmt, ...) HB_PRINTF(1, 2);
void hb_free(void *p);
/* Overwrite then free (secrets). */
void hb_free_secret(char *s);

/* ---- growable byte buffer ---- */
typedef struct hb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} hb_buf;
#define HB_BUF_INIT { 0, 0, 0 }
int hb_buf_reserve(hb_buf *b, size_t cap);          /* 0 or HARVBK_E_NOMEM */
int hb_buf_append(hb_buf *b, const void *p, size_t n);
int hb_buf_append_str(hb_buf *b, const char *s);    /* keeps data NUL-terminated */
void hb_buf_reset(hb_buf *b);                       /* len = 0, keeps memory */
void hb_buf_free(hb_buf *b);

/* ---- names ---- */
/* DNS-1123 label: 1..63 of [a-z0-9-], alnum at both ends. */
bool hb_name_valid(const char *s);
/* Checks name, sets a clear HARVBK_E_INVALID message naming `what`. */
int hb_check_name(const char *what, const char *s, hb_err *e);

/* ---- the freeze window of a backup or snapshot (docs/THREADING.md) ---- */
/* Capture methods are short names, 1..15 of [a-z0-9-]: "reflink", "hook",
 * "mixed" (entries only); "" means "none" (read from the live volume), the
 * default, never written. A name a newer writer recorded is kept as it is. */
#define HB_CAPTURE_MAX 16
bool hb_capture_name_valid(const char *s);
/* What an entry records about its freeze window (manifest, local record,
 * catalog, info): zero-initialised means "not frozen, not captured". */
typedef struct hb_freeze_rec {
    bool frozen;                  /* the freeze hook returned 0 */
    uint64_t frozen_ms;           /* then: ms from its return to the thaw call */
    char capture[HB_CAPTURE_MAX]; /* "" (none), "reflink", "hook", "mixed" */
} hb_freeze_rec;

/* ---- hashing and hex ---- */
#define HB_DIGEST_LEN 32
#define HB_DIGEST_HEX_LEN 64
void hb_sha256(const void *data, size_t len, uint8_t out[HB_DIGEST_LEN]);
void hb_hex(const uint8_t *in, size_t n, char *out); /* writes 2n chars + NUL */
int hb_unhex(const char *hex, uint8_t *out, size_t n); /* 0 or HARVBK_E_INVALID */
bool hb_is_zero(const void *p, size_t n);

/* ---- time, ids ---- */
int64_t hb_now(void);        /* wall clock, seconds since epoch */
int64_t hb_now_ms(void);     /* wall clock, milliseconds since epoch */
uint64_t hb_mono_ms(void);   /* monotonic milliseconds */
uint64_t hb_mono_ns(void);
void hb_uuid(char out[37]);  /* random RFC 4122 v4 UUID string */
void hb_random(void *buf, size_t n);
/* ISO 8601 UTC "2026-11-25T10:00:00Z" into out (at least 21 bytes). */
void hb_iso8601(int64_t t, char *out, size_t size);

#endif
