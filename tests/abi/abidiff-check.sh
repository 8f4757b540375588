#!/usr/bin/env bash
# tests/abi/abidiff-check.sh LIBRARY INCLUDE_DIR BASELINE
#
# Compares the ABI of LIBRARY with the committed BASELINE (tests/abi/libharvbk.abi)
# and decides whether the change keeps every 1.x program working.
#
# abidiff's exit status is a bit set (libabigail abidiff manual):
#   1 ABIDIFF_ERROR, 2 ABIDIFF_USAGE_ERROR   -> the check itself failed: FAIL
#   8 ABIDIFF_ABI_INCOMPATIBLE_CHANGE        -> a function or variable was removed: FAIL
#   4 ABIDIFF_ABI_CHANGE                     -> some change; it is also set for mere
#                                               additions, so the report decides:
#       FAIL when the summary counts any removed or changed function/variable
#            (a changed parameter, return or pointed-to public type, a changed
#            enumerator value...), any removed symbol, or a changed SONAME;
#       PASS when it only counts added functions/variables (1.x may add).
#   0                                        -> identical: PASS
# Changes inside the structs behind opaque handles (harvbk_ctx, harvbk_op, ...:
# a struct named harvbk_* whose definition is not in a public header) are not
# ABI: a suppression file filters exactly those. Not `--headers-dir2 include`:
# it treats every type defined outside include/ as private, including
# <stdint.h> typedefs, and so passed a parameter changed from uint64_t to
# uint32_t (tried; docs/ABI.md). Appending a member to a versioned options
# struct is reported as a change: review it and regenerate the baseline.
set -uo pipefail
lib=$1 inc=$2 baseline=$3

if ! command -v abidiff >/dev/null; then
    echo "FAIL: abidiff not installed (abigail-tools; scripts/deps.sh)"
    exit 1
fi
if [ ! -s "$baseline" ]; then
    echo "FAIL: no ABI baseline at $baseline (generate it: scripts/update-abi-baseline.sh)"
    exit 1
fi
suppr=$(mktemp "${TMPDIR:-/tmp}/harvbk-abi.XXXXXX.suppr")
trap 'rm -f "$suppr"' EXIT
public=$( (cd "$inc" && ls harvbk.h harvbk/*.h) | xargs -n 1 basename | paste -sd, -)
cat >"$suppr" <<SUPPR
# the private structs behind the public opaque handles
[suppress_type]
  type_kind = struct
  name_regexp = ^harvbk_
  source_location_not_in = $public
SUPPR
report=$(abidiff --suppressions "$suppr" "$baseline" "$lib" 2>&1)
rc=$?
printf '%s\n' "$report"
echo "abidiff exit status: $rc"

if (( rc & 3 )); then
    echo "FAIL: abidiff could not compare (status $rc)"
    exit 1
fi
if (( rc & 8 )); then
    echo "FAIL: incompatible ABI change (a function or variable was removed or changed incompatibly)"
    exit 1
fi
if (( rc == 0 )); then
    echo "PASS: no ABI change against the baseline"
    exit 0
fi

# rc has bit 4 only: read the summary lines, e.g.
#   Functions changes summary: 0 Removed, 1 Changed (2 filtered out), 1 Added function
#   Variables changes summary: 0 Removed, 0 Changed, 0 Added variable
#   Function symbols changes summary: 0 Removed, 0 Added function symbol not referenced by debug info
bad=0
added=0
while IFS= read -r line; do
    case "$line" in
        *"changes summary:"*)
            r=$(sed -nE 's/.*summary: ([0-9]+) Removed.*/\1/p' <<<"$line")
            c=$(sed -nE 's/.* ([0-9]+) Changed.*/\1/p' <<<"$line")
            a=$(sed -nE 's/.* ([0-9]+) Added.*/\1/p' <<<"$line")
            (( ${r:-0} > 0 || ${c:-0} > 0 )) && bad=1
            (( added += ${a:-0} ))
            ;;
    esac
done <<<"$report"
if grep -qiE 'SONAME changed|architecture changed' <<<"$report"; then
    bad=1
fi
if (( bad )); then
    echo "FAIL: the ABI changed in a way 1.x programs would notice (see the report above)."
    echo "      Only additions are allowed in 1.x; see docs/ABI.md."
    exit 1
fi
if (( added > 0 )); then
    echo "PASS: only additions ($added). Record them in the baseline with scripts/update-abi-baseline.sh."
    exit 0
fi
echo "FAIL: abidiff reports a change the check does not recognise (see above)"
exit 1
