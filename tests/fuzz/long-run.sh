#!/usr/bin/env bash
# tests/fuzz/long-run.sh - the long runs recorded in tests/fuzz/RESULTS.md:
#
#   tests/fuzz/long-run.sh FUZZ_BUILD_DIR OUT_DIR SECONDS [TARGET...]
#
# Runs each fuzz target (default: all of them) of a HARVBK_FUZZ build for
# SECONDS, $HARVBK_JOBS (default 2) at a time, each from a copy of its
# committed corpus and regression inputs in OUT_DIR/<target>/ (the committed
# directories are never written), with a 25 s timeout per input and a 2 GB
# RSS limit. Prints one Markdown table row per target: executions, exec/s,
# coverage (cov: edges, ft: features), corpus entries, and what it found
# (the crash-, leak-, timeout- and oom- files left in OUT_DIR/<target>/).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 3 ]; then
    echo "usage: $0 FUZZ_BUILD_DIR OUT_DIR SECONDS [TARGET...]" >&2
    exit 2
fi
build=$1 out=$2 secs=$3
shift 3
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n '/^set(HARVBK_FUZZ_TARGETS/,/)/p' "$HERE/CMakeLists.txt" |
                           tr -s ' ()\n' '\n' | grep -v -e '^set$' -e '^HARVBK_FUZZ_TARGETS$' -e '^$')
fi
mkdir -p "$out"

one() {
    local t=$1 build=$2 out=$3 secs=$4 here=$5
    local w=$out/$t
    rm -rf "$w"
    mkdir -p "$w/corpus"
    cp "$here/corpus/$t"/* "$w/corpus/" 2>/dev/null
    [ -d "$here/regressions/$t" ] && cp "$here/regressions/$t"/* "$w/corpus/"
    local extra=()
    [ "$t" = ranges_file ] && extra=(-close_fd_mask=2)
    "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$w/" "${extra[@]}" "$w/corpus" >"$w/fuzz.log" 2>&1
    echo "$?" >"$w/rc"
}
export -f one
printf '%s\n' "${targets[@]}" |
    xargs -P "${HARVBK_JOBS:-2}" -I{} bash -c 'one "$@"' _ {} "$build" "$out" "$secs" "$HERE"

echo "| target | executions | exec/s | cov | ft | corpus | found |"
echo "|---|---:|---:|---:|---:|---:|---|"
for t in "${targets[@]}"; do
    w=$out/$t
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$w/fuzz.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$w/fuzz.log")
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$w/fuzz.log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
    found=$(cd "$w" && ls crash-* leak-* timeout-* oom-* slow-unit-* 2>/dev/null | tr '\n' ' ')
    [ "$(cat "$w/rc" 2>/dev/null)" = 0 ] || found="exit $(cat "$w/rc" 2>/dev/null) ${found}"
    echo "| $t | ${runs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | ${found:-none} |"
done
