"""Python binding of libharvbk: VM backup, snapshot and restore.

Pure :mod:`ctypes` over the C library ``libharvbk.so.1`` (found through the
environment variable ``HARVBK_LIBRARY``, else the dynamic loader), standard
library only::

    import harvbk
    with harvbk.Context("/var/lib/harvbk") as ctx:
        ctx.set_target("file:///backups")
        vm = harvbk.VM("default", "web", disks={"root": "/images/web.raw"})
        ctx.backup(vm, "web-1").wait()
        ctx.restore("default", "web-1", new_vm="default/web-copy", into="/restore").wait()

Errors are exceptions under :class:`HarvbkError`, one class per
``HARVBK_E_*`` code (:class:`NotFound`, :class:`QuotaExceeded`, ...).
Encrypted stores take their key from a key file or passphrase file setting,
or from a :class:`Key` given for the session (``ctx.set_target_key(key)``);
keys are added and removed with ``ctx.store_key_add`` / ``store_key_remove``.
Long work returns an :class:`Operation`: ``wait()``, ``cancel()``,
``progress``. Callbacks are Python callables; an exception raised in one
stops the operation and comes out of its ``wait()``.
"""
from ._lib import version
from .context import Context, DeletionPolicy, LogLevel, Scheduler
from .errors import *  # noqa: F401,F403 - the exception classes
from .errors import ERRORS, HarvbkError, error_class, error_from_code, error_name, strerror
from .info import (BACKUP, ERROR, IN_PROGRESS, READY, SNAPSHOT, BackupInfo, BackupList,
                   GcResult, HistoryItem, MetadataRewrite, OpInfo, Progress, Quota, Schedule,
                   ScheduleRun, SyncResult, VolumeInfo)
from .key import Key, StoreKey, StoreKeys
from .operation import (BackupOperation, GcOperation, Operation, RestoreOperation,
                        SchedulePass, SnapshotOperation, VerifyOperation)
from .target import TargetConfig
from .vm import VM, Image, PowerState, Volume

__version__ = "1.1.0"

__all__ = [
    "version", "__version__",
    "Context", "TargetConfig", "Key", "StoreKey", "StoreKeys", "VM", "Image", "Volume", "PowerState", "DeletionPolicy",
    "LogLevel", "Scheduler",
    "Operation", "BackupOperation", "SnapshotOperation", "RestoreOperation",
    "VerifyOperation", "GcOperation", "SchedulePass",
    "BackupInfo", "BackupList", "VolumeInfo", "SyncResult", "Quota", "Schedule",
    "HistoryItem", "ScheduleRun", "OpInfo", "Progress", "GcResult", "MetadataRewrite",
    "IN_PROGRESS", "READY", "ERROR", "BACKUP", "SNAPSHOT",
    "HarvbkError", "ERRORS", "error_class", "error_from_code", "error_name", "strerror",
] + [cls.__name__ for cls in ERRORS.values()]
