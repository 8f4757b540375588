"""Plain value objects the library's lists and getters are copied into.

Everything here is a copy: the C list or info handle is freed before the
call that made it returns, so these objects can be kept, shared between
threads and pickled freely.
"""
from __future__ import annotations

import ctypes
import datetime
import json
from ctypes import byref, c_char_p, c_int, c_int64, c_size_t, c_uint, c_void_p
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Union

from ._lib import F, check, dec, take_string

if TYPE_CHECKING:
    from .context import Context
    from .errors import HarvbkError

#: states of operations, backups and snapshots (harvbk_state_name)
IN_PROGRESS = "InProgress"
READY = "Ready"
ERROR = "Error"


def state_name(state: int) -> str:
    return dec(F.state_name(state)) or str(state)


def run_state_name(state: int) -> str:
    return dec(F.schedule_run_state_name(state)) or str(state)


def _ms_time(ms: Optional[int]) -> Optional[datetime.datetime]:
    if ms is None or ms <= 0:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


class Progress(NamedTuple):
    """Bytes done and total of an operation."""
    done: int
    total: int

    @property
    def fraction(self) -> float:
        """done / total (0.0 while the total is unknown)."""
        return self.done / self.total if self.total else 0.0


class GcResult(NamedTuple):
    """What a garbage collection removed."""
    chunks: int
    bytes: int


class VolumeInfo(NamedTuple):
    name: str
    size: int
    #: how the volume was captured in the freeze window: "reflink", "hook" or
    #: "none" (read from where it is); a newer library may record other names
    capture: str = "none"


# HARVBK_BACKUP_FLAG_*
FLAG_GONE = 0x1
FLAG_DELETE_PENDING = 0x2
FLAG_INDEX_MISSING = 0x4
FLAG_LOCAL = 0x8


@dataclass(frozen=True)
class BackupInfo:
    """A backup (or a snapshot: :attr:`kind`) as the library describes it."""
    kind: str
    namespace: str
    name: str
    vm_name: str
    #: "InProgress", "Ready" or "Error"
    state: str
    #: error message ("" when none)
    error: str
    #: sum of the volume sizes
    logical_bytes: int
    #: bytes this backup wrote to the target (new chunks, compressed, + metadata)
    uploaded_bytes: int
    progress_bytes: int
    #: creation time, seconds since the epoch
    created: int
    volumes: List[VolumeInfo]
    crash_consistent: bool
    thaw_failed: bool
    #: how long the VM was kept frozen, in ms (from the freeze hook's return
    #: to the thaw hook's call); None when it was not frozen (no freeze hook,
    #: or it failed) or for entries written before libharvbk 1.1
    frozen_ms: Optional[int]
    #: how the volumes were captured: "reflink" or "hook" when every volume
    #: was captured that way, "mixed" when they differ (see
    #: ``volumes[i].capture``), "none" when none was
    capture: str
    #: name of the schedule that made it, None otherwise
    schedule: Optional[str]
    #: HARVBK_BACKUP_FLAG_* of the synced catalog
    catalog_flags: int
    #: when the catalog entry was last confirmed by a sync (ms since the epoch, 0: never)
    synced_at: int
    #: the library's JSON description (may carry keys newer than this binding)
    json: str = field(repr=False)

    @classmethod
    def _copy_of(cls, p: Any, kind: str) -> "BackupInfo":
        s = c_void_p()
        check(F.backup_info_to_json(p, byref(s)))
        text = take_string(s)
        vols = [VolumeInfo(dec(F.backup_info_volume_name(p, i)) or "",
                           F.backup_info_volume_size(p, i),
                           dec(F.backup_info_volume_capture(p, i)) or "none")
                for i in range(F.backup_info_volume_count(p))]
        frozen = F.backup_info_frozen_ms(p)
        return cls(kind=kind,
                   namespace=dec(F.backup_info_namespace(p)) or "",
                   name=dec(F.backup_info_name(p)) or "",
                   vm_name=dec(F.backup_info_vm_name(p)) or "",
                   state=state_name(F.backup_info_state(p)),
                   error=dec(F.backup_info_error(p)) or "",
                   logical_bytes=F.backup_info_logical_bytes(p),
                   uploaded_bytes=F.backup_info_uploaded_bytes(p),
                   progress_bytes=F.backup_info_progress_bytes(p),
                   created=F.backup_info_created(p),
                   volumes=vols,
                   crash_consistent=bool(F.backup_info_crash_consistent(p)),
                   thaw_failed=bool(F.backup_info_thaw_failed(p)),
                   frozen_ms=frozen if frozen >= 0 else None,
                   capture=dec(F.backup_info_capture(p)) or "none",
                   schedule=dec(F.backup_info_schedule(p)),
                   catalog_flags=F.backup_info_catalog_flags(p),
                   synced_at=F.backup_info_synced_at(p),
                   json=text)

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def created_at(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.created, tz=datetime.timezone.utc)

    @property
    def gone(self) -> bool:
        """Its manifest vanished from the target at the last sync."""
        return bool(self.catalog_flags & FLAG_GONE)

    @property
    def delete_pending(self) -> bool:
        return bool(self.catalog_flags & FLAG_DELETE_PENDING)

    @property
    def index_missing(self) -> bool:
        return bool(self.catalog_flags & FLAG_INDEX_MISSING)

    def to_dict(self) -> Dict[str, Any]:
        """The library's JSON description as a dict."""
        return json.loads(self.json)


