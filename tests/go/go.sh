#!/usr/bin/env bash
# tests/go/go.sh MODE GO SOURCE_DIR BUILD_DIR LIB_DIR - the Go binding
# (bindings/go) against the library of this build, for ctest (tests/go/
# CMakeLists.txt):
#   vet      gofmt -l (nothing unformatted) and go vet ./...
#   test     go test ./... (the S3 and NFS tests skip: no server here)
#   race     go test -race on the tests that run operations from many goroutines
#            and the callback, cancel and freeze window tests
#   s3       go test -run TestS3 against the servers of the ctest fixture "s3"
#            (HARVBK_TEST_S3_ENV names their env file); a missing server fails
#   nfs      go test -run TestNFS, run by tests/nfs/in-netns.sh inside the NFS
#            server's network namespace (HARVBK_TEST_NFS_URL...)
#   example  build bindings/go/examples/backup_restore, run it, check its output
#
# Offline and self-contained: GOPROXY=off, GOPATH and GOCACHE inside the build
# directory, cgo finds the library through the build tree's uninstalled
# harvbk.pc (BUILD_DIR/pkgconfig-uninstalled) and the loader through
# LD_LIBRARY_PATH=LIB_DIR.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: go.sh MODE GO SOURCE_DIR BUILD_DIR LIB_DIR" >&2; exit 2; }
mode=$1 go=$2 src=$3 build=$4 lib=$5

export GOPATH="$build/go/path" GOCACHE="$build/go/cache" GOPROXY=off GOSUMDB=off \
       GOFLAGS=-buildvcs=false GO111MODULE=on GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=1 \
       GOTELEMETRY=off
export PKG_CONFIG_PATH="$build/pkgconfig-uninstalled"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TMPDIR="$build/testtmp/go-$mode"
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR" "$GOPATH" "$GOCACHE"
cd "$src/bindings/go"
"$go" version

case "$mode" in
vet)
    unformatted=$(gofmt -l .)
    [ -z "$unformatted" ] || { echo "FAIL: not gofmt'ed: $unformatted" >&2; exit 1; }
    "$go" vet ./...
    echo "ok   gofmt and go vet"
    ;;
test)
    "$go" test -count=1 -timeout 900s -v ./...
    ;;
race)
    "$go" test -race -count=1 -timeout 900s -v -run 'Concurrent|Cancel|Callback|FreezeWindow' .
    ;;
s3)
    [ -n "${HARVBK_TEST_S3_ENV:-}" ] || { echo "FAIL: HARVBK_TEST_S3_ENV not set" >&2; exit 1; }
    HARVBK_GO_REQUIRE=s3 "$go" test -count=1 -timeout 900s -v -run 'TestS3' .
    ;;
nfs)
    HARVBK_GO_REQUIRE=nfs "$go" test -count=1 -timeout 900s -v -run 'TestNFS' .
    ;;
example)
    bin="$build/go/bin/backup_restore"
    "$go" build -o "$bin" ./examples/backup_restore
    work="$TMPDIR/work"
    mkdir -p "$work"
    "$bin" "$work" | tee "$TMPDIR/out.txt"
    expect() {
        grep -qxE "$1" "$TMPDIR/out.txt" || { echo "FAIL: no line matching '$1'" >&2; exit 1; }
    }
    expect 'progress: 6291456/6291456 bytes'
    expect 'backup default/web-1: Ready, 6291456 logical bytes, [1-9][0-9]* uploaded'
    expect 'backup default/web-2: Ready, deduplicated: true'
    expect 'backup default/web-9: not found'
    expect 'restored default/web-copy: 6291456 bytes, identical: true'
    cmp "$work/disk.raw" "$work/restore/root.raw"
    echo "ok   example backup_restore: output as expected, restored disk equals the source"
    ;;
*)
    echo "go.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
rm -rf "$TMPDIR"
