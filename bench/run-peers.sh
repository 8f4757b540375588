#!/usr/bin/env bash
# bench/run-peers.sh - libharvbk against restic and borg on the same disk image,
# on the same machine, in the same run. Speed is reported as ratios (the machine
# is shared and noisy; absolute seconds are for context only).
#
#   bench/run-peers.sh [--scratch DIR] [--size 1G | --image PATH]
#                      [--big-size 8G | --no-big] [--repeat N] [--threads N]
#                      [--bench PATH] [--seed N] [--keep] [--no-install]
#                      [--cold-store]
#
# What it does:
#   1. installs restic, borgbackup and jq with apt-get when missing;
#   2. generates ONE image (harvbk_bench --generate-only), or with --image
#      copies the given one (e.g. an ext4 disk of real files made by
#      bench/make-vm-image.sh; the original is never written);
#   3. per repeat, on that image: harvbk (harvbk_bench phases), restic and borg:
#      full backup, the same deterministic ~1% change (harvbk_bench --mutate),
#      incremental backup, restore to a new place; restored bytes are compared
#      with the image; the change is undone (--mutate --generation 0, or a
#      sparse copy of the given image) before the next tool;
#   4. harvbk_bench at --big-size for peak RSS against --size;
#   5. prints medians, ratios, ceiling multiples and the targets of RESULTS.md.
# --cold-store: every tool restores from a repository the page cache does not
# hold (harvbk_bench --cold-store; restic's and borg's repositories and caches
# dropped with harvbk_bench --drop-cache, untimed), as hours after a backup.
# Every process it starts runs in the foreground; the scratch directory is
# removed at the end (unless --keep), also on Ctrl-C.
set -euo pipefail

SIZE=1G
BIG=8G
REPEAT=3
THREADS=
SEED=20240601
SCRATCH_PARENT=
BENCH=${HARVBK_BENCH:-}
KEEP=0
INSTALL=1
SRC_IMG=
COLD=0

HB_NAME=run-peers.sh
# shellcheck source=bench/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage() { hb_usage 2 27; }

while [ $# -gt 0 ]; do
    case "$1" in
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --image) SRC_IMG=$2; shift 2 ;;
    --big-size) BIG=$2; shift 2 ;;
    --no-big) BIG=; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --cold-store) COLD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) hb_bad_arg "$1" ;;
    esac
done
hb_check_repeat "$REPEAT"
hb_src_image

# ---- the benchmark binary, peers ----
hb_find_bench "$HB_ROOT/build-bench/bench/harvbk_bench" "$HB_ROOT/build/bench/harvbk_bench"
hb_install "$INSTALL" restic:restic borg:borgbackup jq:jq /usr/bin/time:time

# ---- scratch ----
hb_scratch "$SCRATCH_PARENT" harvbk-peers

size_b=$(to_bytes "$SIZE")
big_b=0
[ -n "$BIG" ] && big_b=$(to_bytes "$BIG")
# peak use: image + (repo + restored copy) of one tool at a time, or the big
# run's image + target + restored copy; plus 1 GiB of slack.
need=$(( 3 * size_b ))
[ $(( 3 * big_b )) -gt $need ] && need=$(( 3 * big_b ))
need=$(( need + size_b + 1024 * 1024 * 1024 ))
avail=$(hb_avail "$SC")
if [ "$avail" -lt "$need" ]; then
    say "run-peers.sh: not enough free space in $(dirname "$SC"): $(( avail >> 30 )) GiB free,"
    say "  about $(( need >> 30 )) GiB needed for --size $SIZE${BIG:+ and --big-size $BIG}."
    say "  Point --scratch at a larger filesystem, or use a smaller --size / --big-size / --no-big."
    exit 1
fi

# ---- machine ----
hb_machine
say "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
say "tools: $(restic version | head -1); $(borg --version); $("$BENCH" --help >/dev/null; echo "harvbk_bench $BENCH")"
say "scratch: $SC ($(( avail >> 30 )) GiB free)"

