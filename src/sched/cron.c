/*
 * sched/cron.c - cron expression parser and next-fire-time search, with time
 * zones read from TZif files (no TZ/tzset: see cron.h).
 */
#include "sched/cron.h"

#include "core/fsutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB_ZONEINFO_DIR "/usr/share/zoneinfo"
#define HB_TZIF_MAX (1024 * 1024)
#define DAY_S 86400
/* 400 Gregorian years: the calendar (weekdays included) repeats after this. */
#define CYCLE_DAYS 146097

/* ---- calendar (proleptic Gregorian, days since 1970-01-01) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int md[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

/* H. Hinnant's days_from_civil / civil_from_days. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * CYCLE_DAYS + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, CYCLE_DAYS);
    int64_t doe = z - era * CYCLE_DAYS;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int weekday(int64_t days) /* 0 = Sunday; 1970-01-01 was a Thursday */
{
    return (int)(((days % 7) + 11) % 7);
}

/* ---- time zones ---- */

/* A POSIX TZ rule date: Jn (kind 'J'), n (kind 'n') or Mm.w.d (kind 'M'),
 * plus the local time of day of the change (seconds, may be negative or > 24h). */
typedef struct tz_date {
    char kind;
    int m, w, d, n;
    int32_t time;
} tz_date;

typedef struct hb_tz {
    char name[256];
    size_t ntrans;
    int64_t *trans;    /* transition instants, ascending */
    uint8_t *trans_ty; /* type after each transition */
    size_t ntypes;
    int32_t *type_off; /* UT offset of each type */
    /* footer (for instants after the last transition) */
    bool has_footer;
    int32_t std_off, dst_off; /* UT offsets (east positive) */
    bool has_dst;
    tz_date start, end;
} hb_tz;

static void tz_free(hb_tz *z)
{
    if (!z)
        return;
    hb_free(z->trans);
    hb_free(z->trans_ty);
    hb_free(z->type_off);
    hb_free(z);
}

/* Day (since epoch) of a rule date in year y. */
static int64_t tz_rule_day(const tz_date *r, int64_t y)
{
    int64_t jan1 = days_from_civil(y, 1, 1);
    if (r->kind == 'J') /* 1..365, February 29 never counted */
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60 ? 1 : 0);
    if (r->kind == 'n') /* 0..365 */
        return jan1 + r->n;
    int64_t first = days_from_civil(y, r->m, 1);
    int md = 1 + (r->d - weekday(first) + 7) % 7 + (r->w - 1) * 7;
    if (md > month_days(y, r->m))
        md -= 7;
    return first + md - 1;
}

static int32_t tz_footer_off(const hb_tz *z, int64_t t)
{
    if (!z->has_dst)
        return z->std_off;
    int64_t y;
    int m, d;
    civil_from_days(floor_div(t + z->std_off, DAY_S), &y, &m, &d);
    /* start time is given in standard time, end time in daylight time */
    int64_t s = tz_rule_day(&z->start, y) * DAY_S + z->start.time - z->std_off;
    int64_t en = tz_rule_day(&z->end, y) * DAY_S + z->end.time - z->dst_off;
    bool dst = s < en ? (t >= s && t < en) : (t < en || t >= s);
    return dst ? z->dst_off : z->std_off;
}

