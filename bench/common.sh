# bench/common.sh - what the bench/run-*.sh scripts share. Sourced, not run:
#
#   HB_NAME=run-foo.sh; . "$(dirname "${BASH_SOURCE[0]}")/common.sh"
#
# Messages (say, die), sizes (to_bytes), finding harvbk_bench, installing the
# peers with apt-get, the scratch directory and the EXIT trap that stops every
# process the script started (by its PID) and removes the scratch directory,
# the free-space check, timing commands, medians, ratio lines, and starting
# s3rver. Variables it reads: KEEP (1: keep the scratch directory). Sets SC
# (the scratch directory), HB_HERE (bench/), HB_ROOT (the source tree).
# shellcheck shell=bash

HB_NAME=${HB_NAME:-$(basename "$0")}
HB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HB_ROOT=$(cd "$HB_HERE/.." && pwd)
HB_PIDS=()          # processes to stop at exit, by PID
HB_AT_EXIT=()       # functions to call at exit (servers' own stop scripts)
SC=

say() { printf '%s\n' "$*" >&2; }
die() { say "$HB_NAME: $*"; exit 1; }

# hb_usage FIRST LAST: the script's own header comment, lines FIRST..LAST
hb_usage() { sed -n "$1,$2p" "$0" | sed 's/^# \{0,1\}//'; }
hb_bad_arg() { echo "$HB_NAME: unknown argument '$1' (see --help)" >&2; exit 2; }
hb_check_repeat() {
    case "$1" in '' | *[!0-9]* | 0) echo "$HB_NAME: --repeat wants a positive number" >&2; exit 2 ;; esac
}

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

# hb_find_bench CANDIDATE...: BENCH (from --bench / $HARVBK_BENCH) or the
# first executable candidate, made absolute; dies with how to build it.
hb_find_bench() {
    local cand
    if [ -z "${BENCH:-}" ]; then
        for cand in "$@"; do
            if [ -x "$cand" ]; then BENCH=$cand; break; fi
        done
    fi
    [ -n "${BENCH:-}" ] && [ -x "$BENCH" ] || die "harvbk_bench not found; build it first:
  cmake -S . -B build-bench && cmake --build build-bench -j2 --target harvbk_bench
or pass --bench PATH (or set HARVBK_BENCH)"
    BENCH=$(cd "$(dirname "$BENCH")" && pwd)/$(basename "$BENCH")
}