class BackupList(List[BackupInfo]):
    """A list of backups or snapshots, plus when the catalog was last synced."""
    #: ms since the epoch of the catalog's last sync with the target (0: never)
    synced_at: int = 0


def backup_list(lst: Any, kind: str) -> BackupList:
    out = BackupList()
    try:
        for i in range(F.backup_list_count(lst)):
            out.append(BackupInfo._copy_of(F.backup_list_at(lst, i), kind))
        out.synced_at = F.backup_list_synced_at(lst) if kind == "backup" else 0
    finally:
        F.backup_list_free(lst)
    return out


@dataclass(frozen=True)
class SyncResult:
    """Counters of a catalog sync (harvbk_target_sync)."""
    imported: int
    updated: int
    gone: int
    forgotten: int
    unchanged: int
    index_missing: int
    deleted: int
    manifest_reads: int
    skipped: int
    #: when the sync completed, ms since the epoch
    synced_at: int

    @classmethod
    def _copy_of(cls, p: Any) -> "SyncResult":
        def n(what: int) -> int:   # harvbk_sync_count
            return int(F.sync_result_count(p, what))
        return cls(imported=n(1), updated=n(2), gone=n(3), forgotten=n(4), unchanged=n(5),
                   index_missing=n(6), deleted=n(7), manifest_reads=n(8), skipped=n(9),
                   synced_at=F.sync_result_synced_at(p))


@dataclass(frozen=True)
class Quota:
    """Snapshot space limit and usage of a namespace (``vm`` None) or a VM."""
    namespace: str
    vm: Optional[str]
    #: limit in bytes, None when no limit is set
    limit: Optional[int]
    #: stored bytes of the distinct chunks of its Ready snapshots
    usage: int
    #: Ready snapshots counted (only known in :meth:`Context.quotas` lists)
    snapshots: Optional[int] = None


@dataclass(frozen=True)
class HistoryItem:
    """One firing a schedule ran or skipped."""
    entry: str
    planned_ms: int
    #: "InProgress", "Ready", "Error", "Skipped" or "Cancelled"
    state: str
    error_code: int
    error: str
    missed: int
    deleted: bool

    @property
    def planned(self) -> Optional[datetime.datetime]:
        return _ms_time(self.planned_ms)


BACKUP = "backup"
SNAPSHOT = "snapshot"
_SCHEDULE_TYPES = {0: BACKUP, 1: SNAPSHOT}
#: deadline_s value meaning "until the next firing"
DEADLINE_NEXT_FIRING = 0xFFFFFFFF


class Schedule:
    """A schedule as read from the state directory (a copy; :meth:`refresh`
    reads it again). Its methods act on the schedule through the context it
    was read from."""

    namespace: str
    name: str
    #: "backup" or "snapshot"
    type: str
    vm_namespace: str
    vm_name: str
    cron: str
    retain: int
    max_failure: int
    #: seconds a run may take; None: until the next firing
    deadline_s: Optional[int]
    skip_interval_check: bool
    suspended: bool
    suspend_reason: str
    consecutive_failures: int
    created_ms: int
    #: next firing, ms since the epoch; None when suspended
    next_run_ms: Optional[int]
    last_run_ms: int
    history: List[HistoryItem]
    json: str

    def __init__(self, ctx: "Context", p: Any) -> None:
        self._ctx = ctx
        self._load(p)

    def _load(self, p: Any) -> None:
        self.namespace = dec(F.schedule_namespace(p)) or ""
        self.name = dec(F.schedule_name(p)) or ""
        self.type = _SCHEDULE_TYPES.get(F.schedule_type_of(p), str(F.schedule_type_of(p)))
        self.vm_namespace = dec(F.schedule_vm_namespace(p)) or ""
        self.vm_name = dec(F.schedule_vm_name(p)) or ""
        self.cron = dec(F.schedule_cron(p)) or ""
        self.retain = F.schedule_retain(p)
        self.max_failure = F.schedule_max_failure(p)
        d = F.schedule_deadline(p)
        self.deadline_s = None if d == DEADLINE_NEXT_FIRING else d
        self.skip_interval_check = bool(F.schedule_skip_interval_check(p))
        self.suspended = bool(F.schedule_suspended(p))
        self.suspend_reason = dec(F.schedule_suspend_reason(p)) or ""
        self.consecutive_failures = F.schedule_consecutive_failures(p)
        self.created_ms = F.schedule_created(p)
        nr = F.schedule_next_run(p)
        self.next_run_ms = None if nr < 0 else nr
        self.last_run_ms = F.schedule_last_run(p)
        hist = []
        for i in range(F.schedule_history_count(p)):
            entry, err = c_char_p(), c_char_p()
            planned, state, code = c_int64(), c_int(), c_int()
            missed, deleted = c_uint(), c_int()
            check(F.schedule_history_at(p, i, byref(entry), byref(planned), byref(state),
                                        byref(code), byref(err), byref(missed),
                                        byref(deleted)))
            hist.append(HistoryItem(dec(entry.value) or "", planned.value,
                                    run_state_name(state.value), code.value,
                                    dec(err.value) or "", missed.value, bool(deleted.value)))
        self.history = hist
        s = c_void_p()
        check(F.schedule_to_json(p, byref(s)))
        self.json = take_string(s)

    def to_dict(self) -> Dict[str, Any]:
        return json.loads(self.json)

    @property
    def next_run(self) -> Optional[datetime.datetime]:
        return _ms_time(self.next_run_ms)

    def refresh(self) -> "Schedule":
        """Read the schedule again (NotFound when it was deleted)."""
        fresh = self._ctx.schedule(self.namespace, self.name)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k != "_ctx"})
        return self

    def suspend(self) -> None:
        self._ctx.suspend_schedule(self.namespace, self.name)
        self.refresh()

    def resume(self) -> None:
        self._ctx.resume_schedule(self.namespace, self.name)
        self.refresh()

    def delete(self) -> None:
        self._ctx.delete_schedule(self.namespace, self.name)

    def update(self, **settings: Any) -> "Schedule":
        """Change cron, retain, max_failure, deadline_s (see
        :meth:`Context.update_schedule`)."""
        self._ctx.update_schedule(self.namespace, self.name, **settings)
        return self.refresh()

    def __repr__(self) -> str:
        return (f"<harvbk.Schedule {self.namespace}/{self.name} {self.type} of "
                f"{self.vm_namespace}/{self.vm_name} cron={self.cron!r}"
                f"{' suspended' if self.suspended else ''}>")