/* UT offset (seconds east) in effect at instant t. */
static int32_t tz_off(const hb_tz *z, int64_t t)
{
    if (!z)
        return 0;
    if (z->ntrans == 0 || t < z->trans[0]) {
        if (z->ntrans == 0 && z->has_footer)
            return tz_footer_off(z, t);
        return z->type_off[0];
    }
    if (t >= z->trans[z->ntrans - 1] && z->has_footer)
        return tz_footer_off(z, t);
    size_t lo = 0, hi = z->ntrans; /* last i with trans[i] <= t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->type_off[z->trans_ty[lo]];
}

/* The instant of local wall time L (seconds, local time read as if UTC):
 * its first occurrence, or, when L falls in a gap, the first instant after
 * the gap. */
static int64_t tz_instant(const hb_tz *z, int64_t L)
{
    if (!z)
        return L;
    int32_t cand[3] = { tz_off(z, L - DAY_S), tz_off(z, L), tz_off(z, L + DAY_S) };
    bool found = false;
    int64_t best = 0;
    int32_t lo_off = cand[0], hi_off = cand[0];
    for (int i = 0; i < 3; i++) {
        lo_off = HB_MIN(lo_off, cand[i]);
        hi_off = HB_MAX(hi_off, cand[i]);
        int64_t u = L - cand[i];
        if (tz_off(z, u) == cand[i] && (!found || u < best)) {
            best = u;
            found = true;
        }
    }
    if (found)
        return best;
    /* gap: the first instant t with t + off(t) > L lies in [L - hi, L - lo] */
    int64_t a = L - hi_off, b = L - lo_off;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (mid + tz_off(z, mid) > L)
            b = mid;
        else
            a = mid + 1;
    }
    return a;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* POSIX TZ string parsing (RFC 8536 section 3.3 extensions included). */
static bool px_name(const char **s)
{
    const char *p = *s;
    if (*p == '<') {
        p++;
        const char *b = p;
        while (*p && *p != '>')
            p++;
        if (*p != '>' || p - b < 3)
            return false;
        *s = p + 1;
        return true;
    }
    const char *b = p;
    while (isalpha((unsigned char)*p))
        p++;
    if (p - b < 3)
        return false;
    *s = p;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; value in seconds. */
static bool px_time(const char **s, int max_h, int32_t *out)
{
    const char *p = *s;
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return false;
    int32_t h = 0, mi = 0, se = 0;
    while (isdigit((unsigned char)*p) && h <= max_h)
        h = h * 10 + (*p++ - '0');
    if (h > max_h)
        return false;
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
            return false;
        mi = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]))
                return false;
            se = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
        if (mi > 59 || se > 59)
            return false;
    }
    *out = sign * (h * 3600 + mi * 60 + se);
    *s = p;
    return true;
}

static bool px_num(const char **s, int lo, int hi, int *out)
{
    const char *p = *s;
    int v = 0, n = 0;
    while (isdigit((unsigned char)*p) && n < 4) {
        v = v * 10 + (*p++ - '0');
        n++;
    }
    if (n == 0 || v < lo || v > hi)
        return false;
    *out = v;
    *s = p;
    return true;
}

static bool px_date(const char **s, tz_date *r)
{
    const char *p = *s;
    if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!px_num(&p, 1, 12, &r->m) || *p++ != '.' || !px_num(&p, 1, 5, &r->w) ||
            *p++ != '.' || !px_num(&p, 0, 6, &r->d))
            return false;
    } else if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!px_num(&p, 1, 365, &r->n))
            return false;
    } else {
        r->kind = 'n';
        if (!px_num(&p, 0, 365, &r->n))
            return false;
    }
    r->time = 7200;
    if (*p == '/') {
        p++;
        if (!px_time(&p, 167, &r->time))
            return false;
    }
    *s = p;
    return true;
}

static bool px_parse(const char *s, hb_tz *z)
{
    int32_t off;
    if (!px_name(&s) || !px_time(&s, 24, &off))
        return false;
    z->std_off = -off;
    if (*s == '\0') {
        z->has_dst = false;
        return true;
    }
    if (!px_name(&s))
        return false;
    z->dst_off = z->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!px_time(&s, 24, &off))
            return false;
        z->dst_off = -off;
    }
    if (*s != ',') /* no rule: implementation-defined in POSIX; refuse */
        return false;
    s++;
    if (!px_date(&s, &z->start) || *s++ != ',' || !px_date(&s, &z->end) || *s != '\0')
        return false;
    z->has_dst = true;
    return true;
}

