#!/usr/bin/env bash
# bench/run-s3.sh - libharvbk against restic on an S3 server over HTTPS, same
# image, same machine, same run. Speed is reported as ratios (the machine is
# shared and noisy; absolute seconds are for context only).
#
#   bench/run-s3.sh [--scratch DIR] [--size 1G | --image PATH] [--repeat 3] [--bench PATH]
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
#   3. generates ONE image (harvbk_bench --generate-only), or with --image
#      PATH copies that one (e.g. from make-vm-image.sh; never written);
#   4. per repeat: harvbk (harvbk_bench phases on s3://bench/hb-N: full,
#      incremental without and with changed ranges, restore, verify, compare)
#      and restic (init, full backup, the same ~1% change, incremental backup,
#      restore latest); restored bytes are compared with the image;
#      after each repeat, the server's floor: curl alone (no work of its own,
#      8 transfers in flight, HTTPS, SigV4 with UNSIGNED-PAYLOAD) puts the
#      bytes of harvbk's full backup as 4 MiB objects into the same s3rver and
#      gets them back, timed with the server's CPU; restic's time over it is
#      the most any client could beat restic by on this server;
#   5. once (unless --no-verified): harvbk_bench through the verifying proxy
#      over HTTPS, so every request of a whole benchmark is checked by botocore
#      (its times are bound by the proxy and are not compared);
#   6. prints medians, ratios (target, issue 13: harvbk >= 4x faster than restic on
#      backup and restore) and stored sizes (bytes of the objects s3rver keeps);
#      beside each tool's wall and CPU time, the CPU time of the s3rver process
#      during its phases (the server is one JavaScript thread: it bounds a
#      phase whose wall time is about its CPU time);
#      from the verified run (5.), harvbk's S3 requests per phase by operation
#      (GET, LIST, PUT, HEAD, DELETE, POST), counted by the proxy around each
#      phase (harvbk_bench --phase-hook), and per GiB of the image.
# Every server it starts is stopped by its PID at the end (also on Ctrl-C);
# the scratch directory is removed unless --keep.
set -euo pipefail

SIZE=1G
SRC_IMG=
REPEAT=3
SEED=20240601
SCRATCH_PARENT=
BENCH=${HARVBK_BENCH:-}
KEEP=0
INSTALL=1
VERIFIED=1

HB_NAME=run-s3.sh
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage() { hb_usage 2 36; }

while [ $# -gt 0 ]; do
    case "$1" in
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --image) SRC_IMG=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --no-verified) VERIFIED=0; shift ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) hb_bad_arg "$1" ;;
    esac
done
hb_check_repeat "$REPEAT"

ROOT=$HB_ROOT
hb_find_bench "$ROOT/build-bench/bench/harvbk_bench" "$ROOT/build/bench/harvbk_bench"

# ---- tools ----
hb_install "$INSTALL" restic:restic jq:jq /usr/bin/time:time
# s3rver, node, botocore: the S3 test dependencies
if [ "$INSTALL" = 1 ]; then bash "$ROOT/scripts/deps.sh" >&2; fi

# ---- scratch, servers, cleanup ----
hb_scratch "$SCRATCH_PARENT" harvbk-s3bench
case "$SC" in *[[:space:]]*) die "the scratch path must not contain blanks: $SC" ;; esac
ENVDIR=$SC/s3env
S3ENV_STARTED=0
stop_s3env() { [ "$S3ENV_STARTED" = 0 ] || bash "$ROOT/tests/s3/s3env.sh" stop "$ENVDIR"; }
hb_at_exit stop_s3env

hb_src_image
size_b=$(to_bytes "$SIZE")
need=$(( 5 * size_b + 1024 * 1024 * 1024 )) # image, s3rver copies of both tools, restores
avail=$(hb_avail "$SC")
[ "$avail" -ge "$need" ] || die "not enough free space in $(dirname "$SC"): $(( avail >> 30 )) GiB free, about $(( need >> 30 )) GiB needed for --size $SIZE"

