#!/usr/bin/env bash
# scripts/test.sh - README command 2 and what CI runs (.ci/run): the whole
# test suite, four ways.
#
#   1. build/       RelWithDebInfo build, `ctest --output-on-failure`
#                   (unit, e2e, abi, header, install tests; the fuzz targets
#                   of tests/fuzz once over their corpus and regression inputs)
#   2. build-asan/  -DHARVBK_SANITIZE=ON (AddressSanitizer + UBSan), whole ctest suite
#   3. build-fuzz/  clang -DHARVBK_FUZZ=ON: every fuzz target under libFuzzer,
#                   ASan and UBSan for HARVBK_FUZZ_SECONDS (default 15) each,
#                   starting from its corpus (skipped, with a note, when clang
#                   cannot build libFuzzer programs)
#   4. valgrind     every test program of build/ under
#                   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect;
#                   tests named *crash* or *bench* and script-driven tests
#                   (abi/header/install checks, the Python binding's pytest
#                   runs, label python) are skipped, except the
#                   examples' tests (label examples), whose script runs the
#                   example under valgrind (HARVBK_EXAMPLE_WRAPPER)
# The Python binding's tests (label python) run in pass 1 only: they are not
# registered in the sanitizer build (ctypes cannot load an ASan library into
# an uninstrumented interpreter) and valgrind skips them. The Go binding's
# tests (label go) likewise run in pass 1 only.
# Prints a summary; exits non-zero when anything failed.
#
# Options: --no-asan, --no-fuzz, --no-valgrind (quicker local runs).
# Environment: HARVBK_BUILD_DIR (default build), HARVBK_ASAN_BUILD_DIR (default
#   build-asan), HARVBK_FUZZ_BUILD_DIR (default build-fuzz), HARVBK_FUZZ_SECONDS
#   (seconds per fuzz target, default 15), HARVBK_JOBS (parallel jobs, default nproc),
#   HARVBK_VALGRIND_TIMEOUT (seconds per test under valgrind, default 900),
#   HARVBK_VALGRIND_CLI=1 (also run the CLI that e2e tests start under valgrind).
set -uo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

do_asan=1
do_fuzz=1
do_valgrind=1
for arg in "$@"; do
    case "$arg" in
        --no-asan) do_asan=0 ;;
        --no-fuzz) do_fuzz=0 ;;
        --no-valgrind) do_valgrind=0 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

B=${HARVBK_BUILD_DIR:-build}
BA=${HARVBK_ASAN_BUILD_DIR:-build-asan}
BF=${HARVBK_FUZZ_BUILD_DIR:-build-fuzz}
SUMMARY=()
FAILED=0
T0=$(date +%s)
stage_start() { STAGE=$1; STAGE_T0=$(date +%s); echo; echo "==== $STAGE"; }
stage_end() { # ok|FAIL|skipped [note]
    local status=$1 note=${2:-}
    SUMMARY+=("$(printf '%-22s %-8s %5ss  %s' "$STAGE" "$status" $(( $(date +%s) - STAGE_T0 )) "$note")")
    [ "$status" = FAIL ] && FAILED=1
    return 0
}
ctest_counts() { # LOG -> "N tests, M failed"
    sed -nE 's/.*tests passed, ([0-9]+) tests failed out of ([0-9]+).*/\2 tests, \1 failed/p' "$1" | tail -n 1
}

# ---- 0. dependencies
stage_start "dependencies"
if bash scripts/deps.sh; then stage_end ok; else stage_end FAIL; fi

# ---- 1. ordinary build + ctest
stage_start "build"
if build_tree "$B" - -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARVBK_SANITIZE=OFF; then
    stage_end ok
    stage_start "ctest"
    ctest --test-dir "$B" --output-on-failure -j"$JOBS" 2>&1 | tee "$B/ctest.log"
    if [ "${PIPESTATUS[0]}" -eq 0 ]; then stage_end ok "$(ctest_counts "$B/ctest.log")"
    else stage_end FAIL "$(ctest_counts "$B/ctest.log")"; fi
    build_ok=1
