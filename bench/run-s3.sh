#!/usr/bin/env bash
# bench/run-s3.sh - libharvbk against restic on an S3 server over HTTPS, same
# image, same machine, same run. Speed is reported as ratios (the machine is
# shared and noisy; absolute seconds are for context only).
#
#   bench/run-s3.sh [--scratch DIR] [--size 1G] [--repeat 3] [--bench PATH]
#                   [--seed N] [--no-verified] [--keep] [--no-install]
#
# What it does:
#   1. installs restic, jq and time with apt-get when missing;
#   2. starts the S3 test servers with tests/s3/s3env.sh (s3rver behind the
#      botocore-verifying proxy, a CA and a certificate for localhost made for
#      the run) and, for the timed runs, a second s3rver serving HTTPS itself
#      with that certificate (restic's S3 client sends UNSIGNED-PAYLOAD over
#      HTTPS, which the verifying proxy refuses by design, and the proxy, a
#      Python program, would bound both tools' speed): both tools talk to that
#      same s3rver over HTTPS, each with --ca-cert / --cacert;
#   3. generates ONE image (harvbk_bench --generate-only);
#   4. per repeat: harvbk (harvbk_bench phases on s3://bench/hb-N: full,
#      incremental without and with changed ranges, restore, verify, compare)
#      and restic (init, full backup, the same ~1% change, incremental backup,
#      restore latest); restored bytes are compared with the image;
#   5. once (unless --no-verified): harvbk_bench through the verifying proxy
#      over HTTPS, so every request of a whole benchmark is checked by botocore
#      (its times are bound by the proxy and are not compared);
#   6. prints medians, ratios (target: harvbk >= 3x faster than restic on
#      backup and restore) and stored sizes (bytes of the objects s3rver keeps).
# Every server it starts is stopped by its PID at the end (also on Ctrl-C);
# the scratch directory is removed unless --keep.
set -euo pipefail

SIZE=1G
REPEAT=3
SEED=20240601
SCRATCH_PARENT=
BENCH=${HARVBK_BENCH:-}
KEEP=0
INSTALL=1
VERIFIED=1

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --no-verified) VERIFIED=0; shift ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-s3.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$REPEAT" in '' | *[!0-9]* | 0) echo "run-s3.sh: --repeat wants a positive number" >&2; exit 2 ;; esac

say() { printf '%s\n' "$*" >&2; }
die() { say "run-s3.sh: $*"; exit 1; }

to_bytes() { # 1G -> bytes (binary units, like harvbk_bench)
    local v=${1%[bB]}; v=${v%[iI]}
    case "$v" in
    *[kK]) echo $(( ${v%?} * 1024 )) ;;
    *[mM]) echo $(( ${v%?} * 1024 * 1024 )) ;;
    *[gG]) echo $(( ${v%?} * 1024 * 1024 * 1024 )) ;;
    *[!0-9]* | '') die "bad size '$1'" ;;
    *) echo "$v" ;;
    esac
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [ -z "$BENCH" ]; then
    for cand in "$ROOT/build-bench/bench/harvbk_bench" "$ROOT/build/bench/harvbk_bench"; do
        if [ -x "$cand" ]; then BENCH=$cand; break; fi
    done
fi
[ -n "$BENCH" ] && [ -x "$BENCH" ] || die "harvbk_bench not found; build it first:
  cmake -S . -B build-bench && cmake --build build-bench -j2 --target harvbk_bench
or pass --bench PATH (or set HARVBK_BENCH)"
BENCH=$(cd "$(dirname "$BENCH")" && pwd)/$(basename "$BENCH")

# ---- tools ----
need_pkgs=()
command -v restic >/dev/null 2>&1 || need_pkgs+=(restic)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$INSTALL" = 1 ] || die "missing: ${need_pkgs[*]} (and --no-install given)"
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${need_pkgs[*]}; install them as root"
        SUDO="sudo -n"
    fi
    if ! apt-cache policy "${need_pkgs[0]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    fi
    say "installing ${need_pkgs[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${need_pkgs[@]}" >&2
