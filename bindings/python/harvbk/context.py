"""The context: one "cluster" on a state directory (:class:`Context`)."""
from __future__ import annotations

import atexit
import ctypes
import enum
import math
import os
import weakref
from ctypes import byref, c_char_p, c_int, c_int64, c_size_t, c_uint, c_uint64, c_void_p
from typing import Any, Callable, Iterable, List, Mapping, Optional, Tuple, Union

from . import _callbacks, _lib
from ._lib import F, check, dec, enc
from .info import (BackupInfo, BackupList, OpInfo, Quota, Schedule, SyncResult, backup_list)
from .key import STORE_SNAPSHOTS, STORE_TARGET, Key, StoreKeys, key_ptr
from .operation import (BackupOperation, GcOperation, RestoreOperation, SchedulePass,
                        SnapshotOperation, VerifyOperation)
from .target import TargetConfig
from .vm import VM, Image, PowerState, power_state

ProgressFn = Callable[[int, int], Any]
FreezeFn = Callable[[str, str], Any]
#: capture(namespace, vm, volume, path) -> path of a point-in-time copy, or
#: None to decline (path: the volume file, None for a callback volume)
CaptureFn = Callable[[str, str, str, Optional[str]],
                     Union[str, bytes, "os.PathLike[str]", None]]
#: release(namespace, vm, volume, captured_path)
ReleaseFn = Callable[[str, str, str, str], Any]
Ranges = Mapping[str, Iterable[Tuple[int, int]]]


class LogLevel(enum.IntEnum):
    """Levels of the log hook (harvbk_log_level)."""
    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


class DeletionPolicy(enum.IntEnum):
    """What happens to the previous volumes of a replaced VM."""
    DEFAULT = 0   # backups: delete; snapshots: retain
    DELETE = 1
    RETAIN = 2


def _policy(value: Union[DeletionPolicy, int, str, None]) -> int:
    if value is None:
        return DeletionPolicy.DEFAULT
    if isinstance(value, str):
        try:
            return DeletionPolicy[value.upper()]
        except KeyError:
            raise ValueError("deletion_policy must be 'default', 'delete' or 'retain', "
                             f"not {value!r}") from None
    return DeletionPolicy(value)


# HARVBK_BACKUP_NO_REFLINK, HARVBK_SNAPSHOT_NO_REFLINK, HARVBK_SCHEDULE_RUN_NO_REFLINK
_NO_REFLINK = {"backup": 0x10, "snapshot": 0x20, "schedule": 0x40}


def _deadline_ms(seconds: Optional[float]) -> int:
    """freeze_deadline= in seconds as freeze_deadline_ms (0: none), rounded up
    so that a positive deadline never becomes "none"."""
    if seconds is None:
        return 0
    s = float(seconds)
    if not s >= 0 or math.isinf(s):
        raise ValueError(f"freeze_deadline must be a number of seconds >= 0, not {seconds!r}")
    ms = math.ceil(round(s * 1000, 6))      # 0.07 s is 70 ms, not 71
    if ms > 0xFFFFFFFF:
        raise ValueError(f"freeze_deadline of {seconds!r} s is too long (at most "
                         f"{0xFFFFFFFF / 1000:.0f} s)")
    return ms


def _freeze_window(o: Any, sink: _callbacks.Sink, kind: str, capture: Optional[CaptureFn],
                   release: Optional[ReleaseFn], freeze_deadline: Optional[float],
                   reflink: bool) -> None:
    """The version-2 members of backup, snapshot and schedule run options."""
    o.capture_cb = sink.capture(capture)
    o.release_cb = sink.release(release)
    o.freeze_deadline_ms = _deadline_ms(freeze_deadline)
    if not reflink:
        o.flags |= _NO_REFLINK[kind]


def _vm_ref(value: Union[str, Tuple[str, str]], default_ns: str) -> Tuple[str, str]:
    """"ns/name", "name" (in default_ns) or (ns, name)."""
    if isinstance(value, tuple):
        return value[0], value[1]
    if "/" in value:
        ns, _, name = value.partition("/")
        return ns, name
    return default_ns, value


_open_contexts: "weakref.WeakSet[Context]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # library threads must not call into an interpreter that is going away
    for ctx in list(_open_contexts):
        try:
            ctx.close()
        except Exception:  # noqa: BLE001
            pass


