#!/usr/bin/env bash
# bench/run-peers.sh - libharvbk against restic and borg on the same disk image,
# on the same machine, in the same run. Speed is reported as ratios (the machine
# is shared and noisy; absolute seconds are for context only).
#
#   bench/run-peers.sh [--scratch DIR] [--size 1G] [--big-size 8G | --no-big]
#                      [--repeat N] [--threads N] [--bench PATH] [--seed N]
#                      [--keep] [--no-install]
#
# What it does:
#   1. installs restic, borgbackup and jq with apt-get when missing;
#   2. generates ONE image (harvbk_bench --generate-only);
#   3. per repeat, on that image: harvbk (harvbk_bench phases), restic and borg:
#      full backup, the same deterministic ~1% change (harvbk_bench --mutate),
#      incremental backup, restore to a new place; restored bytes are compared
#      with the image; the change is undone (--mutate --generation 0) before
#      the next tool;
#   4. harvbk_bench at --big-size for peak RSS against --size;
#   5. prints medians, ratios and the targets of bench/RESULTS.md.
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

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --scratch) SCRATCH_PARENT=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --big-size) BIG=$2; shift 2 ;;
    --no-big) BIG=; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --bench) BENCH=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run-peers.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$REPEAT" in '' | *[!0-9]* | 0) echo "run-peers.sh: --repeat wants a positive number" >&2; exit 2 ;; esac

say() { printf '%s\n' "$*" >&2; }
die() { say "run-peers.sh: $*"; exit 1; }

to_bytes() { # 1G -> bytes (binary units, like harvbk_bench)
    local v=${1%[bB]}; v=${v%[iI]}
    case "$v" in
    *[kK]) echo $(( ${v%?} * 1024 )) ;;
    *[mM]) echo $(( ${v%?} * 1024 * 1024 )) ;;
    *[gG]) echo $(( ${v%?} * 1024 * 1024 * 1024 )) ;;
    *[tT]) echo $(( ${v%?} * 1024 * 1024 * 1024 * 1024 )) ;;
    *[!0-9]* | '') die "bad size '$1'" ;;
    *) echo "$v" ;;
    esac
}

# ---- the benchmark binary ----
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "$BENCH" ]; then
    for cand in "$HERE/../build-bench/bench/harvbk_bench" "$HERE/../build/bench/harvbk_bench"; do
        if [ -x "$cand" ]; then BENCH=$cand; break; fi
    done
fi
[ -n "$BENCH" ] && [ -x "$BENCH" ] || die "harvbk_bench not found; build it first:
  cmake -S . -B build-bench && cmake --build build-bench -j2 --target harvbk_bench
or pass --bench PATH (or set HARVBK_BENCH)"
BENCH=$(cd "$(dirname "$BENCH")" && pwd)/$(basename "$BENCH")

# ---- peers ----
need_pkgs=()
command -v restic >/dev/null 2>&1 || need_pkgs+=(restic)
command -v borg >/dev/null 2>&1 || need_pkgs+=(borgbackup)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
[ -x /usr/bin/time ] || need_pkgs+=(time)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$INSTALL" = 1 ] || die "missing: ${need_pkgs[*]} (and --no-install given)"
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${need_pkgs[*]}; install them as root (apt-get install ${need_pkgs[*]})"
        SUDO="sudo -n"
    fi
    for p in "${need_pkgs[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            say "package lists do not know $p: apt-get update"
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
            break
        fi
    done
    say "installing ${need_pkgs[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${need_pkgs[@]}" >&2
fi

# ---- scratch ----
if [ -n "$SCRATCH_PARENT" ]; then
    mkdir -p "$SCRATCH_PARENT"
    SC=$(mktemp -d "$SCRATCH_PARENT/harvbk-peers.XXXXXX")
else
    SC=$(mktemp -d "${TMPDIR:-/tmp}/harvbk-peers.XXXXXX")
fi
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then say "kept $SC"; else rm -rf -- "$SC"; fi
    exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

