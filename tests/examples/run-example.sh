#!/usr/bin/env bash
# tests/examples/run-example.sh NAME PROGRAM WORK_DIR
#
# Smoke test of one program of examples/: make its inputs in WORK_DIR (a disk
# image, state and target directories), run it, check the lines it prints,
# and that what it restored equals the source byte for byte. A second run
# with a bad input checks the error path: exit status 1 and a message naming
# the HARVBK_E_* code.
#
# HARVBK_EXAMPLE_WRAPPER (optional): a command prefix for the example, split
# on spaces, e.g. the valgrind command of scripts/test.sh; when the example
# exits 99 under it (valgrind's --error-exitcode), this script exits 99 too.
set -euo pipefail
name=$1 prog=$2 work=$3
read -r -a wrap <<<"${HARVBK_EXAMPLE_WRAPPER:-}"

fail() {
    echo "FAIL: $name: $*" >&2
    exit 1
}

rm -rf "$work"
mkdir -p "$work"
cd "$work"

# A disk image: random data, a run of zeros, more random data, ending in a
# partial chunk (6 MiB + 12345 bytes).
disk=$work/disk.raw
head -c $((3 * 1024 * 1024)) /dev/urandom >"$disk"
head -c $((2 * 1024 * 1024)) /dev/zero >>"$disk"
head -c $((1024 * 1024 + 12345)) /dev/urandom >>"$disk"
disk_size=$(stat -c %s "$disk")

# run WANT_STATUS ARGS...: run the example; its output in $work/out, $work/err
run() {
    local want=$1 status=0
    shift
    echo "+ $name $*"
    "${wrap[@]}" "$prog" "$@" >"$work/out" 2>"$work/err" || status=$?
    cat "$work/out"
    cat "$work/err" >&2
    if [ "$status" -eq 99 ] && [ ${#wrap[@]} -gt 0 ]; then
        echo "FAIL: $name: the wrapper (valgrind) found errors" >&2
        exit 99
    fi
    [ "$status" -eq "$want" ] || fail "exit status $status, expected $want"
}

# expect REGEX [FILE]: one line of the output (default stdout) is exactly REGEX
expect() {
    grep -Eqx -- "$1" "${2:-$work/out}" || fail "no line matching '$1' in ${2:-$work/out}"
}

# restored_equals PREFIX: the line "PREFIX VOLUME -> PATH" names a file equal
# to the disk image
restored_equals() {
    local path
    path=$(sed -n "s|^$1 rootdisk -> ||p" "$work/out")
    [ -n "$path" ] || fail "no line '$1 rootdisk -> PATH'"
    [ -f "$path" ] || fail "the restored volume $path does not exist"
    cmp "$disk" "$path" || fail "the restored volume $path differs from the disk image"
    echo "ok   $path equals the disk image"
}

# A failed call prints "<call or operation> failed: HARVBK_E_<CODE>: <message>"
error_line='.* failed: HARVBK_E_[A-Z_]+: .+'

case $name in
backup_restore)
    run 0 "$work/state" "$work/target" "$disk" "$work/restored"
    expect "  backup: $disk_size of $disk_size bytes"
    expect "backup default/web-1: Ready, $disk_size bytes, [1-9][0-9]* uploaded"
    expect "  restore: $disk_size of $disk_size bytes"
    restored_equals "restored default/web-copy:"
    # the error path: a disk that does not exist
    run 1 "$work/state2" "$work/target2" "$work/missing.raw" "$work/restored2"
    expect "backup failed: HARVBK_E_NOTFOUND: cannot open volume rootdisk .+" "$work/err"
    ;;
custom_volume_io)
    run 0 "$work/state" "$work/target"
    expect "backed up default/memvm-1: [0-9]+ bytes read through callbacks"
    expect "restored default/memvm-copy: [0-9]+ bytes written through callbacks, identical to the source"
    # the error path: a state directory that cannot be created
    : >"$work/file"
    run 1 "$work/file/state" "$work/target"
    expect "$error_line" "$work/err"
    ;;
freeze_hooks)
    run 0 "$work/state" "$work/target" "$disk"
    expect "agent: froze default/web"
    expect "agent: thawed default/web after [0-9]+\.[0-9] ms"
    expect "backup default/web-1: Ready, crash-consistent: no, thaw failed: no"
    expect "  library: frozen [0-9]+ ms, capture (reflink|none)"
    expect "guest was frozen for [0-9]+\.[0-9] ms \(measured by the hooks\)"
    expect "backup default/web-2 failed: HARVBK_E_FREEZE: .+"
    expect "backup default/web-3: Ready, crash-consistent: yes, thaw failed: no"
    expect "  library: frozen -1 ms, capture (reflink|none)"
    expect "agent: 1 freeze\(s\), 1 thaw\(s\)"
    [ "$(grep -c '^agent: froze' "$work/out")" -eq 1 ] || fail "the guest was frozen more than once"
    # the error path: a disk that does not exist; a guest frozen is thawed
    run 1 "$work/state2" "$work/target2" "$work/missing.raw"
    expect "backup default/web-1 failed: HARVBK_E_NOTFOUND: .+"
    [ "$(grep -c '^agent: froze' "$work/out")" -eq "$(grep -c '^agent: thawed' "$work/out")" ] ||
        fail "a freeze without its thaw"
    ;;
cross_cluster)
    run 0 "$work/a" "$work/b" "$work/target" "$disk" "$work/restored"
    expect "cluster A backed up default/web-1"
    expect "cluster B knows 0 backup\(s\)"
    expect "cluster B synced: 1 imported, 1 manifest\(s\) read"
    expect "cluster B knows 1 backup\(s\)"
    expect "  default/web-1 of VM web: Ready, $disk_size bytes"
    restored_equals "cluster B restored default/web:"
    case $(sed -n 's|^cluster B restored default/web: rootdisk -> ||p' "$work/out") in
    "$work/restored/"*) ;;
    *) fail "cluster B did not restore into its RESTORE_DIR" ;;
    esac
    # the error path: again, but cluster A has a backup default/web-1 already
    run 1 "$work/a" "$work/b" "$work/target" "$disk" "$work/restored"
    expect "harvbk_backup_create.* failed: HARVBK_E_EXISTS: .+" "$work/err"
    ;;
scheduler)
    run 0 "$work/state" "$work/target" "$disk"
    for h in 1 2 3 4 5; do
        expect "2030-01-01T0$h:00Z: default/hourly made hourly-20300101-0${h}00: Ready"
    done
    [ "$(grep -c '^kept ' "$work/out")" -eq 3 ] || fail "retain 3 did not keep 3 backups"
    for h in 3 4 5; do
        expect "kept default/hourly-20300101-0${h}00: Ready"
    done
    # the error path: the catalog only takes absolute paths
    run 1 "$work/state2" "$work/target" disk.raw
    expect "harvbk_vm_register.* failed: HARVBK_E_INVALID: .+" "$work/err"
    ;;
*)
    fail "unknown example"
    ;;
esac
echo "ok   example $name"
rm -rf "$work"
