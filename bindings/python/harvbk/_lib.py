"""Loading ``libharvbk.so.1`` and the ctypes declarations of its C API.

Internal module: the rest of the package calls the C functions through
:data:`L`. The library is found through the environment variable
``HARVBK_LIBRARY`` (a path to the shared library), else by the dynamic
loader under its SONAME ``libharvbk.so.1`` (``LD_LIBRARY_PATH``, the
loader cache), else through :func:`ctypes.util.find_library`.

Every function is called through a plain :class:`ctypes.CDLL`, so the GIL is
released for the duration of each call and library threads may run Python
callbacks meanwhile.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int64, c_size_t,
                    c_uint, c_uint32, c_uint64, c_void_p)
from typing import Any, Callable, Optional

SONAME = "libharvbk.so.1"


def _load() -> ctypes.CDLL:
    path = os.environ.get("HARVBK_LIBRARY")
    tried = []
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(f"harvbk: cannot load HARVBK_LIBRARY={path!r}: {e}") from e
    try:
        return ctypes.CDLL(SONAME)
    except OSError as e:
        tried.append(f"{SONAME}: {e}")
    found = ctypes.util.find_library("harvbk")
    if found:
        try:
            return ctypes.CDLL(found)
        except OSError as e:
            tried.append(f"{found}: {e}")
    raise ImportError("harvbk: cannot load the C library (" + "; ".join(tried) +
                      "); install libharvbk or set HARVBK_LIBRARY to the path of "
                      "libharvbk.so.1")


L = _load()

# ---- callback types (include/harvbk/*.h)
LOG_CB: Any = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
PROGRESS_CB: Any = CFUNCTYPE(c_int, c_uint64, c_uint64, c_void_p)
FREEZE_CB: Any = CFUNCTYPE(c_int, c_char_p, c_char_p, c_void_p)
VOLUME_READ_CB: Any = CFUNCTYPE(c_int, c_void_p, c_size_t, c_uint64, c_void_p)
VOLUME_WRITE_CB: Any = CFUNCTYPE(c_int, c_void_p, c_size_t, c_uint64, c_void_p)
METADATA_REWRITE_CB: Any = CFUNCTYPE(c_int, c_void_p, c_void_p)
IMAGE_HOOK: Any = CFUNCTYPE(c_int, c_void_p, c_void_p)
VM_RESOLVE_CB: Any = CFUNCTYPE(c_int, POINTER(c_void_p), c_char_p, c_char_p, c_void_p)
# capture hook: (ns, vm, volume, path or NULL, char *out_path, size_t out_size, payload);
# out_path is a plain pointer (c_void_p): a c_char_p would arrive as a copy
CAPTURE_CB: Any = CFUNCTYPE(c_int, c_char_p, c_char_p, c_char_p, c_char_p, c_void_p, c_size_t,
                            c_void_p)
CAPTURE_RELEASE_CB: Any = CFUNCTYPE(c_int, c_char_p, c_char_p, c_char_p, c_char_p, c_void_p)

#: HARVBK_CAPTURE_PATH_MAX: the capture hook's path buffer, with the NUL
CAPTURE_PATH_MAX = 4096


# ---- options structures: the member layout of the version named in VERSION.
# Each is initialised with its harvbk_*_options_init(&s, VERSION), which
# writes exactly that version's bytes; members appended by later library
# versions are simply not passed (the library reads only the caller's version).
class CtxOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("log_cb", LOG_CB), ("log_payload", c_void_p),
                ("log_level", c_int), ("threads", c_uint)]


# version 2 of the backup, snapshot and schedule run options (since 1.1)
# appended the freeze window: capture_cb .. freeze_deadline_ms
_CAPTURE_FIELDS = [("capture_cb", CAPTURE_CB), ("release_cb", CAPTURE_RELEASE_CB),
                   ("capture_payload", c_void_p), ("freeze_deadline_ms", c_uint32)]


class BackupOptions(Structure):
    VERSION = 2
    _fields_ = [("version", c_uint), ("flags", c_uint), ("changed_ranges", c_void_p),
                ("progress_cb", PROGRESS_CB), ("progress_payload", c_void_p),
                ("freeze_cb", FREEZE_CB), ("thaw_cb", FREEZE_CB),
                ("freeze_payload", c_void_p)] + _CAPTURE_FIELDS


class OpOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("progress_cb", PROGRESS_CB), ("progress_payload", c_void_p)]


class SnapshotStoreOptions(Structure):
    # version 2 (since 1.1) appended flags, key_file, passphrase_file
    # (encryption at rest); version 1 is still passed when none is used, so a
    # 1.1 library built before encryption accepts it
    VERSION = 2
    _fields_ = [("version", c_uint), ("dir", c_char_p), ("chunk_size", c_uint32),
                ("codec", c_char_p), ("flags", c_uint), ("key_file", c_char_p),
                ("passphrase_file", c_char_p)]


class SnapshotOptions(Structure):
    VERSION = 2
    _fields_ = [("version", c_uint), ("flags", c_uint), ("progress_cb", PROGRESS_CB),
                ("progress_payload", c_void_p), ("freeze_cb", FREEZE_CB),
                ("thaw_cb", FREEZE_CB), ("freeze_payload", c_void_p)] + _CAPTURE_FIELDS


class RestoreOptions(Structure):
    VERSION = 2
    _fields_ = [("version", c_uint), ("flags", c_uint), ("new_vm_namespace", c_char_p),
                ("new_vm_name", c_char_p), ("target_dir", c_char_p), ("target_vm", c_void_p),
                ("progress_cb", PROGRESS_CB), ("progress_payload", c_void_p),
                ("deletion_policy", c_int), ("metadata_rewrite_cb", METADATA_REWRITE_CB),
                ("metadata_rewrite_payload", c_void_p)]


class ScheduleOptions(Structure):
    VERSION = 1
    _fields_ = [("version", c_uint), ("flags", c_uint), ("type", c_int),
                ("vm_namespace", c_char_p), ("vm_name", c_char_p), ("cron", c_char_p),
                ("retain", c_uint), ("max_failure", c_uint), ("deadline_s", c_uint32),
                ("now_ms", c_int64)]


class ScheduleRunOptions(Structure):
    VERSION = 2
    _fields_ = [("version", c_uint), ("max_parallel", c_uint), ("progress_cb", PROGRESS_CB),
                ("progress_payload", c_void_p), ("freeze_cb", FREEZE_CB),
                ("thaw_cb", FREEZE_CB), ("freeze_payload", c_void_p),
                ("resolve_cb", VM_RESOLVE_CB), ("resolve_payload", c_void_p)] + \
        _CAPTURE_FIELDS + [("flags", c_uint)]


P = c_void_p            # an opaque handle
PP = POINTER(c_void_p)  # an out handle
I, U, S, U64, I64 = c_int, c_uint, c_size_t, c_uint64, c_int64
STR = c_char_p          # const char * in, or a borrowed string out (copied to bytes)
PI, PU64, PI64, PS, PU = (POINTER(c_int), POINTER(c_uint64), POINTER(c_int64),
                          POINTER(c_size_t), POINTER(c_uint))
PSTR = POINTER(c_char_p)


def _ptr(t: Any) -> Any:
    return POINTER(t)


# name: (restype, argtypes)
_PROTOTYPES = {
    # common.h
    "harvbk_version": (STR, []),
    "harvbk_version_number": (U, []),
    "harvbk_strerror": (STR, [I]),
    "harvbk_error_name": (STR, [I]),
    "harvbk_error_last": (STR, []),
    "harvbk_error_last_copy": (S, [c_char_p, S]),
    "harvbk_error_last_code": (I, []),
    "harvbk_string_free": (None, [c_void_p]),
    # context.h
    "harvbk_ctx_options_init": (I, [_ptr(CtxOptions), U]),
    "harvbk_ctx_open": (I, [PP, STR, _ptr(CtxOptions)]),
    "harvbk_ctx_free": (None, [P]),
    "harvbk_ctx_set_log_hook": (I, [P, LOG_CB, c_void_p, I]),
    "harvbk_ctx_errmsg_copy": (S, [P, c_char_p, S]),
    "harvbk_ctx_id": (STR, [P]),
    "harvbk_ctx_ops_in_progress": (I, [P, PU]),
    # vm.h
    "harvbk_name_is_valid": (I, [STR]),
    "harvbk_vm_new": (I, [PP, STR, STR]),
    "harvbk_vm_free": (None, [P]),
    "harvbk_vm_add_volume_file": (I, [P, STR, STR]),
    "harvbk_vm_add_volume_callbacks": (I, [P, STR, U64, VOLUME_READ_CB, VOLUME_WRITE_CB,
                                           c_void_p]),
    "harvbk_vm_set_metadata": (I, [P, c_char_p, S]),
    "harvbk_vm_add_image": (I, [P, STR]),
    "harvbk_vm_set_power_state": (I, [P, I]),
    "harvbk_vm_namespace": (STR, [P]),
    "harvbk_vm_name": (STR, [P]),
    "harvbk_vm_volume_count": (S, [P]),
    "harvbk_vm_volume_name": (STR, [P, S]),
    "harvbk_vm_volume_path": (STR, [P, S]),
    "harvbk_vm_metadata": (c_void_p, [P, PS]),
    "harvbk_vm_image_count": (S, [P]),
    "harvbk_vm_image": (STR, [P, S]),
    "harvbk_vm_power_state": (I, [P]),
    "harvbk_vm_register": (I, [P, P]),
    "harvbk_vm_lookup": (I, [PP, P, STR, STR]),
    "harvbk_vm_unregister": (I, [P, STR, STR]),
    "harvbk_vm_set_registered_power_state": (I, [P, STR, STR, I]),
    "harvbk_vm_list_get": (I, [PP, P]),
    "harvbk_vm_list_count": (S, [P]),
    "harvbk_vm_list_at": (P, [P, S]),
    "harvbk_vm_list_free": (None, [P]),
    # target.h
    "harvbk_target_config_new": (I, [PP]),
    "harvbk_target_config_free": (None, [P]),
    "harvbk_target_config_set": (I, [P, I, STR]),
    "harvbk_target_config_get": (I, [P, I, c_char_p, S, PS]),
    "harvbk_target_config_has_secret": (I, [P]),
    "harvbk_ctx_set_target": (I, [P, P]),
    "harvbk_ctx_set_target_secret": (I, [P, STR]),
    "harvbk_ctx_get_target": (I, [P, PP]),
    "harvbk_ctx_check_target": (I, [P]),
    "harvbk_target_sync": (I, [P, PP]),
    "harvbk_sync_result_count": (U64, [P, I]),
    "harvbk_sync_result_synced_at": (I64, [P]),
    "harvbk_sync_result_free": (None, [P]),
    # operation.h
    "harvbk_state_name": (STR, [I]),
    "harvbk_op_wait": (I, [P]),
    "harvbk_op_wait_timeout": (I, [P, U64]),
    "harvbk_op_cancel": (I, [P]),
    "harvbk_op_state": (I, [P]),
    "harvbk_op_result": (I, [P]),
    "harvbk_op_progress": (I, [P, PU64, PU64]),
    "harvbk_op_errmsg_copy": (S, [P, c_char_p, S]),
    "harvbk_op_kind": (STR, [P]),
    "harvbk_op_free": (None, [P]),
    # backup.h
    "harvbk_ranges_new": (I, [PP]),
    "harvbk_ranges_add": (I, [P, STR, U64, U64]),
    "harvbk_ranges_free": (None, [P]),
    "harvbk_backup_options_init": (I, [_ptr(BackupOptions), U]),
    "harvbk_backup_create": (I, [PP, P, P, STR, _ptr(BackupOptions)]),
    "harvbk_backup_get": (I, [PP, P, STR, STR]),
    "harvbk_backup_info_free": (None, [P]),
    "harvbk_backup_info_to_json": (I, [P, POINTER(c_void_p)]),
    "harvbk_backup_list_get": (I, [PP, P]),
    "harvbk_backup_list_count": (S, [P]),
    "harvbk_backup_list_at": (P, [P, S]),
    "harvbk_backup_list_free": (None, [P]),
    "harvbk_backup_list_synced_at": (I64, [P]),
    "harvbk_backup_info_namespace": (STR, [P]),
    "harvbk_backup_info_name": (STR, [P]),
    "harvbk_backup_info_vm_name": (STR, [P]),
    "harvbk_backup_info_state": (I, [P]),
    "harvbk_backup_info_error": (STR, [P]),
    "harvbk_backup_info_logical_bytes": (U64, [P]),
    "harvbk_backup_info_uploaded_bytes": (U64, [P]),
    "harvbk_backup_info_progress_bytes": (U64, [P]),
    "harvbk_backup_info_created": (I64, [P]),
    "harvbk_backup_info_volume_count": (S, [P]),
    "harvbk_backup_info_volume_name": (STR, [P, S]),
    "harvbk_backup_info_volume_size": (U64, [P, S]),
    "harvbk_backup_info_crash_consistent": (I, [P]),
    "harvbk_backup_info_thaw_failed": (I, [P]),
    "harvbk_backup_info_frozen_ms": (I64, [P]),
    "harvbk_backup_info_capture": (STR, [P]),
    "harvbk_backup_info_volume_capture": (STR, [P, S]),
    "harvbk_backup_info_schedule": (STR, [P]),
    "harvbk_backup_info_catalog_flags": (U, [P]),
    "harvbk_backup_info_synced_at": (I64, [P]),
    "harvbk_backup_forget": (I, [P, STR, STR]),
    "harvbk_op_options_init": (I, [_ptr(OpOptions), U]),
    "harvbk_backup_verify": (I, [PP, P, STR, STR, _ptr(OpOptions)]),
    "harvbk_backup_delete": (I, [P, STR, STR]),
    "harvbk_backup_delete_ex": (I, [P, STR, STR, PI]),
    "harvbk_gc": (I, [PP, P, _ptr(OpOptions)]),
    "harvbk_gc_result": (I, [P, PU64, PU64]),
    # snapshot.h
    "harvbk_snapshot_store_options_init": (I, [_ptr(SnapshotStoreOptions), U]),
    "harvbk_snapshot_store_set": (I, [P, _ptr(SnapshotStoreOptions)]),
    "harvbk_snapshot_store_dir": (I, [P, c_char_p, S, PS]),
    "harvbk_snapshot_options_init": (I, [_ptr(SnapshotOptions), U]),
    "harvbk_snapshot_create": (I, [PP, P, P, STR, _ptr(SnapshotOptions)]),
    "harvbk_snapshot_get": (I, [PP, P, STR, STR]),
    "harvbk_snapshot_list_get": (I, [PP, P]),
    "harvbk_snapshot_verify": (I, [PP, P, STR, STR, _ptr(OpOptions)]),
    "harvbk_snapshot_delete": (I, [P, STR, STR]),
    "harvbk_snapshot_gc": (I, [PP, P, _ptr(OpOptions)]),
    # restore.h
    "harvbk_restore_options_init": (I, [_ptr(RestoreOptions), U]),
    "harvbk_restore_create": (I, [PP, P, STR, STR, _ptr(RestoreOptions)]),
    "harvbk_snapshot_restore": (I, [PP, P, STR, STR, _ptr(RestoreOptions)]),
    "harvbk_restore_retained_count": (S, [P]),
    "harvbk_restore_retained_path": (STR, [P, S]),
    "harvbk_metadata_rewrite_input": (c_void_p, [P, PS]),
    "harvbk_metadata_rewrite_source_namespace": (STR, [P]),
    "harvbk_metadata_rewrite_source_vm": (STR, [P]),
    "harvbk_metadata_rewrite_namespace": (STR, [P]),
    "harvbk_metadata_rewrite_vm": (STR, [P]),
    "harvbk_metadata_rewrite_keep_mac": (I, [P]),
    "harvbk_metadata_rewrite_replace": (I, [P]),
    "harvbk_metadata_rewrite_volume_count": (S, [P]),
    "harvbk_metadata_rewrite_volume_name": (STR, [P, S]),
    "harvbk_metadata_rewrite_volume_claim": (STR, [P, S]),
    "harvbk_metadata_rewrite_volume_path": (STR, [P, S]),
    "harvbk_metadata_rewrite_set_output": (I, [P, c_char_p, S]),
    "harvbk_metadata_rewrite_default": (I, [P, c_void_p]),
    # quota.h
    "harvbk_quota_set": (I, [P, STR, STR, U64]),
    "harvbk_quota_clear": (I, [P, STR, STR]),
    "harvbk_quota_get": (I, [P, STR, STR, PI, PU64, PU64]),
    "harvbk_quota_list_get": (I, [PP, P]),
    "harvbk_quota_list_count": (S, [P]),
    "harvbk_quota_list_namespace": (STR, [P, S]),
    "harvbk_quota_list_vm": (STR, [P, S]),
    "harvbk_quota_list_has_limit": (I, [P, S]),
    "harvbk_quota_list_limit": (U64, [P, S]),
    "harvbk_quota_list_usage": (U64, [P, S]),
    "harvbk_quota_list_snapshots": (S, [P, S]),
    "harvbk_quota_list_free": (None, [P]),
    # schedule.h
    "harvbk_schedule_options_init": (I, [_ptr(ScheduleOptions), U]),
    "harvbk_schedule_create": (I, [P, STR, STR, _ptr(ScheduleOptions)]),
    "harvbk_schedule_update": (I, [P, STR, STR, _ptr(ScheduleOptions)]),
    "harvbk_schedule_delete": (I, [P, STR, STR]),
    "harvbk_schedule_suspend": (I, [P, STR, STR]),
    "harvbk_schedule_resume": (I, [P, STR, STR]),
    "harvbk_schedule_run_state_name": (STR, [I]),
    "harvbk_schedule_get": (I, [PP, P, STR, STR]),
    "harvbk_schedule_free": (None, [P]),
    "harvbk_schedule_to_json": (I, [P, POINTER(c_void_p)]),
    "harvbk_schedule_namespace": (STR, [P]),
    "harvbk_schedule_name": (STR, [P]),
    "harvbk_schedule_type_of": (I, [P]),
    "harvbk_schedule_vm_namespace": (STR, [P]),
    "harvbk_schedule_vm_name": (STR, [P]),
    "harvbk_schedule_cron": (STR, [P]),
    "harvbk_schedule_retain": (U, [P]),
    "harvbk_schedule_max_failure": (U, [P]),
    "harvbk_schedule_deadline": (c_uint32, [P]),
    "harvbk_schedule_skip_interval_check": (I, [P]),
    "harvbk_schedule_suspended": (I, [P]),
    "harvbk_schedule_suspend_reason": (STR, [P]),
    "harvbk_schedule_consecutive_failures": (U, [P]),
    "harvbk_schedule_created": (I64, [P]),
    "harvbk_schedule_next_run": (I64, [P]),
    "harvbk_schedule_last_run": (I64, [P]),
    "harvbk_schedule_history_count": (S, [P]),
    "harvbk_schedule_history_at": (I, [P, S, PSTR, PI64, PI, PI, PSTR, PU, PI]),
    "harvbk_schedule_list_get": (I, [PP, P]),
    "harvbk_schedule_list_count": (S, [P]),
    "harvbk_schedule_list_at": (P, [P, S]),
    "harvbk_schedule_list_free": (None, [P]),
    "harvbk_schedule_run_options_init": (I, [_ptr(ScheduleRunOptions), U]),
    "harvbk_schedule_run_due": (I, [PP, P, I64, _ptr(ScheduleRunOptions)]),
    "harvbk_schedule_run_count": (S, [P]),
    "harvbk_schedule_run_at": (I, [P, S, PSTR, PSTR, PSTR, PI64, PI, PI, PSTR]),
    "harvbk_schedule_next_due": (I, [P, I64, PI64]),
    "harvbk_scheduler_start": (I, [PP, P, _ptr(ScheduleRunOptions)]),
    "harvbk_scheduler_stop": (None, [P]),
    # maintenance.h
    "harvbk_op_list_get": (I, [PP, P]),
    "harvbk_op_list_count": (S, [P]),
    "harvbk_op_list_at": (I, [P, S, PSTR, PSTR, PI64, PI64]),
    "harvbk_op_list_free": (None, [P]),
    "harvbk_maintenance_enter": (I, [P, c_uint32]),
    "harvbk_maintenance_exit": (I, [P]),
    "harvbk_maintenance_status": (I, [P, PI, PI64]),
    # image.h
    "harvbk_image_new": (I, [PP, STR, STR]),
    "harvbk_image_free": (None, [P]),
    "harvbk_image_set_display_name": (I, [P, STR]),
    "harvbk_image_set_url": (I, [P, STR]),
    "harvbk_image_set_checksum": (I, [P, STR]),
    "harvbk_image_namespace": (STR, [P]),
    "harvbk_image_name": (STR, [P]),
    "harvbk_image_display_name": (STR, [P]),
    "harvbk_image_url": (STR, [P]),
    "harvbk_image_checksum": (STR, [P]),
    "harvbk_image_register": (I, [P, P]),
    "harvbk_image_lookup": (I, [PP, P, STR, STR]),
    "harvbk_image_unregister": (I, [P, STR, STR]),
    "harvbk_image_list_get": (I, [PP, P]),
    "harvbk_image_list_count": (S, [P]),
    "harvbk_image_list_at": (P, [P, S]),
    "harvbk_image_list_free": (None, [P]),
    "harvbk_ctx_set_image_hook": (I, [P, IMAGE_HOOK, c_void_p]),
    # key.h (encryption at rest)
    "harvbk_key_from_file": (I, [PP, STR]),
    "harvbk_key_from_passphrase_file": (I, [PP, STR]),
    "harvbk_key_from_bytes": (I, [PP, c_void_p, S]),
    "harvbk_key_from_passphrase": (I, [PP, STR]),
    "harvbk_key_free": (None, [P]),
    "harvbk_target_config_set_key": (I, [P, P]),
    "harvbk_target_config_has_key": (I, [P]),
    "harvbk_ctx_set_target_key": (I, [P, P]),
    "harvbk_snapshot_store_set_key": (I, [P, P]),
    "harvbk_store_key_add": (I, [P, I, P, c_char_p, S]),
    "harvbk_store_key_remove": (I, [P, I, STR]),
    "harvbk_store_keys_get": (I, [P, I, PP]),
    "harvbk_store_keys_encrypted": (I, [P]),
    "harvbk_store_keys_fingerprint": (STR, [P]),
    "harvbk_store_keys_unlocked": (I, [P]),
    "harvbk_store_keys_count": (S, [P]),
    "harvbk_store_keys_id": (STR, [P, S]),
    "harvbk_store_keys_kind": (STR, [P, S]),
    "harvbk_store_keys_created": (I64, [P, S]),
    "harvbk_store_keys_in_use": (I, [P, S]),
    "harvbk_store_keys_free": (None, [P]),
}


class _Missing:
    """Stands in for a function the loaded library does not export (an older
    1.x): calling it raises harvbk.Unsupported."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        from .errors import Unsupported
        raise Unsupported(f"{self.name} is not in the loaded libharvbk "
                               f"{version()} (a newer 1.x is needed)")