fi
# s3rver, node, botocore: the S3 test dependencies
if [ "$INSTALL" = 1 ]; then bash "$ROOT/scripts/deps.sh" >&2; fi

# ---- scratch, servers, cleanup ----
if [ -n "$SCRATCH_PARENT" ]; then
    mkdir -p "$SCRATCH_PARENT"
    SC=$(mktemp -d "$SCRATCH_PARENT/harvbk-s3bench.XXXXXX")
else
    SC=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-s3bench.XXXXXX")
fi
case "$SC" in *[[:space:]]*) die "the scratch path must not contain blanks: $SC" ;; esac
ENVDIR=$SC/s3env
TLS_PID=
S3ENV_STARTED=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$TLS_PID" ] && kill -0 "$TLS_PID" 2>/dev/null; then
        kill -TERM "$TLS_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$TLS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TLS_PID" 2>/dev/null || true
        wait "$TLS_PID" 2>/dev/null || true
    fi
    [ "$S3ENV_STARTED" = 1 ] && bash "$ROOT/tests/s3/s3env.sh" stop "$ENVDIR" || true
    if [ "$KEEP" = 1 ]; then say "kept $SC"; else rm -rf -- "$SC"; fi
    exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

size_b=$(to_bytes "$SIZE")
need=$(( 5 * size_b + 1024 * 1024 * 1024 )) # image, s3rver copies of both tools, restores
avail=$(( $(df -Pk "$SC" | awk 'NR==2 {print $4}') * 1024 ))
[ "$avail" -ge "$need" ] || die "not enough free space in $(dirname "$SC"): $(( avail >> 30 )) GiB free, about $(( need >> 30 )) GiB needed for --size $SIZE"

say "starting the S3 test servers (tests/s3/s3env.sh)"
S3ENV_STARTED=1
bash "$ROOT/tests/s3/s3env.sh" start "$ENVDIR" >&2
# shellcheck disable=SC1091
. "$ENVDIR/env"
S3RVER_VERSION=3.7.1
S3RVER_JS=${HARVBK_S3RVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/harvbk/s3rver-$S3RVER_VERSION}/node_modules/s3rver/bin/s3rver.js
[ -f "$S3RVER_JS" ] || die "s3rver not found at $S3RVER_JS (scripts/deps.sh installs it)"
mkdir -p "$SC/s3data"
# the same fixes of s3rver's races and listing order tests/s3/s3env.sh loads
FIXES=()
[ -f "$ROOT/tests/s3/s3rver-fixes.js" ] && FIXES=(-r "$ROOT/tests/s3/s3rver-fixes.js")
setsid node --openssl-legacy-provider "${FIXES[@]}" "$S3RVER_JS" -d "$SC/s3data" -a 127.0.0.1 -p 0 \
    --key "$ENVDIR/tls/server.key" --cert "$ENVDIR/tls/server.pem" --no-vhost-buckets \
    --configure-bucket bench </dev/null >"$SC/s3rver-tls.log" 2>&1 &
TLS_PID=$!
PORT=
for _ in $(seq 300); do
    PORT=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$SC/s3rver-tls.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$TLS_PID" 2>/dev/null || { cat "$SC/s3rver-tls.log" >&2; die "s3rver (TLS) exited"; }
    sleep 0.1
done
[ -n "$PORT" ] || die "s3rver (TLS) did not start"
EP=https://localhost:$PORT
CA=$HARVBK_TEST_S3_CA
# s3rver accepts any credentials; give both tools the same ones
( umask 077; printf 'S3RVERbenchSECRET\n' >"$SC/secret" )
AKID=S3RVER

cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
say "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r)"
say "S3: s3rver $S3RVER_VERSION over HTTPS at $EP (pid $TLS_PID); verifying proxy at $HARVBK_TEST_S3_ENDPOINT_TLS"

