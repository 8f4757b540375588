"""Cancelling: from another thread, by Ctrl-C during wait(), by leaving a
with block through an exception; waits with a timeout."""
from __future__ import annotations

import _thread
import sys
import threading
import time

import pytest

import harvbk

MiB = 1024 * 1024


def blocking_vm(started, release, size=8 * MiB):
    """A VM whose reads signal `started` and then wait for `release` (bounded)."""
    def read(offset, length):
        started.set()
        release.wait(60)
        return bytes([offset // MiB % 251 + 1]) * length
    return harvbk.VM("default", "web").add_volume("root", size, read=read)


def endless_vm(started, size=64 * 1024 * MiB):
    """A VM whose volume takes minutes to read: it ends only when cancelled."""
    def read(offset, length):
        started.set()
        return bytes(length)
    return harvbk.VM("default", "web").add_volume("root", size, read=read)


def test_cancel_from_another_thread(local_ctx):
    started, release = threading.Event(), threading.Event()
    op = local_ctx.backup(blocking_vm(started, release), "b1")

    def canceller():
        started.wait(60)
        op.cancel()
        release.set()

    t = threading.Thread(target=canceller)
    t.start()
    with pytest.raises(harvbk.Cancelled) as ei:
        op.wait()
    t.join()
    assert ei.value.code == -11 and "cancelled" in ei.value.message
    assert op.state == "Error" and op.result == harvbk.Cancelled.CODE
    info = local_ctx.backup_info("default", "b1")
    assert info.state == "Error" and not info.ready


def test_wait_timeout(local_ctx):
    started, release = threading.Event(), threading.Event()
    op = local_ctx.backup(blocking_vm(started, release), "b1")
    try:
        assert started.wait(60)
        t0 = time.monotonic()
        assert op.wait(timeout=0) is False
        assert op.wait(timeout=0.05) is False
        assert time.monotonic() - t0 < 30
        assert op.state == "InProgress" and not op.done and op.result == 0
        assert op.progress.total == 8 * MiB
    finally:
        release.set()
    assert op.wait(timeout=120) is True


def _main_thread_is_waiting():
    frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        if frame.f_code.co_name == "_wait_ended":
            return True
        frame = frame.f_back
    return False


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="KeyboardInterrupt is delivered to the main thread")
def test_ctrl_c_during_wait_cancels(local_ctx, monkeypatch):
    started, release, cancelled = threading.Event(), threading.Event(), threading.Event()
    real_cancel = harvbk._lib.F.op_cancel

    def op_cancel(ptr):               # observe the binding cancelling the C operation
        rc = real_cancel(ptr)
        cancelled.set()
        return rc
    monkeypatch.setattr(harvbk._lib.F, "op_cancel", op_cancel)

    op = local_ctx.backup(blocking_vm(started, release), "b1")

    def interrupter():
        started.wait(60)
        deadline = time.monotonic() + 60
        while not _main_thread_is_waiting() and time.monotonic() < deadline:
            time.sleep(0.01)          # polling a condition, bounded
        _thread.interrupt_main()      # what Ctrl-C does
        cancelled.wait(60)
        release.set()

    t = threading.Thread(target=interrupter)
    t.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            op.wait()
    finally:
        release.set()
        t.join()
    assert cancelled.is_set()
    assert op.done                    # wait() waited for the end before re-raising
    assert op.result == harvbk.Cancelled.CODE
    assert local_ctx.backup_info("default", "b1").state == "Error"


def test_leaving_a_with_block_by_an_exception_cancels(local_ctx):
    started = threading.Event()

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with local_ctx.backup(endless_vm(started), "b1") as op:
            assert started.wait(60)
            raise Stop()
    assert op.done and op.result == harvbk.Cancelled.CODE
    assert local_ctx.backup_info("default", "b1").state == "Error"


def test_close_context_cancels_running_operations(tmp_path):
    started = threading.Event()
    ctx = harvbk.Context(tmp_path / "s")
    ctx.set_target(f"file://{tmp_path}/t")
    op = ctx.backup(endless_vm(started), "b1")
    assert started.wait(60)
    ctx.close()                       # cancels, then waits for the end
    assert op.done and op.result == harvbk.Cancelled.CODE
    with pytest.raises(harvbk.Cancelled):
        op.wait()
    ctx.close()                       # twice is fine
    with pytest.raises(ValueError, match="closed"):
        ctx.backups()


def test_close_while_another_thread_waits(local_ctx):
    started = threading.Event()
    op = local_ctx.backup(endless_vm(started), "b1")
    assert started.wait(60)
    outcome = []

    def waiter():
        try:
            op.wait()
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    op.close()                        # cancels; frees once the waiters let go
    for t in threads:
        t.join(120)
    assert [type(e) for e in outcome] == [harvbk.Cancelled] * 3
    assert op.done and op.result == harvbk.Cancelled.CODE
    op.close()
