#!/usr/bin/env python3
"""Independent check of the expected values in tests/unit/test_cron.c.

Reads the `rows[]` table from test_cron.c and recomputes every expected fire
time with its own small cron matcher and a brute-force walk over UTC minutes,
converting each instant to the zone's wall time with python's zoneinfo. It
shares no code with src/sched/cron.c. DST semantics checked (docs/SCHEDULES.md):
a wall time is fired at the first instant it occurs; wall times skipped by a
gap fire at the first instant after the gap; a wall time already reached once
(the repeated hour of a fall-back) does not fire again.

    python3 tests/unit/cron_table_check.py   # prints "N rows OK" or the mismatches
"""
import datetime as dt
import os
import re
import sys
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAYS = "SUN MON TUE WED THU FRI SAT".split()
DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
               "@hourly": "0 * * * *"}


def field(text, lo, hi, star_hi, names=None):
    def val(s):
        if names and s.upper() in names:
            return names.index(s.upper()) + lo
        v = int(s)
        assert lo <= v <= hi, s
        return v
    out = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        step = int(step) if step else 1
        if base == "*":
            a, b = lo, star_hi
        elif "-" in base:
            a, b = (val(x) for x in base.split("-"))
        else:
            a = val(base)
            b = max(a, star_hi) if _ else a
        out.update(range(a, b + 1, step))
    return out


def parse(expr):
    expr = expr.strip()
    zone = UTC
    if expr.startswith("CRON_TZ="):
        name, expr = expr[8:].split(None, 1)
        zone = ZoneInfo(name)
    expr = DESCRIPTORS.get(expr.lower(), expr)
    f = expr.split()
    assert len(f) == 5, expr
    dow = field(f[4], 0, 7, 6, DAYS)
    if 7 in dow:
        dow.add(0)
    return dict(zone=zone, minute=field(f[0], 0, 59, 59), hour=field(f[1], 0, 23, 23),
                dom=field(f[2], 1, 31, 31), month=field(f[3], 1, 12, 12, MONTHS), dow=dow,
                star=f[2].startswith("*") or f[4].startswith("*"))


def day_ok(c, d):
    if d.month not in c["month"]:
        return False
    a = d.day in c["dom"]
    b = (d.isoweekday() % 7) in c["dow"]
    return (a and b) if c["star"] else (a or b)


def matches(c, wall):
    return day_ok(c, wall) and wall.hour in c["hour"] and wall.minute in c["minute"]


def wall(c, t):
    return dt.datetime.fromtimestamp(t, c["zone"]).replace(tzinfo=None)


def next_fire(c, after_ms):
    after = after_ms // 1000
    # highest wall time already reached at or before `after`
    hwm = max(wall(c, after - s) for s in range(0, 2 * 86400, 60))
    t = (after // 60) * 60 + 60
    prev = wall(c, t - 60)
    one = dt.timedelta(minutes=1)
    for _ in range(10_000_000):
        w = wall(c, t)
        if w - prev > one:  # gap: wall times (prev, w) never occur
            m = prev + one
            while m < w:
                if m > hwm and matches(c, m):
                    return t * 1000
                m += one
        if w > hwm and matches(c, w):
            return t * 1000
        hwm = max(hwm, w)
        prev = w
        if not day_ok(c, w) and not day_ok(c, w + dt.timedelta(hours=3)):
            # skip most of a day that cannot match (stay well clear of midnight)
            step = max(60, int((dt.datetime.combine(w.date(), dt.time()) +
                                dt.timedelta(hours=21) - w).total_seconds()) // 60 * 60)
            t += step
            prev = wall(c, t - 60)
            hwm = max(hwm, prev)
            continue
        t += 60
    raise RuntimeError("no fire time")


def ms(s):
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?Z", s)
    y, mo, d, h, mi, se, frac = m.groups()
    t = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(se), tzinfo=UTC)
    return int(t.timestamp()) * 1000 + int(frac or 0)


def fmt(msv):
    return dt.datetime.fromtimestamp(msv // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_cron.c")).read()
    table = src[src.index("static const cron_row rows[] = {"):src.index("static void test_table")]
    row_re = re.compile(r'\{\s*"([^"]*)",\s*"([^"]*)",\s*(?:/\*.*?\*/\s*)?\{([^}]*)\}\s*\}')
    n, bad = 0, 0
    for expr, after, nexts in row_re.findall(table):
        want = re.findall(r'"([^"]*)"', nexts)
        c = parse(expr)
        t = ms(after)
        for w in want:
            got = next_fire(c, t)
            if fmt(got) != w:
                print(f"MISMATCH {expr!r} after {fmt(t)}: python {fmt(got)}, table {w}")
                bad += 1
                break
            t = got
        n += 1
    print(f"{n} rows, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