else
    stage_end FAIL "see $B/build.log"
    build_ok=0
fi

# ---- 2. sanitizers
if [ $do_asan -eq 1 ]; then
    stage_start "asan+ubsan build"
    if build_tree "$BA" - -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARVBK_SANITIZE=ON; then
        stage_end ok
        stage_start "asan+ubsan ctest"
        ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
            ctest --test-dir "$BA" --output-on-failure -j"$JOBS" 2>&1 | tee "$BA/ctest.log"
        if [ "${PIPESTATUS[0]}" -eq 0 ]; then stage_end ok "$(ctest_counts "$BA/ctest.log")"
        else stage_end FAIL "$(ctest_counts "$BA/ctest.log")"; fi
    else
        stage_end FAIL "see $BA/build.log"
    fi
fi

# ---- 3. fuzzing: libFuzzer + ASan + UBSan, a fixed time per target
# Can clang build a libFuzzer program here? (Debian: clang + libclang-rt-dev)
fuzz_toolchain() {
    command -v clang >/dev/null 2>&1 || return 1
    local t
    t=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-fuzzcheck.XXXXXX") || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$t/t.c"
    clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$t"
    return $rc
}
if [ $do_fuzz -eq 1 ]; then
    stage_start "fuzz build"
    if ! fuzz_toolchain; then
        stage_end skipped "clang cannot build libFuzzer programs (install clang, libclang-rt-dev)"
    elif build_tree "$BF" - -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DHARVBK_FUZZ=ON -DHARVBK_FUZZ_SECONDS="${HARVBK_FUZZ_SECONDS:-15}"; then
        stage_end ok
        stage_start "fuzz ctest"
        ctest --test-dir "$BF" --output-on-failure -j"$JOBS" 2>&1 | tee "$BF/ctest.log"
        if [ "${PIPESTATUS[0]}" -eq 0 ]; then stage_end ok "$(ctest_counts "$BF/ctest.log")"
        else stage_end FAIL "$(ctest_counts "$BF/ctest.log"); inputs in $BF/fuzz-work/"; fi
    else
        stage_end FAIL "see $BF/build.log"
    fi
fi

