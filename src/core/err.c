/*
 * core/err.c - error codes (public table) and hb_err messages.
 */
#include "hb.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *harvbk_strerror(int code)
{
    switch (code) {
#define HB_X_MSG_(name, value, msg) \
    case value:                     \
        return msg;
        HARVBK_ERROR_TABLE(HB_X_MSG_)
#undef HB_X_MSG_
    default:
        return "unknown error";
    }
}

const char *harvbk_error_name(int code)
{
    switch (code) {
#define HB_X_NAME_(name, value, msg) \
    case value:                      \
        return "HARVBK_" #name;
        HARVBK_ERROR_TABLE(HB_X_NAME_)
#undef HB_X_NAME_
    default:
        return "HARVBK_E_UNKNOWN";
    }
}

void hb_msg_sanitize(char *s)
{
    for (unsigned char *p = (unsigned char *)s; p && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Format into a local buffer first so that callers may pass e->msg itself as
 * an argument ("%s", e->msg) without overlapping copies. */
int hb_seterr(hb_err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    char tmp[HB_ERRMSG_MAX];
    tmp[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
    }
    if (!tmp[0])
        snprintf(tmp, sizeof tmp, "%s", harvbk_strerror(code));
    hb_msg_sanitize(tmp);
    e->code = code;
    memcpy(e->msg, tmp, sizeof e->msg);
    return code;
}

/* With e == NULL there is no code to return: HARVBK_E_ERROR is returned, so
 * callers that may get a NULL hb_err should return their own rc instead. */
int hb_err_prefix(hb_err *e, const char *fmt, ...)
{
    if (!e)
        return HARVBK_E_ERROR;
    char pre[HB_ERRMSG_MAX];
    pre[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pre, sizeof pre, fmt, ap);
        va_end(ap);
    }
    const char *old = e->msg[0] ? e->msg : harvbk_strerror(e->code);
    /* tmp = pre + ": " + old, truncated to the message size */
    char tmp[HB_ERRMSG_MAX];
    size_t n = 0;
    const char *parts[3] = { pre, pre[0] ? ": " : "", old };
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(parts[i]);
        if (k > sizeof tmp - 1 - n)
            k = sizeof tmp - 1 - n;
        memcpy(tmp + n, parts[i], k);
        n += k;
    }
    tmp[n] = '\0';
    hb_msg_sanitize(tmp);
    memcpy(e->msg, tmp, n + 1);
    return e->code;
}

void hb_err_clear(hb_err *e)
{
    if (!e)
        return;
    e->code = 0;
    e->msg[0] = '\0';
}

/* ---- per-thread last error ---- */

static _Thread_local struct {
    int code;
    char msg[HB_ERRMSG_MAX];
} tl_last;

static void last_store(int code, const char *msg)
{
    if (!msg || !*msg)
        msg = harvbk_strerror(code);
    char tmp[HB_ERRMSG_MAX]; /* msg may be tl_last.msg itself */
    snprintf(tmp, sizeof tmp, "%s", msg);
    hb_msg_sanitize(tmp);
    tl_last.code = code;
    memcpy(tl_last.msg, tmp, sizeof tmp);
}

int hb_fail(int code, const char *fmt, ...)
{
    if (code == 0)
        return 0;
    char tmp[HB_ERRMSG_MAX];
    tmp[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
    }
    last_store(code, tmp);
    return code;
}

int hb_fail_err(const hb_err *e)
{
    if (!e || e->code == 0)
        return 0;
    last_store(e->code, e->msg);
    return e->code;
}

int hb_fail_rc(int rc, const hb_err *e)
{
    if (rc == 0)
        return 0;
    if (e && e->code != 0)
        return hb_fail_err(e);
    last_store(rc, e ? e->msg : NULL);
    return rc;
}

const char *harvbk_error_last(void)
{
    return tl_last.msg;
}

size_t harvbk_error_last_copy(char *buf, size_t size)
{
    size_t len = strlen(tl_last.msg);
    if (buf && size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(buf, tl_last.msg, n);
        buf[n] = '\0';
    }
    return len;
}

int harvbk_error_last_code(void)
{
    return tl_last.code;
}

int hb_callback_code(int r)
{
    if (r < HARVBK_E_ERROR && r >= HARVBK_ERROR_LAST_)
        return r;
    return HARVBK_E_CALLBACK;
}

int hb_errno_code(int errnum)
{
    switch (errnum) {
    case 0:
        return HARVBK_OK;
    case ENOENT:
    case ENOTDIR:
        return HARVBK_E_NOTFOUND;
    case EACCES:
    case EPERM:
    case EROFS:
        return HARVBK_E_PERM;
    case ENOMEM:
        return HARVBK_E_NOMEM;
    case EEXIST:
    case ENOTEMPTY:
        return HARVBK_E_EXISTS;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
        return HARVBK_E_INVALID;
    case EBUSY:
    case ETXTBSY:
        return HARVBK_E_BUSY;
    case ETIMEDOUT:
        return HARVBK_E_TIMEOUT;
    case EINTR:
        return HARVBK_E_INTERRUPTED;
    case ENOTSUP:
        return HARVBK_E_UNSUPPORTED;
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
    case ENETUNREACH:
        return HARVBK_E_TARGET;
    case ENOSPC:
    case EIO:
    case EDQUOT:
    case EFBIG:
    default:
        return HARVBK_E_IO;
    }
}
