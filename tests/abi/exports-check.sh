#!/usr/bin/env bash
# tests/abi/exports-check.sh LIBRARY INCLUDE_DIR C_COMPILER
#
# The shared library exports exactly the public API:
#   - its SONAME is libharvbk.so.1;
#   - `nm -D --defined-only` lists only harvbk_* symbols, each carrying a
#     version of the HARVBK_1.x node, plus the version node itself;
#   - every HARVBK_API function declared in include/harvbk/*.h is exported;
#   - every exported symbol is declared HARVBK_API in a public header (nothing
#     internal leaks into the ABI by accident);
#   - include/harvbk.h includes every include/harvbk/*.h.
# Declarations are read from the preprocessed headers (comments gone,
# declarations spanning lines joined), with HARVBK_API expanded to its
# visibility attribute.
set -uo pipefail
lib=$1 inc=$2 cc=$3
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

soname=$(readelf -d "$lib" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')
if [ "$soname" = "libharvbk.so.1" ]; then
    echo "ok   SONAME $soname"
else
    fail "SONAME is '$soname', expected libharvbk.so.1"
fi

for h in "$inc"/harvbk/*.h; do
    b=$(basename "$h")
    grep -qE "^#include \"harvbk/$b\"" "$inc/harvbk.h" || fail "harvbk.h does not include harvbk/$b"
done

# exported symbols: "ADDR TYPE NAME@@VERSION" or "0 A VERSIONNODE"
exported=()
while read -r a b c; do
    if [ -z "$c" ]; then type=$a sym=$b; else type=$b sym=$c; fi
    name=${sym%%@*}
    ver=${sym#"$name"}
    ver=${ver#@}
    ver=${ver#@}
    if [ "$type" = A ]; then
        [[ $name =~ ^HARVBK_1\.[0-9]+$ ]] || fail "unexpected version node $name"
        continue
    fi
    if [[ ! $name =~ ^harvbk_ ]]; then
        fail "exported symbol outside the harvbk_ namespace: $name ($type)"
        continue
    fi
    [[ $ver =~ ^HARVBK_1\.[0-9]+$ ]] || fail "$name has no HARVBK_1.x symbol version ('$ver')"
    exported+=("$name")
done < <(nm -D --defined-only "$lib")
echo "ok   ${#exported[@]} harvbk_* symbols exported"

tu=$(mktemp "${TMPDIR:-/tmp}/harvbk-exports.XXXXXX.c")
trap 'rm -f "$tu"' EXIT
for h in "$inc"/harvbk/*.h; do echo "#include <harvbk/$(basename "$h")>"; done >"$tu"
declared=()
while IFS= read -r decl; do
    rest=${decl#*visibility(\"default\")))}
    name=$(grep -oE '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\(' <<<"$rest" | head -n 1 | tr -d '( \t')
    if [ -z "$name" ]; then
        fail "cannot read the name of a HARVBK_API declaration: $decl"
    elif [[ ! $name =~ ^harvbk_ ]]; then
        fail "HARVBK_API function outside the harvbk_ namespace: $name"
    else
        declared+=("$name")
    fi
done < <("$cc" -E -P -DHARVBK_BUILDING_LIBRARY -I"$inc" "$tu" | tr '\n' ' ' | tr ';{}' '\n' |
         grep -F 'visibility("default")')
echo "ok   ${#declared[@]} HARVBK_API functions declared in $inc/harvbk/*.h"
[ ${#declared[@]} -gt 0 ] || fail "no HARVBK_API declaration found"

missing=$(comm -23 <(printf '%s\n' "${declared[@]}" | sort -u) <(printf '%s\n' "${exported[@]}" | sort -u))
extra=$(comm -13 <(printf '%s\n' "${declared[@]}" | sort -u) <(printf '%s\n' "${exported[@]}" | sort -u))
for s in $missing; do fail "declared HARVBK_API but not exported: $s"; done
for s in $extra; do fail "exported but not declared in a public header: $s"; done

if [ $fails -ne 0 ]; then
    echo "$fails problem(s)"
    exit 1
fi
echo "PASS: exports match the public headers"
