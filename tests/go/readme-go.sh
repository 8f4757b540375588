#!/usr/bin/env bash
# tests/go/readme-go.sh GO README SOURCE_DIR BUILD_DIR WORK_DIR CMAKE
#
# The Go program of README.md (its ```go block) works exactly as written, as
# a user builds it: the build is installed into WORK_DIR/prefix, and the
# program is built in a module of its own that requires the binding through a
# `replace` line (harvbk.dev/go/harvbk => SOURCE_DIR/bindings/go) and finds
# the library through the INSTALLED harvbk.pc (pkg-config). The block's lines
# are put into a main() unchanged (but its import line, which goes into the
# file's import list); the test adds only: its paths replaced by
# directories of WORK_DIR, an error check after every line that sets err,
# the Close calls the block's comments ask for, and a print of info.State.
# It must print "Ready" and restore the disk byte for byte.
set -euo pipefail
[ $# -eq 6 ] || { echo "usage: readme-go.sh GO README SOURCE_DIR BUILD_DIR WORK_DIR CMAKE" >&2; exit 2; }
go=$1 readme=$2 src=$3 build=$4 work=$5 cmake=$6

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

awk '/^```go[[:space:]]*$/ { on = 1; next } on && /^```/ { exit } on { print }' \
    "$readme" >"$work/block.go"
[ -s "$work/block.go" ] || { echo "FAIL: no \`\`\`go block in $readme" >&2; exit 1; }
echo "-- README block:"
cat "$work/block.go"

# ---- install, so that pkg-config finds the installed harvbk.pc
"$cmake" --install "$build" --prefix "$work/prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }
pc=$(find "$work/prefix" -name harvbk.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { echo "FAIL: harvbk.pc not installed" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
export LD_LIBRARY_PATH="$(dirname "$(dirname "$pc")")"
export GOPATH="$build/go/path" GOCACHE="$build/go/cache" GOPROXY=off GOSUMDB=off \
       GOFLAGS=-buildvcs=false GO111MODULE=on GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1 \
       GOTELEMETRY=off TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"

# ---- the files the program uses
mkdir -p "$work/images" "$work/backups"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$work/images/web.raw"
head -c $((1024 * 1024)) /dev/zero >>"$work/images/web.raw"
head -c $((2 * 1024 * 1024 + 999)) /dev/urandom >>"$work/images/web.raw"

# ---- the program: main() around the block
mkdir -p "$work/app"
cd "$work/app"
cat >go.mod <<MOD
module example.com/readmeapp

go 1.19

require harvbk.dev/go/harvbk v0.0.0

replace harvbk.dev/go/harvbk => $src/bindings/go
MOD
{
    printf 'package main\n\nimport (\n\t"context"\n\t"fmt"\n\t"log"\n\n\t"harvbk.dev/go/harvbk"\n)\n\n'
    printf 'func main() {\n'
    sed -e '/^import /d' \
        -e "s#\"/var/lib/harvbk\"#\"$work/state\"#" \
        -e "s#\"file:///backups\"#\"file://$work/backups\"#" \
        -e "s#\"/images/web.raw\"#\"$work/images/web.raw\"#" \
        -e "s#\"/restore\"#\"$work/restore\"#" "$work/block.go" |
    awk '
        NF == 0 { next }
        { print "\t" $0 }
        /(^|[ ,])err :?= / {
            stmt = $0; sub(/[[:space:]]*\/\/.*$/, "", stmt); gsub(/\\/, "\\\\", stmt); gsub(/"/, "\\\"", stmt)
            print "\tif err != nil {\n\t\tlog.Fatalf(\"%s: %v\", \"" stmt "\", err)\n\t}"
        }
        /harvbk\.Open\(/ { print "\tdefer c.Close()" }
        /harvbk\.NewVM\(/ { print "\tdefer vm.Close()" }
    '
    printf '\tfmt.Println("state:", info.State)\n}\n'
} >main.go
echo "-- main.go:"
cat -n main.go
"$go" build -o app .
echo "ok   README Go program builds in a module of its own (replace + installed harvbk.pc)"
./app | tee out.txt
grep -qx 'state: Ready' out.txt || { echo "FAIL: info.State is not Ready" >&2; exit 1; }
cmp "$work/images/web.raw" "$work/restore/root.raw"
echo "ok   README Go program backs up and restores (root.raw equals web.raw)"
rm -rf "$work"