IMG=$SC/image.raw
TOPT=()
[ -n "$THREADS" ] && TOPT=(--threads "$THREADS")
COPT=()
[ "$COLD" = 1 ] && COPT=(--cold-store)
# cold_repo DIR...: with --cold-store, DIRs leave the page cache (untimed)
cold_repo() { [ "$COLD" = 1 ] || return 0; local d; for d in "$@"; do "$BENCH" --drop-cache "$d" 2>/dev/null; done; }

hb_image "$IMG" "$SRC_IMG" "$SIZE" "$SEED"
: >"$SC/times"
: >"$SC/values"

LOAD_START=$(hb_load)
for rep in $(seq 1 "$REPEAT"); do
    say "=== repeat $rep/$REPEAT: harvbk (load average $(hb_load))"
    hb_bench_json "$SC/hb.json" "$SC/hb.err" --image "$IMG" --seed "$SEED" --dir "$SC/hb" "${TOPT[@]}" "${COPT[@]}"
    hb_record_phases "$SC/hb.json" harvbk
    # harvbk's restore is already flushed (fdatasync): its restore+sync is the restore
    jq -r '.phases[] | select(.name == "restore") | "harvbk.restore+sync " + (.wall_s|tostring) + " "
           + (.user_s|tostring) + " " + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' \
        "$SC/hb.json" >>"$SC/times"
    jq -r '.phases[] | select(.target_apparent_bytes_after != null and .name != "restore")
           | "harvbk.stored_after_" + .name + " " + (.target_apparent_bytes_after|tostring)' \
        "$SC/hb.json" >>"$SC/values"
    jq -r '"harvbk.restored_alloc " + (.restored_allocated_bytes|tostring), "image_alloc " + (.image_allocated_bytes|tostring)' \
        "$SC/hb.json" >>"$SC/values"
    # the phases against the machine's ceiling, measured in the same run (harvbk_bench + ceiling_bench)
    jq -r '.phases[] | select(.ceiling_s != null)
           | "harvbk.ceil_" + .name + " " + (.ceiling_s|tostring),
             "harvbk.ceil_disk_" + .name + " " + (.ceiling_disk_s|tostring),
             "harvbk.ceil_cpu_" + .name + " " + (.ceiling_cpu_s|tostring),
             "harvbk.xceil_" + .name + " " + (.ceiling_multiple|tostring)' "$SC/hb.json" >>"$SC/values"
    jq -r '.ceiling // {} | to_entries[] | select(.value|type == "number") | "ceil." + .key + " " + (.value|tostring)' \
        "$SC/hb.json" >>"$SC/values"
    cp "$SC/hb.json" "$SC/hb-$rep.json"
    rm -rf "$SC/hb"
    hb_after_harvbk

    say "=== repeat $rep/$REPEAT: restic (always encrypted: AES-256 + Poly1305; repository v2, compression auto)"
    export RESTIC_PASSWORD=harvbk-bench RESTIC_REPOSITORY=$SC/restic-repo RESTIC_CACHE_DIR=$SC/restic-cache
    restic init -q >/dev/null
    base=$(dusb "$RESTIC_REPOSITORY")
    time_cmd restic.full -- restic backup -q --host bench "$IMG"
    s1=$(dusb "$RESTIC_REPOSITORY"); record restic.stored_after_full "$s1"; record restic.uploaded_full $(( s1 - base ))
    "$BENCH" --mutate "$IMG" --generation 1 --seed "$SEED" 2>/dev/null
    time_cmd restic.incr -- restic backup -q --host bench "$IMG"
    s2=$(dusb "$RESTIC_REPOSITORY"); record restic.stored_after_incr "$s2"; record restic.uploaded_incr $(( s2 - s1 ))
    cold_repo "$RESTIC_REPOSITORY" "$RESTIC_CACHE_DIR"
    time_cmd restic.restore -- restic restore -q latest --target "$SC/restic-restore"
    out=$(find "$SC/restic-restore" -type f -name image.raw | head -1)
    flush_restored restic "$out"
    cmp -s "$IMG" "$out" || die "restic restored bytes differ from the image"
    record restic.restored_alloc $(( $(du -sk "$out" | awk '{print $1}') * 1024 ))
    hb_undo_change
    rm -rf "$RESTIC_REPOSITORY" "$SC/restic-restore" "$RESTIC_CACHE_DIR"
    unset RESTIC_PASSWORD RESTIC_REPOSITORY RESTIC_CACHE_DIR

    say "=== repeat $rep/$REPEAT: borg (--encryption=none, default lz4, default buzhash chunker)"
    export BORG_BASE_DIR=$SC/borg-base BORG_REPO=$SC/borg-repo
    export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
    borg init --encryption=none
    base=$(dusb "$BORG_REPO")
    # borg stores the path without its leading "/"; extract recreates it below the cwd
    time_cmd borg.full -- borg create "::full" -- "$IMG"
    s1=$(dusb "$BORG_REPO"); record borg.stored_after_full "$s1"; record borg.uploaded_full $(( s1 - base ))
    "$BENCH" --mutate "$IMG" --generation 1 --seed "$SEED" 2>/dev/null
    time_cmd borg.incr -- borg create "::incr" -- "$IMG"
    s2=$(dusb "$BORG_REPO"); record borg.stored_after_incr "$s2"; record borg.uploaded_incr $(( s2 - s1 ))
    mkdir -p "$SC/borg-restore"
    cold_repo "$BORG_REPO" "$BORG_BASE_DIR"
    time_cmd borg.restore -- bash -c 'cd "$1" && exec borg extract --sparse "::incr"' _ "$SC/borg-restore"
    out=$(find "$SC/borg-restore" -type f -name image.raw | head -1)
    flush_restored borg "$out"
    cmp -s "$IMG" "$out" || die "borg restored bytes differ from the image"
    record borg.restored_alloc $(( $(du -sk "$out" | awk '{print $1}') * 1024 ))
    hb_undo_change
    rm -rf "$BORG_REPO" "$SC/borg-restore" "$BORG_BASE_DIR"
    unset BORG_BASE_DIR BORG_REPO
