#!/usr/bin/env bash
# scripts/demo.sh - README command 1: install the dependencies, build, and run
# `harvbk demo` (backs up a small VM into a file:// target and restores it)
# in a temporary directory that is removed afterwards.
#
# Environment: HARVBK_BUILD_DIR (default build), HARVBK_JOBS (default nproc).
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
BUILD=${HARVBK_BUILD_DIR:-build}

echo "== dependencies"
bash scripts/deps.sh
echo "== building the harvbk CLI in $BUILD/ (RelWithDebInfo)"
build_tree "$BUILD" harvbk_cli -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARVBK_SANITIZE=OFF
cli=$(find_cli "$BUILD") || { echo "demo.sh: the harvbk CLI was not built" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "== $cli demo   (state and data under $tmp, removed afterwards)"
echo
cd "$tmp"
TMPDIR="$tmp" HARVBK_STATE="$tmp/state" "$cli" --state "$tmp/state" demo
