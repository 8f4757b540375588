/* core/json.c - strict typed access to cJSON documents. */
#include "json.h"

#include <math.h>
#include <string.h>

/* Offset of a NUL character inside a string of the document (the escape
 * \u0000 or a raw 0 byte), or len when there is none. cJSON would keep such a
 * string as the C string before the NUL: "ab\u0000/../x" would read as "ab",
 * a value that is not what the document says. Strings are found as a JSON
 * parser does (an escape skips the character after the backslash); cJSON
 * checks the rest of the syntax. */
static size_t nul_in_string(const char *p, size_t len)
{
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!in_str) {
            if (c == '"')
                in_str = true;
            continue;
        }
        if (c == '\0')
            return i;
        if (c == '"') {
            in_str = false;
        } else if (c == '\\' && i + 1 < len) {
            if (p[i + 1] == 'u' && i + 5 < len && p[i + 2] == '0' && p[i + 3] == '0' &&
                p[i + 4] == '0' && p[i + 5] == '0')
                return i;
            i++; /* the escaped character */
        }
    }
    return len;
}

static int parse(const void *data, size_t len, const char *what, bool nul_ok, cJSON **out,
                 hb_err *e)
{
    *out = NULL;
    if (!what)
        what = "JSON document";
    if (!data || len == 0)
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: empty document", what);
    size_t nul = nul_ok ? len : nul_in_string(data, len);
    if (nul < len)
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "%s: a string holds a NUL character (near byte %zu)", what, nul);
    const char *end = NULL;
    /* Not "require_null_terminated": with a length cJSON would demand a NUL
     * inside the buffer. Trailing bytes are checked below instead. */
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        size_t off = end && end >= (const char *)data ? (size_t)(end - (const char *)data) : 0;
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: invalid JSON near byte %zu", what, off);
    }
    const char *p = end, *lim = (const char *)data + len;
    while (p < lim && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p < lim && !(*p == '\0' && p + 1 == lim)) {
        cJSON_Delete(root);
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: trailing data after JSON value at byte %zu",
                         what, (size_t)(p - (const char *)data));
    }
    *out = root;
    return 0;
}

int hb_json_parse(const void *data, size_t len, const char *what, cJSON **out, hb_err *e)
{
    return parse(data, len, what, false, out, e);
}

int hb_json_parse_opaque(const void *data, size_t len, const char *what, cJSON **out,
                         hb_err *e)
{
    return parse(data, len, what, true, out, e);
}

/* Finds `field`; *item NULL when absent or JSON null. */
static int lookup(const cJSON *obj, const char *field, bool required, const cJSON **item,
                  const char *what, hb_err *e)
{
    if (!what)
        what = "JSON document";
    *item = NULL;
    if (!cJSON_IsObject(obj))
        return hb_seterr(e, HARVBK_E_CORRUPT, "%s: expected a JSON object", what);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (!it || cJSON_IsNull(it)) {
        if (required)
            return hb_seterr(e, HARVBK_E_CORRUPT, "%s: missing field '%s'", what, field);
        return 0;
    }
    *item = it;
    return 0;
}

static int wrong_type(const char *field, const char *type, const char *what, hb_err *e)
{
    return hb_seterr(e, HARVBK_E_CORRUPT, "%s: field '%s' must be %s",
                     what ? what : "JSON document", field, type);
}

int hb_json_get_str(const cJSON *obj, const char *field, bool required, const char **out,
                    const char *what, hb_err *e)
{
    const cJSON *it;
    int rc = lookup(obj, field, required, &it, what, e);
    if (rc || !it)
        return rc;
    if (!cJSON_IsString(it) || !it->valuestring)
        return wrong_type(field, "a string", what, e);
    *out = it->valuestring;
    return 0;
}

/* 2^64 and 2^63 as doubles (exact). */
#define TWO_POW_64 18446744073709551616.0
#define TWO_POW_63 9223372036854775808.0

int hb_json_get_u64(const cJSON *obj, const char *field, bool required, uint64_t *out,
                    const char *what, hb_err *e)
{
    const cJSON *it;
    int rc = lookup(obj, field, required, &it, what, e);
    if (rc || !it)
        return rc;
    if (!cJSON_IsNumber(it))
        return wrong_type(field, "a number", what, e);
    double v = it->valuedouble;
    /* Range first, then integrality via the exact round trip (no libm). */
    if (!isfinite(v) || v < 0 || v >= TWO_POW_64 || (double)(uint64_t)v != v)
        return wrong_type(field, "a non-negative integer", what, e);
    *out = (uint64_t)v;
    return 0;
}

int hb_json_get_i64(const cJSON *obj, const char *field, bool required, int64_t *out,
                    const char *what, hb_err *e)
{
    const cJSON *it;
    int rc = lookup(obj, field, required, &it, what, e);
    if (rc || !it)
        return rc;
    if (!cJSON_IsNumber(it))
        return wrong_type(field, "a number", what, e);
    double v = it->valuedouble;
    if (!isfinite(v) || v < -TWO_POW_63 || v >= TWO_POW_63 || (double)(int64_t)v != v)
        return wrong_type(field, "an integer", what, e);
    *out = (int64_t)v;
    return 0;
}

int hb_json_get_bool(const cJSON *obj, const char *field, bool required, bool *out,
                     const char *what, hb_err *e)
{
    const cJSON *it;
    int rc = lookup(obj, field, required, &it, what, e);
    if (rc || !it)
        return rc;
    if (!cJSON_IsBool(it))
        return wrong_type(field, "true or false", what, e);
    *out = cJSON_IsTrue(it);
    return 0;
}

int hb_json_get_capture(const cJSON *obj, const char *field, char out[HB_CAPTURE_MAX],
                        const char *what, hb_err *e)
{
    out[0] = 0;
    const char *s = NULL;
    int rc = hb_json_get_str(obj, field, false, &s, what, e);
    if (rc || !s || strcmp(s, "none") == 0)
        return rc;
    if (!hb_capture_name_valid(s))
        return hb_seterr(e, HARVBK_E_CORRUPT,
                         "%s: field \"%s\" is not a capture method (1..%d of [a-z0-9-])", what,
                         field, HB_CAPTURE_MAX - 1);
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int hb_json_get_freeze(const cJSON *obj, hb_freeze_rec *out, const char *what, hb_err *e)
{
    memset(out, 0, sizeof *out);
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, "frozen_ms");
    if (it) {
        int rc = hb_json_get_u64(obj, "frozen_ms", true, &out->frozen_ms, what, e);
        if (rc)
            return rc;
        if (out->frozen_ms > ((uint64_t)1 << 53))
            return hb_seterr(e, HARVBK_E_CORRUPT, "%s: field \"frozen_ms\" is out of range",
                             what);
        out->frozen = true;
    }
    return hb_json_get_capture(obj, "capture", out->capture, what, e);
}

bool hb_json_add_capture(cJSON *obj, const char *c)
{
    return !c[0] || cJSON_AddStringToObject(obj, "capture", c) != NULL;
}

bool hb_json_add_freeze(cJSON *obj, const hb_freeze_rec *f)
{
    if (f->frozen && !hb_json_add_u64(obj, "frozen_ms", f->frozen_ms))
        return false;
    return hb_json_add_capture(obj, f->capture);
}

cJSON *hb_json_add_u64(cJSON *obj, const char *field, uint64_t v)
{
    return cJSON_AddNumberToObject(obj, field, (double)v);
}

char *hb_json_print(const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (!s)
        return NULL;
    char *copy = hb_strdup(s); /* callers free with hb_free(), whatever cJSON's hooks */
    cJSON_free(s);
    return copy;
}
