#!/usr/bin/env bash
# tests/cli/cli_golden.sh HARVBK GOLDEN_FILE WORK_DIR
#
# Golden-output test of the `harvbk` CLI: runs every command and subcommand
# with --help, with no arguments, with a bad option, with a malformed NS/NAME
# and with too many arguments, then a few successful operations on a tiny VM
# disk with a file:// target (vm add, backup create/list/show/verify,
# snapshot create/list/show, restore of both). Each run's stdout, stderr and
# exit status go into one transcript, with the temporary paths and the values
# that change from run to run (times, rates, ages) replaced by placeholders;
# the transcript must equal GOLDEN_FILE byte for byte.
#
# HARVBK_GOLDEN_UPDATE=1 writes the transcript to GOLDEN_FILE instead (only
# for a deliberate change of the CLI's output: review the diff).
set -euo pipefail
cli=$1 golden=$2 work=$3

export LC_ALL=C TZ=UTC
unset HARVBK_STATE HARVBK_KEY_FILE HARVBK_PASSPHRASE_FILE HARVBK_SECRET_ACCESS_KEY_FILE \
    AWS_SECRET_ACCESS_KEY AWS_ACCESS_KEY_ID

cli=$(realpath "$cli")
golden=$(realpath -m "$golden")
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd -P)
cd "$work"
out=$work/transcript.txt
: >"$out"

# run STATE ARGS...: one CLI run with --state STATE, appended to the
# transcript ("fresh" STATE: a new empty state directory for this run only)
run() {
    local state=$1 status=0
    shift
    if [ "$state" = fresh ]; then
        rm -rf "$work/fresh"
        state=$work/fresh
    fi
    "$cli" --state "$state" "$@" >"$work/o" 2>"$work/e" </dev/null || status=$?
    {
        printf '$ harvbk %s\n' "$*"
        sed 's/^/1| /' "$work/o"
        sed 's/^/2| /' "$work/e"
        printf '[exit %d]\n' "$status"
    } >>"$out"
}

# run_raw ARGS...: a run without --state (global option handling)
run_raw() {
    local status=0
    "$cli" "$@" >"$work/o" 2>"$work/e" </dev/null || status=$?
    {
        printf '$ harvbk %s\n' "$*"
        sed 's/^/1| /' "$work/o"
        sed 's/^/2| /' "$work/e"
        printf '[exit %d]\n' "$status"
    } >>"$out"
}

# ---- global ----
run_raw
run_raw --help
run_raw --bogus
run_raw nosuch
run_raw help
run_raw help nosuch
run_raw help backup create
run_raw --state

# ---- every command and subcommand, the error paths ----
leaves=(
    "target set" "target show" "target key add" "target key remove" "target key list"
    "target key generate"
    "vm add" "vm list" "vm ls" "vm show" "vm remove" "vm rm" "vm set-power"
    "backup create" "backup list" "backup ls" "backup show" "backup verify" "backup delete"
    "backup rm" "backup forget"
    "restore" "gc" "sync"
    "snapshot create" "snapshot list" "snapshot ls" "snapshot show" "snapshot verify"
    "snapshot delete" "snapshot rm" "snapshot gc" "snapshot store"
    "quota set" "quota clear" "quota show"
    "schedule create" "schedule list" "schedule ls" "schedule show" "schedule edit"
    "schedule suspend" "schedule resume" "schedule delete" "schedule rm" "schedule run-due"
    "maintenance status" "maintenance enter" "maintenance exit"
    "image register" "image list" "image show" "image delete"
    "run" "demo"
)
groups=(target "target key" vm backup snapshot quota schedule maintenance image)
for g in "${groups[@]}"; do
    read -r -a w <<<"$g"
    run fresh "${w[@]}"
    run fresh "${w[@]}" --help
    run fresh "${w[@]}" -h
    run fresh "${w[@]}" nosuch
done
for l in "${leaves[@]}"; do
    read -r -a w <<<"$l"
    run fresh "${w[@]}" --help
    run fresh help "${w[@]}"
    # no arguments: not for the two that would run (a foreground service, a demo)
    if [ "$l" != run ] && [ "$l" != demo ] && [ "$l" != "schedule run-due" ]; then
        run fresh "${w[@]}"
    fi
    run fresh "${w[@]}" --bogus
    run fresh "${w[@]}" --json=1
    run fresh "${w[@]}" Bad_NS/vm1
    run fresh "${w[@]}" default/vm1/x
    run fresh "${w[@]}" default/
    run fresh "${w[@]}" default/vm1 default/vm2 extra