time_cmd() { # NAME -- cmd...: appends "NAME wall user sys maxrss_kib" to $SC/times
    local name=$1; shift; [ "$1" = -- ] && shift
    sync
    if ! /usr/bin/time -f '%e %U %S %M' -o "$SC/time.out" "$@" >"$SC/cmd.log" 2>&1; then
        cat "$SC/cmd.log" >&2
        die "$name failed: $*"
    fi
    echo "$name $(tail -1 "$SC/time.out")" >>"$SC/times"
}
record() { echo "$1 $2" >>"$SC/values"; }
stored() { # bytes of the objects s3rver keeps under bucket/prefix
    find "$SC/s3data/bench/$1" -name '*._S3rver_object' -printf '%s\n' 2>/dev/null |
        awk '{s += $1} END {print s + 0}'
}

IMG=$SC/image.raw
say "generating the $SIZE image (seed $SEED)"
"$BENCH" --generate-only --size "$SIZE" --image "$IMG" --seed "$SEED"
sync
: >"$SC/times"
: >"$SC/values"

HB_S3=(--endpoint "$EP" --region us-east-1 --access-key-id "$AKID"
       --secret-access-key-file "$SC/secret" --ca-cert "$CA")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEAT"); do
    say "=== repeat $rep/$REPEAT: harvbk on s3://bench/hb-$rep (load $(cut -d' ' -f1-3 /proc/loadavg))"
    "$BENCH" --image "$IMG" --seed "$SEED" --dir "$SC/hb" --json \
        --target-url "s3://bench/hb-$rep" "${HB_S3[@]}" >"$SC/hb.json"
    jq -e '.ok' "$SC/hb.json" >/dev/null || { cat "$SC/hb.json" >&2; die "harvbk_bench failed"; }
    jq -r '.phases[] | select(.name != "mutate" and .name != "compare")
           | "harvbk." + .name + " " + (.wall_s|tostring) + " " + (.user_s|tostring) + " "
             + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' "$SC/hb.json" >>"$SC/times"
    jq -r '.phases[] | select(.uploaded_bytes != null)
           | "harvbk.uploaded_" + .name + " " + (.uploaded_bytes|tostring)' "$SC/hb.json" >>"$SC/values"
    record harvbk.stored_3_backups "$(stored "hb-$rep")"
    cp "$SC/hb.json" "$SC/hb-$rep.json"
    rm -rf "$SC/hb"

    say "=== repeat $rep/$REPEAT: restic on s3:$EP/bench/restic-$rep (encrypted, compression auto)"
    export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY
    AWS_SECRET_ACCESS_KEY=$(cat "$SC/secret")
    export RESTIC_PASSWORD=harvbk-bench RESTIC_REPOSITORY="s3:$EP/bench/restic-$rep"
    export RESTIC_CACHE_DIR=$SC/restic-cache
    restic --cacert "$CA" init -q >/dev/null
    time_cmd restic.full -- restic --cacert "$CA" backup -q --host bench "$IMG"
    record restic.stored_after_full "$(stored "restic-$rep")"
    "$BENCH" --mutate "$IMG" --generation 1 --seed "$SEED" 2>/dev/null
    time_cmd restic.incr -- restic --cacert "$CA" backup -q --host bench "$IMG"
    record restic.stored_2_backups "$(stored "restic-$rep")"
    time_cmd restic.restore -- restic --cacert "$CA" restore -q latest --target "$SC/restic-restore"
    out=$(find "$SC/restic-restore" -type f -name image.raw | head -1)
    /usr/bin/time -f '%e %U %S %M' -o "$SC/time.out" sync -d "$out"
    awk -v f="$(tail -1 "$SC/time.out")" '$1 == "restic.restore" {r = $0} END {
        split(r, a, " "); split(f, b, " ");
        printf "restic.restore+sync %s %s %s %s\n", a[2] + b[1], a[3] + b[2], a[4] + b[3], a[5] }' \
        "$SC/times" >>"$SC/times"
    cmp -s "$IMG" "$out" || die "restic restored bytes differ from the image"
    "$BENCH" --mutate "$IMG" --generation 0 --seed "$SEED" 2>/dev/null
    rm -rf "$SC/restic-restore" "$RESTIC_CACHE_DIR" "$SC/s3data/bench/restic-$rep" "$SC/s3data/bench/hb-$rep"
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RESTIC_PASSWORD RESTIC_REPOSITORY RESTIC_CACHE_DIR
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

