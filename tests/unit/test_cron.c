/* tests/unit/test_cron.c - cron expressions (src/sched/cron.c): a table of
 * expressions with hand-computed fire times (checked independently by
 * tests/unit/cron_table_check.py with python's zoneinfo), refusals, impossible
 * expressions, intervals, and a property test against a brute-force search. */
#include "testutil.h"

#include "core/hb.h"
#include "sched/cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* "2026-01-01T00:00:00Z" or "2026-01-01T00:00:00.250Z" -> Unix ms. */
static int64_t rfc3339_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ms = 0, n = 0;
    int got = sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &n);
    if (got != 6) {
        fail_msg("bad time '%s' in the test", s);
    }
    if (s[n] == '.') {
        ms = atoi(s + n + 1);
        n += 4;
    }
    if (strcmp(s + n, "Z") != 0)
        fail_msg("bad time '%s' in the test", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void fmt_ms(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool have_zone(const char *expr, char *zone, size_t size)
{
    if (strncmp(expr, "CRON_TZ=", 8) != 0)
        return true;
    const char *sp = strchr(expr, ' ');
    snprintf(zone, size, "%.*s", (int)(sp - expr - 8), expr + 8);
    char path[512];
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    return access(path, R_OK) == 0;
}

/* ---- the table ----
 * Expected values are computed by hand (the reasoning is in the comments) and
 * verified by tests/unit/cron_table_check.py, which re-implements cron
 * matching in python and brute-forces every UTC minute with zoneinfo, so
 * neither side is derived from src/sched/cron.c.
 * Calendar: 2026-01-01 is a Thursday. DST: EU changes at 01:00 UTC on the last
 * Sunday of March (2026-03-29, 2027-03-28) and October (2026-10-25,
 * 2027-10-31); US at 02:00 local on the 2nd Sunday of March (2026-03-08,
 * 2027-03-14) and the 1st Sunday of November (2026-11-01, 2027-11-07). */
typedef struct cron_row {
    const char *expr;
    const char *after;
    const char *next[4]; /* consecutive fire times, NULL-terminated */
} cron_row;

static const cron_row rows[] = {
    /* basics, strictly-after and whole minutes */
    { "* * * * *", "2026-01-01T00:00:00Z", { "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z" } },
    { "* * * * *", "2026-01-01T00:00:59.999Z", { "2026-01-01T00:01:00Z" } },
    { "0 * * * *", "2026-01-01T00:00:00Z", { "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z" } },
    { "0 0 * * *", "2026-12-31T23:59:59Z", { "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z" } },
    { "  0 0 * * *  ", "2026-03-01T00:00:00.000Z", { "2026-03-02T00:00:00Z" } },
    /* lists, ranges, steps */
    { "*/15 * * * *", "2026-01-01T00:07:00Z",
      { "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z" } },
    { "5,10,50 * * * *", "2026-01-01T00:10:00Z",
      { "2026-01-01T00:50:00Z", "2026-01-01T01:05:00Z", "2026-01-01T01:10:00Z" } },
    { "10-12 3 * * *", "2026-01-01T03:11:00Z",
      { "2026-01-01T03:12:00Z", "2026-01-02T03:10:00Z", "2026-01-02T03:11:00Z" } },
    { "10-30/10 * * * *", "2026-01-01T00:30:00Z",
      { "2026-01-01T01:10:00Z", "2026-01-01T01:20:00Z", "2026-01-01T01:30:00Z" } },
    { "40/7 * * * *", "2026-01-01T00:00:00Z",
      { "2026-01-01T00:40:00Z", "2026-01-01T00:47:00Z", "2026-01-01T00:54:00Z", "2026-01-01T01:40:00Z" } },
    { "0 0-23/12 * * *", "2026-01-01T00:00:00Z", { "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z" } },
    { "0,30 9-10 * * *", "2026-01-01T10:30:00Z",
      { "2026-01-02T09:00:00Z", "2026-01-02T09:30:00Z", "2026-01-02T10:00:00Z", "2026-01-02T10:30:00Z" } },
    { "0 0 1 JAN-MAR/2 *", "2026-01-01T00:00:00Z", { "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z" } },
    { "0 0,12 1 */3 *", "2026-01-01T00:00:00Z",
      { "2026-01-01T12:00:00Z", "2026-04-01T00:00:00Z", "2026-04-01T12:00:00Z", "2026-07-01T00:00:00Z" } },
    { "59 23 31 DEC *", "2026-01-01T00:00:00Z", { "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z" } },
    /* month ends: the 31st / 30th skipped in shorter months */
    { "0 0 1 * *", "2026-01-31T12:00:00Z", { "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z" } },
    { "0 0 31 * *", "2026-01-31T00:00:00Z",
      { "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z" } },
    { "0 0 31 * *", "2026-08-31T00:00:00Z", { "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z" } },
    { "0 0 30 * *", "2026-01-30T00:00:00Z", { "2026-03-30T00:00:00Z", "2026-04-30T00:00:00Z" } },
    { "0 0 31 2,3 *", "2026-01-01T00:00:00Z", { "2026-03-31T00:00:00Z", "2027-03-31T00:00:00Z" } },
    { "0 0 29-31 * *", "2026-02-01T00:00:00Z", { "2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z", "2026-04-29T00:00:00Z" } },
    /* leap years */
    { "0 0 29 2 *", "2025-01-01T00:00:00Z", { "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z" } },
    { "0 0 29 2 *", "2096-03-01T00:00:00Z", { "2104-02-29T00:00:00Z" } },   /* 2100 is no leap year */
    { "0 0 29 2 *", "1896-03-01T00:00:00Z", { "1904-02-29T00:00:00Z" } },   /* 1900 neither */
    { "0 0 29 2 *", "1999-03-01T00:00:00Z", { "2000-02-29T00:00:00Z" } },   /* 2000 is */
    { "0 12 28-31 2 *", "2027-02-28T12:00:00Z",
      { "2028-02-28T12:00:00Z", "2028-02-29T12:00:00Z", "2029-02-28T12:00:00Z" } },
    { "0 0 1 1 *", "1969-06-01T00:00:00Z", { "1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z" } },
    /* names, case-insensitive */
    { "30 6 * JAN,jul *", "2026-01-31T06:30:00Z", { "2026-07-01T06:30:00Z", "2026-07-02T06:30:00Z" } },
    { "0 0 1 jan,Feb,MAR *", "2026-02-15T00:00:00Z", { "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z" } },
    { "0 9 * * MON-FRI", "2026-01-02T09:00:00Z",
      { "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z", "2026-01-07T09:00:00Z" } },
    { "0 9 * * sat,Sun", "2026-01-02T00:00:00Z",
      { "2026-01-03T09:00:00Z", "2026-01-04T09:00:00Z", "2026-01-10T09:00:00Z" } },
    { "0 9 * * mon/2", "2026-01-01T00:00:00Z", /* 'a/n' is 'a-SAT/n': Mon, Wed, Fri */
      { "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z", "2026-01-07T09:00:00Z" } },
    /* 0 and 7 are Sunday */
    { "0 0 * * 0", "2026-01-01T00:00:00Z", { "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z" } },
    { "0 0 * * 7", "2026-01-01T00:00:00Z", { "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z" } },
    { "0 0 * * 5-7", "2026-01-01T00:00:00Z",
      { "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z" } },
    { "0 0 * * */2", "2026-01-01T00:00:00Z", /* 0,2,4,6 */
      { "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-06T00:00:00Z", "2026-01-08T00:00:00Z" } },
    /* the OR rule (both restricted) and the '*' exception (AND) */
    { "0 0 13 * 5", "2026-01-01T00:00:00Z",
      { "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z" } },
    { "0 0 13 * *", "2026-01-01T00:00:00Z", { "2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z" } },
    { "0 0 * * 5", "2026-01-01T00:00:00Z", { "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z" } },
    { "0 0 1-7 * MON", "2026-01-06T00:00:00Z",
      { "2026-01-07T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-19T00:00:00Z", "2026-01-26T00:00:00Z" } },
    { "0 0 1-7 * *", "2026-01-06T00:00:00Z", { "2026-01-07T00:00:00Z", "2026-02-01T00:00:00Z" } },
    { "0 0 15 * SUN-SAT", "2026-01-01T00:00:00Z", { "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z" } },
    { "0 0 */10 * 1", "2026-01-01T00:00:00Z", /* 1,11,21,31 AND Monday */
      { "2026-05-11T00:00:00Z", "2026-06-01T00:00:00Z" } },
    { "0 0 29 2 */6", "2026-01-01T00:00:00Z", /* Feb 29 on Sat or Sun */
      { "2032-02-29T00:00:00Z", "2048-02-29T00:00:00Z" } },
    { "0 0 31 2,4 1", "2026-03-31T00:00:00Z", /* no 31st in Feb/Apr: Mondays only */
      { "2026-04-06T00:00:00Z", "2026-04-13T00:00:00Z" } },
    /* descriptors */
    { "@hourly", "2026-01-01T00:30:00Z", { "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z" } },
    { "@daily", "2026-01-01T00:00:00Z", { "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z" } },
    { "@midnight", "2026-01-01T23:59:00Z", { "2026-01-02T00:00:00Z" } },
    { "@weekly", "2026-01-01T00:00:00Z", { "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z" } },
    { "@monthly", "2026-01-15T00:00:00Z", { "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z" } },
    { "@yearly", "2026-01-01T00:00:00Z", { "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z" } },
    { "@annually", "2026-06-01T00:00:00Z", { "2027-01-01T00:00:00Z" } },
    { "@DAILY", "2026-01-01T12:00:00Z", { "2026-01-02T00:00:00Z" } },
    { "@Hourly", "2026-01-01T12:00:00Z", { "2026-01-01T13:00:00Z" } },
    { "CRON_TZ=UTC 0 0 * * *", "2026-01-01T00:00:00Z", { "2026-01-02T00:00:00Z" } },

    /* Europe/Berlin (CET +1, CEST +2) ordinary times */
    { "CRON_TZ=Europe/Berlin 0 9 * * *", "2026-01-15T00:00:00Z", { "2026-01-15T08:00:00Z", "2026-01-16T08:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 9 * * *", "2026-07-15T00:00:00Z", { "2026-07-15T07:00:00Z" } },
    /* spring forward 2027-03-28: 02:00 CET -> 03:00 CEST at 01:00 UTC */
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2027-03-26T12:00:00Z",
      { "2027-03-27T01:30:00Z", "2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z", "2027-03-30T00:30:00Z" } },
    { "CRON_TZ=Europe/Berlin */30 2 * * *", "2027-03-28T00:00:00Z",
      { "2027-03-28T01:00:00Z", "2027-03-29T00:00:00Z", "2027-03-29T00:30:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 * * * *", "2027-03-27T23:30:00Z",
      { "2027-03-28T00:00:00Z", "2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 3 * * *", "2027-03-27T12:00:00Z", { "2027-03-28T01:00:00Z", "2027-03-29T01:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 1 * * *", "2027-03-27T12:00:00Z", { "2027-03-28T00:00:00Z", "2027-03-28T23:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 30 2 29 3 *", "2026-01-01T00:00:00Z", /* 2026-03-29 is also a change day */
      { "2026-03-29T01:00:00Z", "2027-03-29T00:30:00Z", "2028-03-29T00:30:00Z" } },
    { "CRON_TZ=Europe/Berlin @daily", "2026-03-28T12:00:00Z", { "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z" } },
    /* fall back 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC */
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2026-10-24T12:00:00Z", { "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z" } },
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2026-10-25T00:30:00Z", { "2026-10-26T01:30:00Z" } },
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2026-10-25T01:10:00Z", { "2026-10-26T01:30:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 * * * *", "2026-10-24T23:30:00Z",
      { "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z" } },
    { "CRON_TZ=Europe/Berlin @hourly", "2026-10-25T00:30:00Z", { "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 3 * * *", "2026-10-24T12:00:00Z", { "2026-10-25T02:00:00Z", "2026-10-26T02:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 0 1 * * *", "2026-10-24T12:00:00Z", { "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z" } },
    { "CRON_TZ=Europe/Berlin 15 2 * * *", "2027-10-30T12:00:00Z", { "2027-10-31T00:15:00Z", "2027-11-01T01:15:00Z" } },
    /* after the last transition of the file: the footer rule (2040-03-25, 2040-10-28) */
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2040-03-24T12:00:00Z", { "2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z" } },
    { "CRON_TZ=Europe/Berlin 30 2 * * *", "2040-10-27T12:00:00Z", { "2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z" } },

    /* America/New_York (EST -5, EDT -4) ordinary times */
    { "CRON_TZ=America/New_York 0 9 * * MON-FRI", "2026-07-01T00:00:00Z", { "2026-07-01T13:00:00Z", "2026-07-02T13:00:00Z" } },
    { "CRON_TZ=America/New_York 0 9 * * MON-FRI", "2026-01-05T00:00:00Z", { "2026-01-05T14:00:00Z" } },
    /* spring forward 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00 UTC */
    { "CRON_TZ=America/New_York 30 2 * * *", "2026-03-06T12:00:00Z",
      { "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z" } },
    { "CRON_TZ=America/New_York 0 * * * *", "2026-03-08T05:30:00Z",
      { "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z" } },
    { "CRON_TZ=America/New_York 59 1 * * *", "2026-03-07T12:00:00Z", { "2026-03-08T06:59:00Z", "2026-03-09T05:59:00Z" } },
    { "CRON_TZ=America/New_York 15 2 14 3 *", "2027-01-01T00:00:00Z", { "2027-03-14T07:00:00Z", "2028-03-14T06:15:00Z" } },
    /* fall back 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00 UTC */
    { "CRON_TZ=America/New_York 30 1 * * *", "2026-10-31T12:00:00Z", { "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z" } },
    { "CRON_TZ=America/New_York 30 1 * * *", "2026-11-01T06:10:00Z", { "2026-11-02T06:30:00Z" } },
    { "CRON_TZ=America/New_York 0 * * * *", "2026-11-01T04:30:00Z",
      { "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z" } },
    { "CRON_TZ=America/New_York */20 1 * * *", "2026-11-01T04:59:00Z",
      { "2026-11-01T05:00:00Z", "2026-11-01T05:20:00Z", "2026-11-01T05:40:00Z", "2026-11-02T06:00:00Z" } },
    { "CRON_TZ=America/New_York 0 2 * * *", "2026-10-31T12:00:00Z", { "2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z" } },
    { "CRON_TZ=America/New_York 45 1 * * SUN", "2027-11-06T00:00:00Z", { "2027-11-07T05:45:00Z", "2027-11-14T06:45:00Z" } },
    /* footer rule: 2050-03-13 and 2050-11-06 */
    { "CRON_TZ=America/New_York 30 2 * * *", "2050-03-12T12:00:00Z", { "2050-03-13T07:00:00Z", "2050-03-14T06:30:00Z" } },
    { "CRON_TZ=America/New_York 30 1 * * *", "2050-11-05T12:00:00Z", { "2050-11-06T05:30:00Z", "2050-11-07T06:30:00Z" } },
};

static void test_table(void **state)
{
    (void)state;
    int checked = 0, skipped = 0;
    for (size_t i = 0; i < HB_ARRAY_LEN(rows); i++) {
        const cron_row *r = &rows[i];
        char zone[256];
        if (!have_zone(r->expr, zone, sizeof zone)) {
            if (skipped++ == 0)
                print_message("SKIP: no tzdata for '%s' (/usr/share/zoneinfo; Debian package "
                              "tzdata): skipping the rows that need it\n",
                              zone);
            continue;
        }
        hb_cron *c = NULL;
        hb_err e;
        hb_err_clear(&e);
        int rc = hb_cron_parse(r->expr, &c, &e);
        if (rc != 0)
            fail_msg("row %zu '%s': parse failed: %s", i, r->expr, e.msg);
        int64_t t = rfc3339_ms(r->after);
        for (int k = 0; k < 4 && r->next[k]; k++) {
            int64_t got;
            rc = hb_cron_next(c, t, &got, &e);
            if (rc != 0)
                fail_msg("row %zu '%s': next failed: %s", i, r->expr, e.msg);
            int64_t want = rfc3339_ms(r->next[k]);
            if (got != want) {
                char gs[32], ts[32];
                fmt_ms(got, gs, sizeof gs);
                fmt_ms(t, ts, sizeof ts);
                fail_msg("row %zu '%s' after %s: got %s, want %s", i, r->expr, ts, gs,
                         r->next[k]);
            }
            t = got;
        }
        hb_cron_free(c);
        checked++;
    }
    print_message("%d rows checked, %d skipped\n", checked, skipped);
    assert_true(HB_ARRAY_LEN(rows) >= 60);
}

/* ---- refusals ---- */

static void expect_refused(const char *expr, const char *needle)
{
    hb_cron *c = (hb_cron *)0x1;
    hb_err e;
    hb_err_clear(&e);
    int rc = hb_cron_parse(expr, &c, &e);
    if (rc != HARVBK_E_INVALID)
        fail_msg("'%s': rc %d (%s), want HARVBK_E_INVALID", expr, rc, e.msg);
    assert_null(c);
    if (!strstr(e.msg, needle))
        fail_msg("'%s': message '%s' lacks '%s'", expr, e.msg, needle);
}

static void test_refusals_name_field_and_token(void **state)
{
    (void)state;
    expect_refused("@reboot", "unknown descriptor '@reboot'");
    expect_refused("@every 5m", "unexpected text after descriptor '@every'");
    expect_refused("@daily 0", "unexpected text after descriptor '@daily'");
    expect_refused("0 0 * * * *", "expected 5 fields");
    expect_refused("0 0 * * * *", "got 6 fields");
    expect_refused("0 0 * *", "got 4 fields");
    expect_refused("", "got 0 fields");
    expect_refused("   ", "got 0 fields");
    expect_refused("60 * * * *", "cron field 'minute': 60 is out of range 0-59");
    expect_refused("0 24 * * *", "cron field 'hour': 24 is out of range 0-23");
    expect_refused("0 0 0 * *", "cron field 'day-of-month': 0 is out of range 1-31");
    expect_refused("0 0 32 * *", "cron field 'day-of-month': 32 is out of range 1-31");
    expect_refused("0 0 * 0 *", "cron field 'month': 0 is out of range 1-12");
    expect_refused("0 0 * 13 *", "cron field 'month': 13 is out of range 1-12");
    expect_refused("0 0 * * 8", "cron field 'day-of-week': 8 is out of range 0-7");
    expect_refused("0 0-99999999999999 * * *", "cron field 'hour': 99999999999999 is out of range");
    expect_refused("0 5-1 * * *", "cron field 'hour': range '5-1' is reversed");
    expect_refused("0 0 * * SAT-SUN", "cron field 'day-of-week': range 'SAT-SUN' is reversed");
    expect_refused("0 0 * DEC-JAN *", "cron field 'month': range 'DEC-JAN' is reversed");
    expect_refused("*/0 * * * *", "cron field 'minute': step 0 in '*/0' is out of range 1-60");
    expect_refused("0 1-5/0 * * *", "cron field 'hour': step 0 in '1-5/0'");
    expect_refused("*/61 * * * *", "cron field 'minute': step 61 in '*/61' is out of range 1-60");
    expect_refused("*/ * * * *", "cron field 'minute': missing step in '*/'");
    expect_refused("*/x * * * *", "cron field 'minute': invalid step 'x' in '*/x'");
    expect_refused("1,,2 * * * *", "cron field 'minute': empty list item in '1,,2'");
    expect_refused("1, * * * *", "cron field 'minute': empty list item in '1,'");
    expect_refused(",1 * * * *", "cron field 'minute': empty list item in ',1'");
    expect_refused("5x * * * *", "cron field 'minute': invalid value '5x'");
    expect_refused("-5 * * * *", "cron field 'minute': missing value");
    expect_refused("1-2-3 * * * *", "cron field 'minute': invalid value '2-3'");
    expect_refused("*-5 * * * *", "cron field 'minute': invalid value '*'");
    expect_refused("0 0 ? * *", "cron field 'day-of-month': invalid value '?'");
    expect_refused("0 0 L * *", "cron field 'day-of-month': invalid value 'L'");
    expect_refused("0 0 * FOO *", "cron field 'month': invalid value 'FOO'");
    expect_refused("0 0 * JANUARY *", "cron field 'month': invalid value 'JANUARY'");
    expect_refused("0 0 * * MONDAY", "cron field 'day-of-week': invalid value 'MONDAY'");
    expect_refused("0 0 * * 1#2", "cron field 'day-of-week': invalid value '1#2'");
    expect_refused("0 MON * * *", "cron field 'hour': invalid value 'MON'");
    expect_refused("0 0 JAN * *", "cron field 'day-of-month': invalid value 'JAN'");
    expect_refused("0 0 * 1/x *", "cron field 'month': invalid step 'x'");
    /* zones */
    expect_refused("CRON_TZ=Mars/Olympus_Mons 0 0 * * *", "unknown time zone 'Mars/Olympus_Mons'");
    expect_refused("CRON_TZ=../../etc/passwd 0 0 * * *", "invalid time zone name '../../etc/passwd'");
    expect_refused("CRON_TZ=Europe/../../../etc/passwd 0 0 * * *", "invalid time zone name");
    expect_refused("CRON_TZ=/etc/localtime 0 0 * * *", "invalid time zone name '/etc/localtime'");
    expect_refused("CRON_TZ=Europe/Ber.lin 0 0 * * *", "invalid character '.'");
    expect_refused("CRON_TZ=Europe/Berlin$ 0 0 * * *", "invalid character '$'");
    expect_refused("CRON_TZ= 0 0 * * *", "invalid time zone name ''");
    expect_refused("CRON_TZ=Europe/Berlin", "expected the 5 fields or a descriptor");
    expect_refused("CRON_TZ=Europe/Berlin   ", "got 0 fields");
    expect_refused("CRON_TZ=UTC 0 0 * * * *", "got 6 fields");
    expect_refused("CRON_TZ=UTC @reboot", "unknown descriptor '@reboot'");
    if (access("/usr/share/zoneinfo/Europe", F_OK) == 0)
        expect_refused("CRON_TZ=Europe 0 0 * * *", "unknown time zone 'Europe'");
    if (access("/usr/share/zoneinfo/leapseconds", F_OK) == 0)
        expect_refused("CRON_TZ=leapseconds 0 0 * * *", "not a TZif file");
    if (access("/usr/share/zoneinfo/right/Europe/Berlin", F_OK) == 0)
        expect_refused("CRON_TZ=right/Europe/Berlin 0 0 * * *", "leap seconds");
    /* a time zone prefix must be first and spelled exactly */
    expect_refused("TZ=UTC 0 0 * * *", "got 6 fields");
}

static void test_impossible_expressions_refused_at_parse(void **state)
{
    (void)state;
    const char *never[] = {
        "0 0 30 2 *",   "0 0 31 4,6,9,11 *", "0 0 31 2,4 *",  "0 0 30,31 2 *",
        "0 0 30 2 */1", "0 0 31 FEB *",      "0 0 31 2 */2",
    };
    for (size_t i = 0; i < HB_ARRAY_LEN(never); i++)
        expect_refused(never[i], "never fires");
    /* possible ones, including Feb 29 and the OR rule */
    const char *ok[] = { "0 0 29 2 *", "0 0 30 2 1", "0 0 31 2,4 MON", "0 0 */30 2 *",
                         "0 0 29 2 */6", "0 0 31 * *", "0 0 1-31 2 *" };
    for (size_t i = 0; i < HB_ARRAY_LEN(ok); i++) {
        hb_cron *c = NULL;
        hb_err e;
        hb_err_clear(&e);
        if (hb_cron_parse(ok[i], &c, &e) != 0)
            fail_msg("'%s' refused: %s", ok[i], e.msg);
        hb_cron_free(c);
    }
}

static void test_next_arguments(void **state)
{
    (void)state;
    hb_cron *c = NULL;
    hb_err e;
    hb_err_clear(&e);
    assert_int_equal(hb_cron_parse("0 0 * * *", &c, &e), 0);
    int64_t out;
    assert_int_equal(hb_cron_next(c, INT64_MAX, &out, &e), HARVBK_E_INVALID);
    assert_non_null(strstr(e.msg, "outside years 1-9999"));
    assert_int_equal(hb_cron_next(c, INT64_MIN, &out, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_cron_next(c, 0, NULL, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_cron_next(NULL, 0, &out, &e), HARVBK_E_INVALID);
    assert_int_equal(hb_cron_parse(NULL, &c, &e), HARVBK_E_INVALID);
    /* the last valid instant still has a next one */
    assert_int_equal(hb_cron_next(c, rfc3339_ms("9999-12-31T23:59:59Z"), &out, &e), 0);
    assert_int_equal(out, rfc3339_ms("9999-12-31T00:00:00Z") + 86400000);
    hb_cron_free(c);
    hb_cron_free(NULL);
}

/* ---- intervals ---- */

static int64_t interval_of(const char *expr, const char *from)
{
    hb_cron *c = NULL;
    hb_err e;
    hb_err_clear(&e);
    char zone[256];
    if (!have_zone(expr, zone, sizeof zone)) {
        print_message("SKIP: no tzdata for '%s'\n", zone);
        return -1;
    }
    if (hb_cron_parse(expr, &c, &e) != 0)
        fail_msg("'%s': %s", expr, e.msg);
    int64_t out = 0;
    if (hb_cron_interval(c, rfc3339_ms(from), &out, &e) != 0)
        fail_msg("'%s': %s", expr, e.msg);
    hb_cron_free(c);
    return out;
}

static void test_intervals(void **state)
{
    (void)state;
    const int64_t MIN = 60000, H = 60 * MIN, D = 24 * H;
    assert_int_equal(interval_of("0 * * * *", "2026-05-05T10:20:00Z"), H);
    assert_int_equal(interval_of("*/30 * * * *", "2026-05-05T10:20:00Z"), 30 * MIN);
    assert_int_equal(interval_of("0 2 * * *", "2026-05-05T10:20:00Z"), D);
    assert_int_equal(interval_of("* * * * *", "2026-05-05T10:20:00Z"), MIN);
    assert_int_equal(interval_of("@weekly", "2026-05-05T10:20:00Z"), 7 * D);
    assert_int_equal(interval_of("0 0 31 * *", "2026-01-31T10:00:00Z"), 61 * D); /* Mar 31 -> May 31 */
    assert_int_equal(interval_of("0 0 29 2 *", "2025-01-01T00:00:00Z"), (365 * 4 + 1) * D);
    int64_t v;
    /* Berlin: 02:00 on the spring-forward day fires at 03:00 CEST, then 02:00 CEST */
    if ((v = interval_of("CRON_TZ=Europe/Berlin 0 2 * * *", "2027-03-27T12:00:00Z")) >= 0)
        assert_int_equal(v, 23 * H);
    if ((v = interval_of("CRON_TZ=Europe/Berlin 0 2 * * *", "2027-10-30T12:00:00Z")) >= 0)
        assert_int_equal(v, 25 * H);
    /* New York @hourly across the fall-back: 01:00 EDT, then 02:00 EST */
    if ((v = interval_of("CRON_TZ=America/New_York @hourly", "2026-11-01T04:30:00Z")) >= 0)
        assert_int_equal(v, 2 * H);
    if ((v = interval_of("CRON_TZ=America/New_York @hourly", "2026-03-08T05:30:00Z")) >= 0)
        assert_int_equal(v, H); /* 01:00 EST -> 03:00 EDT: one real hour */
}

/* ---- property test: random expressions vs a brute-force search ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int rnd_in(int lo, int hi)
{
    return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

/* Generate one field; its intended value set into *set (bit per value). */
static void gen_field(char *out, size_t size, int lo, int hi, int star_hi,
                      const char *const *names, uint64_t *set, bool *star)
{
    size_t len = 0;
    int items = rnd_in(1, 3);
    *set = 0;
    *star = false;
    out[0] = '\0';
    for (int it = 0; it < items; it++) {
        char buf[32];
        int kind = rnd_in(0, 5);
        int a = rnd_in(lo, hi), b = rnd_in(lo, hi), step = rnd_in(1, HB_MIN(12, star_hi - lo + 1));
        if (a > b) {
            int t = a;
            a = b;
            b = t;
        }
        int from = lo, to = star_hi, st = 1;
        switch (kind) {
        case 0:
            snprintf(buf, sizeof buf, "*");
            break;
        case 1:
            snprintf(buf, sizeof buf, "*/%d", step);
            st = step;
            break;
        case 2:
            from = to = a;
            if (names && rnd() % 2)
                snprintf(buf, sizeof buf, "%s", names[a - lo]);
            else
                snprintf(buf, sizeof buf, "%d", a);
            break;
        case 3:
            from = a;
            to = b;
            snprintf(buf, sizeof buf, "%d-%d", a, b);
            break;
        case 4:
            from = a;
            to = b;
            st = step;
            snprintf(buf, sizeof buf, "%d-%d/%d", a, b, step);
            break;
        default:
            from = a;
            to = HB_MAX(a, star_hi);
            st = step;
            snprintf(buf, sizeof buf, "%d/%d", a, step);
            break;
        }
        if (it == 0 && buf[0] == '*')
            *star = true;
        for (int v = from; v <= to; v += st)
            *set |= (uint64_t)1 << v;
        len += (size_t)snprintf(out + len, size - len, "%s%s", it ? "," : "", buf);
    }
}

typedef struct ref_expr {
    uint64_t min, hour, dom, mon, dow;
    bool dom_star, dow_star;
} ref_expr;

/* Brute force with the C library's calendar: every minute of every day (whole
 * days that cannot match are skipped), up to `limit` seconds. -1: none. */
static int64_t ref_next(const ref_expr *r, int64_t after_ms, int64_t limit_s)
{
    int64_t t = (after_ms >= 0 ? after_ms / 60000 : -((-after_ms + 59999) / 60000)) * 60 + 60;
    if (t * 1000 <= after_ms)
        t += 60;
    while (t <= limit_s) {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        bool dm = (r->dom >> tm.tm_mday) & 1, wm = (r->dow >> tm.tm_wday) & 1;
        bool day = ((r->mon >> (tm.tm_mon + 1)) & 1) &&
                   ((r->dom_star || r->dow_star) ? (dm && wm) : (dm || wm));
        if (!day) { /* to the next midnight */
            t += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
            continue;
        }
        if (((r->hour >> tm.tm_hour) & 1) && ((r->min >> tm.tm_min) & 1))
            return t * 1000;
        t += 60;
    }
    return -1;
}

static const char *const mon_names[] = { "JAN", "feb", "Mar", "APR", "may", "JUN",
                                         "jul", "AUG", "sep", "OCT", "nov", "DEC" };
static const char *const day_names[] = { "SUN", "mon", "Tue", "WED", "thu", "FRI", "sat", "SUN" };

static void test_property_random_expressions_match_brute_force(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ULL;
    int done = 0, refused = 0;
    while (done < 200) {
        char f[5][96];
        ref_expr r;
        bool st[5];
        gen_field(f[0], sizeof f[0], 0, 59, 59, NULL, &r.min, &st[0]);
        gen_field(f[1], sizeof f[1], 0, 23, 23, NULL, &r.hour, &st[1]);
        gen_field(f[2], sizeof f[2], 1, 31, 31, NULL, &r.dom, &st[2]);
        gen_field(f[3], sizeof f[3], 1, 12, 12, mon_names, &r.mon, &st[3]);
        gen_field(f[4], sizeof f[4], 0, 7, 6, day_names, &r.dow, &st[4]);
        if (r.dow & 0x80)
            r.dow |= 1;
        r.dom_star = st[2];
        r.dow_star = st[4];
        char expr[512];
        snprintf(expr, sizeof expr, "%s %s %s %s %s", f[0], f[1], f[2], f[3], f[4]);
        hb_cron *c = NULL;
        hb_err e;
        hb_err_clear(&e);
        int rc = hb_cron_parse(expr, &c, &e);
        if (rc != 0) {
            /* only impossible (month, day) combinations may be refused */
            if (!strstr(e.msg, "never fires"))
                fail_msg("'%s' refused: %s", expr, e.msg);
            assert_int_equal(ref_next(&r, rfc3339_ms("2000-01-01T00:00:00Z"),
                                      rfc3339_ms("2009-01-01T00:00:00Z") / 1000),
                             -1);
            refused++;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            /* 1990..2060, with milliseconds */
            int64_t after = (int64_t)(rnd() % (uint64_t)(70LL * 365 * 86400 * 1000)) +
                            rfc3339_ms("1990-01-01T00:00:00Z");
            if (k == 2)
                after -= after % 60000; /* exactly on a minute */
            int64_t got;
            if (hb_cron_next(c, after, &got, &e) != 0)
                fail_msg("'%s': %s", expr, e.msg);
            assert_true(got > after);
            assert_int_equal(got % 60000, 0);
            int64_t limit = after / 1000 + 400LL * 86400;
            int64_t want = ref_next(&r, after, limit);
            if (want < 0) {
                if (got / 1000 <= limit)
                    fail_msg("'%s' after %lld: got %lld, brute force finds nothing in 400 days",
                             expr, (long long)after, (long long)got);
            } else if (got != want) {
                char gs[32], ws[32], as[32];
                fmt_ms(got, gs, sizeof gs);
                fmt_ms(want, ws, sizeof ws);
                fmt_ms(after, as, sizeof as);
                fail_msg("'%s' after %s: got %s, brute force %s", expr, as, gs, ws);
            }
        }
        hb_cron_free(c);
        done++;
    }
    print_message("200 random expressions checked (%d impossible ones refused)\n", refused);
}

/* ---- property test in zones: a brute force over UTC minutes using the C
 * library's localtime_r (TZ set in this test process only; the library never
 * reads TZ). Semantics as documented in cron.h: a wall time fires at the first
 * instant it is reached; wall times skipped by a gap fire at the first instant
 * after it; a wall time already reached (repeated hour) does not fire again. */

static int64_t wall_of(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return (int64_t)timegm(&tm);
}

static bool ref_day(const ref_expr *r, const struct tm *tm)
{
    bool dm = (r->dom >> tm->tm_mday) & 1, wm = (r->dow >> tm->tm_wday) & 1;
    return ((r->mon >> (tm->tm_mon + 1)) & 1) &&
           ((r->dom_star || r->dow_star) ? (dm && wm) : (dm || wm));
}

static bool ref_match_wall(const ref_expr *r, int64_t w)
{
    time_t tt = (time_t)w;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return ref_day(r, &tm) && ((r->hour >> tm.tm_hour) & 1) && ((r->min >> tm.tm_min) & 1);
}

static bool ref_day_wall(const ref_expr *r, int64_t w)
{
    time_t tt = (time_t)w;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return ref_day(r, &tm);
}

static int64_t ref_zone_next(const ref_expr *r, int64_t after_ms, int64_t limit_s)
{
    int64_t after = after_ms / 1000; /* after_ms > 0 here */
    int64_t hwm = INT64_MIN;
    for (int64_t s = 0; s <= 26 * 3600; s += 60)
        hwm = HB_MAX(hwm, wall_of(after - s));
    int64_t t = after / 60 * 60 + 60;
    int64_t prev = wall_of(t - 60);
    while (t <= limit_s) {
        int64_t w = wall_of(t);
        for (int64_t m = prev + 60; w - prev > 60 && m < w; m += 60)
            if (m > hwm && ref_match_wall(r, m))
                return t * 1000;
        if (w > hwm && ref_match_wall(r, w))
            return t * 1000;
        hwm = HB_MAX(hwm, w);
        prev = w;
        int64_t sod = ((w % 86400) + 86400) % 86400;
        if (!ref_day_wall(r, w) && !ref_day_wall(r, w + 3 * 3600) && sod < 21 * 3600) {
            t += (21 * 3600 - sod) / 60 * 60; /* skip to 21:00 of a day that cannot match */
            prev = wall_of(t - 60);
            hwm = HB_MAX(hwm, prev);
            continue;
        }
        t += 60;
    }
    return -1;
}

static void test_property_zones_match_localtime_brute_force(void **state)
{
    (void)state;
    static const char *const zones[] = { "Europe/Berlin", "America/New_York",
                                         "Australia/Sydney" };
    char *old_tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    rng_state = 0x2545f4914f6cdd1dULL;
    int done = 0;
    for (size_t zi = 0; zi < HB_ARRAY_LEN(zones); zi++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zones[zi]);
        if (access(path, R_OK) != 0) {
            print_message("SKIP: no tzdata for '%s'\n", zones[zi]);
            continue;
        }
        setenv("TZ", zones[zi], 1);
        tzset();
        for (int n = 0; n < 40;) {
            char f[5][96];
            ref_expr r;
            bool st[5];
            gen_field(f[0], sizeof f[0], 0, 59, 59, NULL, &r.min, &st[0]);
            gen_field(f[1], sizeof f[1], 0, 23, 23, NULL, &r.hour, &st[1]);
            gen_field(f[2], sizeof f[2], 1, 31, 31, NULL, &r.dom, &st[2]);
            gen_field(f[3], sizeof f[3], 1, 12, 12, mon_names, &r.mon, &st[3]);
            gen_field(f[4], sizeof f[4], 0, 7, 6, day_names, &r.dow, &st[4]);
            if (r.dow & 0x80)
                r.dow |= 1;
            r.dom_star = st[2];
            r.dow_star = st[4];
            /* every 2nd: times around the DST changes, all days, all months */
            if (n % 2 == 0) {
                static const struct {
                    const char *text;
                    uint64_t set;
                } mins[] = { { "*/15", 1 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45 },
                             { "0", 1 },
                             { "30", 1ULL << 30 },
                             { "20,40", 1ULL << 20 | 1ULL << 40 } };
                int pick = (int)(rnd() % 4);
                snprintf(f[0], sizeof f[0], "%s", mins[pick].text);
                r.min = mins[pick].set;
                static const struct {
                    const char *text;
                    uint32_t set;
                } hours[] = { { "0-4", 0x1f }, { "2", 0x4 }, { "1-2", 0x6 }, { "2,3", 0xc } };
                pick = (int)(rnd() % 4);
                snprintf(f[1], sizeof f[1], "%s", hours[pick].text);
                r.hour = hours[pick].set;
                snprintf(f[2], sizeof f[2], "*");
                r.dom = 0xfffffffe;
                snprintf(f[3], sizeof f[3], "*");
                r.mon = 0x1ffe;
                snprintf(f[4], sizeof f[4], "*");
                r.dow = 0x7f;
                r.dom_star = r.dow_star = true;
            }
            char expr[600];
            snprintf(expr, sizeof expr, "CRON_TZ=%s %s %s %s %s %s", zones[zi], f[0], f[1], f[2],
                     f[3], f[4]);
            hb_cron *c = NULL;
            hb_err e;
            hb_err_clear(&e);
            if (hb_cron_parse(expr, &c, &e) != 0) {
                if (!strstr(e.msg, "never fires"))
                    fail_msg("'%s' refused: %s", expr, e.msg);
                continue;
            }
            for (int k = 0; k < 3; k++) {
                /* a day in March/April or October/November of 2025..2045 (the
                 * later years are past the file's transitions: footer rule) */
                char day[32];
                snprintf(day, sizeof day, "%d-%02d-%02dT00:00:00Z", rnd_in(2025, 2045),
                         (int[]){ 3, 4, 10, 11 }[rnd() % 4], rnd_in(1, 30));
                int64_t after = rfc3339_ms(day) + (int64_t)(rnd() % (86400ULL * 1000));
                if (k < 2) { /* most often: within the 36 hours before a change */
                    int64_t t0 = rfc3339_ms(day) / 1000 - (int64_t)(rnd_in(0, 29)) * 86400 + 43200;
                    for (int d = 0; d < 40; d++, t0 += 86400)
                        if (wall_of(t0 + 86400) - (t0 + 86400) != wall_of(t0) - t0) {
                            after = t0 * 1000 + (int64_t)(rnd() % (36ULL * 3600 * 1000));
                            break;
                        }
                }
                if (k == 2)
                    after -= after % 60000;
                int64_t got;
                if (hb_cron_next(c, after, &got, &e) != 0)
                    fail_msg("'%s': %s", expr, e.msg);
                assert_true(got > after);
                assert_int_equal(got % 60000, 0);
                int64_t limit = after / 1000 + 400LL * 86400;
                int64_t want = ref_zone_next(&r, after, limit);
                if (want < 0 ? got / 1000 <= limit : got != want) {
                    char gs[32], ws[32], as[32];
                    fmt_ms(got, gs, sizeof gs);
                    fmt_ms(want < 0 ? 0 : want, ws, sizeof ws);
                    fmt_ms(after, as, sizeof as);
                    fail_msg("'%s' after %s: got %s, brute force %s", expr, as, gs,
                             want < 0 ? "none in 400 days" : ws);
                }
            }
            hb_cron_free(c);
            n++;
            done++;
        }
    }
    /* the library ignores the process TZ: the table gives the same answers */
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    test_table(NULL);
    if (old_tz)
        setenv("TZ", old_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    free(old_tz);
    print_message("%d random zone expressions checked\n", done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_refusals_name_field_and_token),
        cmocka_unit_test(test_impossible_expressions_refused_at_parse),
        cmocka_unit_test(test_next_arguments),
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_property_random_expressions_match_brute_force),
        cmocka_unit_test(test_property_zones_match_localtime_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