done

# ---- successful operations on a tiny VM disk, file:// target ----
# (a transcript of their own: the placeholders for times below apply to it
# only, so that the help texts' examples are compared as they are)
main=$out
out=$work/ops.txt
: >"$out"
# a 1 MiB + 4097 byte disk of fixed (compressible) bytes and a run of zeros
seq 1 200000 >seq.txt
head -c $((512 * 1024)) seq.txt >disk.raw
head -c $((512 * 1024)) /dev/zero >>disk.raw
tail -c 4097 seq.txt >>disk.raw
st=$work/state
mkdir -p target
run "$st" target set "file://$work/target"
run "$st" vm add default/vm1 --disk root=disk.raw
run "$st" vm list
run "$st" vm show default/vm1
run "$st" vm add default/vm1 --disk root=disk.raw --disk root=disk.raw
run "$st" vm add default/vm1 --disk root=missing.raw
run "$st" vm add default/vm1 --disk Root=disk.raw
run "$st" vm add default/vm1 --disk root
run "$st" backup create default/vm1 --name b1
run "$st" backup create default/nosuch --name b1
run "$st" backup create default/vm1
run "$st" backup create default/vm1 --name Bad_Name
run "$st" backup list
run "$st" backup show default/b1
run "$st" backup show default/nosuch
run "$st" backup verify default/b1
run "$st" snapshot create default/vm1 --name s1
run "$st" snapshot create default/vm1
run "$st" snapshot list
run "$st" snapshot show default/s1
run "$st" snapshot verify default/s1
run "$st" restore default/b1 --new-vm default/vm2 --into r1
run "$st" restore --snapshot default/s1 --new-vm default/vm3 --into r2
run "$st" restore default/b1 --new-vm default/vm2
run "$st" vm list
run "$st" vm set-power default/vm1 off
run "$st" vm set-power default/vm1 sideways
run "$st" quota set --vm default/vm1 10M
run "$st" quota show --vm default/vm1
run "$st" quota set --vm default/vm1 lots
run "$st" image register default/img1 --display-name "Image one"
run "$st" image show default/img1
run "$st" image list
run "$st" image delete default/img1
run "$st" schedule create nightly --type backup --vm default/vm1 --cron "0 1 * * *" \
    --now 2030-01-01T00:00:00Z
run "$st" schedule show nightly
run "$st" schedule suspend nightly
run "$st" schedule delete nightly
run "$st" snapshot delete default/s1
run "$st" backup delete default/b1
run "$st" vm remove default/vm3

# the restored volumes hold the disk's bytes
cmp disk.raw r1/root.raw
cmp disk.raw r2/root.raw

# ---- placeholders for what differs between runs ----
sed -i -E \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z/@TIME@/g' \
    -e 's/in [0-9]+\.[0-9]s \([0-9]+\.[0-9] MB\/s\)/in @SECS@s (@RATE@)/g' \
    -e 's/checked in [0-9]+\.[0-9]s, [0-9]+\.[0-9] MB\/s/checked in @SECS@s, @RATE@/g' \
    -e 's/synced [0-9]+ s ago/synced @N@ s ago/g' \
    "$out"
cat "$out" >>"$main"
out=$main
# (the times in the first part: 'maintenance enter' and 'snapshot gc' of a
# fresh state)
sed -i -E -e "s|$work|@WORK@|g" \
    -e 's/^(1\| maintenance mode entered \(since )[^)]*\)/\1@TIME@)/' \
    -e 's/^(1\| snapshot gc: removed .*\) in )[0-9]+\.[0-9]s$/\1@SECS@s/' "$out"

if [ "${HARVBK_GOLDEN_UPDATE:-}" = 1 ]; then
    cp "$out" "$golden"
    echo "wrote $golden ($(wc -l <"$golden") lines)"
    exit 0
fi
if ! diff -u "$golden" "$out"; then
    echo "FAIL: the CLI's output differs from $golden (above: - expected, + now)" >&2
    exit 1
fi
echo "ok: $(grep -c '^\$ harvbk' "$out") runs match $golden"