size_b=$(to_bytes "$SIZE")
big_b=0
[ -n "$BIG" ] && big_b=$(to_bytes "$BIG")
# peak use: image + (repo + restored copy) of one tool at a time, or the big
# run's image + target + restored copy; plus 1 GiB of slack.
need=$(( 3 * size_b ))
[ $(( 3 * big_b )) -gt $need ] && need=$(( 3 * big_b ))
need=$(( need + size_b + 1024 * 1024 * 1024 ))
avail=$(( $(df -Pk "$SC" | awk 'NR==2 {print $4}') * 1024 ))
if [ "$avail" -lt "$need" ]; then
    say "run-peers.sh: not enough free space in $(dirname "$SC"): $(( avail >> 30 )) GiB free,"
    say "  about $(( need >> 30 )) GiB needed for --size $SIZE${BIG:+ and --big-size $BIG}."
    say "  Point --scratch at a larger filesystem, or use a smaller --size / --big-size / --no-big."
    exit 1
fi

# ---- machine ----
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
say "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
say "tools: $(restic version | head -1); $(borg --version); $("$BENCH" --help >/dev/null; echo "harvbk_bench $BENCH")"
say "scratch: $SC ($(( avail >> 30 )) GiB free)"

IMG=$SC/image.raw
TOPT=()
[ -n "$THREADS" ] && TOPT=(--threads "$THREADS")

# time_cmd NAME -- cmd...: runs cmd in the foreground under /usr/bin/time and
# appends "NAME wall user sys maxrss_kib" to $SC/times. An untimed global sync
# runs first unless NOSYNC=1.
time_cmd() {
    local name=$1; shift; [ "$1" = -- ] && shift
    [ "${NOSYNC:-0}" = 1 ] || sync
    if ! /usr/bin/time -f '%e %U %S %M' -o "$SC/time.out" "$@" >"$SC/cmd.log" 2>&1; then
        cat "$SC/cmd.log" >&2
        die "$name failed: $*"
    fi
    echo "$name $(tail -1 "$SC/time.out")" >>"$SC/times"
}
dusb() { du -sb "$1" | awk '{print $1}'; }
# flush_restored TOOL FILE: time fdatasync of a peer's restored file (harvbk's
# restore already ends with fdatasync; restic and borg return with the data only
# in the page cache) and record TOOL.restore+sync = restore + that flush.
flush_restored() {
    NOSYNC=1 time_cmd "$1.flush" -- sync -d "$2"
    local last
    last=$(grep -E "^$1\.(restore|flush) " "$SC/times" | tail -2)
    printf '%s\n' "$last" | awk -v t="$1" '$1 == t ".restore" {r = $0} $1 == t ".flush" {f = $0}
        END {split(r, a, " "); split(f, b, " ");
             printf "%s.restore+sync %s %s %s %s\n", t, a[2] + b[2], a[3] + b[3], a[4] + b[4], (a[5] > b[5] ? a[5] : b[5])}' \
        >>"$SC/times"
}
record() { echo "$1 $2" >>"$SC/values"; } # name value