say "starting the S3 test servers (tests/s3/s3env.sh)"
S3ENV_STARTED=1
bash "$ROOT/tests/s3/s3env.sh" start "$ENVDIR" >&2
# shellcheck disable=SC1091
. "$ENVDIR/env"
hb_start_s3rver "$SC/s3data" "$SC/s3rver-tls.log" \
    --key "$ENVDIR/tls/server.key" --cert "$ENVDIR/tls/server.pem" --no-vhost-buckets \
    --configure-bucket bench
TLS_PID=$S3RVER_PID
PORT=$S3RVER_PORT
EP=https://localhost:$PORT
CA=$HARVBK_TEST_S3_CA
# s3rver accepts any credentials; give both tools the same ones
( umask 077; printf 'S3RVERbenchSECRET\n' >"$SC/secret" )
AKID=S3RVER

hb_machine
say "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r)"
say "S3: s3rver $S3RVER_VERSION over HTTPS at $EP (pid $TLS_PID); verifying proxy at $HARVBK_TEST_S3_ENDPOINT_TLS"

stored() { # bytes of the objects s3rver keeps under bucket/prefix
    find "$SC/s3data/bench/$1" -name '*._S3rver_object' -printf '%s\n' 2>/dev/null |
        awk '{s += $1} END {print s + 0}'
}

IMG=$SC/image.raw
hb_image "$IMG" "$SRC_IMG" "$SIZE" "$SEED"
sync
: >"$SC/times"
: >"$SC/values"

HB_S3=(--endpoint "$EP" --region us-east-1 --access-key-id "$AKID"
       --secret-access-key-file "$SC/secret" --ca-cert "$CA")
# The server's CPU time (user + system) per phase: s3rver is one Node.js
# process (its JavaScript on one thread) that both tools share; its CPU seconds
# beside the wall time show when the server, not the client, bounds a phase.
TICK=$(getconf CLK_TCK)
srv_ticks() { awk '{print $14 + $15}' "/proc/$TLS_PID/stat"; }
: >"$SC/srvcpu"
printf '#!/bin/sh\nprintf "%%s %%s %%s\\n" "$1" "$2" "$(awk %s /proc/%s/stat)" >>"%s"\n' \
    "'{print \$14 + \$15}'" "$TLS_PID" "$SC/srv-phases" >"$SC/srv-hook.sh"
