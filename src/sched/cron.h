/*
 * sched/cron.h - cron expressions: parse once, then ask for the next fire time.
 * Internal (no public API yet); used by the coming schedules feature.
 *
 * Syntax (docs/SCHEDULES.md, "Cron expressions"):
 *   [CRON_TZ=Area/City ] <minute> <hour> <day-of-month> <month> <day-of-week>
 *   [CRON_TZ=Area/City ] @hourly|@daily|@midnight|@weekly|@monthly|@yearly|@annually
 * Fields: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC,
 * day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday). Items: '*', 'a', 'a-b',
 * each optionally '/n' (step n >= 1; 'a/n' means 'a-<max>/n'), joined by ','.
 * Names and descriptors are case-insensitive. '?', 'L', 'W', '#', @reboot and
 * 6-field (seconds) expressions are refused.
 *
 * Day rule (Vixie cron / robfig): when both day-of-month and day-of-week are
 * restricted (neither field starts with '*'), a day matches if EITHER matches;
 * when one of them starts with '*', a day must match both (so a plain '*'
 * leaves the other field alone to decide, and '*' + '/n' still filters).
 *
 * Time zone: UTC, or the zone of CRON_TZ= read from the system tzdata
 * (/usr/share/zoneinfo/<name>, TZif parsed here, including the POSIX TZ footer
 * rule for instants after the last transition). The process TZ and
 * tzset()/localtime() are never used, so everything here is thread-safe:
 * a parsed hb_cron is immutable and may be shared between threads.
 *
 * DST: fire times are wall-clock times of the zone.
 *  - A wall time skipped by a spring-forward gap fires once, at the first
 *    instant after the gap (the transition instant): Europe/Berlin 02:30 on
 *    2027-03-28 fires at 03:00 CEST = 01:00 UTC. Several wall times in the same
 *    gap (and a scheduled time equal to the end of the gap) fire once together.
 *  - A wall time repeated by a fall-back fires once, at its first occurrence.
 *    This holds for every expression, including steps and @hourly: '0 * * * *'
 *    fires at 02:00 (first, summer-time occurrence) and then at 03:00, not at
 *    the second 02:00; the fall-back day therefore has one 2-hour interval.
 * Fire instants are whole minutes for every zone whose offsets are whole
 * minutes (all current ones).
 */
#ifndef HB_SCHED_CRON_H
#define HB_SCHED_CRON_H

#include "core/hb.h"

#include <stdint.h>

typedef struct hb_cron hb_cron;

/* Parse `expr`. HARVBK_E_INVALID with a message naming the field and token for
 * any syntax or range error, an unknown or malformed zone, or an expression
 * that can never fire (e.g. "0 0 30 2 *"). HARVBK_E_NOMEM. */
int hb_cron_parse(const char *expr, hb_cron **out, hb_err *e);
/* The same in the zone described by the TZif data tzif[0..len) (what
 * CRON_TZ= reads from the system's zoneinfo); `expr` has no CRON_TZ=.
 * HARVBK_E_INVALID for malformed data. For tests. */
int hb_cron_parse_tzif(const char *expr, const void *tzif, size_t len, hb_cron **out,
                       hb_err *e);
void hb_cron_free(hb_cron *c);

/* First fire time strictly after `after_ms` (Unix ms, UTC) into *out_ms (a
 * whole minute of the zone). HARVBK_E_INVALID when `after_ms` is outside years
 * 1..9999, or (never for a parsed expression, a safety net) when nothing fires
 * within one 400-year Gregorian cycle. */
int hb_cron_next(const hb_cron *c, int64_t after_ms, int64_t *out_ms, hb_err *e);

/* next(next(from)) - next(from), in ms. */
int hb_cron_interval(const hb_cron *c, int64_t from_ms, int64_t *out_ms, hb_err *e);

#endif
