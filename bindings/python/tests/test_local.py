"""Backups and restores on a file:// target, and what the store holds."""
from __future__ import annotations

import os

import pytest

import harvbk


def test_round_trip(local_ctx, make_disk, tmp_path):
    root = make_disk("root.raw", 5 * 1024 * 1024 + 777, seed=1)
    data = make_disk("data.raw", 2 * 1024 * 1024, seed=2)
    vm = harvbk.VM("default", "web", disks={"root": root, "data": str(data)},
                   metadata='{"kind":"Other","metadata":{"name":"web"}}')
    assert vm.namespace == "default" and vm.name == "web"
    assert vm.disks == {"root": str(root), "data": str(data)}

    seen = []
    op = local_ctx.backup(vm, "web-1", progress=lambda d, t: seen.append((d, t)))
    assert isinstance(op, harvbk.BackupOperation) and op.kind == "backup"
    assert op.wait() is True
    assert op.state == "Ready" and op.result == 0 and op.error is None and op.done
    size = os.path.getsize(root) + os.path.getsize(data)
    assert op.progress == (size, size)
    assert seen and seen[-1] == (size, size)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))      # never decreases

    info = local_ctx.backup_info("default", "web-1")
    assert (info.kind, info.namespace, info.name, info.vm_name) == \
           ("backup", "default", "web-1", "web")
    assert info.state == harvbk.READY and info.ready and info.error == ""
    assert info.logical_bytes == size
    assert 0 < info.uploaded_bytes < size       # a third of each disk is zeros
    assert sorted(info.volumes) == [("data", os.path.getsize(data), "none"),
                                    ("root", os.path.getsize(root), "none")]
    assert not info.crash_consistent and not info.thaw_failed and info.schedule is None
    assert info.frozen_ms is None and info.capture == "none"     # no freeze hook
    assert info.to_dict()["name"] == "web-1"
    assert op.info == info

    # what the target holds: the manifest and one index per volume
    target = local_ctx.target.url[len("file://"):]
    entry = os.path.join(target, "backups", "default", "web-1")
    assert sorted(f for f in os.listdir(entry) if f != "claims") == \
        ["data.idx", "manifest.json", "root.idx"]

    names = [(b.namespace, b.name) for b in local_ctx.backups()]
    assert names == [("default", "web-1")]

    into = tmp_path / "restore"
    into.mkdir()
    rop = local_ctx.restore("default", "web-1", new_vm="default/web-copy", into=str(into))
    assert isinstance(rop, harvbk.RestoreOperation)
    assert rop.wait()
    assert (into / "root.raw").read_bytes() == root.read_bytes()
    assert (into / "data.raw").read_bytes() == data.read_bytes()
    copy = local_ctx.vm("default", "web-copy")
    assert copy.disks == {"root": str(into / "root.raw"), "data": str(into / "data.raw")}
    assert b'"web-copy"' in copy.metadata           # the default rewrite renamed it
    assert [v.name for v in local_ctx.vms()] == ["web-copy"]

    # incremental: the same disks again upload only metadata
    assert local_ctx.backup(vm, "web-2").wait()
    assert local_ctx.backup_info("default", "web-2").uploaded_bytes < 64 * 1024


