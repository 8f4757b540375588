#!/usr/bin/env bash
# scripts/deps.sh - install the packages libharvbk needs to build and test
# (Debian 12). Installs only what is missing; quiet when nothing is to do.
#
#   scripts/deps.sh            build + test dependencies
#   scripts/deps.sh --bench    also the benchmark peers (restic, borgbackup)
#
# The S3 tests also need node + npm (installed from Debian only when the
# commands are missing) and the npm package s3rver 3.x, installed into
# $HARVBK_S3RVER_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/harvbk/s3rver-VERSION),
# where tests/s3/s3env.sh looks for it.
#
# Runs apt-get through sudo when not root. `apt-get update` runs only when
# something has to be installed.
set -euo pipefail

BASE_PKGS=(build-essential cmake pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev
           libnfs-dev libcjson-dev libcmocka-dev libzstd-dev liblz4-dev abigail-tools
           valgrind python3-botocore python3-boto3 openssl
           nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2 tzdata
           golang-go python3-pytest python3-pip python3-setuptools python3-wheel
           xfsprogs util-linux clang libclang-rt-dev libfuse3-dev)
BENCH_PKGS=(restic borgbackup)
S3RVER_VERSION=3.7.1
S3RVER_DIR=${HARVBK_S3RVER_DIR:-${XDG_CACHE_HOME:-~/.cache}/harvbk/s3rver-$S3RVER_VERSION}

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

# s3rver from npm into S3RVER_DIR (after the Debian packages: needs npm)
install_s3rver() {
    [ -f "$S3RVER_DIR/.harvbk-installed" ] && return 0  # written once npm succeeded
    mkdir -p "$S3RVER_DIR"
    echo "deps.sh: installing s3rver@$S3RVER_VERSION into $S3RVER_DIR" >&2
    local npmlog
    npmlog=$(mktemp "${TMPDIR:-/tmp}/harvbk-npm.XXXXXX")
    if ! npm install --prefix "$S3RVER_DIR" --no-audit --no-fund --omit=dev \
            "s3rver@$S3RVER_VERSION" >"$npmlog" 2>&1; then
        tail -n 40 "$npmlog" >&2
        rm -f "$npmlog"
        echo "deps.sh: npm install of s3rver failed (see above)" >&2
        exit 1
    fi
    rm -f "$npmlog"
    touch "$S3RVER_DIR/.harvbk-installed"
}

missing=()
for p in "${want[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed$'; then
        missing+=("$p")
    fi
done
# node/npm may come from elsewhere (e.g. NodeSource's nodejs bundles npm)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
    install_s3rver
    exit 0
fi

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
install_s3rver
