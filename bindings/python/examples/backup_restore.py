#!/usr/bin/env python3
"""Back up a VM with one disk image into a local target and restore it as a
new VM, with progress, the backup's details and error handling.

usage: backup_restore.py STATE_DIR TARGET_DIR DISK_IMAGE RESTORE_DIR
"""
import os
import sys

import harvbk


def main(state_dir: str, target_dir: str, disk: str, restore_dir: str) -> int:
    with harvbk.Context(state_dir) as ctx:
        ctx.set_target("file://" + os.path.abspath(target_dir))
        vm = harvbk.VM("default", "web", disks={"root": os.path.abspath(disk)})

        last = [-1]

        def progress(done: int, total: int) -> None:
            percent = done * 100 // total if total else 0
            if percent // 25 > last[0]:          # the first report of each quarter
                last[0] = percent // 25
                print(f"  backup {percent:3d}% ({done} of {total} bytes)")

        ctx.backup(vm, "web-1", progress=progress).wait()
        info = ctx.backup_info("default", "web-1")
        print(f"backup {info.namespace}/{info.name}: {info.state}, "
              f"{info.logical_bytes} bytes, {info.uploaded_bytes} uploaded")

        try:
            ctx.backup_info("default", "web-0")
        except harvbk.NotFound as e:
            print(f"no backup default/web-0: {e.name}")

        op = ctx.restore("default", "web-1", new_vm="default/web-copy", into=restore_dir)
        op.wait()
        copy = ctx.vm("default", "web-copy")
        print(f"restored as {copy.namespace}/{copy.name}: {copy.disks['root']}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(main(*sys.argv[1:]))
    except harvbk.HarvbkError as e:
        print(f"failed: {e.name}: {e}", file=sys.stderr)
        sys.exit(1)