# hb_install INSTALL COMMAND:PACKAGE...: apt-get install the packages whose
# command is missing (an absolute COMMAND: that file); apt-get update only
# when the package lists do not know one. INSTALL=0: die naming them instead.
hb_install() {
    local install=$1 cp cmd p pkgs=() sudo=
    shift
    for cp in "$@"; do
        cmd=${cp%%:*}
        case "$cmd" in
        /*) [ -x "$cmd" ] || pkgs+=("${cp#*:}") ;;
        *) command -v "$cmd" >/dev/null 2>&1 || pkgs+=("${cp#*:}") ;;
        esac
    done
    [ ${#pkgs[@]} -gt 0 ] || return 0
    [ "$install" = 1 ] || die "missing: ${pkgs[*]} (and --no-install given)"
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${pkgs[*]}; install them as root (apt-get install ${pkgs[*]})"
        sudo="sudo -n"
    fi
    for p in "${pkgs[@]}"; do
        if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            say "package lists do not know $p: apt-get update"
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
            break
        fi
    done
    say "installing ${pkgs[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${pkgs[@]}" >&2
}

# ---- scratch directory and cleanup ----

# hb_stop_pid PID: TERM, up to 5 s to go, then KILL; reaps it.
hb_stop_pid() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
hb_track_pid() { HB_PIDS+=("$1"); }
hb_at_exit() { HB_AT_EXIT+=("$1"); }

hb_cleanup() {
    local rc=$? pid fn
    trap - EXIT INT TERM
    for pid in "${HB_PIDS[@]}"; do hb_stop_pid "$pid"; done
    for fn in "${HB_AT_EXIT[@]}"; do "$fn" || true; done
    if [ -n "$SC" ]; then
        if [ "${KEEP:-0}" = 1 ]; then say "kept $SC"; else rm -rf -- "$SC"; fi
    fi
    exit $rc
}

# hb_scratch PARENT PREFIX: SC = a fresh PREFIX.XXXXXX in PARENT (default
# ${TMPDIR:-/tmp}); installs the EXIT/INT/TERM traps.
hb_scratch() {
    local parent=${1:-${TMPDIR:-/tmp}}
    mkdir -p "$parent"
    SC=$(mktemp -d "$parent/$2.XXXXXX")
    trap hb_cleanup EXIT
    trap 'say "interrupted"; exit 130' INT TERM
}

hb_avail() { echo $(( $(df -Pk "$1" | awk 'NR==2 {print $4}') * 1024 )); }

# shellcheck disable=SC2034 # for the scripts' reports
hb_machine() { # cpu_model, mem_gib
    cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    mem_gib=$(awk '/^MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)
}
hb_load() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- timing and recording ($SC/times: "NAME wall user sys maxrss_kib") ----

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
record() { echo "$1 $2" >>"$SC/values"; } # name value
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

# hb_bench_json OUT ERR ARGS...: harvbk_bench ARGS --json >OUT 2>ERR (run by
# the command in HB_BENCH_WRAP, if any); dies with the tail of ERR and OUT
# unless it exits 0 (it does only when every phase passed).
HB_BENCH_WRAP=()
hb_bench_json() {
    local out=$1 err=$2
    shift 2
    if ! "${HB_BENCH_WRAP[@]}" "$BENCH" "$@" --json >"$out" 2>"$err"; then
        tail -n 20 "$err" >&2
        [ -s "$out" ] && tail -n 20 "$out" >&2
        die "harvbk_bench failed: $*"
    fi
}

# hb_record_phases JSON PREFIX: PREFIX.<phase> lines into $SC/times, and the
# bytes each backup uploaded (PREFIX.uploaded_<phase>) into $SC/values.
hb_record_phases() {
    jq -r --arg p "$2" '.phases[] | select(.name != "mutate" and .name != "compare")
           | $p + "." + .name + " " + (.wall_s|tostring) + " " + (.user_s|tostring) + " "
             + (.sys_s|tostring) + " " + (.peak_rss_kib|tostring)' "$1" >>"$SC/times"
    jq -r --arg p "$2" '.phases[] | select(.uploaded_bytes != null)
           | $p + ".uploaded_" + .name + " " + (.uploaded_bytes|tostring)' "$1" >>"$SC/values"
}

# ---- the report ----

med() { # file column -> "name median" lines
    awk -v col="$2" '{v[$1] = v[$1] " " $col} END {for (k in v) print k v[k]}' "$1" |
        while read -r name vals; do
            # shellcheck disable=SC2086
            printf '%s %s\n' "$name" "$(printf '%s\n' $vals | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
        done
}
# hb_medians: $SC/m.wall, m.best (the fastest repeat: the least disturbed run
# of each; the machine is shared), m.cpu, m.rss, m.val
hb_medians() {
    med "$SC/times" 2 >"$SC/m.wall"
    awk '{if (!($1 in m) || $2 < m[$1]) m[$1] = $2} END {for (k in m) print k, m[k]}' "$SC/times" >"$SC/m.best"
    awk '{print $1, $3 + $4}' "$SC/times" >"$SC/cpu.tmp"; med "$SC/cpu.tmp" 2 >"$SC/m.cpu"
    med "$SC/times" 5 >"$SC/m.rss"
    med "$SC/values" 2 >"$SC/m.val"
}
get() { awk -v k="$2" '$1 == k {print $2; f=1} END {if (!f) print ""}' "$SC/m.$1"; }
f3() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.3f", v }'; }
rss() { awk -v k="$(get rss "$1")" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k / 1024 }'; }

ratio_line() { # label harvbk_key peer_key target   (label width: RATIO_W, default 38)
    local hb pw hbb pwb
    hb=$(get wall "$2"); pw=$(get wall "$3"); hbb=$(get best "$2"); pwb=$(get best "$3")
    if [ -z "$hb" ] || [ -z "$pw" ]; then printf "  %-${RATIO_W:-38}s n/a\n" "$1"; return; fi
    awk -v h="$hb" -v p="$pw" -v hb="$hbb" -v pb="$pwb" -v lbl="$1" -v tgt="$4" -v w="${RATIO_W:-38}" 'BEGIN {
        if (h <= 0) h = 0.001
        if (hb <= 0) hb = 0.001
        r = p / h; rb = pb / hb
        verdict = (tgt == "") ? "" : (r >= tgt ? sprintf("  [target >= %gx: MET]", tgt) : sprintf("  [target >= %gx: MISSED]", tgt))
        l = sprintf("  %-" w "s", lbl)
        if (r >= 1) printf "%s harvbk is %.1fx faster (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", l, r, h, p, rb, verdict
        else printf "%s harvbk is %.1fx SLOWER (%.2f s vs %.2f s; best-of-runs %.1fx)%s\n", l, 1 / r, h, p, rb, verdict }'
}

# ---- s3rver ----

S3RVER_VERSION=3.7.1
S3RVER_JS=${HARVBK_S3RVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/harvbk/s3rver-$S3RVER_VERSION}/node_modules/s3rver/bin/s3rver.js

# hb_start_s3rver DATADIR LOG ARGS...: s3rver on 127.0.0.1 (a free port) with
# the fixes tests/s3/s3env.sh loads; sets S3RVER_PID (stopped at exit) and
# S3RVER_PORT.
hb_start_s3rver() {
    local data=$1 log=$2 fixes=()
    shift 2
    [ -f "$S3RVER_JS" ] || die "s3rver not found at $S3RVER_JS (scripts/deps.sh installs it)"
    mkdir -p "$data"
    # the same fixes of s3rver's races and listing order tests/s3/s3env.sh loads
    [ -f "$HB_ROOT/tests/s3/s3rver-fixes.js" ] && fixes=(-r "$HB_ROOT/tests/s3/s3rver-fixes.js")
    setsid node --openssl-legacy-provider "${fixes[@]}" "$S3RVER_JS" -d "$data" -a 127.0.0.1 -p 0 \
        "$@" </dev/null >"$log" 2>&1 &
    S3RVER_PID=$!
    hb_track_pid "$S3RVER_PID"
    S3RVER_PORT=
    for _ in $(seq 300); do
        S3RVER_PORT=$(sed -nE 's/.*listening on 127\.0\.0\.1:([0-9]+).*/\1/p' "$log" | head -1)
        [ -n "$S3RVER_PORT" ] && return 0
        kill -0 "$S3RVER_PID" 2>/dev/null || { cat "$log" >&2; die "s3rver exited"; }
        sleep 0.1
    done
    die "s3rver did not start"
}

