#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh - one fuzz target of a HARVBK_FUZZ build for a fixed
# time, as ctest runs it:
#   run-fuzz.sh FUZZER WORKDIR SECONDS RSS_MB CORPUS_DIR [REGRESSION_DIR]
# The committed corpus and regression inputs are read, never written: new
# inputs go to WORKDIR/corpus, crashes to WORKDIR/ (crash-*, leak-*,
# timeout-*, oom-*). Exits non-zero when libFuzzer found anything; prints
# libFuzzer's final statistics (executions, coverage).
# Environment: FUZZ_EXTRA_ARGS (more libFuzzer options).
set -uo pipefail
if [ $# -lt 5 ]; then
    echo "usage: $0 FUZZER WORKDIR SECONDS RSS_MB CORPUS_DIR [REGRESSION_DIR]" >&2
    exit 2
fi
fuzzer=$1 work=$2 secs=$3 rss=$4 corpus=$5 regress=${6:-}
rm -rf "$work"
mkdir -p "$work/corpus"
dirs=("$work/corpus" "$corpus")
[ -n "$regress" ] && [ -d "$regress" ] && dirs+=("$regress")
args=(-max_total_time="$secs" -rss_limit_mb="$rss" -timeout=60 -print_final_stats=1
      -artifact_prefix="$work/")
# the CLI's changed-ranges loader reports every bad line on stderr
case "$(basename "$fuzzer")" in
    fuzz_ranges_file) args+=(-close_fd_mask=2) ;;
esac
# shellcheck disable=SC2206 # word splitting wanted
args+=(${FUZZ_EXTRA_ARGS:-})
"$fuzzer" "${args[@]}" "${dirs[@]}" >"$work/fuzz.log" 2>&1
rc=$?
grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|Done )' "$work/fuzz.log" | tail -n 12
if [ $rc -ne 0 ]; then
    echo "---- $(basename "$fuzzer") failed (exit $rc); end of $work/fuzz.log:"
    tail -n 80 "$work/fuzz.log"
    ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null
fi
exit $rc
