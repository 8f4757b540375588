#!/usr/bin/env bash
# bench/run-crypt.sh - what encryption at rest costs: full backup and restore
# into an encrypted store against a plaintext one, same image, same machine,
# same run (docs/FORMAT.md section 10).
#
#   bench/run-crypt.sh [--size 1G] [--repeat 5] [--bench PATH] [--scratch DIR] [--keep]
#                      [--passphrase]
#
# What it does:
#   1. generates ONE image (harvbk_bench --generate-only) and a key file (0600);
#   2. per repeat, both orders alternating (plain then encrypted, then the
#      reverse): harvbk_bench against a fresh file:// store, plaintext and
#      with --key-file (--passphrase: a passphrase file, scrypt), phases full
#      backup, incrementals, restore (every chunk of the image), verify;
#   3. prints the medians of wall and CPU seconds of the full backup and the
#      restore, and encrypted/plaintext ratios (target: at most 1.10 wall),
#      then the best (fastest) run of each, which other load disturbs least.
# The scratch directory is removed at the end (unless --keep), also on Ctrl-C.
# Run it on a quiet machine: the ratio of two noisy medians is still noisy.
set -euo pipefail

SIZE=1G
REPEAT=5
BENCH=${HARVBK_BENCH:-}
SCRATCH_PARENT=
KEEP=0
PASS=0
HB_NAME=run-crypt.sh
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
    --passphrase) PASS=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) hb_bad_arg "$1" ;;
    esac
done
hb_check_repeat "$REPEAT"
hb_find_bench "$ROOT/build/bench/harvbk_bench" "$ROOT"/build*/bench/harvbk_bench
command -v python3 >/dev/null || die "python3 is needed to read the benchmark's JSON"

hb_scratch "$SCRATCH_PARENT" harvbk-crypt-bench
SCRATCH=$SC

IMG=$SCRATCH/image.raw
"$BENCH" --generate-only --size "$SIZE" --image "$IMG" >&2
KEY=$SCRATCH/store.key
(umask 077 && head -c 32 /dev/urandom >"$KEY")
KEYOPT=(--key-file "$KEY")
if [ $PASS -eq 1 ]; then
    (umask 077 && echo "a benchmark passphrase" >"$SCRATCH/pass.txt")
    KEYOPT=(--passphrase-file "$SCRATCH/pass.txt")
fi

results=$SCRATCH/results.txt
: >"$results"
run() { # KIND N
    local kind=$1 n=$2 out=$SCRATCH/$1-$2.json extra=()
    [ "$kind" = enc ] && extra=("${KEYOPT[@]}")
    hb_bench_json "$out" "$SCRATCH/$kind-$n.err" --size "$SIZE" --image "$IMG" --dir "$SCRATCH" \
        --no-ceiling "${extra[@]}"
    python3 - "$kind" "$out" >>"$results" <<'EOF'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
assert doc["encrypted"] == (kind == "enc"), "the run is not what it should be"
for p in doc["phases"]:
    if p["name"] in ("full", "restore", "verify") and p.get("ok"):
        print(kind, p["name"], p["wall_s"], p["cpu_s"], p["mb_per_s"])
EOF
}
for n in $(seq 1 "$REPEAT"); do
    if [ $((n % 2)) -eq 1 ]; then order="plain enc"; else order="enc plain"; fi
    for kind in $order; do
        echo "run $n/$REPEAT: $kind" >&2
        run "$kind" "$n"
    done
done

python3 - "$results" "$SIZE" "$REPEAT" "$PASS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def vals(kind, ph, col):
    return [float(r[col]) for r in rows if r[0] == kind and r[1] == ph]
def med(kind, ph, col):
    v = vals(kind, ph, col)
    return statistics.median(v) if v else None
key = "passphrase (scrypt)" if sys.argv[4] == "1" else "key file"
print(f"harvbk encrypted ({key}) vs plaintext store, image {sys.argv[2]}, "
      f"median of {sys.argv[3]}")
print(f"{'phase':8} {'plain s':>8} {'enc s':>8} {'wall':>6} {'plain cpu':>10} {'enc cpu':>8} "
      f"{'cpu':>6} {'plain MB/s':>11} {'enc MB/s':>9}")
ok = True
for ph in ("full", "restore", "verify"):
    pw, ew = med("plain", ph, 2), med("enc", ph, 2)
    pc, ec = med("plain", ph, 3), med("enc", ph, 3)
    pm, em = med("plain", ph, 4), med("enc", ph, 4)
    if pw is None or ew is None:
        continue
    r, rc = ew / pw, ec / pc if pc else float("nan")
    mark = ""
    if ph in ("full", "restore"):
        mark = "  (target <= 1.10: " + ("met" if r <= 1.10 else "MISSED") + ")"
        ok = ok and r <= 1.10
    print(f"{ph:8} {pw:8.3f} {ew:8.3f} {r:6.3f} {pc:10.3f} {ec:8.3f} {rc:6.3f} "
          f"{pm:11.1f} {em:9.1f}{mark}")
print("best of each (the runs least disturbed by other load):")
for ph in ("full", "restore", "verify"):
    pw, ew = vals("plain", ph, 2), vals("enc", ph, 2)
    pc, ec = vals("plain", ph, 3), vals("enc", ph, 3)
    if pw and ew:
        print(f"{ph:8} wall {min(pw):7.3f} -> {min(ew):7.3f} ({min(ew) / min(pw):5.3f})   "
              f"cpu {min(pc):7.3f} -> {min(ec):7.3f} ({min(ec) / min(pc):5.3f})")
print("RESULT:", "encryption cost target met" if ok else "encryption cost target missed",
      "(medians of wall seconds)")
EOF
