"""Python callables as C callbacks (internal).

A :class:`Sink` belongs to one operation (or to one synchronous call). It
keeps every ctypes callback object it made alive for as long as the sink
lives (the operation object holds it until the C operation is freed, which
happens only after the operation ended, so the library never calls a freed
callback), and it stores the first exception a callback raised. The callback
then returns a failure to the library (never "success"), and the call that
waited (``Operation.wait()`` or the synchronous call) re-raises that very
exception object.
"""
from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional

from . import _lib
from ._lib import dec

#: returned to the library by a callback that raised: any non-zero value
#: means failure; -35 is HARVBK_E_CALLBACK ("a callback reported failure")
CALLBACK_FAILED = -35

_active = threading.local()


def active_sinks() -> List["Sink"]:
    """Sinks whose callbacks are running on the calling thread (innermost last)."""
    return getattr(_active, "sinks", [])


@contextmanager
def _running(sink: "Sink") -> Iterator[None]:
    stack = getattr(_active, "sinks", None)
    if stack is None:
        stack = _active.sinks = []
    stack.append(sink)
    try:
        yield
    finally:
        stack.pop()


class Sink:
    """Callback objects of one operation and the first exception they raised."""

    def __init__(self, owner: Any = None, what: str = "") -> None:
        self.owner = owner          # the Context the operation belongs to
        self.what = what            # e.g. "backup default/web-1", for messages
        self.keep: List[Any] = []   # ctypes callback objects, payloads
        self.error: Optional[BaseException] = None
        self.error_where = ""
        self._lock = threading.Lock()

    def fail(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc
                self.error_where = where

    def hold(self, obj: Any) -> Any:
        self.keep.append(obj)
        return obj

    def code_for(self, exc: BaseException) -> int:
        from .errors import HarvbkError
        if isinstance(exc, HarvbkError) and exc.code < 0:
            return exc.code
        return CALLBACK_FAILED

    # ---- factories: each returns a ctypes callback object held by the sink

    def progress(self, fn: Optional[Callable[[int, int], Any]]) -> Any:
        if fn is None:
            return _lib.PROGRESS_CB()
        f = fn

        def cb(done: int, total: int, _payload: Any) -> int:
            if self.error is not None:
                return 1
            try:
                with _running(self):
                    f(done, total)
            except BaseException as e:  # noqa: B902 - also KeyboardInterrupt
                self.fail(e, "progress callback")
                return 1
            return 0
        return self.hold(_lib.PROGRESS_CB(cb))

    def freeze(self, fn: Optional[Callable[[str, str], Any]], where: str) -> Any:
        if fn is None:
            return _lib.FREEZE_CB()
        f = fn

        def cb(ns: bytes, vm: bytes, _payload: Any) -> int:
            try:
                with _running(self):
                    r = f(dec(ns) or "", dec(vm) or "")
            except BaseException as e:  # noqa: B902
                self.fail(e, where)
                return 1
            return 1 if r is False else 0
        return self.hold(_lib.FREEZE_CB(cb))

    def capture(self, fn: Optional[Callable[..., Any]]) -> Any:
        """The capture hook: ``fn(namespace, vm, volume, path)`` returns the
        path of a point-in-time copy of the volume, or None (or "") to
        decline it; False reports a failure without an exception."""
        if fn is None:
            return _lib.CAPTURE_CB()
        f = fn

        def cb(ns: bytes, vm: bytes, volume: bytes, path: Optional[bytes], out: int,
               size: int, _payload: Any) -> int:
            vol = dec(volume) or ""
            try:
                with _running(self):
                    ctypes.memset(out, 0, 1)
                    r = f(dec(ns) or "", dec(vm) or "", vol, dec(path))
                    if r is False:
                        return 1
                    if r is None:
                        return 0          # declined: read as it is, before the thaw
                    if not isinstance(r, (str, bytes, os.PathLike)):
                        raise TypeError(f"capture hook of volume {vol!r} returned "
                                        f"{type(r).__name__}, not a path or None")
                    b = os.fsencode(r)
                    if b"\0" in b:
                        raise ValueError(f"capture hook of volume {vol!r} returned a path "
                                         "with a NUL character")
                    if len(b) >= size:
                        raise ValueError(f"capture hook of volume {vol!r} returned a path "
                                         f"of {len(b)} bytes (at most {size - 1})")
                    ctypes.memmove(out, b + b"\0", len(b) + 1)
            except BaseException as e:  # noqa: B902
                self.fail(e, f"capture hook of volume {vol!r}")
                ctypes.memset(out, 0, 1)
                return CALLBACK_FAILED
            return 0
        return self.hold(_lib.CAPTURE_CB(cb))

    def release(self, fn: Optional[Callable[..., Any]]) -> Any:
        """The release hook: ``fn(namespace, vm, volume, captured_path)``;
        False reports a failure without an exception."""
        if fn is None:
            return _lib.CAPTURE_RELEASE_CB()
        f = fn

        def cb(ns: bytes, vm: bytes, volume: bytes, captured: bytes, _payload: Any) -> int:
            vol = dec(volume) or ""
            try:
                with _running(self):
                    r = f(dec(ns) or "", dec(vm) or "", vol, dec(captured) or "")
            except BaseException as e:  # noqa: B902
                self.fail(e, f"release hook of volume {vol!r}")
                return CALLBACK_FAILED
            return 1 if r is False else 0
        return self.hold(_lib.CAPTURE_RELEASE_CB(cb))

    def volume_read(self, fn: Optional[Callable[[int, int], bytes]], volume: str) -> Any:
        if fn is None:
            return _lib.VOLUME_READ_CB()
        f = fn

        def cb(buf: int, length: int, offset: int, _payload: Any) -> int:
            try:
                with _running(self):
                    data = f(offset, length)
                    if not isinstance(data, bytes):
                        data = bytes(data)
                    if len(data) != length:
                        raise ValueError(f"read callback of volume {volume!r} returned "
                                         f"{len(data)} bytes at offset {offset}, "
                                         f"expected {length}")
                ctypes.memmove(buf, data, length)
            except BaseException as e:  # noqa: B902
                self.fail(e, f"read callback of volume {volume!r}")
                return self.code_for(e)
            return 0
        return self.hold(_lib.VOLUME_READ_CB(cb))

    def volume_write(self, fn: Optional[Callable[[int, bytes], Any]], volume: str) -> Any:
        if fn is None:
            return _lib.VOLUME_WRITE_CB()
        f = fn

        def cb(buf: int, length: int, offset: int, _payload: Any) -> int:
            try:
                with _running(self):
                    f(offset, ctypes.string_at(buf, length))
            except BaseException as e:  # noqa: B902
                self.fail(e, f"write callback of volume {volume!r}")
                return self.code_for(e)
            return 0
        return self.hold(_lib.VOLUME_WRITE_CB(cb))

    def metadata_rewrite(self, fn: Optional[Callable[..., Any]]) -> Any:
        if fn is None:
            return _lib.METADATA_REWRITE_CB()
        f = fn
        from .info import MetadataRewrite

        def cb(rw: int, _payload: Any) -> int:
            handle = MetadataRewrite(rw)
            try:
                with _running(self):
                    out = f(handle)
                    if out is not None:
                        handle.set_output(out)
            except BaseException as e:  # noqa: B902
                self.fail(e, "metadata rewrite hook")
                return self.code_for(e)
            finally:
                handle._rw = None   # valid only during the call
            return 0
        return self.hold(_lib.METADATA_REWRITE_CB(cb))

    def image_hook(self, fn: Callable[..., Any]) -> Any:
        from .vm import Image

        def cb(image: int, _payload: Any) -> int:
            # a context hook: it runs on the thread calling restore(), which
            # collects the exception from its thread-local sink
            target = current_call_sink() or self
            try:
                with _running(target):
                    r = fn(Image._copy_of(image))
            except BaseException as e:  # noqa: B902
                target.fail(e, "image hook")
                return 1
            return 1 if r is False else 0
        return self.hold(_lib.IMAGE_HOOK(cb))

    def vm_resolver(self, fn: Optional[Callable[[str, str], Any]]) -> Any:
        if fn is None:
            return _lib.VM_RESOLVE_CB()
        f = fn

        def cb(out: Any, ns: bytes, name: bytes, _payload: Any) -> int:
            try:
                with _running(self):
                    vm = f(dec(ns) or "", dec(name) or "")
                    if vm is None:
                        return -5  # HARVBK_E_NOTFOUND
                    # a new handle the library owns and frees
                    out[0] = vm._new_handle(self)
            except BaseException as e:  # noqa: B902
                self.fail(e, "VM resolver")
                return self.code_for(e)
            return 0
        return self.hold(_lib.VM_RESOLVE_CB(cb))


# ---- synchronous calls whose context hooks (the image hook) may raise

_call = threading.local()


def current_call_sink() -> Optional[Sink]:
    return getattr(_call, "sink", None)


@contextmanager
def sync_call() -> Iterator[Sink]:
    """Collect exceptions of context hooks called on this thread during a call."""
    prev = getattr(_call, "sink", None)
    sink = _call.sink = Sink()
    try:
        yield sink
    finally:
        _call.sink = prev


def make_log_hook(fn: Callable[[int, str], Any]) -> Any:
    """Log hook: may run on any library thread, concurrently. It has no way to
    report failure; an exception raised in it is reported through
    sys.unraisablehook (ctypes does that) and otherwise ignored."""
    def cb(level: int, message: bytes, _payload: Any) -> None:
        fn(level, dec(message) or "")
    return _lib.LOG_CB(cb)


__all__ = ["Sink", "sync_call", "active_sinks", "make_log_hook"]