# hb_image IMG SRC SIZE SEED: the benchmark image at IMG: a sparse copy of SRC
# (--image: a given disk image, never written) or, with SRC empty, one made by
# harvbk_bench --generate-only at SIZE with SEED. Defines hb_undo_change, which
# puts IMG back as it was before harvbk_bench --mutate changed it, and
# hb_after_harvbk, to call after a harvbk_bench run on IMG (harvbk_bench puts
# an image back to the generated bytes, not to a given image's).
hb_image() {
    local img=$1 src=$2 size=$3 seed=$4
    if [ -n "$src" ]; then
        say "copying $src ($(( $(du -k "$src" | awk '{print $1}') >> 10 )) MiB allocated of $(( $(stat -c %s "$src") >> 20 )) MiB)"
        cp --sparse=always -- "$src" "$img"
        eval "hb_undo_change() { cp --sparse=always -- $(printf '%q' "$src") $(printf '%q' "$img"); sync; }"
        hb_after_harvbk() { hb_undo_change; }
    else
        say "generating the $size image (seed $seed)"
        "$BENCH" --generate-only --size "$size" --image "$img" --seed "$seed"
        eval "hb_undo_change() { \"\$BENCH\" --mutate $(printf '%q' "$img") --generation 0 --seed $(printf '%q' "$seed") 2>/dev/null; }"
        hb_after_harvbk() { :; }
    fi
    sync
}

# hb_image_line JSON SRC SEED: the report's "image: ..." line from a
# harvbk_bench --json result.
hb_image_line() {
    local json=$1 src=$2 seed=$3
    if [ -n "$src" ]; then
        echo "image: $(basename "$src"), $(( $(stat -c %s "$src") >> 20 )) MiB, $(jq -r '.image_allocated_bytes/1048576|floor' "$json") MiB allocated; change $(jq -r '.changed_bytes/1048576' "$json") MiB per incremental (seed $seed)"
    else
        echo "image: $SIZE, seed $seed, $(jq -r '.image_layout_bytes | "holes \(.hole/1048576) MiB, zeros \(.zero/1048576) MiB, text \(.text/1048576) MiB, random \(.random/1048576) MiB"' "$json"); change $(jq -r '.changed_bytes/1048576' "$json") MiB per incremental"
    fi
}

# hb_src_image: with --image given (SRC_IMG set), checks it, makes SRC_IMG
# absolute and SIZE its size in bytes.
hb_src_image() {
    [ -n "$SRC_IMG" ] || return 0
    [ -f "$SRC_IMG" ] || die "--image $SRC_IMG: no such file"
    SRC_IMG=$(realpath -- "$SRC_IMG")
    SIZE=$(stat -c %s "$SRC_IMG")
}