chmod +x "$SC/srv-hook.sh"
srv_record() { # PREFIX: the phases of $SC/srv-phases into $SC/srvcpu
    awk -v p="$1" -v t="$TICK" '$1 == "start" {s[$2] = $3} $1 == "end" && ($2 in s) {
        printf "%s.%s %.3f\n", p, $2, ($3 - s[$2]) / t }' "$SC/srv-phases" >>"$SC/srvcpu"
}
srv_time_cmd() { # NAME -- cmd...: time_cmd, and the server's CPU during it
    local a b
    a=$(srv_ticks)
    time_cmd "$@"
    b=$(srv_ticks)
    awk -v n="$1" -v a="$a" -v b="$b" -v t="$TICK" 'BEGIN {printf "%s %.3f\n", n, (b - a) / t}' >>"$SC/srvcpu"
}
# The server's floor: what this s3rver alone needs to take in and hand back
# the bytes of harvbk's full backup, with a client that does no work of its
# own (curl, one process, 8 transfers in flight over reused HTTPS connections,
# SigV4 with UNSIGNED-PAYLOAD, 4 MiB objects cut from the image). No client's
# backup or restore of those bytes is faster on this server; a peer's time
# over it is the most any client could beat that peer by here.
FLOOR_OBJ=$((4 << 20))
server_floor() { # REP: floor.put and floor.get, the bytes of harvbk's full backup
    local rep=$1 up n i c secret
    up=$(awk '$1 == "harvbk.uploaded_full" {v = $2} END {print v + 0}' "$SC/values")
    [ "$up" -gt 0 ] || return 0
    n=$(( (up + FLOOR_OBJ - 1) / FLOOR_OBJ ))
    rm -rf "$SC/floor"
    mkdir -m 700 "$SC/floor"
    head -c "$up" "$IMG" | split -b "$FLOOR_OBJ" -d -a 5 - "$SC/floor/p"
    secret=$(cat "$SC/secret")
    for c in put get; do # curl config files (they hold the secret: mode 0600)
        ( umask 077
          for i in $(seq 0 $((n - 1))); do
              [ "$i" = 0 ] || echo next
              printf 'url = "%s/bench/floor-%s/o%05d"\n' "$EP" "$rep" "$i"
              printf 'aws-sigv4 = "aws:amz:us-east-1:s3"\nuser = "%s:%s"\n' "$AKID" "$secret"
              printf 'cacert = "%s"\nheader = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\n' "$CA"
              printf 'fail\nsilent\nshow-error\noutput = "/dev/null"\n'
              [ "$c" = get ] || printf 'upload-file = "%s/floor/p%05d"\n' "$SC" "$i"
          done >"$SC/floor/$c.cfg" )
    done
    srv_time_cmd floor.put -- curl --parallel --parallel-max 8 -K "$SC/floor/put.cfg"
    srv_time_cmd floor.get -- curl --parallel --parallel-max 8 -K "$SC/floor/get.cfg"
    [ "$(find "$SC/s3data/bench/floor-$rep" -name '*._S3rver_object' | wc -l)" -eq "$n" ] ||
        die "the server floor did not store its $n objects"
    record floor.bytes "$up"
    rm -rf "$SC/floor" "$SC/s3data/bench/floor-$rep"
}
floor_line() { # LABEL TOOL_KEY FLOOR_KEY: the tool's median wall time over the floor's
    awk -v t="$(get wall "$2")" -v f="$(get wall "$3")" -v l="$1" 'BEGIN {
        if (t == "" || f <= 0) exit
        printf "  %-40s %.1fx\n", l, t / f }'
}
LOAD_START=$(hb_load)
for rep in $(seq 1 "$REPEAT"); do
    say "=== repeat $rep/$REPEAT: harvbk on s3://bench/hb-$rep (load $(hb_load))"
    : >"$SC/srv-phases"
    hb_bench_json "$SC/hb.json" "$SC/hb.err" --image "$IMG" --seed "$SEED" --dir "$SC/hb" \
        --phase-hook "$SC/srv-hook.sh" --target-url "s3://bench/hb-$rep" "${HB_S3[@]}"
    hb_record_phases "$SC/hb.json" harvbk
    srv_record harvbk
    record harvbk.stored_3_backups "$(stored "hb-$rep")"
    cp "$SC/hb.json" "$SC/hb-$rep.json"
    rm -rf "$SC/hb"
    hb_after_harvbk

    say "=== repeat $rep/$REPEAT: restic on s3:$EP/bench/restic-$rep (encrypted, compression auto)"
    export AWS_ACCESS_KEY_ID=$AKID AWS_SECRET_ACCESS_KEY
    AWS_SECRET_ACCESS_KEY=$(cat "$SC/secret")
    export RESTIC_PASSWORD=harvbk-bench RESTIC_REPOSITORY="s3:$EP/bench/restic-$rep"
    export RESTIC_CACHE_DIR=$SC/restic-cache
    restic --cacert "$CA" init -q >/dev/null
    srv_time_cmd restic.full -- restic --cacert "$CA" backup -q --host bench "$IMG"
    record restic.stored_after_full "$(stored "restic-$rep")"
    "$BENCH" --mutate "$IMG" --generation 1 --seed "$SEED" 2>/dev/null
    srv_time_cmd restic.incr -- restic --cacert "$CA" backup -q --host bench "$IMG"
    record restic.stored_2_backups "$(stored "restic-$rep")"
    srv_time_cmd restic.restore -- restic --cacert "$CA" restore -q latest --target "$SC/restic-restore"
    out=$(find "$SC/restic-restore" -type f -name image.raw | head -1)
    flush_restored restic "$out"
    cmp -s "$IMG" "$out" || die "restic restored bytes differ from the image"
    hb_undo_change
    say "=== repeat $rep/$REPEAT: the server's floor (curl, no work of its own)"
    server_floor "$rep"
    rm -rf "$SC/restic-restore" "$RESTIC_CACHE_DIR" "$SC/s3data/bench/restic-$rep" "$SC/s3data/bench/hb-$rep"
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RESTIC_PASSWORD RESTIC_REPOSITORY RESTIC_CACHE_DIR
done
LOAD_END=$(hb_load)

