"""The rest of the API: log hook, changed ranges, the VM catalog, images,
maintenance mode, the operation list, the scheduler thread, the snapshot store."""
from __future__ import annotations

import os
import threading

import pytest

import harvbk

MiB = 1024 * 1024


def test_log_hook(tmp_path, make_disk):
    got = []
    lock = threading.Lock()

    def log(level, message):
        with lock:
            got.append((level, message))

    with harvbk.Context(tmp_path / "s", log=log, log_level=harvbk.LogLevel.DEBUG) as ctx:
        ctx.set_target(f"file://{tmp_path}/t")
        ctx.backup(harvbk.VM("default", "web", disks={"root": make_disk()}), "b1").wait()
        assert got and all(isinstance(m, str) and 0 <= lv <= 3 for lv, m in got)
        ctx.set_log_hook(None)
        n = len(got)
        ctx.backup(harvbk.VM("default", "web", disks={"root": make_disk()}), "b2").wait()
        assert len(got) == n


def test_changed_ranges(local_ctx, make_disk, tmp_path):
    disk = make_disk(size=8 * MiB, seed=4)
    vm = harvbk.VM("default", "web", disks={"root": disk})
    local_ctx.backup(vm, "b1").wait()
    with open(disk, "r+b") as f:           # change 4 KiB in the 6th MiB
        f.seek(5 * MiB + 100)
        f.write(b"\xab" * 4096)
    op = local_ctx.backup(vm, "b2", changed_ranges={"root": [(5 * MiB + 100, 4096)]})
    assert op.wait()
    assert local_ctx.backup_info("default", "b2").uploaded_bytes < 2 * MiB
    into = tmp_path / "r"
    into.mkdir()
    local_ctx.restore("default", "b2", new_vm="copy", into=into).wait()
    assert (into / "root.raw").read_bytes() == disk.read_bytes()
    with pytest.raises(harvbk.InvalidArgument):
        local_ctx.backup(vm, "b3", changed_ranges={"Bad Volume": [(0, 1)]})


def test_vm_catalog(local_ctx, make_disk):
    disk = make_disk()
    vm = harvbk.VM("default", "web", disks={"root": disk}, metadata="{}", images=["ubuntu"],
                   power_state="on")
    assert vm.metadata == b"{}" and vm.images == ["ubuntu"]
    assert vm.power_state == harvbk.PowerState.ON
    local_ctx.register_vm(vm)
    got = local_ctx.vm("default", "web")
    assert (got.namespace, got.name, got.disks, got.metadata, got.images, got.power_state) == \
        ("default", "web", {"root": str(disk)}, b"{}", ["ubuntu"], harvbk.PowerState.ON)
    assert [v.name for v in local_ctx.vms()] == ["web"]
    with pytest.raises(harvbk.InvalidArgument):        # the catalog wants absolute paths
        local_ctx.register_vm(harvbk.VM("default", "rel", disks={"root": "disk.raw"}))
    with pytest.raises(harvbk.InvalidArgument):        # and no callback volumes
        local_ctx.register_vm(harvbk.VM("default", "cb").add_volume("root", 1, read=bytes))
    local_ctx.unregister_vm("default", "web")
    assert local_ctx.vms() == []


def test_images(local_ctx):
    img = harvbk.Image("default", "ubuntu", display_name="Ubuntu", checksum="A" * 64)
    assert img.checksum == "a" * 64 and img.url is None
    local_ctx.register_image(img)
    with pytest.raises(harvbk.AlreadyExists):          # display names are unique
        local_ctx.register_image(harvbk.Image("default", "other", display_name="Ubuntu"))
    assert local_ctx.image("default", "ubuntu").display_name == "Ubuntu"
    local_ctx.unregister_image("default", "ubuntu")
    with pytest.raises(harvbk.NotFound):
        local_ctx.image("default", "ubuntu")


def test_operations_and_maintenance(local_ctx):
    started, release = threading.Event(), threading.Event()

    def read(offset, length):
        started.set()
        release.wait(60)
        return bytes(length)

    op = local_ctx.backup(harvbk.VM("default", "web").add_volume("root", 2 * MiB, read=read),
                          "b1")
    try:
        assert started.wait(60)
        assert local_ctx.ops_in_progress == 1
        [info] = [o for o in local_ctx.operations() if o.kind == "backup"]
        assert "default/b1" in info.what and info.pid == os.getpid() and info.started_ms > 0
        with pytest.raises(harvbk.Busy):
            local_ctx.enter_maintenance(0)
    finally:
        release.set()
    assert op.wait()
    local_ctx.enter_maintenance(0)
    assert local_ctx.in_maintenance
    with pytest.raises(harvbk.InMaintenance):
        local_ctx.backup(harvbk.VM("default", "web").add_volume("root", 1, read=bytes), "b2")
    local_ctx.exit_maintenance()
    assert not local_ctx.in_maintenance


def test_forget_and_deferred_delete(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    local_ctx.backup(vm, "b1").wait()
    local_ctx.backup(vm, "b2").wait()
    local_ctx.forget_backup("default", "b1")
    assert [b.name for b in local_ctx.backups()] == ["b2"]
    assert local_ctx.delete_backup("default", "b2", allow_deferred=True) is True
    assert local_ctx.backups() == []


def test_scheduler_thread(local_ctx):
    sched = local_ctx.start_scheduler()
    sched.stop()
    with local_ctx.start_scheduler():
        pass
    local_ctx.start_scheduler()       # stopped by close()


def test_snapshot_store(tmp_path, make_disk):
    with harvbk.Context(tmp_path / "s") as ctx:
        ctx.set_snapshot_store(str(tmp_path / "store"), chunk_size=256 * 1024, codec="lz4")
        assert ctx.snapshot_store_dir == str(tmp_path / "store")
        ctx.snapshot(harvbk.VM("default", "web", disks={"root": make_disk()}), "s1").wait()
        assert os.path.isdir(tmp_path / "store" / "chunks")
        with pytest.raises(harvbk.InvalidArgument):
            ctx.set_snapshot_store("relative/dir")