say "generating the $SIZE image (seed $SEED)"
"$BENCH" --generate-only --size "$SIZE" --image "$IMG" --seed "$SEED"
sync
: >"$SC/times"
: >"$SC/values"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPEAT"); do
    say "=== repeat $rep/$REPEAT: harvbk (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    "$BENCH" --image "$IMG" --seed "$SEED" --dir "$SC/hb" --json "${TOPT[@]}" >"$SC/hb.json"
    jq -e '.ok' "$SC/hb.json" >/dev/null || { cat "$SC/hb.json" >&2; die "harvbk_bench failed"; }
    jq -r '.phases[] | select(.name != "mutate" and .name != "compare")
           | "harvbk." + .name + " " + (.wall_s|tostring) + " " + (.user_s|tostring) + " "
             + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' "$SC/hb.json" >>"$SC/times"
    # harvbk's restore is already flushed (fdatasync): its restore+sync is the restore
    jq -r '.phases[] | select(.name == "restore") | "harvbk.restore+sync " + (.wall_s|tostring) + " "
           + (.user_s|tostring) + " " + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' \
        "$SC/hb.json" >>"$SC/times"
    jq -r '.phases[] | select(.target_apparent_bytes_after != null and .name != "restore")
           | "harvbk.stored_after_" + .name + " " + (.target_apparent_bytes_after|tostring)' \
        "$SC/hb.json" >>"$SC/values"
    jq -r '.phases[] | select(.uploaded_bytes != null)
           | "harvbk.uploaded_" + .name + " " + (.uploaded_bytes|tostring)' "$SC/hb.json" >>"$SC/values"
    jq -r '"harvbk.restored_alloc " + (.restored_allocated_bytes|tostring), "image_alloc " + (.image_allocated_bytes|tostring)' \
        "$SC/hb.json" >>"$SC/values"
    cp "$SC/hb.json" "$SC/hb-$rep.json"
    rm -rf "$SC/hb"

    say "=== repeat $rep/$REPEAT: restic (always encrypted: AES-256 + Poly1305; repository v2, compression auto)"
    export RESTIC_PASSWORD=harvbk-bench RESTIC_REPOSITORY=$SC/restic-repo RESTIC_CACHE_DIR=$SC/restic-cache
    restic init -q >/dev/null
    base=$(dusb "$RESTIC_REPOSITORY")
    time_cmd restic.full -- restic backup -q --host bench "$IMG"
    s1=$(dusb "$RESTIC_REPOSITORY"); record restic.stored_after_full "$s1"; record restic.uploaded_full $(( s1 - base ))
    "$BENCH" --mutate "$IMG" --generation 1 --seed "$SEED" 2>/dev/null
    time_cmd restic.incr -- restic backup -q --host bench "$IMG"
    s2=$(dusb "$RESTIC_REPOSITORY"); record restic.stored_after_incr "$s2"; record restic.uploaded_incr $(( s2 - s1 ))
    time_cmd restic.restore -- restic restore -q latest --target "$SC/restic-restore"
    out=$(find "$SC/restic-restore" -type f -name image.raw | head -1)
    flush_restored restic "$out"
    cmp -s "$IMG" "$out" || die "restic restored bytes differ from the image"
    record restic.restored_alloc $(( $(du -sk "$out" | awk '{print $1}') * 1024 ))
    "$BENCH" --mutate "$IMG" --generation 0 --seed "$SEED" 2>/dev/null
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
    time_cmd borg.restore -- bash -c 'cd "$1" && exec borg extract --sparse "::incr"' _ "$SC/borg-restore"
    out=$(find "$SC/borg-restore" -type f -name image.raw | head -1)
    flush_restored borg "$out"
    cmp -s "$IMG" "$out" || die "borg restored bytes differ from the image"
    record borg.restored_alloc $(( $(du -sk "$out" | awk '{print $1}') * 1024 ))
    "$BENCH" --mutate "$IMG" --generation 0 --seed "$SEED" 2>/dev/null
    rm -rf "$BORG_REPO" "$SC/borg-restore" "$BORG_BASE_DIR"
    unset BORG_BASE_DIR BORG_REPO
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$BIG" ]; then
    say "=== harvbk at --size $BIG (peak RSS against $SIZE)"
    rm -f "$IMG" # the big run makes its own image; free the space first
    "$BENCH" --size "$BIG" --seed "$SEED" --dir "$SC/big" --json "${TOPT[@]}" >"$SC/big.json"
    jq -e '.ok' "$SC/big.json" >/dev/null || { cat "$SC/big.json" >&2; die "harvbk_bench --size $BIG failed"; }
    jq -r '.phases[] | select(.name != "mutate" and .name != "compare")
           | "big." + .name + " " + (.wall_s|tostring) + " " + (.user_s|tostring) + " "
             + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' "$SC/big.json" >>"$SC/times"
    rm -rf "$SC/big"
fi

# ---------------------------------------------------------------- report
# median of each name's values
med() { # file column -> "name median" lines
    awk -v col="$2" '{v[$1] = v[$1] " " $col} END {for (k in v) print k v[k]}' "$1" |
        while read -r name vals; do
            printf '%s %s\n' "$name" "$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
        done
}
med "$SC/times" 2 >"$SC/m.wall"
# best of the repeats: the least disturbed run of each (the machine is shared)
awk '{if (!($1 in m) || $2 < m[$1]) m[$1] = $2} END {for (k in m) print k, m[k]}' "$SC/times" >"$SC/m.best"
awk '{print $1, $3 + $4}' "$SC/times" >"$SC/cpu.tmp"; med "$SC/cpu.tmp" 2 >"$SC/m.cpu"
med "$SC/times" 5 >"$SC/m.rss"
med "$SC/values" 2 >"$SC/m.val"
get() { awk -v k="$2" '$1 == k {print $2; f=1} END {if (!f) print ""}' "$SC/m.$1"; }

