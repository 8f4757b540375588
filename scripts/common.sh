# shellcheck shell=bash
# scripts/common.sh - helpers shared by the scripts (sourced, not run).
# Sets ROOT (the repository root) and cds there.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
JOBS=${HARVBK_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Run a command with its output in LOG; on failure show the end of the log.
# quiet_run LOG CMD...
quiet_run() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 && return 0
    local rc=$?
    echo "---- last lines of $log ----" >&2
    tail -n 80 "$log" >&2
    echo "---- command failed ($rc): $* ----" >&2
    return $rc
}

# Configure and build DIR with extra cmake arguments; logs in DIR/*.log.
# build_tree DIR [TARGET|-] [CMAKE ARGS...]
build_tree() {
    local dir=$1 target=$2
    shift 2
    mkdir -p "$dir"
    quiet_run "$dir/configure.log" cmake -S "$ROOT" -B "$dir" "$@" || return 1
    if [ "$target" = - ]; then
        quiet_run "$dir/build.log" cmake --build "$dir" -j"$JOBS" || return 1
    else
        quiet_run "$dir/build.log" cmake --build "$dir" -j"$JOBS" --target "$target" || return 1
    fi
    local warnings
    warnings=$(grep -c 'warning:' "$dir/build.log" || true)
    [ "$warnings" = 0 ] || echo "   ($warnings compiler warnings, see $dir/build.log)"
}

# Print the path of the harvbk CLI built in DIR.
find_cli() {
    local dir=$1 HARVBK_CLI=
    # shellcheck disable=SC1091
    [ -f "$dir/harvbk-paths.sh" ] && . "$dir/harvbk-paths.sh"
    if [ -z "$HARVBK_CLI" ] || [ ! -x "$HARVBK_CLI" ]; then
        HARVBK_CLI=$(find "$dir" -maxdepth 3 -type f -name harvbk -perm -u+x 2>/dev/null | head -n 1)
    fi
    [ -n "$HARVBK_CLI" ] || return 1
    printf '%s\n' "$HARVBK_CLI"
}
