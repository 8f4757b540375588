"""Python callables as callbacks: progress, freeze/thaw, volume read/write,
metadata rewrite, image hook. An exception raised in one stops the work,
comes out of the call that waited, and the library never sees "success"."""
from __future__ import annotations

import gc
import os
import threading
import weakref

import pytest

import harvbk
from conftest import pattern

MiB = 1024 * 1024


class Boom(Exception):
    pass


def callback_vm(ns, name, data, *, gate=None, log=None):
    """A VM whose volume "root" is served from `data` by a read callback.
    With `gate` (an Event), reads past the first MiB wait for it (bounded)."""
    def read(offset, length):
        if log is not None:
            log.append(("read", offset))
        if gate is not None and offset >= MiB:
            gate.wait(60)
        return data[offset:offset + length]
    return harvbk.VM(ns, name).add_volume("root", len(data), read=read)


def test_raising_progress_stops_the_backup(local_ctx):
    data = pattern(8 * MiB)
    reported = threading.Event()
    raised = []

    def progress(done, total):
        reported.set()
        e = Boom(f"stop at {done} of {total}")
        raised.append(e)
        raise e

    op = local_ctx.backup(callback_vm("default", "web", data, gate=reported), "web-1",
                          progress=progress)
    with pytest.raises(Boom) as ei:
        op.wait()
    assert ei.value is raised[0]               # the very exception object
    assert len(raised) == 1                    # not called again after it raised
    assert op.result == harvbk.Cancelled.CODE and op.state == "Error"
    assert op.error is raised[0]
    info = local_ctx.backup_info("default", "web-1")
    assert info.state == "Error" and not info.ready
    with pytest.raises(Boom):                  # again, the same
        op.wait()


def test_freeze_and_thaw_bracket_the_reads(local_ctx, tmp_path):
    data = pattern(3 * MiB)
    log = []
    vm = callback_vm("default", "web", data, log=log)
    op = local_ctx.backup(vm, "b1", freeze=lambda ns, n: log.append(("freeze", ns, n)),
                          thaw=lambda ns, n: log.append(("thaw", ns, n)))
    assert op.wait()
    assert log[0] == ("freeze", "default", "web") and log[-1] == ("thaw", "default", "web")
    assert [e for e in log if e[0] != "read"] == [log[0], log[-1]]
    assert sorted(e[1] for e in log if e[0] == "read") == [0, MiB, 2 * MiB]
    # the bytes the callback served are what is restored
    into = tmp_path / "r"
    into.mkdir()
    local_ctx.restore("default", "b1", new_vm="copy", into=into).wait()
    assert (into / "root.raw").read_bytes() == data


def test_freeze_that_raises(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    thawed = []

    def freeze(ns, name):
        raise Boom("guest agent not answering")

    op = local_ctx.backup(vm, "b1", freeze=freeze, thaw=lambda *a: thawed.append(a))
    with pytest.raises(Boom, match="guest agent"):
        op.wait()
    assert op.result == harvbk.FreezeFailed.CODE
    assert thawed == []                          # no thaw after a failed freeze
    assert local_ctx.backup_info("default", "b1").state == "Error"


def test_freeze_failure_allowed(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    thawed = []
    op = local_ctx.backup(vm, "b1", freeze=lambda ns, n: False,
                          thaw=lambda *a: thawed.append(a), allow_crash_consistent=True)
    assert op.wait() is True
    info = local_ctx.backup_info("default", "b1")
    assert info.ready and info.crash_consistent and thawed == []


def test_thaw_that_raises(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})

    def thaw(ns, name):
        raise Boom("thaw failed")

    op = local_ctx.backup(vm, "b1", freeze=lambda *a: None, thaw=thaw)
    with pytest.raises(Boom):                    # never swallowed...
        op.wait()
    assert op.result == 0                        # ...although the backup completed
    info = local_ctx.backup_info("default", "b1")
    assert info.ready and info.thaw_failed


def test_freeze_needs_thaw(local_ctx, make_disk):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    with pytest.raises(harvbk.InvalidArgument, match="thaw"):
        local_ctx.backup(vm, "b1", freeze=lambda *a: None)


def test_volume_write_callbacks(local_ctx, tmp_path):
    data = pattern(3 * MiB + 4321, seed=7)
    local_ctx.backup(callback_vm("default", "web", data), "b1").wait()
    out = bytearray(len(data))
    lock = threading.Lock()

    def write(offset, chunk):
        with lock:
            out[offset:offset + len(chunk)] = chunk

    target = harvbk.VM("default", "copy").add_volume("root", len(data), write=write)
    op = local_ctx.restore("default", "b1", new_vm="default/copy", target_vm=target)
    assert op.wait()
    assert bytes(out) == data


@pytest.mark.parametrize("exc,code", [(Boom("read failed"), harvbk.CallbackFailed.CODE),
                                      (harvbk.IOFailure("disk gone"), harvbk.IOFailure.CODE)])
def test_volume_read_that_raises(local_ctx, exc, code):
    def read(offset, length):
        if offset >= MiB:
            raise exc
        return bytes(length)

    vm = harvbk.VM("default", "web").add_volume("root", 4 * MiB, read=read)
    op = local_ctx.backup(vm, "b1")
    with pytest.raises(type(exc)) as ei:
        op.wait()
    assert ei.value is exc
    assert op.result == code
    assert "root" in op.message
    assert local_ctx.backup_info("default", "b1").state == "Error"


def test_volume_read_of_the_wrong_length(local_ctx):
    vm = harvbk.VM("default", "web").add_volume("root", 2 * MiB, read=lambda o, n: b"short")
    with pytest.raises(ValueError, match="returned 5 bytes"):
        local_ctx.backup(vm, "b1").wait()


def test_metadata_rewrite(local_ctx, make_disk, tmp_path):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()}, metadata=b"spec of web")
    local_ctx.backup(vm, "b1").wait()
    seen = {}

    def rewrite(rw):
        seen.update(input=rw.input, source=(rw.source_namespace, rw.source_vm),
                    new=(rw.namespace, rw.vm), replace=rw.replace,
                    volumes=rw.volumes)
        return rw.input.replace(b"web", b"copy")

    into = tmp_path / "r"
    into.mkdir()
    assert local_ctx.restore("default", "b1", new_vm="copy", into=into,
                             metadata_rewrite=rewrite).wait()
    assert seen["input"] == b"spec of web"
    assert seen["source"] == ("default", "web") and seen["new"] == ("default", "copy")
    assert seen["replace"] is False
    assert seen["volumes"] == [{"name": "root", "claim": "copy-root",
                                "path": str(into / "root.raw")}]
    assert local_ctx.vm("default", "copy").metadata == b"spec of copy"


