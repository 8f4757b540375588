#!/usr/bin/env bash
# scripts/deps.sh - install the packages libharvbk needs to build and test
# (Debian 12). Installs only what is missing; quiet when nothing is to do.
#
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --bench    also the benchmark peers (restic, borgbackup)
#
# Runs apt-get through sudo when not root. `apt-get update` runs only when
# something has to be installed.
set -euo pipefail

BASE_PKGS=(build-essential cmake pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev
           libnfs-dev libcjson-dev libcmocka-dev libzstd-dev liblz4-dev abigail-tools
           valgrind)
BENCH_PKGS=(restic borgbackup)

want=("${BASE_PKGS[@]}")
for arg in "$@"; do
    case "$arg" in
        --bench) want+=("${BENCH_PKGS[@]}") ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "deps.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; install the equivalents of: ${want[*]}" >&2
    exit 0
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "deps.sh: installing ${missing[*]}" >&2
log=$(mktemp "${TMPDIR:-/tmp}/harvbk-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
       "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
           --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "deps.sh: apt-get failed (see above)" >&2
    exit 1
fi
