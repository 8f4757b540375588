#!/usr/bin/env bash
# scripts/update-abi-baseline.sh [BUILD_DIR] - regenerate the ABI baselines
# after an intentional, compatible addition to the public API (docs/ABI.md):
#   tests/abi/libharvbk.abi   abidw description of libharvbk.so.1
#   tests/abi/constants.txt   error codes, enum values, flags
# Builds the library in BUILD_DIR (default build-abi/: RelWithDebInfo, no
# sanitizers), shows what changed against the old baselines, then rewrites them.
# Review with `git diff tests/abi`: only additions belong in a 1.x release.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
BUILD=${1:-build-abi}

bash scripts/deps.sh
echo "== building libharvbk in $BUILD/"
build_tree "$BUILD" harvbk -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARVBK_SANITIZE=OFF \
    -DHARVBK_BUILD_TESTS=OFF -DHARVBK_BUILD_BENCH=OFF
lib=$(find "$BUILD" -maxdepth 3 -name libharvbk.so.1 | head -n 1)
[ -n "$lib" ] || { echo "update-abi-baseline.sh: libharvbk.so.1 not found in $BUILD" >&2; exit 1; }
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
cc=${cc:-cc}

if [ -s tests/abi/libharvbk.abi ]; then
    echo "== against the current baseline"
    bash tests/abi/abidiff-check.sh "$lib" include tests/abi/libharvbk.abi || true
    bash tests/abi/constants.sh check "$cc" include tests/abi/constants.txt || true
fi

echo "== writing the baselines"
bash tests/abi/abi-dump.sh "$lib" include tests/abi/libharvbk.abi
echo "wrote tests/abi/libharvbk.abi ($(grep -c '<elf-symbol ' tests/abi/libharvbk.abi) symbols)"
bash tests/abi/constants.sh write "$cc" include tests/abi/constants.txt
echo "review: git diff tests/abi"
