"""Exceptions: one class per ``HARVBK_E_*`` code, all under :class:`HarvbkError`.

Every failing library call raises the class of its code, carrying the code
(:attr:`HarvbkError.code`), its symbolic name (:attr:`HarvbkError.name`, e.g.
``"HARVBK_E_NOTFOUND"``) and the detailed message the library recorded for
the calling thread (``harvbk_error_last``) or for the operation
(``harvbk_op_errmsg_copy``). A code this binding does not know yet (a newer
library) raises :class:`HarvbkError` itself with that code.

Some classes also derive from the matching built-in exception, so generic
handlers work: :class:`InvalidArgument` is a :class:`ValueError`,
:class:`NotFound` a :class:`LookupError`, :class:`OutOfMemory` a
:class:`MemoryError`, :class:`TimedOut` a :class:`TimeoutError` and
:class:`PermissionDenied` a :class:`PermissionError`.
"""
from __future__ import annotations

from typing import Dict, Optional, Type


class HarvbkError(Exception):
    """A libharvbk call or operation failed.

    Attributes:
        code: the negative ``HARVBK_E_*`` code.
        name: its symbolic name, e.g. ``"HARVBK_E_NOTFOUND"``.
        message: the library's detailed message (may be empty).
    """

    #: The HARVBK_E_* code of the class (None for HarvbkError itself).
    CODE: Optional[int] = None

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        if code is None:
            code = self.CODE if self.CODE is not None else -1
        self.code: int = code
        self.message: str = message
        super().__init__(message or strerror(code))

    @property
    def name(self) -> str:
        """Symbolic name of the code, e.g. ``"HARVBK_E_NOTFOUND"``."""
        return error_name(self.code)

    def __reduce__(self):  # picklable across processes
        return (error_from_code, (self.code, self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code})"


def _strings():
    from . import _lib
    return _lib


def strerror(code: int) -> str:
    """The library's static message for a code (``harvbk_strerror``)."""
    return _strings().dec(_strings().F.strerror(code)) or "unknown error"


def error_name(code: int) -> str:
    """The library's symbolic name for a code (``harvbk_error_name``)."""
    return _strings().dec(_strings().F.error_name(code)) or "HARVBK_E_UNKNOWN"


_BY_CODE: Dict[int, Type[HarvbkError]] = {}


def _code(code: int):
    def deco(cls):
        cls.CODE = code
        _BY_CODE[code] = cls
        return cls
    return deco


@_code(-1)
class UnspecifiedError(HarvbkError):
    """HARVBK_E_ERROR: unspecified error."""


@_code(-2)
class OutOfMemory(HarvbkError, MemoryError):
    """HARVBK_E_NOMEM: out of memory."""


@_code(-3)
class InvalidArgument(HarvbkError, ValueError):
    """HARVBK_E_INVALID: invalid argument (a bad name, path, setting...)."""


@_code(-4)
class VersionNotSupported(HarvbkError):
    """HARVBK_E_VERSION: options structure version not supported."""


@_code(-5)
class NotFound(HarvbkError, LookupError):
    """HARVBK_E_NOTFOUND: no such backup, snapshot, VM, schedule, image..."""


@_code(-6)
class AlreadyExists(HarvbkError):
    """HARVBK_E_EXISTS: already exists."""


@_code(-7)
class IOFailure(HarvbkError):
    """HARVBK_E_IO: input/output error."""


@_code(-8)
class ChunkCorrupt(HarvbkError):
    """HARVBK_E_CHUNK: a chunk is missing or corrupt."""


@_code(-9)
class MetadataCorrupt(HarvbkError):
    """HARVBK_E_CORRUPT: metadata corrupt or malformed."""


@_code(-10)
class FormatNotSupported(HarvbkError):
    """HARVBK_E_FORMAT: store format version not supported."""


@_code(-11)
class Cancelled(HarvbkError):
    """HARVBK_E_CANCELLED: the operation was cancelled."""


@_code(-12)
class FreezeFailed(HarvbkError):
    """HARVBK_E_FREEZE: failed to freeze the VM's filesystems."""