if [ "$VERIFIED" = 1 ]; then
    say "=== harvbk through the verifying proxy ($HARVBK_TEST_S3_ENDPOINT_TLS): every request checked by botocore"
    before=$(curl -s "$HARVBK_TEST_S3_CONTROL/stats" | jq '.rejected')
    "$BENCH" --image "$IMG" --seed "$SEED" --dir "$SC/hbv" --json \
        --target-url "s3://$HARVBK_TEST_S3_BUCKET/bench-verified" --endpoint "$HARVBK_TEST_S3_ENDPOINT_TLS" \
        --region "$HARVBK_TEST_S3_REGION" --access-key-id "$HARVBK_TEST_S3_ACCESS_KEY_ID" \
        --secret-access-key-file "$HARVBK_TEST_S3_SECRET_FILE" --ca-cert "$HARVBK_TEST_S3_CA" >"$SC/hbv.json"
    jq -e '.ok' "$SC/hbv.json" >/dev/null || { cat "$SC/hbv.json" >&2; die "harvbk_bench through the proxy failed"; }
    stats=$(curl -s "$HARVBK_TEST_S3_CONTROL/stats")
    VREQ=$(jq '.requests' <<<"$stats"); VREJ=$(( $(jq '.rejected' <<<"$stats") - before ))
    [ "$VREJ" -eq 0 ] || die "the verifying proxy rejected $VREJ request(s) of harvbk"
    rm -rf "$SC/hbv"
fi

# ---------------------------------------------------------------- report
med() { # file column -> "name median" lines
    awk -v col="$2" '{v[$1] = v[$1] " " $col} END {for (k in v) print k v[k]}' "$1" |
        while read -r name vals; do
            printf '%s %s\n' "$name" "$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
        done
}
med "$SC/times" 2 >"$SC/m.wall"
awk '{if (!($1 in m) || $2 < m[$1]) m[$1] = $2} END {for (k in m) print k, m[k]}' "$SC/times" >"$SC/m.best"
awk '{print $1, $3 + $4}' "$SC/times" >"$SC/cpu.tmp"; med "$SC/cpu.tmp" 2 >"$SC/m.cpu"
med "$SC/times" 5 >"$SC/m.rss"
med "$SC/values" 2 >"$SC/m.val"
get() { awk -v k="$2" '$1 == k {print $2; f=1} END {if (!f) print ""}' "$SC/m.$1"; }
f3() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.3f", v }'; }
rss() { awk -v k="$(get rss "$1")" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }
ratio_line() { # label harvbk_key peer_key target
    local hb pw hbb pwb
    hb=$(get wall "$2"); pw=$(get wall "$3"); hbb=$(get best "$2"); pwb=$(get best "$3")
    if [ -z "$hb" ] || [ -z "$pw" ]; then printf '  %-40s n/a\n' "$1"; return; fi
    awk -v h="$hb" -v p="$pw" -v hb="$hbb" -v pb="$pwb" -v lbl="$1" -v tgt="$4" 'BEGIN {
        if (h <= 0) h = 0.001
        if (hb <= 0) hb = 0.001
        r = p / h; rb = pb / hb
        verdict = (tgt == "") ? "" : (r >= tgt ? sprintf("  [target >= %gx: MET]", tgt) : sprintf("  [target >= %gx: MISSED]", tgt))
        if (r >= 1) printf "  %-40s harvbk is %.1fx faster (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", lbl, r, h, p, rb, verdict
        else printf "  %-40s harvbk is %.1fx SLOWER (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", lbl, 1 / r, h, p, rb, verdict }'
}

