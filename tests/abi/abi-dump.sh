#!/usr/bin/env bash
# tests/abi/abi-dump.sh LIBRARY INCLUDE_DIR OUT
#
# Writes the ABI of LIBRARY (libharvbk.so.1, built with -g) as libabigail XML.
# The flags keep the file free of machine paths and stable between checkouts:
#   --exported-interfaces-only  only the exported functions and the types they
#                        reach (no declarations of internal hb_* functions)
#   --short-locs         file names without directories
#   --no-corpus-path --no-comp-dir-path --no-elf-needed --type-id-style hash
#   --headers-dir        the public headers (informational for abidw)
# Not --drop-private-types: it turns the structs behind opaque handles into
# declarations, and abidiff then filters changes so broadly that it misses a
# member appended to a public options struct (tried; see docs/ABI.md).
# Used by scripts/update-abi-baseline.sh.
set -euo pipefail
lib=$1 inc=$2 out=$3
command -v abidw >/dev/null || { echo "abidw not installed (abigail-tools; scripts/deps.sh)" >&2; exit 1; }
exec abidw --no-corpus-path --no-comp-dir-path --no-elf-needed --short-locs \
    --type-id-style hash --exported-interfaces-only \
    --headers-dir "$inc" --out-file "$out" "$lib"
