/* fuzz_cron - cron expressions of schedules (hb_cron_parse, sched/cron.h),
 * CRON_TZ= zone names, and the zone data they load (TZif, RFC 8536, through
 * hb_cron_parse_tzif), then the next fire times they give.
 *
 * Input: the expression on the first line; anything after the first
 * newline, when present, is TZif data for the zone of the expression. */
#include "fuzz.h"
#include "sched/cron.h"

static const int64_t afters[] = {
    0,                    /* 1970-01-01 */
    1700000000000LL,      /* 2023-11-14 */
    1711846800000LL,      /* 2024-03-31 01:00 UTC: a DST change in Europe */
    1729990800000LL,      /* 2024-10-27 01:00 UTC */
    -62135596800000LL,    /* year 1 */
    253402300740000LL,    /* 9999-12-31 23:59 */
    4102444799999LL,      /* 2099-12-31 23:59:59.999 */
};

static void exercise(hb_cron *c, bool utc)
{
    hb_err e;
    for (size_t i = 0; i < sizeof afters / sizeof afters[0]; i++) {
        int64_t next = 0, next2 = 0, iv = 0;
        hb_err_clear(&e);
        int rc = hb_cron_next(c, afters[i], &next, &e);
        if (rc) {
            FUZZ_CHECK(rc == HARVBK_E_INVALID);
            continue;
        }
        FUZZ_CHECK(next > afters[i]);
        FUZZ_CHECK(next % 1000 == 0);
        if (utc)
            FUZZ_CHECK(next % 60000 == 0);
        rc = hb_cron_next(c, next, &next2, &e);
        if (rc == 0)
            FUZZ_CHECK(next2 > next);
        rc = hb_cron_interval(c, afters[i], &iv, &e);
        FUZZ_CHECK(rc == 0 || rc == HARVBK_E_INVALID);
        if (rc == 0)
            FUZZ_CHECK(iv > 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t el = nl ? (size_t)(nl - data) : size;
    if (el > 4096)
        return 0;
    char *expr = fuzz_cstr(data, el);
    hb_cron *c = NULL;
    hb_err e;
    hb_err_clear(&e);
    if (nl && (size_t)(nl + 1 - data) < size) {
        const uint8_t *tz = nl + 1;
        size_t tl = size - (size_t)(tz - data);
        int rc = hb_cron_parse_tzif(expr, tz, tl, &c, &e);
        if (rc == 0)
            exercise(c, false);
        else
            FUZZ_CHECK((rc == HARVBK_E_INVALID || rc == HARVBK_E_NOMEM) && e.msg[0] && !c);
        hb_cron_free(c);
        c = NULL;
    }
    int rc = hb_cron_parse(expr, &c, &e);
    if (rc == 0) {
        exercise(c, strstr(expr, "CRON_TZ=") == NULL);
    } else {
        FUZZ_CHECK((rc == HARVBK_E_INVALID || rc == HARVBK_E_NOMEM) && e.msg[0] && !c);
    }
    hb_cron_free(c);
    free(expr);
    return 0;
}
