/* core/json.h - small helpers over cJSON for strict parsing of our documents. */
#ifndef HB_JSON_H
#define HB_JSON_H

#include "hb.h"
#include <cjson/cJSON.h>

/* Parse len bytes; HARVBK_E_CORRUPT with `what` in the message on failure,
 * also for a string holding U+0000 (cJSON would cut it there: a name read as
 * less than the document says). */
int hb_json_parse(const void *data, size_t len, const char *what, cJSON **out, hb_err *e);
/* The same for an opaque document of the caller's (VM metadata), whose
 * strings may hold U+0000: accepted (cJSON keeps what comes before it). */
int hb_json_parse_opaque(const void *data, size_t len, const char *what, cJSON **out,
                         hb_err *e);
/* Typed required/optional field getters. Required ones set HARVBK_E_CORRUPT
 * naming `what` and the field when missing or of the wrong type. */
int hb_json_get_str(const cJSON *obj, const char *field, bool required, const char **out,
                    const char *what, hb_err *e);
int hb_json_get_u64(const cJSON *obj, const char *field, bool required, uint64_t *out,
                    const char *what, hb_err *e);
int hb_json_get_i64(const cJSON *obj, const char *field, bool required, int64_t *out,
                    const char *what, hb_err *e);
int hb_json_get_bool(const cJSON *obj, const char *field, bool required, bool *out,
                     const char *what, hb_err *e);
/* The optional keys of an entry's freeze window (docs/FORMAT.md): "frozen_ms"
 * (an integer up to 2^53; absent: not frozen) and "capture" (a capture
 * method name; absent or "none": none) of obj into *out (zeroed first);
 * HARVBK_E_CORRUPT naming `what` when present but invalid. */
int hb_json_get_freeze(const cJSON *obj, hb_freeze_rec *out, const char *what, hb_err *e);
/* Optional key `field` holding a capture method into out ("" when absent or
 * "none"). */
int hb_json_get_capture(const cJSON *obj, const char *field, char out[HB_CAPTURE_MAX],
                        const char *what, hb_err *e);
/* Add those keys to obj, each only when set (so older readers never see
 * them otherwise). false on OOM. */
bool hb_json_add_freeze(cJSON *obj, const hb_freeze_rec *f);
/* Add "capture" when c is not "" (volumes of an entry). false on OOM. */
bool hb_json_add_capture(cJSON *obj, const char *c);
/* Add a uint64 as a JSON number (exact up to 2^53) */
cJSON *hb_json_add_u64(cJSON *obj, const char *field, uint64_t v);
/* Print compact into a new malloc'd string (NULL on OOM). */
char *hb_json_print(const cJSON *obj);

#endif
