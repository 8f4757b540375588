"""Snapshots in the local store, restoring from them, and quotas."""
from __future__ import annotations

import os

import pytest

import harvbk


def test_snapshot_and_restore(tmp_path, make_disk):
    disk = make_disk("web.raw", seed=3)
    with harvbk.Context(tmp_path / "state") as ctx:       # no target needed
        vm = harvbk.VM("default", "web", disks={"root": disk}, metadata=b"md")
        op = ctx.snapshot(vm, "snap-1")
        assert isinstance(op, harvbk.SnapshotOperation) and op.kind == "snapshot"
        assert op.wait()
        info = ctx.snapshot_info("default", "snap-1")
        assert info.kind == "snapshot" and info.ready
        assert info.logical_bytes == os.path.getsize(disk)
        assert op.info == info
        assert [s.name for s in ctx.snapshots()] == ["snap-1"]
        assert ctx.snapshot_store_dir == str(tmp_path / "state" / "snapshot-store")
        assert ctx.verify_snapshot("default", "snap-1").wait()

        into = tmp_path / "r"
        into.mkdir()
        rop = ctx.restore_snapshot("default", "snap-1", new_vm="web-copy", into=into)
        assert rop.wait()
        assert (into / "root.raw").read_bytes() == disk.read_bytes()
        assert ctx.vm("default", "web-copy").metadata == b"md"

        with pytest.raises(harvbk.CrossNamespace):
            ctx.restore_snapshot("default", "snap-1", new_vm="other/web", into=into)

        # replace: the VM it was taken of, powered off; snapshots keep the old volumes
        ctx.register_vm(vm)
        ctx.set_vm_power_state("default", "web", "off")
        disk.write_bytes(b"new bytes" * 100)
        with pytest.raises(harvbk.DeletionPolicyNotAllowed):
            ctx.restore_snapshot("default", "snap-1", replace="default/web",
                                 deletion_policy="delete")
        rop = ctx.restore_snapshot("default", "snap-1", replace="default/web")
        assert rop.wait()
        assert disk.read_bytes() == (into / "root.raw").read_bytes()
        assert len(rop.retained_paths) == 1

        ctx.delete_snapshot("default", "snap-1")
        assert ctx.snapshots() == []
        with pytest.raises(harvbk.NotFound):
            ctx.delete_snapshot("default", "snap-1")
        assert ctx.snapshot_gc().wait()


def test_quotas(tmp_path, make_disk):
    with harvbk.Context(tmp_path / "state") as ctx:
        a = harvbk.VM("team", "a", disks={"root": make_disk("a.raw", seed=1)})
        b = harvbk.VM("team", "b", disks={"root": make_disk("b.raw", seed=2)})
        assert ctx.quotas() == []
        ctx.snapshot(a, "a-1").wait()
        used = ctx.quota("team", vm="a").usage
        assert used > 0
        q = ctx.quota("team")
        assert q == harvbk.Quota("team", None, None, used)

        # a namespace limit that a's data fits and b's data does not
        ctx.set_quota("team", used + 1000)
        assert ctx.quota("team").limit == used + 1000
        op = ctx.snapshot(b, "b-1")
        with pytest.raises(harvbk.QuotaExceeded) as ei:
            op.wait()
        assert "team" in ei.value.message
        assert ctx.quota("team").usage == used          # what it wrote was removed
        assert ctx.snapshot_info("team", "b-1").state == "Error"

        # a limit already reached refuses at once
        ctx.set_quota("team", 0, vm="a")
        with pytest.raises(harvbk.QuotaExceeded):
            ctx.snapshot(a, "a-2")
        entries = {(q.namespace, q.vm): q for q in ctx.quotas()}
        assert entries[("team", None)].limit == used + 1000
        assert entries[("team", "a")] == harvbk.Quota("team", "a", 0, used, 1)

        ctx.clear_quota("team", vm="a")
        ctx.clear_quota("team")
        with pytest.raises(harvbk.NotFound):
            ctx.clear_quota("team")
        assert ctx.snapshot(b, "b-2").wait()
        assert ctx.quota("team").usage > used