ratio_line() { # label harvbk_key peer_key target
    local hb pw hbb pwb
    hb=$(get wall "$2"); pw=$(get wall "$3"); hbb=$(get best "$2"); pwb=$(get best "$3")
    if [ -z "$hb" ] || [ -z "$pw" ]; then printf '  %-38s n/a\n' "$1"; return; fi
    awk -v h="$hb" -v p="$pw" -v hb="$hbb" -v pb="$pwb" -v lbl="$1" -v tgt="$4" 'BEGIN {
        if (h <= 0) h = 0.001
        if (hb <= 0) hb = 0.001
        r = p / h; rb = pb / hb
        verdict = (tgt == "") ? "" : (r >= tgt ? sprintf("  [target >= %gx: MET]", tgt) : sprintf("  [target >= %gx: MISSED]", tgt))
        if (r >= 1) printf "  %-38s harvbk is %.1fx faster (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", lbl, r, h, p, rb, verdict
        else printf "  %-38s harvbk is %.1fx SLOWER (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", lbl, 1 / r, h, p, rb, verdict }'
}
f3() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.3f", v }'; }
rss() { awk -v k="$(get rss "$1")" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }

{
    echo "## harvbk vs restic vs borg — $SIZE image, median of $REPEAT run(s), same machine, same run"
    echo
    echo "machine: $(nproc) CPUs ($cpu_model), ${mem_gib} GiB RAM, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
    echo "tools: libharvbk $(jq -r .library_version "$SC/hb-1.json") (codec $(jq -r .codec "$SC/hb-1.json"), threads ${THREADS:-auto}); $(restic version | awk '{print $1, $2}'); $(borg --version)"
    echo "load average (1/5/15 min) at the start of the repeats: $LOAD_START; at their end: $LOAD_END"
    echo "image: $SIZE, seed $SEED, $(jq -r '.image_layout_bytes | "holes \(.hole/1048576) MiB, zeros \(.zero/1048576) MiB, text \(.text/1048576) MiB, random \(.random/1048576) MiB"' "$SC/hb-1.json"); change $(jq -r '.changed_bytes/1048576' "$SC/hb-1.json") MiB per incremental"
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
    echo "speed (median wall time; ratio = peer seconds / harvbk seconds; best-of-runs = ratio of the fastest runs):"
    ratio_line "full backup vs restic" harvbk.full restic.full 4
    ratio_line "full backup vs borg" harvbk.full borg.full 4
    ratio_line "incremental (no ranges) vs restic" harvbk.incr restic.incr 10
    ratio_line "incremental (no ranges) vs borg" harvbk.incr borg.incr 10
    ratio_line "incremental (ranges) vs restic" harvbk.incr-ranges restic.incr ""
    ratio_line "incremental (ranges) vs borg" harvbk.incr-ranges borg.incr ""
    ratio_line "restore vs restic" harvbk.restore restic.restore 5
    ratio_line "restore vs borg" harvbk.restore borg.restore 5
    ratio_line "restore vs restic restore+fdatasync" harvbk.restore restic.restore+sync 5
    ratio_line "restore vs borg restore+fdatasync" harvbk.restore borg.restore+sync 5
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
    echo "notes: the image and repositories stay in the page cache (nothing drops caches);"
    echo "restic always encrypts; borg runs unencrypted; borg extracts with --sparse; restic 0.14"
    echo "restore has no sparse option. 'sync' runs before every timed step, untimed. harvbk's"
    echo "restore ends with fdatasync (durable); restic's and borg's do not: 'restore+sync' adds"
    echo "the time of 'sync -d' on their restored file (harvbk row: its plain restore)."
} | tee "$SC/summary.txt"

if [ "$KEEP" = 1 ]; then say "raw data: $SC/times, $SC/values, $SC/hb-*.json${BIG:+, $SC/big.json}"; fi
