"""Backup target settings (:class:`TargetConfig`)."""
from __future__ import annotations

import ctypes
from ctypes import byref, c_size_t, c_void_p
from typing import Any, Dict, Optional, Union

from ._lib import MISSING, F, check, enc
from .key import Key, key_ptr

#: keyword argument -> harvbk_target_key (include/harvbk/target.h)
KEYS: Dict[str, int] = {
    "url": 1,
    "endpoint": 2,
    "region": 3,
    "access_key_id": 4,
    "secret_access_key": 5,
    "ca_cert_file": 6,
    "virtual_hosted": 7,
    "refresh_interval": 8,
    "codec": 9,
    "chunk_size": 10,
    "timeout_ms": 11,
    "parallel": 12,
    "store_secret": 13,
    "read_only": 14,
    "encrypt": 15,           # an encrypted store (docs/FORMAT.md section 10)
    "key_file": 16,          # absolute path of its key file (mode 0600)
    "passphrase_file": 17,   # or of a passphrase file
}

Value = Union[str, int, bool, None]


def _value(v: Value) -> Optional[bytes]:
    if v is None:
        return None
    if isinstance(v, bool):
        return b"1" if v else b"0"
    if isinstance(v, int):
        return str(v).encode()
    return enc(str(v) if not isinstance(v, (str, bytes)) else v)


class TargetConfig:
    """Settings of a backup target: a URL and, for S3 or NFS, more keys.

    Keyword arguments are the settings, by name: ``url`` (``file:///p``,
    ``nfs://server/export/path``, ``s3://bucket/prefix``), ``endpoint``,
    ``region``, ``access_key_id``, ``secret_access_key`` (write-only),
    ``ca_cert_file``, ``virtual_hosted`` (bool), ``refresh_interval``
    (seconds), ``codec`` (``"zstd"``, ``"lz4"``, ``"gzip"``, ``"none"``),
    ``chunk_size`` (bytes), ``timeout_ms``, ``parallel``, ``store_secret``
    (bool), ``read_only`` (bool), ``encrypt`` (bool), ``key_file`` and
    ``passphrase_file`` (absolute paths: an encrypted store). Values are checked when set
    (:class:`harvbk.InvalidArgument`); the secret is wiped from memory when
    the configuration is freed and never read back.

    ``key`` (a :class:`harvbk.Key`) gives the encrypted store's key for this
    session only (:meth:`set_key`): it takes precedence over ``key_file``
    and ``passphrase_file``, is never written to the state directory and never
    read back (:attr:`has_key`).
    """

    def __init__(self, url: Optional[str] = None, *, key: Optional[Key] = None,
                 **settings: Value) -> None:
        ptr = c_void_p()
        check(F.target_config_new(byref(ptr)))
        self._ptr: Optional[c_void_p] = ptr
        if url is not None:
            self.set("url", url)
        for k, v in settings.items():
            self.set(k, v)
        if key is not None:
            self.set_key(key)

    @classmethod
    def _adopt(cls, ptr: c_void_p) -> "TargetConfig":
        cfg = cls.__new__(cls)
        cfg._ptr = ptr
        return cfg

    def _p(self) -> c_void_p:
        if self._ptr is None:
            raise ValueError("operation on a closed TargetConfig")
        return self._ptr

    def close(self) -> None:
        """Free the configuration now (wiping the secret)."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            F.target_config_free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "TargetConfig":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @staticmethod
    def _key(key: str) -> int:
        try:
            return KEYS[key]
        except KeyError:
            raise TypeError(f"unknown target setting {key!r} (known: {', '.join(KEYS)})") \
                from None

    def set(self, key: str, value: Value) -> "TargetConfig":
        """Set one setting (None clears it)."""
        check(F.target_config_set(self._p(), self._key(key), _value(value)))
        return self

    def get(self, key: str) -> str:
        """One setting as the library keeps it ("" when unset; the secret
        always reads "")."""
        k = self._key(key)
        n = c_size_t()
        buf = ctypes.create_string_buffer(256)
        check(F.target_config_get(self._p(), k, buf, len(buf), byref(n)))
        if n.value >= len(buf):
            buf = ctypes.create_string_buffer(n.value + 1)
            check(F.target_config_get(self._p(), k, buf, len(buf), byref(n)))
        return buf.value.decode("utf-8", "replace")

    def __getitem__(self, key: str) -> str:
        return self.get(key)

    def __setitem__(self, key: str, value: Value) -> None:
        self.set(key, value)

    @property
    def url(self) -> str:
        return self.get("url")

    @property
    def has_secret(self) -> bool:
        """True when a secret access key is set."""
        return bool(F.target_config_has_secret(self._p()))

    def set_key(self, key: Optional[Key]) -> "TargetConfig":
        """Give the configuration a key for this session (copied: the Key may
        be closed afterwards; None removes it). It implies ``encrypt`` and
        takes precedence over the key file and passphrase file settings;
        :meth:`harvbk.Context.set_target` uses it to create or open the store
        and the context keeps it in memory only."""
        check(F.target_config_set_key(self._p(), key_ptr(key)))
        return self

    @property
    def has_key(self) -> bool:
        """True when a session key is set (:meth:`set_key`). A configuration
        read back from a context (:attr:`harvbk.Context.target`) never has
        one."""
        return bool(F.target_config_has_key(self._p()))

    def as_dict(self) -> Dict[str, str]:
        """Every setting that is set, by name (never the secret)."""
        out = {}
        for k in KEYS:
            if k == "secret_access_key":
                continue
            v = self.get(k)
            if v != "":
                out[k] = v
        return out

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<harvbk.TargetConfig closed>"
        return (f"<harvbk.TargetConfig {self.as_dict()!r} "
                f"secret={'set' if self.has_secret else 'unset'} "
                f"key={'set' if self._has_key_safe() else 'unset'}>")

    def _has_key_safe(self) -> bool:
        return "harvbk_target_config_has_key" not in MISSING and self.has_key
