#!/usr/bin/env bash
# bench/profile-phases.sh - where harvbk_bench's time goes, per phase.
#
#   bench/profile-phases.sh [--size 1G | --image PATH] [--scratch DIR] [--bench PATH]
#                           [--freq 499] [--no-strace] [--keep]
#
# Runs harvbk_bench twice on one generated image (or a sparse copy of PATH,
# e.g. from make-vm-image.sh):
#   1. under `perf record --call-graph dwarf` (CPU): for each phase process, the
#      samples by the innermost libharvbk function on the stack ("which library
#      function asked for this CPU", e.g. hb_codec_compress -> libzstd,
#      hb_sha256 -> libcrypto, rs_write -> kernel page-cache copy) and by leaf;
#   2. under `strace -f -T` (waiting): per phase, the wall seconds spent inside
#      fsync/fdatasync/pwrite/pread/futex... summed over its threads.
# CPU in (1) and blocked time in (2) together explain a phase's wall time.
# Needs perf (linux-perf) and strace. Scratch is removed unless --keep.
set -euo pipefail

SIZE=1G
SRC_IMG=
FREQ=499
SCRATCH_PARENT=
BENCH=${HARVBK_BENCH:-}
STRACE=1
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --image) SRC_IMG=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --freq) FREQ=$2; shift 2 ;;
    --no-strace) STRACE=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "profile-phases.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "$BENCH" ]; then
    for cand in "$HERE/../build-bench/bench/harvbk_bench" "$HERE/../build/bench/harvbk_bench"; do
        if [ -x "$cand" ]; then BENCH=$cand; break; fi
    done
fi
[ -n "$BENCH" ] && [ -x "$BENCH" ] || { echo "profile-phases.sh: build harvbk_bench first or pass --bench" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile-phases.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
[ "$STRACE" = 0 ] || command -v strace >/dev/null || { echo "profile-phases.sh: strace not found (or use --no-strace)" >&2; exit 1; }

parent=${SCRATCH_PARENT:-${TMPDIR:-/tmp}}
mkdir -p "$parent"
SC=$(mktemp -d "$parent/harvbk-prof.XXXXXX")
cleanup() { local rc=$?; trap - EXIT; if [ "$KEEP" = 1 ]; then echo "kept $SC" >&2; else rm -rf -- "$SC"; fi; exit $rc; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$SRC_IMG" ]; then
    cp --sparse=always -- "$SRC_IMG" "$SC/image.raw"
else
    "$BENCH" --generate-only --size "$SIZE" --image "$SC/image.raw"
fi
sync

# phase pids from harvbk_bench's progress lines: "  full         ... [pid 123] done"
pids() { sed -n 's/^ *\([a-z-]*\) *\.\.\. \[pid \([0-9]*\)\].*/\1 \2/p' "$1"; }

echo "== perf record (CPU, dwarf call graphs, $FREQ Hz)" >&2
perf record -q -F "$FREQ" --call-graph dwarf,16384 -o "$SC/perf.data" -- \
    "$BENCH" --image "$SC/image.raw" --dir "$SC" >"$SC/perf.out" 2>"$SC/perf.err" || {
    cat "$SC/perf.err" >&2; exit 1; }
pids "$SC/perf.err" >"$SC/perf.pids"
perf script -i "$SC/perf.data" -F pid,tid,ip,sym,dso 2>/dev/null >"$SC/perf.txt"

awk -v pidfile="$SC/perf.pids" '
BEGIN { while ((getline l < pidfile) > 0) { split(l, a, " "); name[a[2]] = a[1]; order[++np] = a[2] } }
/^ *[0-9]+\/[0-9]+ *$/ { split($1, a, "/"); pid = a[1]; n = 0; inrec = 1; next }
inrec && NF == 0 { flush(); inrec = 0; next }
inrec {
    n++
    dso = $NF; gsub(/[()]/, "", dso); sub(/.*\//, "", dso)
    sym = $2; if (sym == "[unknown]" || sym ~ /^0x/) sym = "?"
    if (n == 1) { leafsym = (sym == "?") ? "[" dso "]" : sym " [" dso "]"; hb = "" }
    if (hb == "" && dso ~ /^libharvbk/ && sym != "?") hb = sym
}
function flush() {
    if (!n || !(pid in name)) return
    tot[pid]++; leaf[pid SUBSEP leafsym]++
    own[pid SUBSEP (hb == "" ? "(no libharvbk frame)" : hb)]++
}
function top(arr, p, title, k, c, i, j, t, keys, m) {
    m = 0
    for (k in arr) { split(k, c, SUBSEP); if (c[1] == p) { keys[++m] = c[2]; v[m] = arr[k] } }
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] > v[i]) { t = v[i]; v[i] = v[j]; v[j] = t; t = keys[i]; keys[i] = keys[j]; keys[j] = t }
    printf "    %s\n", title
    for (i = 1; i <= m && i <= 8; i++) printf "      %5.1f%%  %s\n", 100 * v[i] / tot[p], keys[i]
}
END {
    if (inrec) flush()
    for (i = 1; i <= np; i++) {
        p = order[i]; if (!(p in tot) || name[p] == "mutate") continue
        printf "\n%s (pid %s): %d samples = %.2f CPU s\n", name[p], p, tot[p], tot[p] / '"$FREQ"'
        top(own, p, "by innermost libharvbk function:")
        top(leaf, p, "by leaf symbol [dso]:")
    }
}' "$SC/perf.txt"

if [ "$STRACE" = 1 ]; then
    echo >&2; echo "== strace -f -T (blocked wall time per syscall, summed over threads)" >&2
    strace -f -T -o "$SC/strace.txt" -e trace=fsync,fdatasync,sync_file_range,pwrite64,pread64,futex,rename,openat,unlink,mkdir \
        "$BENCH" --image "$SC/image.raw" --dir "$SC" >"$SC/strace.out" 2>"$SC/strace.err"
    pids "$SC/strace.err" >"$SC/strace.pids"
    grep -E '^ *(full|incr|incr-ranges|restore|verify) ' "$SC/strace.err" >&2 || true
    awk -v pidfile="$SC/strace.pids" '
    BEGIN { while ((getline l < pidfile) > 0) { split(l, a, " "); np++; P[np] = a[2] + 0; N[np] = a[1] } P[np + 1] = 1e12 }
    match($0, /<[0-9.]+>$/) {
        tid = $1 + 0; ph = ""
        for (i = 1; i <= np; i++) if (tid >= P[i] && tid < P[i + 1]) ph = N[i] "#" i
        if (ph == "" || ph ~ /^(mutate|compare)/) next
        t = substr($0, RSTART + 1, RLENGTH - 2)
        if ($2 == "<...") sc = $3; else { sc = $2; sub(/\(.*/, "", sc) }
        T[ph SUBSEP sc] += t; C[ph SUBSEP sc]++
    }
    END {
        for (k in T) { split(k, a, SUBSEP); printf "%s %s %d %.3f\n", a[1], a[2], C[k], T[k] }
    }' "$SC/strace.txt" | sort -t'#' -k2,2n -k1,1 | awk '
        { split($1, a, "#"); if (a[1] != last) { printf "\n%s:\n", a[1]; last = a[1] }
          printf "    %-16s %6d calls %8.3f s\n", $2, $3, $4 }'
    echo
    echo "(futex = threads waiting for each other: idle workers or a reader waiting for free buffers)"
fi
