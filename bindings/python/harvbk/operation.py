"""Asynchronous operations (:class:`Operation` and its kinds)."""
from __future__ import annotations

import threading
import time
from ctypes import byref, c_char_p, c_int, c_int64, c_uint64, c_void_p
from typing import TYPE_CHECKING, Any, List, Optional

from . import _callbacks
from ._lib import F, check, copy_text, dec
from .errors import error_from_code
from .info import (BackupInfo, GcResult, Progress, ScheduleRun, run_state_name, state_name)

if TYPE_CHECKING:
    from .context import Context

_TIMEOUT = -17        # HARVBK_E_TIMEOUT from harvbk_op_wait_timeout: still running
_SLICE_MS = 100       # waits are sliced so Ctrl-C (KeyboardInterrupt) gets through


def _wait_ended(ptr: Any, deadline: Optional[float]) -> bool:
    """Wait in slices until the C operation ended (True) or the deadline passed."""
    while True:
        ms = _SLICE_MS
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                ms = 0
            else:
                ms = min(ms, max(1, int(left * 1000)))
        rc = F.op_wait_timeout(ptr, ms)
        if rc == 0:
            return True
        if rc != _TIMEOUT:
            check(rc)
        if deadline is not None and time.monotonic() >= deadline:
            return False


class Operation:
    """A running or finished library operation (backup, snapshot, restore,
    verify, gc, schedule pass).

    ``wait()`` blocks until it ends and raises its error; ``cancel()`` asks
    it to stop. Used as a context manager, leaving the block waits for the
    operation (raising its error), and leaving it by an exception (Ctrl-C
    included) cancels it and waits for it to end first::

        with ctx.backup(vm, "web-1") as op:
            ...                       # op.progress, op.cancel()
        # here the backup has ended

    The object holds the callbacks given to the call that started the
    operation until the C operation is freed (:meth:`close`, or when the
    object is collected: a running operation is then cancelled and freed
    once it ended), so the library never calls a freed callback.
    """

    def __init__(self, ptr: c_void_p, ctx: "Context", sink: "_callbacks.Sink",
                 what: str = "") -> None:
        self._ptr: Optional[c_void_p] = ptr
        self._ctx = ctx
        self._sink = sink
        self._what = what
        # guards _ptr; _busy counts threads inside a (long) wait on the C
        # handle, which close() lets go before it frees the handle
        self._lock = threading.Condition(threading.Lock())
        self._busy = 0
        self._kind = dec(F.op_kind(ptr)) or ""
        self._final: Optional[tuple] = None   # (state, result, message, progress)
        self._noted = False

    # ---- state
    def _ended_locked(self) -> bool:
        """Capture the final state once the C operation ended (lock held)."""
        if self._final is not None:
            return True
        ptr = self._ptr
        if ptr is None or F.op_wait_timeout(ptr, 0) != 0:
            return False
        done, total = c_uint64(), c_uint64()
        F.op_progress(ptr, byref(done), byref(total))
        self._final = (F.op_state(ptr), F.op_result(ptr), copy_text(F.op_errmsg_copy, ptr),
                       Progress(done.value, total.value))
        self._capture(ptr)
        return True

    def _capture(self, ptr: Any) -> None:
        """Kinds read their own results here, once the operation ended."""

    def _live(self, fn: Any, default: Any) -> Any:
        with self._lock:
            if self._ptr is None:
                return default
            return fn(self._ptr)

    @property
    def kind(self) -> str:
        """"backup", "snapshot", "restore", "verify", "gc" or "schedule"."""
        return self._kind

    @property
    def what(self) -> str:
        """What it works on, e.g. ``"backup default/web-1"``."""
        return self._what

    @property
    def state(self) -> str:
        """"InProgress", "Ready" (succeeded) or "Error" (failed or cancelled)."""
        with self._lock:
            if self._ended_locked():
                return state_name(self._final[0])  # type: ignore[index]
            if self._ptr is None:
                return state_name(3)
            return state_name(F.op_state(self._ptr))

    @property
    def done(self) -> bool:
        """True once the operation ended."""
        with self._lock:
            return self._ended_locked() or self._ptr is None

    @property
    def result(self) -> int:
        """0 while running or on success, else the HARVBK_E_* code."""
        with self._lock:
            if self._ended_locked():
                return self._final[1]  # type: ignore[index]
            return F.op_result(self._ptr) if self._ptr is not None else 0

    @property
    def message(self) -> str:
        """The operation's error message ("" when none)."""
        with self._lock:
            if self._ended_locked():
                return self._final[2]  # type: ignore[index]
            return copy_text(F.op_errmsg_copy, self._ptr) if self._ptr is not None else ""

    @property
    def error(self) -> Optional[BaseException]:
        """What :meth:`wait` raises for this operation once it ended: the
        exception a callback raised, else the library's error; None while
        running or on success."""
        with self._lock:
            if not self._ended_locked():
                return None
            if self._sink.error is not None:
                return self._sink.error
            _, rc, msg, _ = self._final  # type: ignore[misc]
            return error_from_code(rc, msg) if rc else None

    @property
    def progress(self) -> Progress:
        """Bytes done and total so far."""
        with self._lock:
            if self._final is not None:
                return self._final[3]
            if self._ptr is None:
                return Progress(0, 0)
            done, total = c_uint64(), c_uint64()
            F.op_progress(self._ptr, byref(done), byref(total))
            return Progress(done.value, total.value)

    # ---- control
    def cancel(self) -> None:
        """Ask the operation to stop; it soon ends with
        :class:`harvbk.Cancelled` (unless it already finished). Any thread,
        also from a callback."""
        self._live(F.op_cancel, None)

    def _guard(self) -> None:
        if self._sink in _callbacks.active_sinks():
            raise RuntimeError("waiting for an operation from one of its own callbacks "
                               "would deadlock")

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the operation ends, at most ``timeout`` seconds (None:
        no limit).

        Returns True when it ended successfully, False when the timeout
        passed first (it still runs). Raises the exception a callback of the
        operation raised, else the library's error (:class:`harvbk.Cancelled`,
        :class:`harvbk.TargetUnreachable`, ...). A callback's exception is
        raised even when the operation itself completed (e.g. a thaw hook
        that raised: the backup is Ready and marked ``thaw_failed``).

        Ctrl-C (KeyboardInterrupt) during the wait cancels the operation,
        waits for it to end, and propagates.
        """
        self._guard()
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        ptr = self._acquire()
        if ptr is not None:
            try:
                try:
                    if not _wait_ended(ptr, deadline):
                        return False
                except KeyboardInterrupt:
                    F.op_cancel(ptr)
                    _wait_ended(ptr, None)
                    raise
            finally:
                self._release()
        return self._raise_outcome()

    def _acquire(self) -> Optional[c_void_p]:
        """The handle, kept valid until _release(); None once freed or ended."""
        with self._lock:
            if self._ptr is None or self._final is not None:
                return None
            self._busy += 1
            return self._ptr

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def _raise_outcome(self) -> bool:
        with self._lock:
            self._ended_locked()
            if self._final is None:      # closed before it was observed to end
                return False
            _, rc, msg, _ = self._final
        exc = self._sink.error
        if exc is not None:
            if not self._noted and hasattr(exc, "add_note"):
                self._noted = True
                how = (f"ended with {error_from_code(rc).name}: {msg}" if rc
                       else "completed anyway")
                exc.add_note(f"harvbk: raised in the {self._sink.error_where} of "
                             f"{self._what or self._kind}; the operation {how}")
            raise exc
        if rc:
            raise error_from_code(rc, msg)
        return True

    def close(self) -> None:
        """Free the C operation. A running one is cancelled and waited for
        first. Its state, result and message stay readable. Safe to call
        while other threads wait for the operation (they see it cancelled)."""
        self._guard()
        ptr = self._acquire()
        if ptr is not None:
            try:
                F.op_cancel(ptr)
                _wait_ended(ptr, None)
            finally:
                self._release()
        with self._lock:
            while self._busy:            # waiters return within one slice
                self._lock.wait()
            ptr = self._ptr
            if ptr is None:
                return
            self._ended_locked()
            self._ptr = None
        F.op_free(ptr)

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if not ptr:
            return
        try:
            if F.op_wait_timeout(ptr, 0) == 0:
                self._ptr = None
                F.op_free(ptr)
                return
            # still running (collected without close(), possibly on a
            # library thread): cancel it and free it from a thread of our
            # own, which keeps the callbacks and the context alive until
            # then; freeing it here could be freeing it from its own callback
            F.op_cancel(ptr)
            self._ptr = None
            keep = (self._sink, self._ctx)
            threading.Thread(target=_reap, args=(ptr, keep), name="harvbk-op-reaper",
                             daemon=False).start()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self) -> "Operation":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is not None:
                ptr = self._acquire()
                if ptr is not None:
                    try:
                        F.op_cancel(ptr)
                        _wait_ended(ptr, None)
                    finally:
                        self._release()
            else:
                self.wait()
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"<harvbk.{type(self).__name__} {self._what or self._kind} {self.state}>"


def _reap(ptr: Any, keep: Any) -> None:
    _wait_ended(ptr, None)
    F.op_free(ptr)
    del keep


class BackupOperation(Operation):
    """A backup being written (:meth:`Context.backup`)."""

    def __init__(self, ptr: c_void_p, ctx: "Context", sink: Any, namespace: str,
                 name: str) -> None:
        super().__init__(ptr, ctx, sink, f"{self._noun} {namespace}/{name}")
        self.namespace = namespace
        self.name = name

    _noun = "backup"

    @property
    def info(self) -> BackupInfo:
        """The backup as recorded now (Ready once the operation succeeded)."""
        return self._ctx.backup_info(self.namespace, self.name)


class SnapshotOperation(BackupOperation):
    """A snapshot being written (:meth:`Context.snapshot`)."""
    _noun = "snapshot"

    @property
    def info(self) -> BackupInfo:
        return self._ctx.snapshot_info(self.namespace, self.name)


class RestoreOperation(Operation):
    """A restore (:meth:`Context.restore`, :meth:`Context.restore_snapshot`)."""

    _retained: List[str] = []

    def _capture(self, ptr: Any) -> None:
        self._retained = [dec(F.restore_retained_path(ptr, i)) or ""
                          for i in range(F.restore_retained_count(ptr))]

    @property
    def retained_paths(self) -> List[str]:
        """After a replace with the retain policy: the previous volume files kept."""
        self.done  # noqa: B018 - captures the result once ended
        return list(self._retained)


class VerifyOperation(Operation):
    """A verification of a backup or snapshot."""


class GcOperation(Operation):
    """A garbage collection of the target or of the snapshot store."""

    _removed = GcResult(0, 0)

    def _capture(self, ptr: Any) -> None:
        chunks, nbytes = c_uint64(), c_uint64()
        if F.gc_result(ptr, byref(chunks), byref(nbytes)) == 0:
            self._removed = GcResult(chunks.value, nbytes.value)

    @property
    def removed(self) -> GcResult:
        """Chunks and bytes it removed (once ended)."""
        self.done  # noqa: B018
        return self._removed


class SchedulePass(Operation):
    """A schedule pass (:meth:`Context.run_due`): the runs of every schedule
    due at the given time. It succeeds even when runs failed: read them in
    :attr:`runs`."""

    _runs: List[ScheduleRun] = []

    @staticmethod
    def _read_runs(ptr: Any) -> List[ScheduleRun]:
        runs = []
        for i in range(F.schedule_run_count(ptr)):
            ns, sched, entry, msg = c_char_p(), c_char_p(), c_char_p(), c_char_p()
            planned, state, code = c_int64(), c_int(), c_int()
            check(F.schedule_run_at(ptr, i, byref(ns), byref(sched), byref(entry),
                                    byref(planned), byref(state), byref(code), byref(msg)))
            runs.append(ScheduleRun(dec(ns.value) or "", dec(sched.value) or "",
                                    dec(entry.value) or "", planned.value,
                                    run_state_name(state.value), code.value,
                                    dec(msg.value) or ""))
        return runs

    def _capture(self, ptr: Any) -> None:
        self._runs = self._read_runs(ptr)

    @property
    def runs(self) -> List[ScheduleRun]:
        """The runs it started (their states are final once it ended)."""
        with self._lock:
            if self._ended_locked() or self._ptr is None:
                return list(self._runs)
            return self._read_runs(self._ptr)


__all__ = ["Operation", "BackupOperation", "SnapshotOperation", "RestoreOperation",
           "VerifyOperation", "GcOperation", "SchedulePass"]