@_code(-13)
class TargetUnreachable(HarvbkError):
    """HARVBK_E_TARGET: backup target unreachable or failed."""


@_code(-14)
class Unsupported(HarvbkError):
    """HARVBK_E_UNSUPPORTED: not supported (also: a function the loaded
    library is too old for)."""


@_code(-15)
class Busy(HarvbkError):
    """HARVBK_E_BUSY: resource busy."""


@_code(-16)
class WrongState(HarvbkError):
    """HARVBK_E_STATE: object in the wrong state for this call (e.g. restoring
    a backup that is not Ready)."""


@_code(-17)
class TimedOut(HarvbkError, TimeoutError):
    """HARVBK_E_TIMEOUT: timed out."""


@_code(-18)
class PermissionDenied(HarvbkError, PermissionError):
    """HARVBK_E_PERM: permission denied."""


@_code(-19)
class NoTarget(HarvbkError):
    """HARVBK_E_NOTARGET: no backup target configured."""


@_code(-20)
class Interrupted(HarvbkError):
    """HARVBK_E_INTERRUPTED: the operation was interrupted (its process died)."""


@_code(-21)
class QuotaExceeded(HarvbkError):
    """HARVBK_E_QUOTA: snapshot space quota exceeded."""


@_code(-22)
class VMRunning(HarvbkError):
    """HARVBK_E_VM_RUNNING: the VM is not powered off."""


@_code(-23)
class CrossNamespace(HarvbkError):
    """HARVBK_E_CROSS_NAMESPACE: a snapshot cannot be restored into another
    namespace."""


@_code(-24)
class DeletionPolicyNotAllowed(HarvbkError):
    """HARVBK_E_DELETION_POLICY: deletion policy not allowed for this restore."""


@_code(-25)
class KeepMacNotAllowed(HarvbkError):
    """HARVBK_E_KEEP_MAC: MAC addresses cannot be kept while the source VM
    exists."""


@_code(-26)
class InvalidCron(HarvbkError):
    """HARVBK_E_CRON: cron expression invalid or never fires."""


@_code(-27)
class IntervalTooShort(HarvbkError):
    """HARVBK_E_INTERVAL: the schedule fires more often than once an hour."""


@_code(-28)
class ScheduleConflict(HarvbkError):
    """HARVBK_E_SCHEDULE_CONFLICT: the schedule fires too close to another."""


@_code(-29)
class RetainOutOfRange(HarvbkError):
    """HARVBK_E_RETAIN: retain count out of range."""


@_code(-30)
class MaxFailureOutOfRange(HarvbkError):
    """HARVBK_E_MAX_FAILURE: max failure out of range."""


@_code(-31)
class VMScheduled(HarvbkError):
    """HARVBK_E_VM_SCHEDULED: the VM already has a schedule."""


@_code(-32)
class InMaintenance(HarvbkError):
    """HARVBK_E_MAINTENANCE: the state directory is in maintenance mode."""


@_code(-33)
class ReadOnlyTarget(HarvbkError):
    """HARVBK_E_READ_ONLY: the backup target is read-only."""


@_code(-34)
class ImageMissing(HarvbkError):
    """HARVBK_E_IMAGE: a VM image is missing and cannot be recreated."""


@_code(-35)
class CallbackFailed(HarvbkError):
    """HARVBK_E_CALLBACK: a callback reported failure."""


@_code(-36)
class WrongKey(HarvbkError):
    """HARVBK_E_KEY: the encryption key is missing or wrong (an encrypted store)."""


#: Every exception class by its code.
ERRORS: Dict[int, Type[HarvbkError]] = dict(_BY_CODE)


def error_class(code: int) -> Type[HarvbkError]:
    """The exception class of a ``HARVBK_E_*`` code (HarvbkError when unknown)."""
    return _BY_CODE.get(code, HarvbkError)


def error_from_code(code: int, message: str = "") -> HarvbkError:
    """A new exception for ``code`` with ``message``."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return HarvbkError(message, code)
    return cls(message)


__all__ = ["HarvbkError", "ERRORS", "error_class", "error_from_code", "error_name",
           "strerror"] + [cls.__name__ for cls in ERRORS.values()]
