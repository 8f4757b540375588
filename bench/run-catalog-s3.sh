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
HB_NAME=run-catalog-s3.sh
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
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
    -h | --help) hb_usage 2 12; exit 0 ;;
    *) echo "run-catalog-s3.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ -x "$BENCH" ] || { echo "run-catalog-s3.sh: --bench PATH/catalog_bench is required" >&2; exit 2; }
hb_scratch "$SCRATCH_PARENT" catalog-s3
hb_start_s3rver "$SC/data" "$SC/s3rver.log" --no-vhost-buckets --configure-bucket catbench
PORT=$S3RVER_PORT
( umask 077; printf 'S3RVERbenchSECRET\n' >"$SC/secret" )
hb_machine
echo "machine: $(nproc) CPUs ($cpu_model), load $(hb_load)" >&2
"$BENCH" --url "s3://catbench/run-$$" --endpoint "http://127.0.0.1:$PORT" --region us-east-1 \
    --access-key-id S3RVER --secret-access-key-file "$SC/secret" --count "$COUNT" \
    --repeat "$REPEAT" --dir "$SC"
