"""The freeze window (docs/THREADING.md "Freeze window"): capture and release
hooks, the freeze deadline, reflink=False, and what the backup info records.

The state directories of these tests are on whatever filesystem holds the
test's temporary directory; the hook tests pass reflink=False so that the
capture hook is offered every volume also where that filesystem has
reflinks. The reflink capture itself is tested on a loop-mounted XFS
(test_reflink_capture_on_xfs, skipped where it cannot be made).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import threading
import time

import pytest

import harvbk
from conftest import pattern

MiB = 1024 * 1024


class Boom(Exception):
    pass


def H(h: float) -> int:
    """2030-01-01T00:00Z plus h hours, in ms since the epoch."""
    return 1893456000000 + int(h * 3600000)


class Guest:
    """A simulated guest with disk files: the thaw hook rewrites every disk
    (the guest writing again once thawed), so only a point-in-time capture
    gives the bytes as they were at the freeze. A log of every hook call."""

    def __init__(self, disks: dict, cap_dir: pathlib.Path) -> None:
        self.disks = disks                        # volume -> path
        self.at_freeze = {v: p.read_bytes() for v, p in disks.items()}
        self.cap_dir = cap_dir
        cap_dir.mkdir(parents=True, exist_ok=True)
        self.log: list = []
        self.lock = threading.Lock()

    def _note(self, *entry: object) -> None:
        with self.lock:
            self.log.append(entry)

    def freeze(self, ns: str, vm: str) -> None:
        self._note("freeze", ns, vm)

    def thaw(self, ns: str, vm: str) -> None:
        self._note("thaw", ns, vm)
        for i, p in enumerate(self.disks.values()):      # the guest writes again
            p.write_bytes(pattern(p.stat().st_size, seed=100 + i))

    def capture(self, ns: str, vm: str, volume: str, path: str) -> str:
        cap = self.cap_dir / f"{vm}-{volume}.capture"
        shutil.copyfile(path, cap)
        self._note("capture", ns, vm, volume, path, str(cap))
        return str(cap)

    def release(self, ns: str, vm: str, volume: str, captured: str) -> None:
        self._note("release", ns, vm, volume, captured)
        os.unlink(captured)

    def calls(self, kind: str) -> list:
        return [e for e in self.log if e[0] == kind]


def two_disk_vm(make_disk, name="web"):
    root = make_disk(f"{name}-root.raw", size=3 * MiB + 4321, seed=1)
    data = make_disk(f"{name}-data.raw", size=2 * MiB, seed=2)
    disks = {"root": root, "data": data}
    return harvbk.VM("default", name, disks=disks), disks


def restored(ctx, kind, name, tmp_path, vm="copy"):
    into = tmp_path / f"restore-{name}"
    into.mkdir()
    if kind == "backup":
        ctx.restore("default", name, new_vm=vm, into=into).wait()
    else:
        ctx.restore_snapshot("default", name, new_vm=vm, into=into).wait()
    return {p.stem: p.read_bytes() for p in into.iterdir()}


@pytest.mark.parametrize("kind", ["backup", "snapshot"])
def test_capture_hook_gives_the_bytes_at_the_freeze(local_ctx, make_disk, tmp_path, kind):
    vm, disks = two_disk_vm(make_disk)
    guest = Guest(disks, tmp_path / "captures")
    start = local_ctx.backup if kind == "backup" else local_ctx.snapshot
    op = start(vm, "b1", freeze=guest.freeze, thaw=guest.thaw, capture=guest.capture,
               release=guest.release, reflink=False)
    assert op.wait() is True

    # freeze, one capture per volume in the VM's order, thaw; then the
    # captures were read and each released exactly once
    kinds = [e[0] for e in guest.log]
    assert kinds[:4] == ["freeze", "capture", "capture", "thaw"]
    assert sorted(kinds[4:]) == ["release", "release"]
    caps = guest.calls("capture")
    assert [(c[3], c[4]) for c in caps] == [("root", str(disks["root"])),
                                            ("data", str(disks["data"]))]
    assert sorted((r[3], r[4]) for r in guest.calls("release")) == \
        sorted((c[3], c[5]) for c in caps)
    assert all(c[1:3] == ("default", "web") for c in caps)
    assert os.listdir(guest.cap_dir) == []               # every capture released

    # the guest rewrote the disks at the thaw; the entry holds the freeze's bytes
    for vol, p in disks.items():
        assert p.read_bytes() != guest.at_freeze[vol]
    info = op.info
    assert info.ready
    assert info.capture == "hook"
    assert [(v.name, v.capture) for v in info.volumes] == [("root", "hook"),
                                                           ("data", "hook")]
    assert info.frozen_ms is not None and info.frozen_ms >= 0
    assert info.to_dict()["capture"] == "hook"
    assert restored(local_ctx, kind, "b1", tmp_path) == guest.at_freeze


def test_without_a_capture_the_volumes_are_read_while_frozen(local_ctx, make_disk, tmp_path):
    """The contrast: no capture hook (and no reflink), the volumes are read
    before the thaw: still the bytes at the freeze, with capture "none"."""
    vm, disks = two_disk_vm(make_disk)
    guest = Guest(disks, tmp_path / "captures")
    assert local_ctx.backup(vm, "b1", freeze=guest.freeze, thaw=guest.thaw,
                            reflink=False).wait()
    info = local_ctx.backup_info("default", "b1")
    assert info.capture == "none" and {v.capture for v in info.volumes} == {"none"}
    assert info.frozen_ms is not None
    assert restored(local_ctx, "backup", "b1", tmp_path) == guest.at_freeze


def test_declined_captures(local_ctx, make_disk, tmp_path):
    """None declines a volume (read as it is, before the thaw); a callback
    volume is offered to the hook with path None."""
    data = pattern(2 * MiB, seed=5)
    vm = harvbk.VM("default", "web", disks={"root": make_disk(size=MiB)})
    vm.add_volume("mem", len(data), read=lambda off, n: data[off:off + n])
    offered, released = [], []

    def capture(ns, name, volume, path):
        offered.append((volume, path))
        if volume == "mem":
            return None                           # declined
        cap = tmp_path / "root.capture"
        shutil.copyfile(path, cap)
        return cap                                # a PathLike is fine too

    op = local_ctx.backup(vm, "b1", freeze=lambda *a: None, thaw=lambda *a: None,
                          capture=capture, release=lambda *a: released.append(a[2:]),
                          reflink=False)
    assert op.wait()
    assert offered == [("root", str(vm.disks["root"])), ("mem", None)]
    assert released == [("root", str(tmp_path / "root.capture"))]
    info = op.info
    assert info.capture == "mixed"
    assert [(v.name, v.capture) for v in info.volumes] == [("root", "hook"), ("mem", "none")]
    assert restored(local_ctx, "backup", "b1", tmp_path)["mem"] == data


def test_capture_hook_that_raises(local_ctx, make_disk, tmp_path):
    vm, disks = two_disk_vm(make_disk)
    guest = Guest(disks, tmp_path / "captures")
    raised = Boom("snapshot of data failed")

    def capture(ns, name, volume, path):
        if volume == "data":
            raise raised
        return guest.capture(ns, name, volume, path)

    op = local_ctx.backup(vm, "b1", freeze=guest.freeze, thaw=guest.thaw, capture=capture,
                          release=guest.release, reflink=False)
    with pytest.raises(Boom) as ei:
        op.wait()
    assert ei.value is raised                       # the very exception object
    assert op.result == harvbk.CallbackFailed.CODE and op.state == "Error"
    assert "data" in op.message
    # the VM was thawed once, and the capture made before was released once
    assert len(guest.calls("thaw")) == 1
    assert [(r[3], r[4]) for r in guest.calls("release")] == \
        [("root", str(guest.cap_dir / "web-root.capture"))]
    assert os.listdir(guest.cap_dir) == []
    info = local_ctx.backup_info("default", "b1")
    assert info.state == "Error" and not info.ready
    with pytest.raises(Boom):                       # again, the same
        op.wait()


def test_release_hook_that_raises(local_ctx, make_disk, tmp_path):
    vm, disks = two_disk_vm(make_disk)
    guest = Guest(disks, tmp_path / "captures")
    raised = Boom("lvremove failed")
    calls = []

    def release(ns, name, volume, captured):
        calls.append(volume)
        guest.release(ns, name, volume, captured)
        if volume == "root":
            raise raised

    op = local_ctx.backup(vm, "b1", freeze=guest.freeze, thaw=guest.thaw,
                          capture=guest.capture, release=release, reflink=False)
    with pytest.raises(Boom) as ei:
        op.wait()
    assert ei.value is raised
    assert op.result == harvbk.CallbackFailed.CODE
    assert sorted(calls) == ["data", "root"]        # still once per capture
    assert local_ctx.backup_info("default", "b1").state == "Error"


def test_hook_failures_without_exceptions(local_ctx, make_disk, tmp_path):
    """False from a hook, or a capture smaller than the volume, is a failure
    the library reports (CallbackFailed); a small capture is still released."""
    vm, disks = two_disk_vm(make_disk)
    op = local_ctx.backup(vm, "b1", capture=lambda *a: False, release=lambda *a: None,
                          reflink=False)
    with pytest.raises(harvbk.CallbackFailed, match="root"):
        op.wait()

    small = tmp_path / "small.capture"
    small.write_bytes(b"x" * 4096)
    released = []
    op = local_ctx.backup(vm, "b2", capture=lambda ns, n, v, path: small if v == "root" else None,
                          release=lambda *a: released.append(a[3]), reflink=False)
    with pytest.raises(harvbk.CallbackFailed, match="root"):
        op.wait()
    assert released == [str(small)]
    assert local_ctx.backup_info("default", "b2").state == "Error"

    def not_a_path(*a):
        return 42
    with pytest.raises(TypeError, match="not a path"):
        local_ctx.backup(vm, "b3", capture=not_a_path, release=lambda *a: None,
                         reflink=False).wait()
    with pytest.raises(ValueError, match="at most 4095"):
        local_ctx.backup(vm, "b4", capture=lambda *a: "/" + "x" * 5000,
                         release=lambda *a: None, reflink=False).wait()


def test_refusals(local_ctx, make_disk):
    vm, _ = two_disk_vm(make_disk)
    with pytest.raises(harvbk.InvalidArgument, match="release"):
        local_ctx.backup(vm, "b1", capture=lambda *a: None)
    with pytest.raises(ValueError, match="freeze_deadline"):
        local_ctx.backup(vm, "b1", freeze_deadline=-1)
    with pytest.raises(ValueError, match="freeze_deadline"):
        local_ctx.snapshot(vm, "s1", freeze_deadline=float("nan"))
    assert local_ctx.backups() == []


def test_freeze_deadline(tmp_path):
    """A volume served by a slow read callback, read while frozen (no
    capture): the deadline passes, the backup stops, thaws once, and fails
    with TimedOut. Every read takes longer than the deadline, so any read
    that starts after the first one ended finds it passed: no timing luck."""
    deadline = 0.05
    size = 16 * MiB                                  # 16 chunks of 1 MiB
    reads, thawed = [], []
    lock = threading.Lock()

    def read(offset, length):
        with lock:
            reads.append(offset)
        time.sleep(2 * deadline)                     # slow storage, not synchronisation
        return bytes(length)

    with harvbk.Context(tmp_path / "state", threads=2) as ctx:
        ctx.set_target(f"file://{tmp_path}/target")
        vm = harvbk.VM("default", "web").add_volume("slow", size, read=read)
        op = ctx.backup(vm, "b1", freeze=lambda *a: None,
                        thaw=lambda *a: thawed.append(a), freeze_deadline=deadline)
        with pytest.raises(harvbk.TimedOut) as ei:
            op.wait()
        assert isinstance(ei.value, TimeoutError)
        assert ei.value.code == op.result == harvbk.TimedOut.CODE
        assert "freeze deadline of 50 ms" in ei.value.message and "slow" in ei.value.message
        assert thawed == [("default", "web")]        # exactly once
        assert len(reads) < size // MiB              # stopped before the end
        info = ctx.backup_info("default", "b1")
        assert info.state == "Error"
        assert info.frozen_ms is not None and info.frozen_ms >= 50

        # the same VM without a deadline completes (the deadline was the cause)
        reads.clear()
        assert ctx.backup(vm, "b2", freeze=lambda *a: None, thaw=lambda *a: None).wait()
        assert sorted(reads) == [i * MiB for i in range(size // MiB)]


def test_schedule_pass_with_capture_hooks(local_ctx, make_disk, tmp_path):
    ctx = local_ctx
    vm, disks = two_disk_vm(make_disk, name="db")
    ctx.register_vm(vm)
    ctx.create_schedule("default", "hourly", vm="db", cron="0 * * * *", now_ms=H(0))
    guest = Guest(disks, tmp_path / "captures")
    p = ctx.run_due(H(1), freeze=guest.freeze, thaw=guest.thaw, capture=guest.capture,
                    release=guest.release, reflink=False, freeze_deadline=600)
    assert p.wait()
    [run] = p.runs
    assert run.state == "Ready"
    info = ctx.backup_info("default", run.entry)
    assert info.capture == "hook" and info.frozen_ms is not None
    assert len(guest.calls("capture")) == 2 and len(guest.calls("release")) == 2
    assert restored(ctx, "backup", run.entry, tmp_path) == guest.at_freeze

    # a capture hook that raises fails the run; the exception comes out of wait()
    raised = Boom("no snapshot space")

    def capture(*a):
        raise raised
    p = ctx.run_due(H(2), freeze=guest.freeze, thaw=guest.thaw, capture=capture,
                    release=guest.release)
    with pytest.raises(Boom) as ei:
        p.wait()
    assert ei.value is raised
    [run] = p.runs
    assert run.state == "Error" and run.error_code == harvbk.CallbackFailed.CODE


# ---- reflinks, on an XFS made for the test

def _sbin(tool: str):
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


@pytest.fixture
def xfs_dir(tmp_path):
    """A directory on a fresh XFS with reflinks, on a loop device; skipped
    (saying why) where it cannot be made: not root, no mkfs.xfs, no loop
    device, no XFS in the kernel."""
    if os.geteuid() != 0:
        pytest.skip("reflink test: not root (losetup and mount need it)")
    tools = {t: _sbin(t) for t in ("mkfs.xfs", "losetup", "mount", "umount")}
    if not all(tools.values()):
        pytest.skip(f"reflink test: missing {[t for t, p in tools.items() if not p]} "
                    "(xfsprogs, mount)")
    img, mnt = tmp_path / "xfs.img", tmp_path / "xfs"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(320 * MiB)                        # XFS's minimum is 300 MiB
    r = subprocess.run([tools["mkfs.xfs"], "-q", "-m", "reflink=1", str(img)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"reflink test: mkfs.xfs -m reflink=1 failed: {r.stderr.strip()}")
    r = subprocess.run([tools["losetup"], "-f", "--show", str(img)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"reflink test: no loop device: {r.stderr.strip()}")
    dev = r.stdout.strip()
    try:
        r = subprocess.run([tools["mount"], "-t", "xfs", dev, str(mnt)],
                           capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"reflink test: cannot mount the XFS: {r.stderr.strip()}")
        try:
            yield mnt
        finally:
            subprocess.run([tools["umount"], str(mnt)], check=True)
    finally:
        subprocess.run([tools["losetup"], "-d", dev], check=True)


def test_reflink_capture_on_xfs(tmp_path, xfs_dir):
    disks = {"root": xfs_dir / "root.raw", "data": xfs_dir / "data.raw"}
    for i, p in enumerate(disks.values()):
        p.write_bytes(pattern(2 * MiB + 512 * i, seed=20 + i))
    guest = Guest(disks, tmp_path / "captures")
    with harvbk.Context(tmp_path / "state") as ctx:
        ctx.set_target(f"file://{tmp_path}/target")
        vm = harvbk.VM("default", "web", disks=disks)
        # reflink (the default): the library clones the files; the hook is
        # not offered them
        assert ctx.backup(vm, "b1", freeze=guest.freeze, thaw=guest.thaw,
                          capture=guest.capture, release=guest.release).wait()
        assert guest.calls("capture") == [] and guest.calls("release") == []
        info = ctx.backup_info("default", "b1")
        assert info.capture == "reflink"
        assert {v.capture for v in info.volumes} == {"reflink"}
        assert restored(ctx, "backup", "b1", tmp_path) == guest.at_freeze

        # reflink=False: the capture hook gets them
        guest2 = Guest(disks, tmp_path / "captures2")
        assert ctx.backup(vm, "b2", freeze=guest2.freeze, thaw=guest2.thaw,
                          capture=guest2.capture, release=guest2.release,
                          reflink=False).wait()
        assert [c[3] for c in guest2.calls("capture")] == ["root", "data"]
        assert ctx.backup_info("default", "b2").capture == "hook"
        assert restored(ctx, "backup", "b2", tmp_path, vm="copy2") == guest2.at_freeze