/* Parse one data block of a TZif file (time size 4 or 8) at p. */
static int tzif_block(hb_tz *z, const uint8_t *p, size_t avail, int tsz, size_t *used,
                      hb_err *e)
{
    if (avail < 44 || memcmp(p, "TZif", 4) != 0)
        return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': not a TZif file", z->name);
    uint64_t isut = be(p + 20, 4), isstd = be(p + 24, 4), leap = be(p + 28, 4),
             tcnt = be(p + 32, 4), tycnt = be(p + 36, 4), chcnt = be(p + 40, 4);
    if (tycnt == 0 || tycnt > 256 || tcnt > 100000 || chcnt > 100000 || leap > 100000 ||
        isut > 256 || isstd > 256)
        return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': malformed TZif header",
                         z->name);
    size_t need = 44 + tcnt * (size_t)tsz + tcnt + tycnt * 6 + chcnt +
                  leap * (size_t)(tsz + 4) + isstd + isut;
    if (avail < need)
        return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': truncated TZif file", z->name);
    if (leap != 0)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "time zone '%s': zones with leap seconds are not supported", z->name);
    hb_free(z->trans);
    hb_free(z->trans_ty);
    hb_free(z->type_off);
    z->trans = hb_calloc(tcnt ? tcnt : 1, sizeof *z->trans);
    z->trans_ty = hb_calloc(tcnt ? tcnt : 1, 1);
    z->type_off = hb_calloc(tycnt, sizeof *z->type_off);
    if (!z->trans || !z->trans_ty || !z->type_off)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    const uint8_t *q = p + 44;
    for (uint64_t i = 0; i < tcnt; i++, q += tsz) {
        uint64_t v = be(q, tsz);
        z->trans[i] = tsz == 4 ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return hb_seterr(e, HARVBK_E_INVALID,
                             "time zone '%s': transitions not in ascending order", z->name);
    }
    for (uint64_t i = 0; i < tcnt; i++, q++) {
        if (*q >= tycnt)
            return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': bad transition type",
                             z->name);
        z->trans_ty[i] = *q;
    }
    for (uint64_t i = 0; i < tycnt; i++, q += 6) {
        int32_t off = (int32_t)(uint32_t)be(q, 4);
        if (off < -25 * 3600 || off > 26 * 3600)
            return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': offset out of range",
                             z->name);
        z->type_off[i] = off;
    }
    z->ntrans = tcnt;
    z->ntypes = tycnt;
    *used = need;
    return 0;
}

/* The TZif data (RFC 8536) of zone z->name into z. */
static int tz_parse(hb_tz *z, const uint8_t *data, size_t len, hb_err *e)
{
    const char *name = z->name;
    size_t used = 0;
    int rc;
    if ((rc = tzif_block(z, data, len, 4, &used, e)) != 0)
        return rc;
    char ver = (char)data[4];
    if (ver >= '2') {
        size_t used2 = 0;
        if ((rc = tzif_block(z, data + used, len - used, 8, &used2, e)) != 0)
            return rc;
        size_t fpos = used + used2;
        /* footer: "\n<POSIX TZ>\n" (may be empty) */
        if (fpos >= len || data[fpos] != '\n')
            return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': missing TZif footer", name);
        const char *f = (const char *)data + fpos + 1;
        const char *nl = memchr(f, '\n', len - fpos - 1);
        if (!nl)
            return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': unterminated TZif footer",
                             name);
        if (nl > f) {
            char tzs[128];
            size_t fl = (size_t)(nl - f);
            if (fl >= sizeof tzs)
                return hb_seterr(e, HARVBK_E_INVALID, "time zone '%s': TZif footer too long",
                                 name);
            memcpy(tzs, f, fl);
            tzs[fl] = '\0';
            if (!px_parse(tzs, z))
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "time zone '%s': unsupported TZ rule '%s' in TZif footer",
                                 name, tzs);
            z->has_footer = true;
        }
    }
    return 0;
}

static int tz_load(const char *name, hb_tz **out, hb_err *e)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200 || name[0] == '/' || strstr(name, "..") || name[n - 1] == '/')
        return hb_seterr(e, HARVBK_E_INVALID, "CRON_TZ: invalid time zone name '%s'", name);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!isalnum((unsigned char)ch) && ch != '_' && ch != '+' && ch != '-' && ch != '/')
            return hb_seterr(e, HARVBK_E_INVALID,
                             "CRON_TZ: invalid character '%c' in time zone name '%s'", ch,
                             name);
    }
    hb_tz *z = hb_calloc(1, sizeof *z);
    if (!z)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    snprintf(z->name, sizeof z->name, "%s", name);
    char path[sizeof HB_ZONEINFO_DIR + 256];
    snprintf(path, sizeof path, "%s/%s", HB_ZONEINFO_DIR, name);
    hb_buf b = HB_BUF_INIT;
    hb_err fe;
    hb_err_clear(&fe);
    int rc = hb_read_file(path, &b, HB_TZIF_MAX, &fe);
    if (rc != 0) {
        rc = rc == HARVBK_E_NOMEM
                 ? hb_seterr(e, rc, NULL)
                 : hb_seterr(e, HARVBK_E_INVALID, "CRON_TZ: unknown time zone '%s' (%s)", name,
                             fe.msg);
        tz_free(z);
    } else if ((rc = tz_parse(z, b.data, b.len, e)) != 0) {
        tz_free(z);
    } else {
        *out = z;
    }
    hb_buf_free(&b);
    return rc;
}

/* ---- expressions ---- */