# ---- 4. valgrind over the test programs of the ordinary build
run_valgrind() {
    local dir=$B/valgrind
    rm -rf "$dir"
    mkdir -p "$dir"
    ctest --test-dir "$B" --show-only=json-v1 >"$dir/tests.json" || return 1
    cmake -DJSON="$dir/tests.json" -DOUT="$dir/cmd" -P cmake/ctest-commands.cmake || return 1
    # shellcheck disable=SC2054 # the commas belong to valgrind options
    local vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect
              --error-exitcode=99 --num-callers=40 --child-silent-after-fork=yes)
    local timeout_s=${HARVBK_VALGRIND_TIMEOUT:-900}
    local selected=() skipped=0 s3env=
    while read -r idx name _labels _timeout program; do
        if [[ $name == *crash* || $name == *bench* ]]; then
            echo "skip $name (crash/bench tests are not run under valgrind)"
            skipped=$((skipped + 1)); continue
        fi
        # the examples' tests (label examples) are a script that runs the
        # example under $HARVBK_EXAMPLE_WRAPPER: set to valgrind below
        if [[ ,$_labels, == *,examples,* ]]; then
            : >"$dir/$idx.example"
            selected+=("$idx:$name"); continue
        fi
        if [[ ,$_labels, == *,python,* ]]; then
            echo "skip $name (Python binding tests: the interpreter is not a test program)"
            skipped=$((skipped + 1)); continue
        fi
        if [ "$program" = - ] || [ ! -f "$program" ] ||
           [ "$(head -c 4 "$program" | od -An -c | tr -d ' ')" != '177ELF' ] ||
           [[ $program == */bash || $program == */sh ]]; then
            echo "skip $name (not a test program)"
            skipped=$((skipped + 1)); continue
        fi
        # S3 tests (label s3) need the S3 servers of their ctest fixture, started
        # below at the same place, and share them: one at a time (flock)
        if [[ ,$_labels, == *,s3,* ]]; then
            : >"$dir/$idx.s3"
            s3env=$(sed -n "s/.*'HARVBK_TEST_S3_ENV=\([^']*\)'.*/\1/p" "$dir/cmd/$idx.sh")
        fi
        selected+=("$idx:$name")
    done <"$dir/cmd/tests.txt"
    echo "running ${#selected[@]} test programs under valgrind, $JOBS at a time"
    if [ -n "$s3env" ]; then
        bash tests/s3/s3env.sh start "$(dirname "$s3env")" ||
            echo "the S3 test servers did not start: the S3 tests will fail"
    fi

    local cli_wrapper=""
    [ "${HARVBK_VALGRIND_CLI:-0}" = 1 ] && cli_wrapper="${vg[*]}"
    export HARVBK_E2E_TIMEOUT_SCALE=${HARVBK_E2E_TIMEOUT_SCALE:-10}
    export HARVBK_CLI_WRAPPER=$cli_wrapper
    # shellcheck disable=SC2016 # expanded by the inner bash
    printf '%s\n' "${selected[@]}" |
        xargs -P "$JOBS" -I{} bash -c '
            idx=${1%%:*} name=${1#*:} dir=$2 t=$3; shift 3
            log="$dir/$idx.log"
            start=$(date +%s)
            lock=()
            [ -e "$dir/$idx.s3" ] && lock=(flock "$dir/s3.lock")
            if [ -e "$dir/$idx.example" ]; then
                export HARVBK_EXAMPLE_WRAPPER="$*"
                set --
            fi
            "${lock[@]}" timeout -k 10 "$t" bash "$dir/cmd/$idx.sh" "$@" >"$log" 2>&1
            rc=$?
            echo "$rc" >"$dir/$idx.rc"
            s=$(( $(date +%s) - start ))
            if [ $rc -eq 0 ]; then echo "ok   $name (${s}s)"
            elif [ $rc -eq 99 ]; then echo "FAIL $name: valgrind found errors (${s}s)"
            elif [ $rc -eq 124 ]; then echo "FAIL $name: timed out after ${t}s"
            else echo "FAIL $name: exit status $rc (${s}s)"; fi
        ' _ {} "$dir" "$timeout_s" "${vg[@]}"
    [ -n "$s3env" ] && bash tests/s3/s3env.sh stop "$(dirname "$s3env")"

    local failed=0 n=0
    for entry in "${selected[@]}"; do
        local idx=${entry%%:*} name=${entry#*:}
        n=$((n + 1))
        if [ "$(cat "$dir/$idx.rc" 2>/dev/null || echo 1)" != 0 ]; then
            failed=$((failed + 1))
            echo
            echo "---- $name under valgrind ($dir/$idx.log, last 150 lines) ----"
            tail -n 150 "$dir/$idx.log"
        fi
    done
    VALGRIND_NOTE="$n tests, $failed failed, $skipped skipped"
    [ $failed -eq 0 ] && [ $n -gt 0 ]
}
if [ $do_valgrind -eq 1 ]; then
    stage_start "valgrind"
    if [ $build_ok -ne 1 ]; then
        stage_end FAIL "no build"
    elif run_valgrind; then
        stage_end ok "$VALGRIND_NOTE"
    else
        stage_end FAIL "${VALGRIND_NOTE:-could not list the tests}"
    fi
fi

echo
echo "==== summary ($(( $(date +%s) - T0 ))s)"
printf '%s\n' "${SUMMARY[@]}"
if [ $FAILED -ne 0 ]; then
    echo "RESULT: FAILED"
    exit 1
fi
echo "RESULT: all passed"
