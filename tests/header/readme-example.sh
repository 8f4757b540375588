#!/usr/bin/env bash
# tests/header/readme-example.sh README CC INCLUDE_DIR LIBRARY WORK_DIR [EXTRA_FLAGS]
#
# The C example in README.md (its first ```c block) compiles as strict C99
# against the public headers, links against the shared library, and works:
# it backs up a disk image into a file:// target and restores it as a new VM,
# and the restored image must equal the original byte for byte.
set -euo pipefail
readme=$1 cc=$2 inc=$3 lib=$4 work=$5
# e.g. "-fsanitize=address,undefined" in a sanitizer build (split on spaces)
read -r -a extra <<<"${6:-}"

rm -rf "$work"
mkdir -p "$work"
awk '/^```c[[:space:]]*$/ { on = 1; next } on && /^```/ { exit } on { print }' \
    "$readme" >"$work/example.c"
[ -s "$work/example.c" ] || { echo "FAIL: no \`\`\`c block in $readme" >&2; exit 1; }

"$cc" -std=c99 -pedantic -Wall -Wextra -Werror "${extra[@]}" -I"$inc" -o "$work/example" \
    "$work/example.c" "$lib" -Wl,-rpath,"$(dirname "$lib")"
echo "ok   README example compiles (C99, -pedantic -Werror) and links"

# a disk: random data, a run of zeros, more data (8 MiB + a partial chunk)
mkdir -p "$work/target" "$work/restored"
disk="$work/disk.raw"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$disk"
head -c $((2 * 1024 * 1024)) /dev/zero >>"$disk"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >>"$disk"

"$work/example" "$work/state" "$work/target" "$disk" "$work/restored"
restored=$(find "$work/restored" -type f | head -n 1)
[ -n "$restored" ] || { echo "FAIL: the example restored no file" >&2; exit 1; }
cmp "$disk" "$restored"
echo "ok   README example backs up and restores ($(basename "$restored") equals the disk)"
rm -rf "$work"