struct hb_cron {
    uint64_t minute; /* bit i: minute i */
    uint32_t hour;
    uint32_t dom;  /* bits 1..31 */
    uint16_t month; /* bits 1..12 */
    uint8_t dow;    /* bits 0..6 */
    bool dom_star, dow_star;
    hb_tz *tz; /* NULL: UTC */
};

typedef struct field_def {
    const char *name;
    int lo, hi;
    int star_hi; /* upper end of '*' and 'a/n' (day-of-week: 6, Saturday) */
    const char *const *names; /* 3-letter names for lo.. */
} field_def;

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

static const field_def fields[5] = {
    { "minute", 0, 59, 59, NULL },
    { "hour", 0, 23, 23, NULL },
    { "day-of-month", 1, 31, 31, NULL },
    { "month", 1, 12, 12, month_names },
    { "day-of-week", 0, 7, 6, dow_names },
};

/* A value token [s, s+n): number or name. */
static int parse_value(const field_def *f, const char *s, size_t n, int *out, hb_err *e)
{
    if (n == 0)
        return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': missing value", f->name);
    if (isdigit((unsigned char)s[0])) {
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]))
                return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': invalid value '%.*s'",
                                 f->name, (int)n, s);
            if (v < 1000000)
                v = v * 10 + (s[i] - '0');
        }
        if (v < f->lo || v > f->hi)
            return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': %.*s is out of range %d-%d",
                             f->name, (int)n, s, f->lo, f->hi);
        *out = (int)v;
        return 0;
    }
    if (f->names && n == 3) {
        int count = f == &fields[3] ? 12 : 7;
        for (int i = 0; i < count; i++)
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->lo + i;
                return 0;
            }
    }
    return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': invalid value '%.*s'%s", f->name,
                     (int)n, s,
                     f == &fields[3]   ? " (expected 1-12 or JAN-DEC)"
                     : f == &fields[4] ? " (expected 0-7 or SUN-SAT)"
                                       : "");
}

/* One field [s, s+n) into a bit mask. */
static int parse_field(const field_def *f, const char *s, size_t n, uint64_t *mask, hb_err *e)
{
    uint64_t m = 0;
    const char *end = s + n;
    const char *item = s;
    for (;;) {
        const char *ie = memchr(item, ',', (size_t)(end - item));
        if (!ie)
            ie = end;
        size_t il = (size_t)(ie - item);
        if (il == 0)
            return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': empty list item in '%.*s'",
                             f->name, (int)n, s);
        const char *slash = memchr(item, '/', il);
        const char *be_ = slash ? slash : ie; /* end of the base */
        int lo, hi, step = 1;
        if (be_ - item == 1 && item[0] == '*') {
            lo = f->lo;
            hi = f->star_hi;
        } else {
            const char *dash = memchr(item, '-', (size_t)(be_ - item));
            int rc = parse_value(f, item, (size_t)((dash ? dash : be_) - item), &lo, e);
            if (rc)
                return rc;
            if (dash) {
                if ((rc = parse_value(f, dash + 1, (size_t)(be_ - dash - 1), &hi, e)) != 0)
                    return rc;
                if (hi < lo)
                    return hb_seterr(e, HARVBK_E_INVALID,
                                     "cron field '%s': range '%.*s' is reversed", f->name,
                                     (int)(be_ - item), item);
            } else {
                hi = slash ? HB_MAX(f->star_hi, lo) : lo; /* "a/n" means "a-max/n" */
            }
        }
        if (slash) {
            const char *ss = slash + 1;
            size_t sl = (size_t)(ie - ss);
            long v = 0;
            if (sl == 0)
                return hb_seterr(e, HARVBK_E_INVALID, "cron field '%s': missing step in '%.*s'",
                                 f->name, (int)il, item);
            for (size_t i = 0; i < sl; i++) {
                if (!isdigit((unsigned char)ss[i]))
                    return hb_seterr(e, HARVBK_E_INVALID,
                                     "cron field '%s': invalid step '%.*s' in '%.*s'", f->name,
                                     (int)sl, ss, (int)il, item);
                if (v < 1000000)
                    v = v * 10 + (ss[i] - '0');
            }
            int span = f->star_hi - f->lo + 1;
            if (v < 1 || v > span)
                return hb_seterr(e, HARVBK_E_INVALID,
                                 "cron field '%s': step %.*s in '%.*s' is out of range 1-%d",
                                 f->name, (int)sl, ss, (int)il, item, span);
            step = (int)v;
        }
        for (int v = lo; v <= hi; v += step)
            m |= (uint64_t)1 << v;
        if (ie == end)
            break;
        item = ie + 1;
    }
    *mask = m;
    return 0;
}

