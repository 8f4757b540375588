#!/usr/bin/env bash
# tests/nfs/check_client_tools.sh - run by ctest inside the NFS test
# namespace (in-netns.sh): the independent client the NFS tests compare
# against (nfs-ls, nfs-cp from Debian libnfs-utils) works against the test
# server: a file placed in the export on the server side is listed and read
# back byte for byte, and a file nfs-cp writes arrives intact.
set -euo pipefail
: "${HARVBK_TEST_NFS_EXPORT_DIR:?run through in-netns.sh}"
work=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-nfs-tools.XXXXXX")
sub="tools-$$-$RANDOM"
trap 'rm -rf "$work" "${HARVBK_TEST_NFS_EXPORT_DIR:?}/$sub"' EXIT
mkdir -p "$HARVBK_TEST_NFS_EXPORT_DIR/$sub"
head -c 3000000 /dev/urandom >"$HARVBK_TEST_NFS_EXPORT_DIR/$sub/blob"
ls_out=$(nfs-ls "$HARVBK_TEST_NFS_URL/$sub")
grep -q ' blob$' <<<"$ls_out" || { echo "nfs-ls does not list blob: $ls_out" >&2; exit 1; }
nfs-cp "$HARVBK_TEST_NFS_URL/$sub/blob" "$work/blob"
cmp "$HARVBK_TEST_NFS_EXPORT_DIR/$sub/blob" "$work/blob"
head -c 1000000 /dev/urandom >"$work/up"
nfs-cp "$work/up" "$HARVBK_TEST_NFS_URL/$sub/up"
cmp "$work/up" "$HARVBK_TEST_NFS_EXPORT_DIR/$sub/up"
echo "nfs-ls/nfs-cp: listing and byte-identical reads and writes ok"