def test_already_exists_and_with_block(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    with local_ctx.backup(vm, "b1") as op:
        pass                                  # leaving the block waits for it
    assert op.state == "Ready" and op.done
    assert op.wait() is True                  # closed: the outcome stays readable
    with pytest.raises(harvbk.AlreadyExists):
        local_ctx.backup(vm, "b1")


def test_no_target(tmp_path, make_disk):
    with harvbk.Context(tmp_path / "s") as ctx:
        vm = harvbk.VM("default", "web", disks={"root": make_disk()})
        with pytest.raises(harvbk.NoTarget):
            ctx.backup(vm, "b1")
        with pytest.raises(harvbk.NoTarget):
            ctx.target
    with pytest.raises(ValueError):
        ctx.backups()                          # closed


def test_verify_corrupt_chunk(local_ctx, make_disk, tmp_path):
    disk = make_disk(size=3 * 1024 * 1024)
    vm = harvbk.VM("default", "web", disks={"root": disk})
    local_ctx.backup(vm, "b1").wait()
    assert local_ctx.verify("default", "b1").wait()

    chunks = []
    target = local_ctx.target.url[len("file://"):]
    for d, _, files in os.walk(os.path.join(target, "chunks")):
        chunks += [os.path.join(d, f) for f in files]
    assert chunks
    for c in chunks:                          # damage every chunk's payload
        with open(c, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(harvbk.ChunkCorrupt) as ei:
        local_ctx.verify("default", "b1").wait()
    assert "root" in ei.value.message
    into = tmp_path / "r"
    into.mkdir()
    op = local_ctx.restore("default", "b1", new_vm="copy", into=into)
    with pytest.raises(harvbk.ChunkCorrupt):
        op.wait()
    assert os.listdir(into) == []             # never wrong bytes left behind


def test_delete_and_gc(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    local_ctx.backup(vm, "b1").wait()
    assert local_ctx.delete_backup("default", "b1") is True
    with pytest.raises(harvbk.NotFound):
        local_ctx.backup_info("default", "b1")
    # gc never sweeps chunks younger than its own start: age them
    target = local_ctx.target.url[len("file://"):]
    chunks = []
    for d, _, files in os.walk(os.path.join(target, "chunks")):
        chunks += [os.path.join(d, f) for f in files]
    assert len(chunks) >= 2
    nbytes = sum(os.path.getsize(c) for c in chunks)
    for c in chunks:
        st = os.stat(c)
        os.utime(c, (st.st_atime - 3600, st.st_mtime - 3600))
    gc = local_ctx.gc()
    assert isinstance(gc, harvbk.GcOperation) and gc.wait()
    assert gc.removed.chunks == len(chunks)
    assert gc.removed.bytes == nbytes
    assert not any(os.path.exists(c) for c in chunks)
    assert local_ctx.backups() == []


def test_replace_with_retain(local_ctx, make_disk, tmp_path):
    disk = make_disk("web.raw", seed=5)
    original = disk.read_bytes()
    vm = harvbk.VM("default", "web", disks={"root": disk})
    local_ctx.register_vm(vm)
    local_ctx.backup(vm, "b1").wait()
    disk.write_bytes(b"changed" * 1000)

    local_ctx.set_vm_power_state("default", "web", "on")
    with pytest.raises(harvbk.VMRunning):
        local_ctx.restore("default", "b1", replace="default/web", deletion_policy="retain")
    local_ctx.set_vm_power_state("default", "web", harvbk.PowerState.OFF)
    op = local_ctx.restore("default", "b1", replace="web", deletion_policy="retain")
    assert op.wait()
    assert disk.read_bytes() == original
    [kept] = op.retained_paths
    with open(kept, "rb") as f:
        assert f.read() == b"changed" * 1000
    with pytest.raises(TypeError):
        local_ctx.restore("default", "b1", new_vm="a", replace="b")


def test_sync_from_a_second_context(local_ctx, make_disk, tmp_path):
    """Two contexts (clusters) on one target: the second sees the backup after a sync."""
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    local_ctx.backup(vm, "b1").wait()
    with harvbk.Context(tmp_path / "other") as other:
        other.set_target(local_ctx.target)
        result = other.sync()
        assert isinstance(result, harvbk.SyncResult)
        assert [b.name for b in other.backups()] == ["b1"]
        assert other.backups().synced_at > 0
        assert other.backup_info("default", "b1").ready


def test_encrypted_target(make_disk, tmp_path):
    """An encrypted store through the settings: round trip, nothing readable
    in the store, and a wrong key is harvbk.WrongKey."""
    key = tmp_path / "store.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)
    target = tmp_path / "target"
    root = make_disk("root.raw", 2 * 1024 * 1024, seed=3)
    vm = harvbk.VM("default", "web", disks={"root": root},
                   metadata='{"spec":{"password":"py-metadata-secret"}}')
    with harvbk.Context(tmp_path / "state") as ctx:
        ctx.set_target(f"file://{target}", key_file=str(key))
        assert ctx.backup(vm, "b1").wait()
        into = tmp_path / "restore"
        into.mkdir()
        assert ctx.restore("default", "b1", new_vm="default/copy", into=str(into)).wait()
        assert (into / "root.raw").read_bytes() == root.read_bytes()
    blobs = b"".join(p.read_bytes() for p in target.rglob("*") if p.is_file())
    assert b"py-metadata-secret" not in blobs and b"aes-256-gcm" in blobs
    with harvbk.Context(tmp_path / "state2") as ctx2:
        with pytest.raises(harvbk.WrongKey) as ei:
            ctx2.set_target(f"file://{target}", key_file=str(other))
        assert ei.value.code == -36 and "wrong key" in ei.value.message