class Context:
    """A context on a state directory: the catalog of VMs and operations,
    the backup target, the snapshot store, schedules and quotas.

    Use it as a context manager (or call :meth:`close`)::

        with harvbk.Context("/var/lib/harvbk") as ctx:
            ctx.set_target("file:///backups")

    The state directory is created when missing. ``threads`` is the number of
    worker threads per operation (0: automatic); ``log(level, message)``, if
    given, receives the library's log messages up to ``log_level`` (it may be
    called from any library thread, concurrently).

    A context may be used from several threads at once. Closing it cancels
    its running operations and waits for them; do not close it while other
    threads still call it.
    """

    def __init__(self, state_dir: Union[str, "os.PathLike[str]"], *, threads: int = 0,
                 log: Optional[Callable[[int, str], Any]] = None,
                 log_level: Union[LogLevel, int] = LogLevel.INFO) -> None:
        self._ptr: Optional[c_void_p] = None
        self._hooks: List[Any] = []   # callback objects the context may still call
        self._schedulers: "weakref.WeakSet[Scheduler]" = weakref.WeakSet()
        self.state_dir = os.fspath(state_dir)
        opts = _lib.options(_lib.CtxOptions, F.ctx_options_init)
        opts.threads = threads
        opts.log_level = int(log_level)
        if log is not None:
            cb = _callbacks.make_log_hook(log)
            self._hooks.append(cb)
            opts.log_cb = cb
        ptr = c_void_p()
        check(F.ctx_open(byref(ptr), enc(self.state_dir), byref(opts)))
        self._ptr = ptr
        _open_contexts.add(self)

    # ---- lifetime
    def _p(self) -> c_void_p:
        p = self._ptr
        if p is None:
            raise ValueError("operation on a closed Context")
        return p

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Close the context: running operations are cancelled and waited
        for. Operation objects stay readable. Calling it twice is fine."""
        if any(s.owner is self for s in _callbacks.active_sinks()):
            raise RuntimeError("closing a context from a callback of one of its "
                               "operations would deadlock")
        for sched in list(getattr(self, "_schedulers", ())):
            sched._stop()   # the context must outlive its runners
        ptr, self._ptr = self._ptr, None
        if ptr:
            _open_contexts.discard(self)
            F.ctx_free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<harvbk.Context {self.state_dir!r}{' closed' if self.closed else ''}>"

    # ---- general
    @property
    def id(self) -> str:
        """Stable identifier (UUID) of the state directory."""
        return dec(F.ctx_id(self._p())) or ""

    @property
    def ops_in_progress(self) -> int:
        """Operations of this context running in this process."""
        n = c_uint()
        check(F.ctx_ops_in_progress(self._p(), byref(n)))
        return n.value

    def set_log_hook(self, log: Optional[Callable[[int, str], Any]],
                     level: Union[LogLevel, int] = LogLevel.INFO) -> None:
        """Replace the log hook (None: no logging)."""
        cb = _callbacks.make_log_hook(log) if log is not None else _lib.LOG_CB()
        self._hooks.append(cb)   # an earlier hook may still be running
        check(F.ctx_set_log_hook(self._p(), cb, None, int(level)))

    # ---- target
    def set_target(self, url: Union[str, TargetConfig], *, key: Optional[Key] = None,
                   **settings: Any) -> None:
        """Point the context at a backup target: a URL with the other
        settings as keyword arguments (see :class:`TargetConfig`), or a
        TargetConfig (the keyword arguments are then set on it)::

            ctx.set_target("s3://bucket/prefix", endpoint="https://s3.example:9000",
                           region="us-east-1", access_key_id="...",
                           secret_access_key="...")

        An encrypted store: ``encrypt=True`` with ``key_file=`` or
        ``passphrase_file=`` (paths recorded, files read at every use), or
        ``key=`` a :class:`harvbk.Key` for this session only (as
        :meth:`set_target_key`; never written to the state directory).

        Creates the store when the location is empty. Raises
        :class:`harvbk.TargetUnreachable`, :class:`harvbk.InvalidArgument`,
        :class:`harvbk.Busy` (operations run), :class:`harvbk.WrongKey` (an
        encrypted store the key does not open, or no key for one),
        :class:`harvbk.PermissionDenied` (a key file group or others may
        read), ...
        """
        if isinstance(url, TargetConfig):
            for k, v in settings.items():
                url.set(k, v)
            if key is not None:
                url.set_key(key)
            check(F.ctx_set_target(self._p(), url._p()))
            return
        with TargetConfig(url, key=key, **settings) as cfg:
            check(F.ctx_set_target(self._p(), cfg._p()))

    @property
    def target(self) -> TargetConfig:
        """A copy of the configured target settings (NoTarget when none)."""
        out = c_void_p()
        check(F.ctx_get_target(self._p(), byref(out)))
        return TargetConfig._adopt(out)

    def set_target_secret(self, secret: Optional[str]) -> None:
        """Give the target's secret access key for this session only."""
        check(F.ctx_set_target_secret(self._p(), enc(secret)))

    def set_target_key(self, key: Optional[Key]) -> None:
        """Give the target's encryption key for this session only (copied:
        the Key may be closed afterwards; None removes it), like
        :meth:`set_target_secret`: every process whose configuration names no
        key file gives it once. It takes precedence over the key file and
        passphrase file settings and is never written to the state
        directory. An open store is reopened with it on next use. Raises
        :class:`harvbk.NoTarget`, :class:`harvbk.Busy` (operations run)."""
        check(F.ctx_set_target_key(self._p(), key_ptr(key)))

    def check_target(self) -> None:
        """Raise unless the target is reachable and holds a readable store."""
        check(F.ctx_check_target(self._p()))

    def sync(self) -> SyncResult:
        """Bring the backup catalog in step with the target now."""
        out = c_void_p()
        check(F.target_sync(self._p(), byref(out)))
        try:
            return SyncResult._copy_of(out)
        finally:
            F.sync_result_free(out)

    # ---- the VM catalog
    def register_vm(self, vm: VM) -> None:
        """Save a VM (file volumes with absolute paths) in the catalog."""
        check(F.vm_register(self._p(), vm._p()))

    def vm(self, namespace: str, name: str) -> VM:
        """A registered VM (NotFound when absent)."""
        out = c_void_p()
        check(F.vm_lookup(byref(out), self._p(), enc(namespace), enc(name)))
        return VM._adopt(out)

    def unregister_vm(self, namespace: str, name: str) -> None:
        check(F.vm_unregister(self._p(), enc(namespace), enc(name)))

    def set_vm_power_state(self, namespace: str, name: str,
                           state: Union[PowerState, int, str, bool]) -> None:
        """Record the power state of a registered VM ("on", "off", a PowerState)."""
        check(F.vm_set_registered_power_state(self._p(), enc(namespace), enc(name),
                                              int(power_state(state))))

    def vms(self) -> List[VM]:
        """Every registered VM, sorted by namespace then name."""
        lst = c_void_p()
        check(F.vm_list_get(byref(lst), self._p()))
        try:
            return [VM._copy_of(F.vm_list_at(lst, i)) for i in range(F.vm_list_count(lst))]
        finally:
            F.vm_list_free(lst)

    # ---- helpers of operations
    def _start(self, cls: type, sink: _callbacks.Sink, fn: Callable[..., int],
               *args: Any, **kw: Any) -> Any:
        out = c_void_p()
        with _callbacks.sync_call() as call:
            rc = fn(byref(out), self._p(), *args)
            msg = _lib.last_error_message() if rc else ""
        if call.error is not None:      # a context hook (image hook) raised
            raise call.error
        if rc:
            from .errors import error_from_code
            raise error_from_code(rc, msg)
        return cls(out, self, sink, **kw)

    def _op_options(self, sink: _callbacks.Sink, progress: Optional[ProgressFn]) -> Any:
        o = _lib.options(_lib.OpOptions, F.op_options_init)
        o.progress_cb = sink.progress(progress)
        return o

    @staticmethod
    def _ranges(changed: Optional[Ranges]) -> Optional[c_void_p]:
        if changed is None:
            return None
        r = c_void_p()
        check(F.ranges_new(byref(r)))
        try:
            for vol, spans in changed.items():
                for off, length in spans:
                    check(F.ranges_add(r, enc(vol), off, length))
        except BaseException:
            F.ranges_free(r)
            raise
        return r

    # ---- backups
    def backup(self, vm: VM, name: str, *, progress: Optional[ProgressFn] = None,
               freeze: Optional[FreezeFn] = None, thaw: Optional[FreezeFn] = None,
               allow_crash_consistent: bool = False,
               changed_ranges: Optional[Ranges] = None,
               capture: Optional[CaptureFn] = None, release: Optional[ReleaseFn] = None,
               freeze_deadline: Optional[float] = None,
               reflink: bool = True) -> BackupOperation:
        """Start backing up ``vm`` as NAMESPACE/``name`` into the target.

        ``progress(done, total)`` is called with bytes done and total from a
        library thread (its return value is ignored; raise to stop the
        backup: the exception then comes out of ``wait()`` and the backup
        ends in state Error). ``freeze(namespace, vm)`` and ``thaw(namespace,
        vm)`` bracket the reading of the volumes (a freeze needs a thaw;
        return False from freeze to report a failure without an exception;
        with ``allow_crash_consistent`` the backup then goes on, marked
        crash-consistent). ``changed_ranges`` maps volume names to
        ``(offset, length)`` pairs changed since the previous backup.

        The freeze window (docs/THREADING.md): with a freeze hook the VM is
        frozen only while its volumes are captured, then thawed, then the
        captures are read. A file volume on a filesystem with reflinks is
        cloned by the library (``reflink=False``: never). Any other volume
        is offered to ``capture(namespace, vm, volume, path)`` (``path``:
        the volume file, None for a callback volume), which returns the path
        of a point-in-time copy (an LVM/Ceph/Longhorn snapshot, ...) at
        least as large as the volume, or None to decline (the volume is then
        read as it is, while frozen). ``release(namespace, vm, volume,
        captured_path)`` is required with it and is called exactly once per
        capture, after its read or when the backup fails. Both run on the
        backup's thread, one at a time. ``freeze_deadline`` (seconds) bounds
        the time the VM stays frozen while volumes that were not captured
        are read: when it passes, the backup thaws and fails with
        :class:`harvbk.TimedOut`. A capture or release hook that raises (or
        returns False) fails the backup; ``wait()`` re-raises its exception.

        Returns the running :class:`BackupOperation`; call ``.wait()``.
        Raises at once :class:`harvbk.AlreadyExists`,
        :class:`harvbk.NoTarget`, :class:`harvbk.InvalidArgument`, ...
        """
        sink = _callbacks.Sink(self, f"backup {vm.namespace}/{name}")
        o = _lib.options(_lib.BackupOptions, F.backup_options_init)
        o.flags = 0x1 if allow_crash_consistent else 0
        o.progress_cb = sink.progress(progress)
        o.freeze_cb = sink.freeze(freeze, "freeze hook")
        o.thaw_cb = sink.freeze(thaw, "thaw hook")
        _freeze_window(o, sink, "backup", capture, release, freeze_deadline, reflink)
        ranges = self._ranges(changed_ranges)
        o.changed_ranges = ranges
        owned = None
        try:
            vmh, owned = vm._handle_for(sink)
            return self._start(BackupOperation, sink, F.backup_create, vmh, enc(name),
                               byref(o), namespace=vm.namespace, name=name)
        finally:
            if ranges:
                F.ranges_free(ranges)
            if owned:
                F.vm_free(owned)

    def backup_info(self, namespace: str, name: str) -> BackupInfo:
        """A backup, from the synced catalog and this context's unfinished
        backups (:class:`harvbk.NotFound` when unknown)."""
        out = c_void_p()
        check(F.backup_get(byref(out), self._p(), enc(namespace), enc(name)))
        try:
            return BackupInfo._copy_of(out, "backup")
        finally:
            F.backup_info_free(out)

    def backups(self) -> BackupList:
        """Every backup (a list, sorted by namespace then name; its
        ``synced_at`` says when the catalog was last synced)."""
        lst = c_void_p()
        check(F.backup_list_get(byref(lst), self._p()))
        return backup_list(lst, "backup")

    def verify(self, namespace: str, name: str, *,
               progress: Optional[ProgressFn] = None) -> VerifyOperation:
        """Start reading and checking every chunk of a backup
        (:class:`harvbk.ChunkCorrupt` from ``wait()`` when one is bad)."""
        sink = _callbacks.Sink(self, f"verify of backup {namespace}/{name}")
        o = self._op_options(sink, progress)
        return self._start(VerifyOperation, sink, F.backup_verify, enc(namespace), enc(name),
                           byref(o))

    def delete_backup(self, namespace: str, name: str, *, allow_deferred: bool = False) -> bool:
        """Delete a backup from the target and the catalog. With
        ``allow_deferred``, an unreachable target records the deletion as
        pending (finished by the next sync) and False is returned; True when
        it was deleted."""
        if not allow_deferred:
            check(F.backup_delete(self._p(), enc(namespace), enc(name)))
            return True
        deferred = c_int()
        check(F.backup_delete_ex(self._p(), enc(namespace), enc(name), byref(deferred)))
        return not deferred.value

    def forget_backup(self, namespace: str, name: str) -> None:
        """Drop a backup from this context's catalog only (the target is untouched)."""
        check(F.backup_forget(self._p(), enc(namespace), enc(name)))

    def gc(self, *, progress: Optional[ProgressFn] = None) -> GcOperation:
        """Start removing chunks of the target no backup references;
        ``.removed`` tells what it removed."""
        sink = _callbacks.Sink(self, "gc of the target")
        o = self._op_options(sink, progress)
        return self._start(GcOperation, sink, F.gc, byref(o))

    # ---- snapshots
    def set_snapshot_store(self, dir: Optional[str] = None, *, chunk_size: int = 0,
                           codec: Optional[str] = None, encrypt: bool = False,
                           key_file: Optional[str] = None,
                           passphrase_file: Optional[str] = None,
                           key: Optional[Key] = None) -> None:
        """Configure the snapshot store (no arguments: the defaults).

        Encryption at rest: ``encrypt=True`` (implied by any key) makes a new
        store encrypted and refuses a plaintext one. Its key comes from
        ``key_file`` or ``passphrase_file`` (absolute paths, mode 0600: only
        the path is recorded, the file is read at every use) or from ``key``
        (a :class:`harvbk.Key`, for this session only:
        :meth:`set_snapshot_store_key`, which every process then calls).
        Raises :class:`harvbk.PermissionDenied` (a key file group or others
        may read), :class:`harvbk.WrongKey` (an encrypted store there that
        the key file does not open), :class:`harvbk.WrongState` (encryption
        asked for a plaintext store), :class:`harvbk.InvalidArgument`, ...
        """
        crypt = encrypt or key_file is not None or passphrase_file is not None
        o = _lib.options(_lib.SnapshotStoreOptions, F.snapshot_store_options_init,
                         None if crypt or key is not None else 1)
        o.dir = enc(dir)
        o.chunk_size = chunk_size
        o.codec = enc(codec)
        if crypt or key is not None:
            o.flags = 0x1 if (encrypt or key is not None) else 0  # HARVBK_SNAPSHOT_STORE_ENCRYPT
            o.key_file = enc(key_file)
            o.passphrase_file = enc(passphrase_file)
        if key is not None:
            key_ptr(key)   # a closed or wrong-typed key fails before anything is set
        check(F.snapshot_store_set(self._p(), byref(o)))
        if key is not None:
            self.set_snapshot_store_key(key)

    def set_snapshot_store_key(self, key: Optional[Key]) -> None:
        """Give the encrypted snapshot store's key for this session only
        (copied; None removes it). Raises :class:`harvbk.Busy` while
        snapshot operations run."""
        check(F.snapshot_store_set_key(self._p(), key_ptr(key)))

    # ---- keys of encrypted stores
    @staticmethod
    def _store(snapshot_store: bool) -> int:
        return STORE_SNAPSHOTS if snapshot_store else STORE_TARGET

    def store_key_add(self, key: Key, *, snapshot_store: bool = False) -> str:
        """Add ``key`` to the keys of the target's encrypted store (or of the
        snapshot store): the store key is wrapped under it in a new key slot
        (no chunk is touched). The store must open with the context's
        current key. Returns the new key's id (16 hex digits). Raises
        :class:`harvbk.AlreadyExists` (the key opens the store already),
        :class:`harvbk.WrongKey`, :class:`harvbk.WrongState` (a plaintext
        store), :class:`harvbk.InvalidArgument` (32 keys already),
        :class:`harvbk.Busy` (a concurrent rewrite: try again), ..."""
        if key is None:
            raise TypeError("store_key_add needs a harvbk.Key")
        buf = ctypes.create_string_buffer(17)
        check(F.store_key_add(self._p(), self._store(snapshot_store), key_ptr(key),
                              buf, len(buf)))
        return buf.value.decode("ascii")

    def store_key_remove(self, id: str, *, snapshot_store: bool = False) -> None:
        """Remove the key slot ``id`` (as listed by :meth:`store_keys`).
        The key the context opened the store with, and the last key, cannot
        be removed (:class:`harvbk.WrongState`): to rotate, add the new key,
        switch the configuration to it, then remove the old one. Raises
        :class:`harvbk.NotFound` too."""
        check(F.store_key_remove(self._p(), self._store(snapshot_store), enc(id)))

    def store_keys(self, *, snapshot_store: bool = False) -> StoreKeys:
        """The encryption of the target's store (or of the snapshot store)
        and its key slots, read from its config without needing a key; with
        the context's key it also tells which slot that key opens (a wrong
        key is no error: ``unlocked`` is then False). Raises
        :class:`harvbk.NoTarget`, :class:`harvbk.NotFound` (no snapshot
        store yet), ..."""
        out = c_void_p()
        check(F.store_keys_get(self._p(), self._store(snapshot_store), byref(out)))
        try:
            return StoreKeys._copy_of(out)
        finally:
            F.store_keys_free(out)

    @property
    def snapshot_store_dir(self) -> str:
        n = c_size_t()
        buf = ctypes.create_string_buffer(4096)
        check(F.snapshot_store_dir(self._p(), buf, len(buf), byref(n)))
        if n.value >= len(buf):
            buf = ctypes.create_string_buffer(n.value + 1)
            check(F.snapshot_store_dir(self._p(), buf, len(buf), byref(n)))
        return buf.value.decode("utf-8", "surrogateescape")

    def snapshot(self, vm: VM, name: str, *, progress: Optional[ProgressFn] = None,
                 freeze: Optional[FreezeFn] = None, thaw: Optional[FreezeFn] = None,
                 allow_crash_consistent: bool = False,
                 capture: Optional[CaptureFn] = None, release: Optional[ReleaseFn] = None,
                 freeze_deadline: Optional[float] = None,
                 reflink: bool = True) -> SnapshotOperation:
        """Start a snapshot of ``vm`` named NAMESPACE/``name`` in the local
        snapshot store (callbacks as for :meth:`backup`). Raises
        :class:`harvbk.QuotaExceeded` at once when a limit is already reached;
        ``wait()`` raises it when the new data would exceed one."""
        sink = _callbacks.Sink(self, f"snapshot {vm.namespace}/{name}")
        o = _lib.options(_lib.SnapshotOptions, F.snapshot_options_init)
        o.flags = 0x1 if allow_crash_consistent else 0
        o.progress_cb = sink.progress(progress)
        o.freeze_cb = sink.freeze(freeze, "freeze hook")
        o.thaw_cb = sink.freeze(thaw, "thaw hook")
        _freeze_window(o, sink, "snapshot", capture, release, freeze_deadline, reflink)
        owned = None
        try:
            vmh, owned = vm._handle_for(sink)
            return self._start(SnapshotOperation, sink, F.snapshot_create, vmh, enc(name),
                               byref(o), namespace=vm.namespace, name=name)
        finally:
            if owned:
                F.vm_free(owned)

    def snapshot_info(self, namespace: str, name: str) -> BackupInfo:
        """A snapshot (:class:`harvbk.NotFound` when unknown)."""
        out = c_void_p()
        check(F.snapshot_get(byref(out), self._p(), enc(namespace), enc(name)))
        try:
            return BackupInfo._copy_of(out, "snapshot")
        finally:
            F.backup_info_free(out)

    def snapshots(self) -> BackupList:
        """Every snapshot of the store, sorted by namespace then name."""
        lst = c_void_p()
        check(F.snapshot_list_get(byref(lst), self._p()))
        return backup_list(lst, "snapshot")

    def verify_snapshot(self, namespace: str, name: str, *,
                        progress: Optional[ProgressFn] = None) -> VerifyOperation:
        sink = _callbacks.Sink(self, f"verify of snapshot {namespace}/{name}")
        o = self._op_options(sink, progress)
        return self._start(VerifyOperation, sink, F.snapshot_verify, enc(namespace),
                           enc(name), byref(o))

    def delete_snapshot(self, namespace: str, name: str) -> None:
        check(F.snapshot_delete(self._p(), enc(namespace), enc(name)))

    def snapshot_gc(self, *, progress: Optional[ProgressFn] = None) -> GcOperation:
        sink = _callbacks.Sink(self, "gc of the snapshot store")
        o = self._op_options(sink, progress)
        return self._start(GcOperation, sink, F.snapshot_gc, byref(o))

    # ---- restore
    def _restore(self, fn: Callable[..., int], kind: str, namespace: str, name: str, *,
                 new_vm: Union[str, Tuple[str, str], None], replace: Union[str, Tuple[str, str], None],
                 into: Optional[str], target_vm: Optional[VM], keep_mac: bool,
                 deletion_policy: Union[DeletionPolicy, int, str, None],
                 metadata_rewrite: Optional[Callable[..., Any]],
                 progress: Optional[ProgressFn]) -> RestoreOperation:
        if (new_vm is None) == (replace is None):
            raise TypeError("give exactly one of new_vm= and replace=")
        vns, vname = _vm_ref(new_vm if new_vm is not None else replace, namespace)  # type: ignore[arg-type]
        sink = _callbacks.Sink(self, f"restore of {kind} {namespace}/{name} "
                                     f"{'into new VM' if new_vm else 'replacing VM'} "
                                     f"{vns}/{vname}")
        o = _lib.options(_lib.RestoreOptions, F.restore_options_init)
        o.flags = (0x1 if keep_mac else 0) | (0x2 if replace is not None else 0)
        o.new_vm_namespace = enc(vns)
        o.new_vm_name = enc(vname)
        o.target_dir = enc(os.fspath(into)) if into is not None else None
        o.progress_cb = sink.progress(progress)
        o.deletion_policy = _policy(deletion_policy)
        o.metadata_rewrite_cb = sink.metadata_rewrite(metadata_rewrite)
        owned = None
        if target_vm is not None:
            owned = target_vm._new_handle(sink)
            o.target_vm = owned
        try:
            return self._start(RestoreOperation, sink, fn, enc(namespace), enc(name), byref(o))
        finally:
            if owned:
                F.vm_free(owned)

    def restore(self, namespace: str, name: str, *,
                new_vm: Union[str, Tuple[str, str], None] = None,
                replace: Union[str, Tuple[str, str], None] = None,
                into: Optional[str] = None, target_vm: Optional[VM] = None,
                keep_mac: bool = False,
                deletion_policy: Union[DeletionPolicy, int, str, None] = None,
                metadata_rewrite: Optional[Callable[..., Any]] = None,
                progress: Optional[ProgressFn] = None) -> RestoreOperation:
        """Start restoring backup NAMESPACE/NAME.

        As a new VM: ``new_vm="ns/name"`` (or ``"name"`` in the backup's
        namespace), volumes written to ``into``/VOLUME.raw, or through the
        write callbacks of ``target_vm``'s volumes. Over the VM it was taken
        of (registered, powered off): ``replace="ns/name"`` with
        ``deletion_policy`` "delete" (default for backups) or "retain".
        ``metadata_rewrite(rw)`` may return the new metadata document (see
        :class:`harvbk.MetadataRewrite`). Raises at once
        :class:`harvbk.NotFound`, :class:`harvbk.AlreadyExists`,
        :class:`harvbk.WrongState` (not Ready), :class:`harvbk.VMRunning`,
        :class:`harvbk.ImageMissing` (or the exception the image hook raised), ...
        """
        return self._restore(F.restore_create, "backup", namespace, name, new_vm=new_vm,
                             replace=replace, into=into, target_vm=target_vm,
                             keep_mac=keep_mac, deletion_policy=deletion_policy,
                             metadata_rewrite=metadata_rewrite, progress=progress)

    def restore_snapshot(self, namespace: str, name: str, *,
                         new_vm: Union[str, Tuple[str, str], None] = None,
                         replace: Union[str, Tuple[str, str], None] = None,
                         into: Optional[str] = None, target_vm: Optional[VM] = None,
                         keep_mac: bool = False,
                         deletion_policy: Union[DeletionPolicy, int, str, None] = None,
                         metadata_rewrite: Optional[Callable[..., Any]] = None,
                         progress: Optional[ProgressFn] = None) -> RestoreOperation:
        """Start restoring snapshot NAMESPACE/NAME, as :meth:`restore` (the new
        VM must be in the snapshot's namespace; a replace keeps the old
        volumes: deletion policy default or "retain")."""
        return self._restore(F.snapshot_restore, "snapshot", namespace, name, new_vm=new_vm,
                             replace=replace, into=into, target_vm=target_vm,
                             keep_mac=keep_mac, deletion_policy=deletion_policy,
                             metadata_rewrite=metadata_rewrite, progress=progress)

    # ---- quotas
    def set_quota(self, namespace: str, limit: int, *, vm: Optional[str] = None) -> None:
        """Limit the snapshot space of a namespace (or of VM namespace/vm) to
        ``limit`` bytes."""
        check(F.quota_set(self._p(), enc(namespace), enc(vm), limit))

    def clear_quota(self, namespace: str, *, vm: Optional[str] = None) -> None:
        """Remove a limit (NotFound when none was set)."""
        check(F.quota_clear(self._p(), enc(namespace), enc(vm)))

    def quota(self, namespace: str, *, vm: Optional[str] = None) -> Quota:
        """Limit and usage of a namespace or a VM."""
        has, limit, usage = c_int(), c_uint64(), c_uint64()
        check(F.quota_get(self._p(), enc(namespace), enc(vm), byref(has), byref(limit),
                          byref(usage)))
        return Quota(namespace, vm, limit.value if has.value else None, usage.value)

    def quotas(self) -> List[Quota]:
        """Every namespace and VM with a limit or snapshots."""
        lst = c_void_p()
        check(F.quota_list_get(byref(lst), self._p()))
        try:
            return [Quota(dec(F.quota_list_namespace(lst, i)) or "",
                          dec(F.quota_list_vm(lst, i)),
                          F.quota_list_limit(lst, i) if F.quota_list_has_limit(lst, i) else None,
                          F.quota_list_usage(lst, i), F.quota_list_snapshots(lst, i))
                    for i in range(F.quota_list_count(lst))]
        finally:
            F.quota_list_free(lst)

    # ---- schedules
    @staticmethod
    def _schedule_options(o: Any, *, vm: Union[str, Tuple[str, str], None], ns: str,
                          type: Optional[str], cron: Optional[str], retain: int,
                          max_failure: int, deadline_s: Optional[int],
                          skip_interval_check: bool, now_ms: Optional[int]) -> List[bytes]:
        keep: List[bytes] = []
        if type is not None:
            if type not in ("backup", "snapshot"):
                raise ValueError(f"schedule type must be 'backup' or 'snapshot', not {type!r}")
            o.type = 0 if type == "backup" else 1
        if vm is not None:
            vns, vname = _vm_ref(vm, ns)
            o.vm_namespace = enc(vns)
            o.vm_name = enc(vname)
        o.cron = enc(cron)
        o.retain = retain
        o.max_failure = max_failure
        o.deadline_s = deadline_s or 0
        o.flags = 0x1 if skip_interval_check else 0
        o.now_ms = now_ms or 0
        return keep

    def create_schedule(self, namespace: str, name: str, *,
                        vm: Union[str, Tuple[str, str]], cron: str, type: str = "backup",
                        retain: int = 0, max_failure: int = 0,
                        deadline_s: Optional[int] = None, skip_interval_check: bool = False,
                        now_ms: Optional[int] = None) -> Schedule:
        """Create schedule NAMESPACE/NAME making backups (``type="backup"``)
        or snapshots of registered VM ``vm`` at the times of ``cron``.
        ``now_ms`` is "now" in ms since the epoch (None: the system clock),
        for a controller's (or a test's) own clock. Each refusal has its
        class: :class:`harvbk.InvalidCron`, :class:`harvbk.IntervalTooShort`,
        :class:`harvbk.ScheduleConflict`, :class:`harvbk.RetainOutOfRange`,
        :class:`harvbk.MaxFailureOutOfRange`, :class:`harvbk.VMScheduled`,
        :class:`harvbk.NotFound`, ..."""
        o = _lib.options(_lib.ScheduleOptions, F.schedule_options_init)
        self._schedule_options(o, vm=vm, ns=namespace, type=type, cron=cron, retain=retain,
                               max_failure=max_failure, deadline_s=deadline_s,
                               skip_interval_check=skip_interval_check, now_ms=now_ms)
        check(F.schedule_create(self._p(), enc(namespace), enc(name), byref(o)))
        return self.schedule(namespace, name)

    def update_schedule(self, namespace: str, name: str, *, cron: Optional[str] = None,
                        retain: int = 0, max_failure: int = 0,
                        deadline_s: Optional[int] = None, skip_interval_check: bool = False,
                        now_ms: Optional[int] = None) -> Schedule:
        """Change the cron, retain, max failure or deadline of a schedule
        (unset arguments keep their value)."""
        o = _lib.options(_lib.ScheduleOptions, F.schedule_options_init)
        self._schedule_options(o, vm=None, ns=namespace, type=None, cron=cron, retain=retain,
                               max_failure=max_failure, deadline_s=deadline_s,
                               skip_interval_check=skip_interval_check, now_ms=now_ms)
        check(F.schedule_update(self._p(), enc(namespace), enc(name), byref(o)))
        return self.schedule(namespace, name)

    def schedule(self, namespace: str, name: str) -> Schedule:
        """A schedule (NotFound when there is none)."""
        out = c_void_p()
        check(F.schedule_get(byref(out), self._p(), enc(namespace), enc(name)))
        try:
            return Schedule(self, out)
        finally:
            F.schedule_free(out)

    def schedules(self) -> List[Schedule]:
        """Every schedule, sorted by namespace then name."""
        lst = c_void_p()
        check(F.schedule_list_get(byref(lst), self._p()))
        try:
            return [Schedule(self, F.schedule_list_at(lst, i))
                    for i in range(F.schedule_list_count(lst))]
        finally:
            F.schedule_list_free(lst)

    def suspend_schedule(self, namespace: str, name: str) -> None:
        check(F.schedule_suspend(self._p(), enc(namespace), enc(name)))

    def resume_schedule(self, namespace: str, name: str) -> None:
        check(F.schedule_resume(self._p(), enc(namespace), enc(name)))

    def delete_schedule(self, namespace: str, name: str) -> None:
        check(F.schedule_delete(self._p(), enc(namespace), enc(name)))

    def _run_options(self, sink: _callbacks.Sink, max_parallel: int,
                     progress: Optional[ProgressFn], freeze: Optional[FreezeFn],
                     thaw: Optional[FreezeFn],
                     resolve: Optional[Callable[[str, str], Optional[VM]]],
                     capture: Optional[CaptureFn], release: Optional[ReleaseFn],
                     freeze_deadline: Optional[float], reflink: bool) -> Any:
        o = _lib.options(_lib.ScheduleRunOptions, F.schedule_run_options_init)
        o.max_parallel = max_parallel
        o.progress_cb = sink.progress(progress)
        o.freeze_cb = sink.freeze(freeze, "freeze hook")
        o.thaw_cb = sink.freeze(thaw, "thaw hook")
        o.resolve_cb = sink.vm_resolver(resolve)
        _freeze_window(o, sink, "schedule", capture, release, freeze_deadline, reflink)
        return o

    def run_due(self, now_ms: int, *, max_parallel: int = 0,
                progress: Optional[ProgressFn] = None, freeze: Optional[FreezeFn] = None,
                thaw: Optional[FreezeFn] = None,
                resolve: Optional[Callable[[str, str], Optional[VM]]] = None,
                capture: Optional[CaptureFn] = None, release: Optional[ReleaseFn] = None,
                freeze_deadline: Optional[float] = None, reflink: bool = True
                ) -> Optional[SchedulePass]:
        """Start every active schedule due at ``now_ms`` (ms since the epoch;
        the library owns no clock). Returns the :class:`SchedulePass`, or
        None when nothing is due. ``resolve(namespace, name)`` may supply
        the current :class:`VM` of a run (None: NotFound; default: the
        catalog's VM). ``freeze``, ``thaw``, ``capture``, ``release``,
        ``freeze_deadline`` and ``reflink`` apply to each run as in
        :meth:`backup` (runs of a pass may call them concurrently, each
        run's own hooks one at a time). The pass succeeds even when runs
        fail: see ``.runs``; an exception a hook raised comes out of
        ``wait()``.
        """
        sink = _callbacks.Sink(self, f"schedule pass at {now_ms}")
        o = self._run_options(sink, max_parallel, progress, freeze, thaw, resolve, capture,
                              release, freeze_deadline, reflink)
        out = c_void_p()
        check(F.schedule_run_due(byref(out), self._p(), now_ms, byref(o)))
        if not out.value:
            return None
        return SchedulePass(out, self, sink, f"schedule pass at {now_ms}")

    def next_due(self, now_ms: int) -> Optional[int]:
        """When :meth:`run_due` should next be called (ms; ``now_ms`` when
        something is due), None when no schedule is active."""
        out = c_int64()
        check(F.schedule_next_due(self._p(), now_ms, byref(out)))
        return None if out.value < 0 else out.value

    def start_scheduler(self, *, max_parallel: int = 0, progress: Optional[ProgressFn] = None,
                        freeze: Optional[FreezeFn] = None, thaw: Optional[FreezeFn] = None,
                        resolve: Optional[Callable[[str, str], Optional[VM]]] = None,
                        capture: Optional[CaptureFn] = None,
                        release: Optional[ReleaseFn] = None,
                        freeze_deadline: Optional[float] = None, reflink: bool = True
                        ) -> "Scheduler":
        """Start the library's runner thread (run_due at every next_due of
        the system clock), with the hooks and settings of :meth:`run_due`.
        Stop it with :meth:`Scheduler.stop` before closing the context."""
        sink = _callbacks.Sink(self, "scheduler")
        o = self._run_options(sink, max_parallel, progress, freeze, thaw, resolve, capture,
                              release, freeze_deadline, reflink)
        out = c_void_p()
        check(F.scheduler_start(byref(out), self._p(), byref(o)))
        sched = Scheduler(out, self, sink)
        self._schedulers.add(sched)
        return sched

    # ---- images
    def register_image(self, image: Image) -> None:
        check(F.image_register(self._p(), image._p()))

    def image(self, namespace: str, name: str) -> Image:
        out = c_void_p()
        check(F.image_lookup(byref(out), self._p(), enc(namespace), enc(name)))
        return Image._adopt(out)

    def unregister_image(self, namespace: str, name: str) -> None:
        check(F.image_unregister(self._p(), enc(namespace), enc(name)))

    def images(self) -> List[Image]:
        lst = c_void_p()
        check(F.image_list_get(byref(lst), self._p()))
        try:
            return [Image._copy_of(F.image_list_at(lst, i))
                    for i in range(F.image_list_count(lst))]
        finally:
            F.image_list_free(lst)

    def set_image_hook(self, hook: Optional[Callable[[Image], Any]]) -> None:
        """Set the hook that recreates a missing image during a restore
        (None clears it). ``hook(image)`` runs on the thread calling
        :meth:`restore` before it returns; returning normally means the image
        now exists, returning False refuses (:class:`harvbk.ImageMissing`),
        and an exception it raises comes out of the ``restore()`` call."""
        if hook is None:
            check(F.ctx_set_image_hook(self._p(), _lib.IMAGE_HOOK(), None))
            return
        sink = _callbacks.Sink(self, "image hook")
        cb = sink.image_hook(hook)
        self._hooks.append(sink)   # a restore on another thread may still call the old one
        check(F.ctx_set_image_hook(self._p(), cb, None))

    # ---- maintenance
    def operations(self) -> List[OpInfo]:
        """Operations in progress on the state directory, in every process."""
        lst = c_void_p()
        check(F.op_list_get(byref(lst), self._p()))
        try:
            out = []
            for i in range(F.op_list_count(lst)):
                kind, what = c_char_p(), c_char_p()
                pid, started = c_int64(), c_int64()
                check(F.op_list_at(lst, i, byref(kind), byref(what), byref(pid),
                                   byref(started)))
                out.append(OpInfo(dec(kind.value) or "", dec(what.value) or "", pid.value,
                                  started.value))
            return out
        finally:
            F.op_list_free(lst)

    def enter_maintenance(self, wait_s: int = 0) -> None:
        """Suspend schedules and refuse new work (Busy when operations still
        run after ``wait_s`` seconds)."""
        check(F.maintenance_enter(self._p(), wait_s))

    def exit_maintenance(self) -> None:
        check(F.maintenance_exit(self._p()))

    @property
    def in_maintenance(self) -> bool:
        active, since = c_int(), c_int64()
        check(F.maintenance_status(self._p(), byref(active), byref(since)))
        return bool(active.value)


class Scheduler:
    """The library's schedule runner thread (:meth:`Context.start_scheduler`)."""

    def __init__(self, ptr: c_void_p, ctx: Context, sink: _callbacks.Sink) -> None:
        self._ptr: Optional[c_void_p] = ptr
        self._ctx = ctx
        self._sink = sink

    def stop(self) -> None:
        """Stop the runner: runs in progress are cancelled and waited for.
        Re-raises the first exception one of its callbacks raised."""
        self._stop()
        if self._sink.error is not None:
            raise self._sink.error

    def _stop(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            F.scheduler_stop(ptr)

    def __enter__(self) -> "Scheduler":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            try:
                F.scheduler_stop(ptr)
            except Exception:  # noqa: BLE001
                pass