if [ "$VERIFIED" = 1 ]; then
    say "=== harvbk through the verifying proxy ($HARVBK_TEST_S3_ENDPOINT_TLS): every request checked by botocore"
    before=$(curl -s "$HARVBK_TEST_S3_CONTROL/stats" | jq '.rejected')
    # the proxy's request counts by operation, before and after each phase
    : >"$SC/phase-requests"
    cat >"$SC/phase-hook.sh" <<EOF
#!/bin/sh
set -e
s=\$(curl -sf "$HARVBK_TEST_S3_CONTROL/stats")
printf '%s %s %s\\n' "\$1" "\$2" "\$(printf '%s' "\$s" | jq -c '.by_op')" >>"$SC/phase-requests"
EOF
    chmod +x "$SC/phase-hook.sh"
    hb_bench_json "$SC/hbv.json" "$SC/hbv.err" --image "$IMG" --seed "$SEED" --dir "$SC/hbv" \
        --phase-hook "$SC/phase-hook.sh" \
        --target-url "s3://$HARVBK_TEST_S3_BUCKET/bench-verified" --endpoint "$HARVBK_TEST_S3_ENDPOINT_TLS" \
        --region "$HARVBK_TEST_S3_REGION" --access-key-id "$HARVBK_TEST_S3_ACCESS_KEY_ID" \
        --secret-access-key-file "$HARVBK_TEST_S3_SECRET_FILE" --ca-cert "$HARVBK_TEST_S3_CA"
    stats=$(curl -s "$HARVBK_TEST_S3_CONTROL/stats")
    VREQ=$(jq '.requests' <<<"$stats"); VREJ=$(( $(jq '.rejected' <<<"$stats") - before ))
    [ "$VREJ" -eq 0 ] || die "the verifying proxy rejected $VREJ request(s) of harvbk"
    rm -rf "$SC/hbv"
    hb_after_harvbk
fi

# ---------------------------------------------------------------- report
hb_medians
med "$SC/srvcpu" 2 >"$SC/m.srv"
RATIO_W=40

