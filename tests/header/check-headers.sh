#!/usr/bin/env bash
# tests/header/check-headers.sh c|c++ COMPILER INCLUDE_DIR WORK_DIR
#
# Compiles the public headers with strict warnings as errors:
#   - include/harvbk.h alone, and included twice (include guards);
#   - every include/harvbk/*.h alone (each header is self-contained);
#   - a unit that initialises every options struct with its *_OPTIONS_INIT
#     macro (the macros must list every field: -Wmissing-field-initializers).
# C: -std=c99 -pedantic; C++: -std=c++11 -pedantic (extern "C" blocks, no C-only
# constructs in the headers).
set -euo pipefail
lang=$1 cc=$2 inc=$3 work=$4

case "$lang" in
    c)   ext=c;   flags=(-x c -std=c99 -pedantic -Wall -Wextra -Werror -Wstrict-prototypes
                         -Wundef -Wshadow -Wmissing-field-initializers) ;;
    c++) ext=cpp; flags=(-x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -Wundef -Wshadow
                         -Wmissing-field-initializers -Wold-style-cast) ;;
    *)   echo "usage: $0 c|c++ COMPILER INCLUDE_DIR WORK_DIR" >&2; exit 2 ;;
esac

rm -rf "$work"
mkdir -p "$work"
failed=0
compile() { # NAME SOURCE-TEXT
    local f="$work/$1.$ext"
    printf '%s\n' "$2" >"$f"
    if "$cc" "${flags[@]}" -I"$inc" -c "$f" -o "$work/$1.o" 2>"$work/$1.err"; then
        echo "ok   $1"
    else
        echo "FAIL $1"
        sed 's/^/     /' "$work/$1.err"
        failed=1
    fi
}

compile umbrella '#include <harvbk.h>
int harvbk_header_test_dummy;'
compile umbrella-twice '#include <harvbk.h>
#include <harvbk.h>
int harvbk_header_test_dummy;'
for h in "$inc"/harvbk/*.h; do
    b=$(basename "$h" .h)
    compile "alone-$b" "#include <harvbk/$b.h>
int harvbk_header_test_dummy;"
done

# every HARVBK_X_OPTIONS_INIT initialises a harvbk_x_options
inits=$(cat "$inc"/harvbk/*.h | grep -oE '^#define HARVBK_[A-Z0-9_]+_OPTIONS_INIT\b' |
        awk '{print $2}' | sort -u)
body=""
n=0
for m in $inits; do
    t=$(printf '%s' "${m%_INIT}" | tr '[:upper:]' '[:lower:]')
    v="${m%_INIT}_VERSION"
    n=$((n + 1))
    body+="    $t v$n = $m;
    if (v$n.version != $v) return $n;
"
done
compile options-init "#include <harvbk.h>
int harvbk_header_test_options(void);
int harvbk_header_test_options(void)
{
$body    return 0;
}"
echo "$n options structs checked"

exit $failed
