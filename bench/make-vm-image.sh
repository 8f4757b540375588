#!/usr/bin/env bash
# bench/make-vm-image.sh - an ext4 VM disk image made of real files, for
# benchmarks closer to a real VM than harvbk_bench's generated images.
#
#   bench/make-vm-image.sh OUT [--size 4G] [--data 512M] [--from DIR]...
#
# Copies regular files from the --from directories (default /usr/lib and
# /usr/share: programs, libraries, text, already-compressed data, like an
# installed guest's root filesystem), a sample of about --data bytes spread
# over them in sorted path order, into a staging directory, then makes OUT, a sparse file of --size, an
# ext4 filesystem holding them (mke2fs -d: no root, no loop device, no mount).
# The staging directory is removed. Same machine and options: same image.
# bench/run-peers.sh --image OUT benchmarks it (restic, borg, ceilings).
set -euo pipefail

HB_NAME=make-vm-image.sh
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage() { hb_usage 2 12; }

OUT=
SIZE=4G
DATA=512M
FROM=()
while [ $# -gt 0 ]; do
    case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --from) FROM+=("$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) hb_bad_arg "$1" ;;
    *) [ -z "$OUT" ] || hb_bad_arg "$1"; OUT=$1; shift ;;
    esac
done
[ -n "$OUT" ] || { usage >&2; exit 2; }
[ ${#FROM[@]} -gt 0 ] || FROM=(/usr/lib /usr/share)
command -v mke2fs >/dev/null || die "mke2fs not found (apt-get install e2fsprogs)"
size_b=$(to_bytes "$SIZE")
data_b=$(to_bytes "$DATA")
[ "$data_b" -lt $(( size_b * 3 / 4 )) ] || die "--data must be under 3/4 of --size"

stage=$(mktemp -d "$(dirname "$OUT")/vm-image-stage.XXXXXX")
trap 'rm -rf -- "$stage"' EXIT
trap 'exit 130' INT TERM

# the file list: regular and readable, a systematic sample in sorted path
# order spread over the whole of the --from trees (each file taken once the
# bytes seen times data/total have earned it), up to data_b bytes
find "${FROM[@]}" -xdev -type f -readable -printf '%s %p\n' 2>/dev/null | LC_ALL=C sort -k2 \
    >"$stage.all"
trap 'rm -rf -- "$stage" "$stage.all" "$stage.list"' EXIT
awk -v cap="$data_b" 'NR == FNR { total += $1; next }
    FNR == 1 { frac = (total > cap) ? cap / total : 1 }
    { earned += $1 * frac }
    earned >= taken + $1 && taken + $1 <= cap { taken += $1; sub(/^[0-9]+ /, ""); print }' \
    "$stage.all" "$stage.all" >"$stage.list"
tar -cf - --no-recursion --files-from="$stage.list" 2>/dev/null | tar -xf - -C "$stage"
files=$(wc -l <"$stage.list")

rm -f -- "$OUT"
truncate -s "$size_b" "$OUT"
mke2fs -q -F -t ext4 -E root_owner=0:0 -d "$stage" "$OUT"
alloc=$(( $(du -k "$OUT" | awk '{print $1}') * 1024 ))
say "made $OUT: ext4, $SIZE, $files files from ${FROM[*]}, $(( alloc >> 20 )) MiB allocated"