static bool day_matches(const hb_cron *c, int dom, int dow)
{
    bool a = (c->dom >> dom) & 1, b = (c->dow >> dow) & 1;
    return (c->dom_star || c->dow_star) ? (a && b) : (a || b);
}

/* Whether some day of some year matches (month, day-of-month, day-of-week). */
static bool can_fire(const hb_cron *c)
{
    if (!c->dom_star && !c->dow_star)
        return true; /* OR rule: every month has every weekday */
    /* AND rule: a real (month, day) whose weekday is allowed in some year; the
     * calendar repeats every 400 years (146097 days = 20871 weeks). */
    for (int64_t y = 2000; y < 2400; y++)
        for (int m = 1; m <= 12; m++) {
            if (!((c->month >> m) & 1))
                continue;
            int64_t first = days_from_civil(y, m, 1);
            int md = month_days(y, m);
            for (int d = 1; d <= md; d++)
                if (((c->dom >> d) & 1) && ((c->dow >> weekday(first + d - 1)) & 1))
                    return true;
        }
    return false;
}

static const struct {
    const char *name, *expr;
} descriptors[] = {
    { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int parse_fields(hb_cron *c, const char *s, hb_err *e)
{
    const char *tok[6];
    size_t len[6];
    int nf = 0;
    const char *p = s;
    for (;;) {
        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        const char *b = p;
        while (*p && !is_space(*p))
            p++;
        if (nf < 6) {
            tok[nf] = b;
            len[nf] = (size_t)(p - b);
        }
        nf++;
    }
    if (nf > 1 && tok[0][0] == '@')
        return hb_seterr(e, HARVBK_E_INVALID, "cron: unexpected text after descriptor '%.*s'",
                         (int)len[0], tok[0]);
    if (nf == 1 && tok[0][0] == '@') {
        for (size_t i = 0; i < HB_ARRAY_LEN(descriptors); i++)
            if (strlen(descriptors[i].name) == len[0] &&
                strncasecmp(tok[0], descriptors[i].name, len[0]) == 0)
                return parse_fields(c, descriptors[i].expr, e);
        return hb_seterr(e, HARVBK_E_INVALID,
                         "cron: unknown descriptor '%.*s' (expected @hourly, @daily, "
                         "@midnight, @weekly, @monthly, @yearly or @annually)",
                         (int)len[0], tok[0]);
    }
    if (nf != 5)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "cron: expected 5 fields (minute hour day-of-month month "
                         "day-of-week) or a descriptor, got %d field%s",
                         nf, nf == 1 ? "" : "s");
    uint64_t m[5];
    for (int i = 0; i < 5; i++) {
        int rc = parse_field(&fields[i], tok[i], len[i], &m[i], e);
        if (rc)
            return rc;
    }
    c->minute = m[0];
    c->hour = (uint32_t)m[1];
    c->dom = (uint32_t)m[2];
    c->month = (uint16_t)m[3];
    c->dow = (uint8_t)((m[4] & 0x7f) | ((m[4] >> 7) & 1)); /* 7 is Sunday */
    c->dom_star = tok[2][0] == '*';
    c->dow_star = tok[4][0] == '*';
    return 0;
}

/* hb_cron_parse(); tzif non-NULL: the zone is that data (named "fuzz"),
 * and the expression has no CRON_TZ= of its own. */
static int cron_parse(const char *expr, const void *tzif, size_t tzif_len, hb_cron **out,
                      hb_err *e)
{
    if (!expr || !out)
        return hb_seterr(e, HARVBK_E_INVALID, "hb_cron_parse: NULL argument");
    *out = NULL;
    hb_cron *c = hb_calloc(1, sizeof *c);
    if (!c)
        return hb_seterr(e, HARVBK_E_NOMEM, NULL);
    int rc;
    const char *p = expr;
    while (is_space(*p))
        p++;
    if (tzif) {
        if (!(c->tz = hb_calloc(1, sizeof *c->tz))) {
            rc = hb_seterr(e, HARVBK_E_NOMEM, NULL);
            goto fail;
        }
        snprintf(c->tz->name, sizeof c->tz->name, "fuzz");
        if ((rc = tz_parse(c->tz, tzif, tzif_len, e)) != 0)
            goto fail;
    } else if (strncmp(p, "CRON_TZ=", 8) == 0) {
        const char *zn = p + 8;
        const char *ze = zn;
        while (*ze && !is_space(*ze))
            ze++;
        char name[256];
        if ((size_t)(ze - zn) >= sizeof name) {
            rc = hb_seterr(e, HARVBK_E_INVALID, "CRON_TZ: time zone name too long");
            goto fail;
        }
        memcpy(name, zn, (size_t)(ze - zn));
        name[ze - zn] = '\0';
        if (*ze == '\0') {
            rc = hb_seterr(e, HARVBK_E_INVALID,
                           "CRON_TZ=%s: expected the 5 fields or a descriptor after the zone",
                           name);
            goto fail;
        }
        if ((rc = tz_load(name, &c->tz, e)) != 0)
            goto fail;
        p = ze;
    }
    if ((rc = parse_fields(c, p, e)) != 0)
        goto fail;
    if (!can_fire(c)) {
        rc = hb_seterr(e, HARVBK_E_INVALID,
                       "cron expression '%s' never fires: no day matches its day-of-month, "
                       "month and day-of-week",
                       expr);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    hb_cron_free(c);
    return rc;
}

int hb_cron_parse(const char *expr, hb_cron **out, hb_err *e)
{
    return cron_parse(expr, NULL, 0, out, e);
}

int hb_cron_parse_tzif(const char *expr, const void *tzif, size_t len, hb_cron **out,
                       hb_err *e)
{
    if (!tzif)
        return hb_seterr(e, HARVBK_E_INVALID, "hb_cron_parse_tzif: NULL argument");
    return cron_parse(expr, tzif, len, out, e);
}

void hb_cron_free(hb_cron *c)
{
    if (!c)
        return;
    tz_free(c->tz);
    hb_free(c);
}

/* Years 1..9999 in Unix seconds. */
#define MIN_AFTER_S (-62135596800LL)
#define MAX_AFTER_S (253402300799LL)

int hb_cron_next(const hb_cron *c, int64_t after_ms, int64_t *out_ms, hb_err *e)
{
    if (!c || !out_ms)
        return hb_seterr(e, HARVBK_E_INVALID, "hb_cron_next: NULL argument");
    int64_t after = floor_div(after_ms, 1000);
    if (after < MIN_AFTER_S || after > MAX_AFTER_S)
        return hb_seterr(e, HARVBK_E_INVALID,
                         "hb_cron_next: time %lld ms is outside years 1-9999",
                         (long long)after_ms);
    /* Local wall time of `after`; no fire time has a wall time before it
     * (instants map monotonically from first occurrences). */
    int64_t L0 = after + tz_off(c->tz, after);
    int64_t day = floor_div(L0, DAY_S);
    int64_t sod = L0 - day * DAY_S;
    int first_h = (int)(sod / 3600), first_m = (int)(sod % 3600 / 60);
    bool first_day = true;
    int64_t last = day + CYCLE_DAYS + 2;
    while (day <= last) {
        int64_t y;
        int m, d;
        civil_from_days(day, &y, &m, &d);
        if (!((c->month >> m) & 1)) { /* skip to the 1st of the next month */
            day += month_days(y, m) - d + 1;
            first_day = false;
            continue;
        }
        if (day_matches(c, d, weekday(day))) {
            for (int h = first_day ? first_h : 0; h < 24; h++) {
                if (!((c->hour >> h) & 1))
                    continue;
                int mi0 = first_day && h == first_h ? first_m : 0;
                for (int mi = mi0; mi < 60; mi++) {
                    if (!((c->minute >> mi) & 1))
                        continue;
                    int64_t t = tz_instant(c->tz, day * DAY_S + h * 3600 + mi * 60);
                    if (t > after) {
                        *out_ms = t * 1000;
                        return 0;
                    }
                }
            }
        }
        day++;
        first_day = false;
    }
    return hb_seterr(e, HARVBK_E_INVALID, "cron expression never fires");
}

int hb_cron_interval(const hb_cron *c, int64_t from_ms, int64_t *out_ms, hb_err *e)
{
    if (!out_ms)
        return hb_seterr(e, HARVBK_E_INVALID, "hb_cron_interval: NULL argument");
    int64_t a, b;
    int rc = hb_cron_next(c, from_ms, &a, e);
    if (rc == 0)
        rc = hb_cron_next(c, a, &b, e);
    if (rc)
        return rc;
    *out_ms = b - a;
    return 0;
}