def test_metadata_rewrite_that_raises(local_ctx, make_disk, tmp_path):
    vm = harvbk.VM("default", "web", disks={"root": make_disk()})
    local_ctx.backup(vm, "b1").wait()
    keep = []

    def rewrite(rw):
        keep.append(rw)
        raise Boom("cannot rewrite")

    into = tmp_path / "r"
    into.mkdir()
    op = local_ctx.restore("default", "b1", new_vm="copy", into=into, metadata_rewrite=rewrite)
    with pytest.raises(Boom):
        op.wait()
    assert op.result == harvbk.CallbackFailed.CODE
    assert os.listdir(into) == []                 # nothing written
    with pytest.raises(harvbk.NotFound):
        local_ctx.vm("default", "copy")
    with pytest.raises(ValueError, match="only during the hook"):
        keep[0].input                             # the handle died with the call


def _backup_with_image(ctx, make_disk):
    ctx.register_image(harvbk.Image("default", "ubuntu", display_name="Ubuntu 22.04",
                                    url="https://images.example/ubuntu.img"))
    vm = harvbk.VM("default", "web", disks={"root": make_disk()}, images=["ubuntu"])
    ctx.backup(vm, "b1").wait()


def test_image_hook(local_ctx, make_disk, tmp_path):
    _backup_with_image(local_ctx, make_disk)
    with harvbk.Context(tmp_path / "other") as other:
        other.set_target(local_ctx.target)
        other.sync()
        into = tmp_path / "r"
        into.mkdir()
        with pytest.raises(harvbk.ImageMissing):       # no hook
            other.restore("default", "b1", new_vm="copy", into=into)

        other.set_image_hook(lambda image: False)      # refuses
        with pytest.raises(harvbk.ImageMissing):
            other.restore("default", "b1", new_vm="copy", into=into)

        raised = Boom("cannot import the image")

        def failing(image):
            raise raised
        other.set_image_hook(failing)
        with pytest.raises(Boom) as ei:                # out of the restore() call itself
            other.restore("default", "b1", new_vm="copy", into=into)
        assert ei.value is raised

        got = []
        other.set_image_hook(lambda image: got.append(
            (image.namespace, image.name, image.display_name, image.url)))
        assert other.restore("default", "b1", new_vm="copy", into=into).wait()
        assert got == [("default", "ubuntu", "Ubuntu 22.04", "https://images.example/ubuntu.img")]
        assert other.image("default", "ubuntu").display_name == "Ubuntu 22.04"
        assert [i.name for i in other.images()] == ["ubuntu"]


def test_callbacks_are_kept_alive(local_ctx, tmp_path):
    """The only reference to the callables is the operation's: they survive
    garbage collection while the library may call them."""
    data = pattern(4 * MiB)
    calls = []
    gate = threading.Event()

    def make_progress():
        def progress(done, total):
            calls.append(done)
            gate.set()
        return progress

    op = local_ctx.backup(callback_vm("default", "web", data, gate=gate), "b1",
                          progress=make_progress())
    gc.collect()
    assert op.wait()
    assert calls[-1] == len(data)


def test_dropped_running_operation_is_cancelled(tmp_path):
    release = threading.Event()
    started = threading.Event()

    def read(offset, length):
        started.set()
        release.wait(60)
        return bytes(length)

    with harvbk.Context(tmp_path / "s") as ctx:
        ctx.set_target(f"file://{tmp_path}/t")
        vm = harvbk.VM("default", "web").add_volume("root", 4 * MiB, read=read)
        op = ctx.backup(vm, "b1")
        assert started.wait(60)
        ref = weakref.ref(op)
        del op, vm
        gc.collect()                 # the op is cancelled; freed once it ended
        assert ref() is None
        release.set()
    with harvbk.Context(tmp_path / "s") as ctx:
        info = ctx.backup_info("default", "b1")
        assert info.state == "Error" and "cancel" in info.error


def test_wait_from_its_own_callback(local_ctx):
    data = pattern(2 * MiB)
    box = {}
    stored = threading.Event()

    def progress(done, total):
        stored.wait(60)
        box["op"].wait()

    box["op"] = op = local_ctx.backup(callback_vm("default", "web", data), "b1",
                                      progress=progress)
    stored.set()
    with pytest.raises(RuntimeError, match="deadlock"):
        op.wait()
    del box["op"]