{
    echo "## harvbk vs restic on S3 (s3rver $S3RVER_VERSION over HTTPS, loopback) — $SIZE image, median of $REPEAT run(s)"
    echo
    echo "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "tools: libharvbk $(jq -r .library_version "$SC/hb-1.json") (codec $(jq -r .codec "$SC/hb-1.json"), 8 requests in flight); $(restic version | awk '{print $1, $2}') (5 S3 connections, its default)"
    echo "load average (1/5/15 min) at the start of the repeats: $LOAD_START; at their end: $LOAD_END"
    hb_image_line "$SC/hb-1.json" "$SRC_IMG" "$SEED"
    echo
    fmt='%-14s %10s %10s %10s %10s %10s %10s %11s %11s\n'
    # shellcheck disable=SC2059
    printf "$fmt" phase hb_wall_s restic_s hb_cpu_s restic_cpu hb_srv_cpu rs_srv_cpu hb_rss_MiB restic_rss
    for ph in full incr restore restore+sync; do
        hk=$ph; [ "$ph" = restore+sync ] && hk=restore
        # shellcheck disable=SC2059
        printf "$fmt" "$ph" \
            "$(f3 "$(get wall harvbk.$hk)")" "$(f3 "$(get wall restic.$ph)")" \
            "$(f3 "$(get cpu harvbk.$hk)")" "$(f3 "$(get cpu restic.$ph)")" \
            "$(f3 "$(get srv harvbk.$hk)")" "$(f3 "$(get srv restic.$hk)")" \
            "$(rss harvbk.$hk)" "$(rss restic.$ph)"
    done
    for ph in incr-ranges verify; do
        # shellcheck disable=SC2059
        printf "$fmt" "$ph" "$(f3 "$(get wall harvbk.$ph)")" - \
            "$(f3 "$(get cpu harvbk.$ph)")" - "$(f3 "$(get srv harvbk.$ph)")" - "$(rss harvbk.$ph)" -
    done
    echo "(hb_srv_cpu / rs_srv_cpu: CPU seconds, user + system, of the s3rver process during"
    echo " harvbk's / restic's phase; s3rver runs its JavaScript on one thread, so a phase"
    echo " whose wall time is close to the server's CPU time is bound by the server)"
    echo
    echo "speed (median wall time; ratio = restic seconds / harvbk seconds):"
    ratio_line "full backup vs restic" harvbk.full restic.full 4
    ratio_line "incremental (no ranges) vs restic" harvbk.incr restic.incr ""
    ratio_line "incremental (changed ranges) vs restic" harvbk.incr-ranges restic.incr ""
    ratio_line "restore vs restic" harvbk.restore restic.restore 4
    ratio_line "restore vs restic restore+fdatasync" harvbk.restore restic.restore+sync 4
    if [ -n "$(get wall floor.put)" ]; then
        echo
        echo "server floor (curl alone, 8 in flight, HTTPS, this s3rver; the bytes of harvbk's full backup,"
        printf ' %.1f MiB in 4 MiB objects): PUT %.2f s (s3rver CPU %.2f s), GET %.2f s (s3rver CPU %.2f s)\n' \
            "$(get val floor.bytes | awk '{print $1 / 1048576}')" "$(get wall floor.put)" "$(get srv floor.put)" \
            "$(get wall floor.get)" "$(get srv floor.get)"
        echo "the most any client could beat restic by on this server (restic's time / the floor):"
        floor_line "full backup" restic.full floor.put
        floor_line "restore" restic.restore floor.get
        echo "harvbk's time as a multiple of the floor:"
        floor_line "full backup" harvbk.full floor.put
        floor_line "restore" harvbk.restore floor.get
    fi
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
        echo
        echo "S3 requests per phase, counted by the proxy (LIST = ListObjectsV2 page; DELETE"
        echo "includes DeleteObjects batches; POST = multipart create/complete), and per GiB"
        echo "of the $SIZE image (logical bytes):"
        printf '%-12s %7s %7s %7s %7s %7s %7s %8s %10s\n' phase GET LIST PUT HEAD DELETE POST total per_GiB
        gib=$(awk -v b="$size_b" 'BEGIN {print b / 1073741824}')
        for ph in full incr incr-ranges restore verify; do
            s0=$(awk -v p="$ph" '$1 == "start" && $2 == p {print $3}' "$SC/phase-requests" | tail -1)
            s1=$(awk -v p="$ph" '$1 == "end" && $2 == p {print $3}' "$SC/phase-requests" | tail -1)
            [ -n "$s0" ] && [ -n "$s1" ] || continue
            jq -rn --argjson a "$s0" --argjson b "$s1" --arg ph "$ph" --argjson gib "$gib" '
                def d(k): (($b[k] // 0) - ($a[k] // 0));
                [d("GET"), d("LIST"), d("PUT"), d("HEAD"), d("DELETE"), d("POST")] as $v
                | ($v | add) as $t
                | [$ph] + ($v | map(tostring)) + [($t | tostring), (($t / $gib) | round | tostring)]
                | @tsv' |
                awk -F'\t' '{printf "%-12s %7s %7s %7s %7s %7s %7s %8s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
        done
    fi
    echo
    echo "notes: both tools talk HTTPS to the same s3rver on 127.0.0.1 with the run's CA"
    echo "(--ca-cert / --cacert); restic always encrypts and compresses (zstd auto), harvbk"
    echo "compresses (zstd 1) without encryption; restic's restore has no sparse mode and"
    echo "returns with the data in the page cache ('restore+sync' adds 'sync -d' of its file);"
    echo "harvbk's restore ends with fdatasync. 'sync' runs before every timed restic step."
} | tee "$SC/summary.txt"

if [ "$KEEP" = 1 ]; then say "raw data: $SC/times, $SC/values, $SC/hb-*.json"; fi