class _Functions:
    """The C functions, as attributes named like in C without the prefix."""


F: Any = _Functions()
MISSING = []
for _name, (_res, _args) in _PROTOTYPES.items():
    try:
        _fn = getattr(L, _name)
    except AttributeError:
        setattr(F, _name[len("harvbk_"):], _Missing(_name))
        MISSING.append(_name)
        continue
    _fn.restype = _res
    _fn.argtypes = _args
    setattr(F, _name[len("harvbk_"):], _fn)

# 1.1 symbols the binding cannot do without. The freeze window's accessors
# stand for the version-2 backup, snapshot and schedule run options passed
# to every backup, snapshot and schedule pass: both came with the freeze
# window, so a library exporting them accepts those options (an earlier 1.1
# development build would refuse them with HARVBK_E_VERSION).
for _needed in ("harvbk_error_last_copy", "harvbk_op_wait_timeout",
                "harvbk_backup_info_frozen_ms"):
    if _needed in MISSING:
        raise ImportError(f"harvbk: the loaded libharvbk {L.harvbk_version()} lacks "
                          f"{_needed}; this binding needs libharvbk 1.1 or later")


def version() -> str:
    """Version string of the loaded library, e.g. ``"1.1.0"``."""
    return F.version().decode()


# ---- strings

