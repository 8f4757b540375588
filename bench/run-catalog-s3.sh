#!/usr/bin/env bash
# bench/run-catalog-s3.sh - listing N backups on s3rver: from the synced
# catalog, by a sync into an empty catalog, by a sync when nothing changed,
# and the old way (list + GET every manifest). Prints seconds (median of the
# repeats) and the S3 requests each way made (the backend's counters).
#
#   bench/run-catalog-s3.sh [--bench PATH/catalog_bench] [--count 1000] [--repeat 3]
#                           [--scratch DIR]
#
# s3rver 3.x (scripts/deps.sh installs it) is started on 127.0.0.1 over plain
# HTTP (no verifying proxy: its Python would bound the figures), with the
# fixes tests/s3/s3env.sh loads, and stopped by its PID at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${HARVBK_CATALOG_BENCH:-}
COUNT=1000
REPEAT=3
SCRATCH_PARENT=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
    case "$1" in
    --bench) BENCH=$2; shift 2 ;;
    --count) COUNT=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-catalog-s3.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "run-catalog-s3.sh: --bench PATH/catalog_bench is required" >&2; exit 2; }
S3RVER_VERSION=3.7.1
S3RVER_JS=${HARVBK_S3RVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/harvbk/s3rver-$S3RVER_VERSION}/node_modules/s3rver/bin/s3rver.js
[ -f "$S3RVER_JS" ] || { echo "s3rver not found at $S3RVER_JS (scripts/deps.sh)" >&2; exit 1; }

SC=$(mktemp -d "$SCRATCH_PARENT/catalog-s3.XXXXXX")
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$SC"; }
trap cleanup EXIT INT TERM
mkdir -p "$SC/data"
FIXES=()
[ -f "$ROOT/tests/s3/s3rver-fixes.js" ] && FIXES=(-r "$ROOT/tests/s3/s3rver-fixes.js")
node --openssl-legacy-provider "${FIXES[@]}" "$S3RVER_JS" -d "$SC/data" -a 127.0.0.1 -p 0 \
    --no-vhost-buckets --configure-bucket catbench </dev/null >"$SC/s3rver.log" 2>&1 &
PID=$!
PORT=
for _ in $(seq 300); do
    PORT=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$SC/s3rver.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || { cat "$SC/s3rver.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "s3rver did not start" >&2; exit 1; }
( umask 077; printf 'S3RVERbenchSECRET\n' >"$SC/secret" )
echo "machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$BENCH" --url "s3://catbench/run-$$" --endpoint "http://127.0.0.1:$PORT" --region us-east-1 \
    --access-key-id S3RVER --secret-access-key-file "$SC/secret" --count "$COUNT" \
    --repeat "$REPEAT" --dir "$SC"
