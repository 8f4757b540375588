#!/usr/bin/env bash
# bench/run-nfs.sh - backup and restore throughput to an NFS server relative
# to a local-directory target, same image, same machine, same run.
#
#   bench/run-nfs.sh [--size 1G] [--repeat 3] [--bench PATH] [--scratch DIR] [--keep]
#
# What it does (needs root, like the NFS tests):
#   1. starts nfs-ganesha + rpcbind in a network namespace (tests/nfs/nfsenv.sh);
#      the export lives in the scratch directory, so both targets write to the
#      same filesystem;
#   2. generates ONE image (harvbk_bench --generate-only);
#   3. per repeat, alternately: harvbk_bench against a file:// target in the
#      scratch directory and against nfs://127.0.0.1/export/run-N (a fresh
#      store each run), phases full backup, incremental, restore, verify;
#   4. prints the medians (MB/s of logical bytes) and NFS as a percentage of
#      local for each phase (target: backup and restore >= 60%).
# The server is stopped (by PID) and the scratch directory removed at the end
# (unless --keep), also on Ctrl-C. Run it on a quiet machine: both targets
# share its CPUs and disk.
set -euo pipefail

SIZE=1G
REPEAT=3
BENCH=${HARVBK_BENCH:-}
SCRATCH_PARENT=
KEEP=0
HB_NAME=run-nfs.sh
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROOT=$HB_ROOT

usage() { hb_usage 2 19; }
while [ $# -gt 0 ]; do
    case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) hb_bad_arg "$1" ;;
    esac
done
hb_check_repeat "$REPEAT"
[ "$(id -u)" -eq 0 ] || die "needs root (the NFS server runs in a network namespace)"
hb_find_bench "$ROOT/build/bench/harvbk_bench" "$ROOT"/build*/bench/harvbk_bench
command -v python3 >/dev/null || die "python3 is needed to read the benchmark's JSON"

hb_scratch "$SCRATCH_PARENT" harvbk-nfs-bench
SCRATCH=$SC
ENVDIR=$SCRATCH/nfs
stop_nfs() { bash "$ROOT/tests/nfs/nfsenv.sh" stop "$ENVDIR"; }
hb_at_exit stop_nfs

bash "$ROOT/tests/nfs/nfsenv.sh" start "$ENVDIR" >&2
# shellcheck disable=SC1091
. "$ENVDIR/env"
NS=$HARVBK_TEST_NFS_NETNS
IMG=$SCRATCH/image.raw
"$BENCH" --generate-only --size "$SIZE" --image "$IMG" >&2

results=$SCRATCH/results.txt
: >"$results"
run() { # KIND N
    local kind=$1 n=$2 out=$SCRATCH/$1-$2.json extra=()
    [ "$kind" = nfs ] && extra=(--target-url "$HARVBK_TEST_NFS_URL/run-$n")
    # both run inside the namespace, so both pay the same (nothing) for it
    HB_BENCH_WRAP=(ip netns exec "$NS")
    hb_bench_json "$out" "$SCRATCH/$kind-$n.err" --size "$SIZE" --image "$IMG" --dir "$SCRATCH" \
        --no-ceiling "${extra[@]}"
    python3 - "$kind" "$out" >>"$results" <<'EOF'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
for p in json.load(open(path))["phases"]:
    if p["name"] in ("full", "incr", "restore", "verify") and p.get("ok"):
        print(kind, p["name"], p["mb_per_s"])
EOF
    if [ "$kind" = nfs ]; then rm -rf "${HARVBK_TEST_NFS_EXPORT_DIR:?}/run-$n"; fi
}
for n in $(seq 1 "$REPEAT"); do
    echo "run $n/$REPEAT: file://" >&2
    run file "$n"
    echo "run $n/$REPEAT: nfs://" >&2
    run nfs "$n"
done

python3 - "$results" "$SIZE" "$REPEAT" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for kind in ("file", "nfs"):
    for ph in ("full", "incr", "restore", "verify"):
        v = [float(r[2]) for r in rows if r[0] == kind and r[1] == ph]
        if v:
            med[(kind, ph)] = statistics.median(v)
print(f"harvbk NFS vs local directory, image {sys.argv[2]}, median of {sys.argv[3]} (MB/s of logical bytes)")
print(f"{'phase':10} {'file://':>10} {'nfs://':>10} {'nfs/file':>9}")
ok = True
for ph in ("full", "incr", "restore", "verify"):
    f, n = med.get(("file", ph)), med.get(("nfs", ph))
    if f is None or n is None:
        continue
    pct = 100.0 * n / f
    mark = ""
    if ph in ("full", "restore"):
        mark = "  (target >= 60%: " + ("met" if pct >= 60 else "MISSED") + ")"
        ok = ok and pct >= 60
    print(f"{ph:10} {f:10.1f} {n:10.1f} {pct:8.0f}%{mark}")
print("RESULT:", "NFS throughput target met" if ok else "NFS throughput target missed")
EOF
