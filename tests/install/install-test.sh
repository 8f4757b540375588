#!/usr/bin/env bash
# tests/install/install-test.sh BUILD_DIR SOURCE_DIR WORK_DIR C_COMPILER VERSION [CMAKE]
#
# Installs the build into WORK_DIR/prefix (cmake --install --prefix), then
# builds tests/install/consumer/consumer.c against the installed files four
# ways and runs each program, which must print "harvbk VERSION":
#   pkg-config harvbk           (shared, LD_LIBRARY_PATH -> prefix)
#   pkg-config harvbk-static    (libharvbk.a; must not need libharvbk.so)
#   find_package harvbk::harvbk and harvbk::harvbk_static (CMake)
# It also checks the installed files a user relies on.
set -euo pipefail
build=$1 src=$2 work=$3 cc=$4 version=$5 cmake=${6:-cmake}
consumer_src="$src/tests/install/consumer"

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "-- $*"; }

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed"; }

# where GNUInstallDirs put things (lib, lib64 or lib/<multiarch>)
pcfile=$(find "$prefix" -name harvbk.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pcfile" ] || fail "harvbk.pc not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
for f in "$prefix/include/harvbk.h" "$libdir/libharvbk.so.1" "$libdir/libharvbk.so" \
         "$libdir/libharvbk.a" "$pcdir/harvbk-static.pc" \
         "$libdir/cmake/harvbk/harvbkConfig.cmake" \
         "$libdir/cmake/harvbk/harvbkConfigVersion.cmake"; do
    [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
for h in "$src"/include/harvbk/*.h; do
    [ -e "$prefix/include/harvbk/$(basename "$h")" ] || fail "header not installed: $(basename "$h")"
done
if grep -rqF -- "$src/include" "$pcdir" "$libdir/cmake/harvbk"; then
    fail "installed package files point into the source tree"
fi
grep -qxF "prefix=$prefix" "$pcfile" || fail "harvbk.pc: prefix is not $prefix"

check_run() { # NAME PROGRAM [env...]
    local name=$1 prog=$2
    shift 2
    local out
    out=$(env "$@" "$prog") || fail "$name: program failed"
    [ "$out" = "harvbk $version" ] || fail "$name: printed '$out', expected 'harvbk $version'"
    echo "   $name: $out"
}

export PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
step "pkg-config ($pcfile)"
[ "$(pkg-config --modversion harvbk)" = "$version" ] || fail "pkg-config --modversion harvbk"
pkg-config --static --libs harvbk | grep -q -- '-lzstd' ||
    fail "pkg-config --static --libs harvbk lacks the private dependencies"
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/pc_shared" "$consumer_src/consumer.c" \
    $(pkg-config --cflags --libs harvbk) || fail "build with pkg-config harvbk"
check_run "pkg-config harvbk" "$work/pc_shared" LD_LIBRARY_PATH="$libdir"
readelf -d "$work/pc_shared" | grep -q 'NEEDED.*\[libharvbk\.so\.1\]' ||
    fail "pkg-config harvbk: program does not need libharvbk.so.1"
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/pc_static" "$consumer_src/consumer.c" \
    $(pkg-config --cflags --libs harvbk-static) || fail "build with pkg-config harvbk-static"
if readelf -d "$work/pc_static" | grep -q 'libharvbk'; then
    fail "pkg-config harvbk-static: program still needs libharvbk.so"
fi
check_run "pkg-config harvbk-static" "$work/pc_static"

step "find_package(harvbk 1) (CMAKE_PREFIX_PATH=$prefix)"
unset PKG_CONFIG_PATH
if ! { "$cmake" -S "$consumer_src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
           -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release &&
       "$cmake" --build "$work/cmake-build"; } >"$work/cmake.log" 2>&1; then
    cat "$work/cmake.log" >&2
    fail "CMake consumer did not build"
fi
check_run "harvbk::harvbk" "$work/cmake-build/consumer_shared" LD_LIBRARY_PATH="$libdir"
check_run "harvbk::harvbk_static" "$work/cmake-build/consumer_static"
if readelf -d "$work/cmake-build/consumer_static" | grep -q 'libharvbk'; then
    fail "harvbk::harvbk_static: program still needs libharvbk.so"
fi
echo "install test passed"
rm -rf "$work"