done

LOAD_END=$(hb_load)
if [ -n "$BIG" ]; then
    say "=== harvbk at --size $BIG (peak RSS against $SIZE)"
    rm -f "$IMG" # the big run makes its own image; free the space first
    hb_bench_json "$SC/big.json" "$SC/big.err" --size "$BIG" --seed "$SEED" --dir "$SC/big" --no-ceiling "${TOPT[@]}"
    hb_record_phases "$SC/big.json" big
    rm -rf "$SC/big"
fi

# ---------------------------------------------------------------- report
hb_medians

{
    echo "## harvbk vs restic vs borg — ${SRC_IMG:+$(basename "$SRC_IMG"), }$SIZE image, median of $REPEAT run(s), same machine, same run"
    echo
    echo "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "tools: libharvbk $(jq -r .library_version "$SC/hb-1.json") (codec $(jq -r .codec "$SC/hb-1.json"), threads ${THREADS:-auto}); $(restic version | awk '{print $1, $2}'); $(borg --version)"
    echo "load average (1/5/15 min) at the start of the repeats: $LOAD_START; at their end: $LOAD_END"
    [ "$COLD" = 1 ] && echo "--cold-store: every restore (and harvbk's verify) read its repository from the disk, not the page cache"
    hb_image_line "$SC/hb-1.json" "$SRC_IMG" "$SEED"
    echo
    printf '%-22s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n' phase hb_wall_s restic_s borg_s hb_cpu_s restic_cpu borg_cpu hb_rss_MiB restic_rss borg_rss
    for ph in full incr restore restore+sync; do
        printf '%-22s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n' "$ph" \
            "$(f3 "$(get wall harvbk.$ph)")" "$(f3 "$(get wall restic.$ph)")" "$(f3 "$(get wall borg.$ph)")" \
            "$(f3 "$(get cpu harvbk.$ph)")" "$(f3 "$(get cpu restic.$ph)")" "$(f3 "$(get cpu borg.$ph)")" \
            "$(rss harvbk.$ph)" "$(rss restic.$ph)" "$(rss borg.$ph)"
    done
    for ph in incr-ranges verify; do
        printf '%-22s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n' "$ph" \
            "$(f3 "$(get wall harvbk.$ph)")" - - "$(f3 "$(get cpu harvbk.$ph)")" - - "$(rss harvbk.$ph)" - -
    done
    echo
    echo "speed (median wall time; ratio = peer seconds / harvbk seconds; best-of-runs = ratio of the fastest runs;"
    echo "targets of issue 13: >= 7x full backup and restore, >= 15x incremental without ranges):"
    ratio_line "full backup vs restic" harvbk.full restic.full 7
    ratio_line "full backup vs borg" harvbk.full borg.full 7
    ratio_line "incremental (no ranges) vs restic" harvbk.incr restic.incr 15
    ratio_line "incremental (no ranges) vs borg" harvbk.incr borg.incr 15
    ratio_line "incremental (ranges) vs restic" harvbk.incr-ranges restic.incr ""
    ratio_line "incremental (ranges) vs borg" harvbk.incr-ranges borg.incr ""
    ratio_line "restore vs restic" harvbk.restore restic.restore 7
    ratio_line "restore vs borg" harvbk.restore borg.restore 7
    ratio_line "restore vs restic restore+fdatasync" harvbk.restore restic.restore+sync 7
    ratio_line "restore vs borg restore+fdatasync" harvbk.restore borg.restore+sync 7
    echo
    if [ -n "$(get val harvbk.xceil_full)" ]; then
        echo "against the machine's ceiling (measured by ceiling_bench after harvbk's phases, same run, same"
        echo "image's chunks; ceiling = max(disk time, CPU time / CPUs), model in bench/README.md; medians):"
        for ph in full incr incr-ranges restore verify; do
            case $ph in verify) tgt=1.2 ;; incr-ranges) tgt= ;; *) tgt=1.3 ;; esac
            awk -v p="$ph" -v h="$(get wall harvbk.$ph)" -v c="$(get val harvbk.ceil_$ph)" -v d="$(get val harvbk.ceil_disk_$ph)" \
                -v u="$(get val harvbk.ceil_cpu_$ph)" -v x="$(get val harvbk.xceil_$ph)" -v t="$tgt" \
                -v hc="$(get cpu harvbk.$ph)" -v n="$(get val ceil.cpus)" 'BEGIN {
                v = (t == "") ? "" : sprintf("  [target <= %gx: %s]", t, (x <= t) ? "MET" : "MISSED")
                printf "  %-12s harvbk %.3f s, ceiling %.3f s (disk %.3f s, CPU %.3f s) -> %.2fx the ceiling%s\n", p, h, c, d, u, x, v
                printf "  %-12s   CPU: harvbk %.2f s against %.2f s of hashing/codec work (x%.2f; load does not inflate this one)\n", "", hc, u * n, (u > 0) ? hc / (u * n) : 0 }'
        done
        echo "  the most any tool could beat the faster peer by here (faster peer's seconds / the ceiling's:"
        echo "  the hashing/codec work at full speed on every CPU, or the disk, whichever is slower):"
        for ph in full incr restore; do
            case $ph in incr) tgt=15 ;; *) tgt=7 ;; esac
            awk -v p="$ph" -v c="$(get val harvbk.ceil_$ph)" -v r="$(get wall restic.$ph)" -v b="$(get wall borg.$ph)" \
                -v t="$tgt" 'BEGIN {
                if (c <= 0 || r == "" || b == "") { printf "  %-12s n/a\n", p; exit }
                f = (r < b) ? r : b; m = f / c
                printf "  %-12s ceiling %.3f s, faster peer %.3f s -> at most %.1fx  [target >= %gx: %s]\n", p, c, f, m, t,
                    (m >= t) ? "within the machine" : "beyond this machine" }'
        done
        awk -v n="$(get val ceil.cpus)" -v sha="$(get val ceil.sha_mb_per_s)" -v z="$(get val ceil.compress_mb_per_s)" \
            -v db="$(get val ceil.disk_bytes)" -v w="$(get val ceil.disk_write_s)" -v r="$(get val ceil.disk_read_s)" \
            -v cb="$(get val ceil.image_cached_bytes)" -v dt="$(get val ceil.data_bytes)" \
            -v sb="$(get val ceil.store_dir_bytes)" -v sc="$(get val ceil.store_dir_cached_bytes)" 'BEGIN {
            printf "  measured: %d CPUs; one core: SHA-256 %.0f MB/s, compress %.0f MB/s; O_DIRECT write+fsync %.0f MB/s, read %.0f MB/s;\n", n, sha, z, db / w / 1e6, db / r / 1e6
            printf "  page cache held %.0f%% of the image'"'"'s data and %.0f%% of the store (those bytes are not charged to the disk)\n", 100 * cb / dt, (sb > 0) ? 100 * sc / sb : 0 }'
    else
        echo "against the machine's ceiling: not measured (ceiling_bench missing next to harvbk_bench?)"
    fi
    echo
    echo "stored size (du -sb of the repository; harvbk: its target):"
    for when in full incr; do
        h=$(get val harvbk.stored_after_$when); r=$(get val restic.stored_after_$when); b=$(get val borg.stored_after_$when)
        awk -v h="$h" -v r="$r" -v b="$b" -v w="$when" 'BEGIN {
            printf "  after %-5s harvbk %.1f MiB, restic %.1f MiB, borg %.1f MiB -> harvbk/borg %.3f, harvbk/restic %.3f  [target <= borg: %s]\n",
                w, h/1048576, r/1048576, b/1048576, h/b, h/r, (h <= b) ? "MET" : "MISSED" }'
    done
    awk -v h="$(get val harvbk.uploaded_incr)" -v r="$(get val restic.uploaded_incr)" -v b="$(get val borg.uploaded_incr)" 'BEGIN {
        printf "  written by the incremental: harvbk %.1f MiB, restic %.1f MiB, borg %.1f MiB\n", h/1048576, r/1048576, b/1048576 }'
    awk -v h="$(get val harvbk.restored_alloc)" -v r="$(get val restic.restored_alloc)" -v b="$(get val borg.restored_alloc)" -v i="$(get val image_alloc)" 'BEGIN {
        printf "  restored file allocated on disk: harvbk %.1f MiB, restic %.1f MiB, borg %.1f MiB (image %.1f MiB)\n", h/1048576, r/1048576, b/1048576, i/1048576 }'
    if [ -n "$BIG" ]; then
        echo
        echo "peak RSS, $SIZE vs $BIG (harvbk_bench, one process per phase):"
        for ph in full incr incr-ranges restore verify; do
            a=$(get rss harvbk.$ph); b=$(get rss big.$ph)
            awk -v a="$a" -v b="$b" -v p="$ph" 'BEGIN {
                d = (b - a) / a; if (d < 0) d = -d
                printf "  %-12s %8.1f MiB vs %8.1f MiB (x%.2f)  [target same: %s]\n", p, a/1024, b/1024, b/a, (d <= 0.10 || (b - a) < 16384) ? "MET" : "MISSED" }'
        done
        echo "  $BIG run wall seconds: full $(get wall big.full), incr $(get wall big.incr), incr-ranges $(get wall big.incr-ranges), restore $(get wall big.restore), verify $(get wall big.verify); generate $(get wall big.generate)"
    fi
    echo
    if [ "$COLD" = 1 ]; then
        echo "notes: the image stays in the page cache; every repository left it before its restore (--cold-store);"
    else
        echo "notes: the image and repositories stay in the page cache (nothing drops caches);"
    fi
    echo "restic always encrypts; borg runs unencrypted; borg extracts with --sparse; restic 0.14"
    echo "restore has no sparse option. 'sync' runs before every timed step, untimed. harvbk's"
    echo "restore ends with fdatasync (durable); restic's and borg's do not: 'restore+sync' adds"
    echo "the time of 'sync -d' on their restored file (harvbk row: its plain restore)."
} | tee "$SC/summary.txt"

if [ "$KEEP" = 1 ]; then say "raw data: $SC/times, $SC/values, $SC/hb-*.json${BIG:+, $SC/big.json}"; fi