@dataclass(frozen=True)
class ScheduleRun:
    """One run a schedule pass (:meth:`Context.run_due`) started."""
    namespace: str
    schedule: str
    #: the backup or snapshot it created ("" when skipped)
    entry: str
    planned_ms: int
    #: "InProgress", "Ready", "Error", "Skipped" or "Cancelled"
    state: str
    error_code: int
    message: str

    @property
    def error(self) -> Optional["HarvbkError"]:
        """The run's failure as an exception object (not raised), or None."""
        from .errors import error_from_code
        return error_from_code(self.error_code, self.message) if self.error_code else None


@dataclass(frozen=True)
class OpInfo:
    """An operation in progress on the state directory (any process)."""
    kind: str
    what: str
    pid: int
    started_ms: int


class MetadataRewrite:
    """The handle a metadata rewrite hook gets; valid only during the call.

    The hook returns the new document (bytes or str), or None to keep
    :attr:`input` (or what :meth:`default` or :meth:`set_output` set).
    """

    def __init__(self, rw: Any) -> None:
        self._rw = rw

    def _p(self) -> Any:
        if self._rw is None:
            raise ValueError("a MetadataRewrite is valid only during the hook")
        return self._rw

    @property
    def input(self) -> bytes:
        n = c_size_t()
        data = F.metadata_rewrite_input(self._p(), byref(n))
        return ctypes.string_at(data, n.value) if data and n.value else b""

    @property
    def source_namespace(self) -> str:
        return dec(F.metadata_rewrite_source_namespace(self._p())) or ""

    @property
    def source_vm(self) -> str:
        return dec(F.metadata_rewrite_source_vm(self._p())) or ""

    @property
    def namespace(self) -> str:
        """Namespace of the VM being created or replaced."""
        return dec(F.metadata_rewrite_namespace(self._p())) or ""

    @property
    def vm(self) -> str:
        """Name of the VM being created or replaced."""
        return dec(F.metadata_rewrite_vm(self._p())) or ""

    @property
    def keep_mac(self) -> bool:
        return bool(F.metadata_rewrite_keep_mac(self._p()))

    @property
    def replace(self) -> bool:
        return bool(F.metadata_rewrite_replace(self._p()))

    @property
    def volumes(self) -> List[Dict[str, Optional[str]]]:
        """Per volume: ``name``, ``claim`` (its new reference, None for a
        replace) and ``path`` (the file it is restored to, None for callbacks)."""
        p = self._p()
        return [{"name": dec(F.metadata_rewrite_volume_name(p, i)),
                 "claim": dec(F.metadata_rewrite_volume_claim(p, i)),
                 "path": dec(F.metadata_rewrite_volume_path(p, i))}
                for i in range(F.metadata_rewrite_volume_count(p))]

    def set_output(self, data: Union[bytes, str]) -> None:
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        check(F.metadata_rewrite_set_output(self._p(), data, len(data)))

    def default(self) -> None:
        """Apply the library's default rewrite (harvbk_metadata_rewrite_default)."""
        check(F.metadata_rewrite_default(self._p(), None))