{
    echo "## harvbk vs restic on S3 (s3rver $S3RVER_VERSION over HTTPS, loopback) — $SIZE image, median of $REPEAT run(s)"
    echo
    echo "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "tools: libharvbk $(jq -r .library_version "$SC/hb-1.json") (codec $(jq -r .codec "$SC/hb-1.json"), 8 requests in flight); $(restic version | awk '{print $1, $2}') (5 S3 connections, its default)"
    echo "load average (1/5/15 min) at the start of the repeats: $LOAD_START; at their end: $LOAD_END"
    echo "image: $SIZE, seed $SEED, $(jq -r '.image_layout_bytes | "holes \(.hole/1048576) MiB, zeros \(.zero/1048576) MiB, text \(.text/1048576) MiB, random \(.random/1048576) MiB"' "$SC/hb-1.json"); change $(jq -r '.changed_bytes/1048576' "$SC/hb-1.json") MiB per incremental"
    echo
    printf '%-14s %10s %10s %10s %10s %11s %11s\n' phase hb_wall_s restic_s hb_cpu_s restic_cpu hb_rss_MiB restic_rss
    for ph in full incr restore restore+sync; do
        hk=$ph; [ "$ph" = restore+sync ] && hk=restore
        printf '%-14s %10s %10s %10s %10s %11s %11s\n' "$ph" \
            "$(f3 "$(get wall harvbk.$hk)")" "$(f3 "$(get wall restic.$ph)")" \
            "$(f3 "$(get cpu harvbk.$hk)")" "$(f3 "$(get cpu restic.$ph)")" \
            "$(rss harvbk.$hk)" "$(rss restic.$ph)"
    done
    for ph in incr-ranges verify; do
        printf '%-14s %10s %10s %10s %10s %11s %11s\n' "$ph" "$(f3 "$(get wall harvbk.$ph)")" - \
            "$(f3 "$(get cpu harvbk.$ph)")" - "$(rss harvbk.$ph)" -
    done
    echo
    echo "speed (median wall time; ratio = restic seconds / harvbk seconds):"
    ratio_line "full backup vs restic" harvbk.full restic.full 3
    ratio_line "incremental (no ranges) vs restic" harvbk.incr restic.incr ""
    ratio_line "incremental (changed ranges) vs restic" harvbk.incr-ranges restic.incr ""
    ratio_line "restore vs restic" harvbk.restore restic.restore 3
    ratio_line "restore vs restic restore+fdatasync" harvbk.restore restic.restore+sync 3
    echo
    awk -v h="$(get val harvbk.stored_3_backups)" -v r1="$(get val restic.stored_after_full)" -v r2="$(get val restic.stored_2_backups)" 'BEGIN {
        printf "stored (bytes of the objects in s3rver): harvbk %.1f MiB for full+incr+incr-ranges; restic %.1f MiB after full, %.1f MiB after full+incr\n", h/1048576, r1/1048576, r2/1048576 }'
    awk -v h="$(get val harvbk.uploaded_incr)" 'BEGIN { printf "harvbk incremental uploaded %.1f MiB\n", h/1048576 }'
    if [ "$VERIFIED" = 1 ]; then
        echo
        echo "through the verifying proxy (botocore re-checks every signature and payload hash; Python-bound, not compared):"
        jq -r '.phases[] | select(.name != "mutate" and .name != "compare" and .name != "generate")
               | "  " + .name + " " + ((.wall_s*100|round)/100|tostring) + " s"' "$SC/hbv.json" | paste -sd ';' | sed 's/;/,/g'
        echo "  $VREQ requests, $VREJ rejected"
    fi
    echo
    echo "notes: both tools talk HTTPS to the same s3rver on 127.0.0.1 with the run's CA"
    echo "(--ca-cert / --cacert); restic always encrypts and compresses (zstd auto), harvbk"
    echo "compresses (zstd 1) without encryption; restic's restore has no sparse mode and"
    echo "returns with the data in the page cache ('restore+sync' adds 'sync -d' of its file);"
    echo "harvbk's restore ends with fdatasync. 'sync' runs before every timed restic step."
} | tee "$SC/summary.txt"

if [ "$KEEP" = 1 ]; then say "raw data: $SC/times, $SC/values, $SC/hb-*.json"; fi