def enc(s: Optional[str]) -> Optional[bytes]:
    """A str argument as a C string (UTF-8); None stays NULL."""
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        s = os.fspath(s)
        if isinstance(s, bytes):
            return s
    if "\0" in s:
        raise ValueError(f"string contains a NUL character: {s!r}")
    return s.encode()


def dec(b: Optional[bytes]) -> Optional[str]:
    """A borrowed C string (already copied by ctypes) as str; NULL stays None."""
    if b is None:
        return None
    return b.decode("utf-8", "surrogateescape")


def take_string(p: c_void_p) -> str:
    """An owned C string (char ** out parameter): copy it and free it."""
    if not p.value:
        return ""
    try:
        return ctypes.string_at(p.value).decode("utf-8", "surrogateescape")
    finally:
        F.string_free(p)


# ---- errors: read the per-thread last error on the calling thread, right
# after the failing call

_tls = threading.local()


def last_error_message() -> str:
    buf = getattr(_tls, "buf", None)
    if buf is None:
        buf = _tls.buf = ctypes.create_string_buffer(1024)
    n = F.error_last_copy(buf, len(buf))
    if n >= len(buf):
        buf = _tls.buf = ctypes.create_string_buffer(n + 1)
        F.error_last_copy(buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def check(rc: int) -> int:
    """Raise the HarvbkError of a failed call (rc < 0) with the calling
    thread's last error message; return rc otherwise."""
    if rc < 0 or rc > 0:
        from .errors import error_from_code
        raise error_from_code(rc, last_error_message())
    return rc


def copy_text(fn: Callable[..., int], *args: Any) -> str:
    """Call a ``size_t fn(..., char *buf, size_t size)`` copy function."""
    buf = ctypes.create_string_buffer(512)
    n = fn(*args, buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        fn(*args, buf, len(buf))
    return buf.value.decode("utf-8", "replace")


def options(cls: Any, init: Callable[..., int], version: Optional[int] = None) -> Any:
    """A zeroed options structure initialised by the library for cls.VERSION
    (or an earlier ``version`` whose members are a prefix of cls's)."""
    o = cls()
    check(init(ctypes.byref(o), cls.VERSION if version is None else version))
    return o
