#!/usr/bin/env bash
# tests/layers-check.sh SRC_DIR - the one-way dependencies between the layers
# of src/ (docs/CONTRIBUTING-INTERNAL.md): fails when
#   - a file of src/state includes an ops/ or engine/ header, or names the
#     context (harvbk_ctx, in code or comments);
#   - a file of src/core or src/store includes a state/ or ops/ header.
set -uo pipefail
src=${1:?usage: layers-check.sh SRC_DIR}
fail=0
inc='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]'

bad() { # DIR PATTERN WHAT
    local hits
    hits=$(grep -EnH -- "$2" "$src/$1"/*.[ch] 2>/dev/null)
    if [ -n "$hits" ]; then
        echo "layers-check: src/$1 must not $3:" >&2
        echo "$hits" >&2
        fail=1
    fi
}

[ -d "$src/state" ] || { echo "layers-check: no $src/state" >&2; exit 1; }
bad state "${inc}([^\">]*/)?(ops|engine)/" "include ops/ or engine/ headers"
bad state "${inc}(ops|engine)\\.h" "include ops or engine headers"
bad state 'harvbk_ctx' "know the context (harvbk_ctx)"
for d in core store; do
    bad "$d" "${inc}([^\">]*/)?(state|ops)/" "include state/ or ops/ headers"
done
[ "$fail" -eq 0 ] && echo "layers-check: ok"
exit "$fail"
