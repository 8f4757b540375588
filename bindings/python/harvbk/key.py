"""Keys of encrypted stores (:class:`Key`, :class:`StoreKeys`; harvbk/key.h).

A backup target's store, and the context's snapshot store, can be encrypted
at rest. The store key is kept in the store's config, wrapped by each of up
to 32 user keys (key files or passphrases); any one of them opens the store,
and keys are added and removed without touching a chunk.

A :class:`Key` holds a user key in the library's locked memory and wipes it
when closed (``harvbk_key_free``); give it to
:meth:`harvbk.Context.set_target_key`, :meth:`harvbk.TargetConfig.set_key`,
:meth:`harvbk.Context.set_snapshot_store` (``key=``) or
:meth:`harvbk.Context.store_key_add`. The library copies it: the Key may be
closed right after. It is never written to the state directory.
"""
from __future__ import annotations

import ctypes
import datetime
import os
from ctypes import byref, c_void_p
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Union

from ._lib import F, check, dec, enc

PathLike = Union[str, "os.PathLike[str]"]

#: harvbk_store_kind
STORE_TARGET = 1
STORE_SNAPSHOTS = 2


class Key:
    """A user key of an encrypted store: a key file's bytes or a passphrase.

    Made with one of the class methods, never directly::

        with harvbk.Key.from_file("/etc/harvbk/store.key") as key:
            ctx.set_target_key(key)

    :meth:`close` (or leaving the ``with`` block) wipes and frees it; a
    closed key raises ValueError when used. The key material is never
    readable from Python and never appears in ``repr()``.
    """

    _ptr: Optional[c_void_p]
    _kind: str

    def __init__(self) -> None:
        raise TypeError("make a Key with Key.from_file(), from_passphrase(), "
                        "from_passphrase_file() or from_bytes()")

    @classmethod
    def _adopt(cls, ptr: c_void_p, kind: str) -> "Key":
        k = cls.__new__(cls)
        k._ptr = ptr
        k._kind = kind
        return k

    @classmethod
    def from_file(cls, path: PathLike) -> "Key":
        """The key of a key file: its bytes as they are (32..4096). The file
        must be a regular file neither group nor others may access, else
        :class:`harvbk.PermissionDenied` (a PermissionError; the message says
        ``chmod 600``). Also :class:`harvbk.InvalidArgument`,
        :class:`harvbk.NotFound`, :class:`harvbk.IOFailure`."""
        out = c_void_p()
        check(F.key_from_file(byref(out), enc(os.fspath(path))))
        return cls._adopt(out, "key-file")

    @classmethod
    def from_passphrase_file(cls, path: PathLike) -> "Key":
        """A passphrase: the first line of a file (without its line end);
        the same file rules as :meth:`from_file`."""
        out = c_void_p()
        check(F.key_from_passphrase_file(byref(out), enc(os.fspath(path))))
        return cls._adopt(out, "passphrase")

    @classmethod
    def from_passphrase(cls, passphrase: Union[str, bytes]) -> "Key":
        """A passphrase (1..1024 bytes; a str is taken as UTF-8; no NUL)."""
        if isinstance(passphrase, (bytes, bytearray)):
            pw: Optional[bytes] = bytes(passphrase)
            if b"\0" in passphrase:
                raise ValueError("a passphrase cannot contain a NUL byte")
        else:
            pw = enc(passphrase)
        out = c_void_p()
        check(F.key_from_passphrase(byref(out), pw))
        return cls._adopt(out, "passphrase")

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview]) -> "Key":
        """A key from bytes in memory, like a key file's content (32..4096
        bytes). The library keeps a copy; a bytearray is passed without any
        copy on the Python side, so the caller can wipe it afterwards."""
        out = c_void_p()
        if isinstance(data, bytearray) and len(data):
            buf: Any = (ctypes.c_char * len(data)).from_buffer(data)
            check(F.key_from_bytes(byref(out), buf, len(data)))
        else:
            b = bytes(data)
            check(F.key_from_bytes(byref(out), b, len(b)))
        return cls._adopt(out, "key-file")

    def _p(self) -> c_void_p:
        p = self._ptr
        if p is None:
            raise ValueError("use of a closed harvbk.Key")
        return p

    @property
    def kind(self) -> str:
        """"key-file" (from a file or bytes) or "passphrase"."""
        return self._kind

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def close(self) -> None:
        """Wipe and free the key now. Calling it twice is fine."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            F.key_free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "Key":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError("a harvbk.Key cannot be pickled")

    def __repr__(self) -> str:
        return f"<harvbk.Key {self._kind}{' closed' if self.closed else ''}>"


def key_ptr(key: Optional[Key]) -> Optional[c_void_p]:
    """The handle of a Key argument (None stays NULL)."""
    if key is None:
        return None
    if not isinstance(key, Key):
        raise TypeError(f"expected a harvbk.Key or None, not {type(key).__name__}")
    return key._p()


@dataclass(frozen=True)
class StoreKey:
    """One key slot of an encrypted store (:attr:`StoreKeys.keys`)."""
    #: 16 hex digits: what :meth:`harvbk.Context.store_key_remove` takes
    id: str
    #: "key-file", "passphrase", or "unknown" (a derivation of a newer library)
    kind: str
    #: when it was added, seconds since the epoch (0: unknown)
    created: int
    #: True when it is the slot the context's key opens
    in_use: bool

    @property
    def created_at(self) -> Optional[datetime.datetime]:
        """:attr:`created` as an aware UTC datetime (None when unknown)."""
        if self.created <= 0:
            return None
        return datetime.datetime.fromtimestamp(self.created, tz=datetime.timezone.utc)


@dataclass(frozen=True)
class StoreKeys:
    """What a store's config says about its encryption
    (:meth:`harvbk.Context.store_keys`); iterating gives the key slots."""
    #: True when the store is encrypted
    encrypted: bool
    #: the store key's fingerprint, 32 hex digits ("" for a plaintext store):
    #: the same whichever user key opens it (``harvbk target show`` prints it)
    fingerprint: str
    #: True when the context's key opens the store
    unlocked: bool
    keys: List[StoreKey]

    def __iter__(self) -> Iterator[StoreKey]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def in_use(self) -> Optional[StoreKey]:
        """The slot the context's key opens (None when it opens none)."""
        for k in self.keys:
            if k.in_use:
                return k
        return None

    @classmethod
    def _copy_of(cls, p: Any) -> "StoreKeys":
        keys = [StoreKey(id=dec(F.store_keys_id(p, i)) or "",
                         kind=dec(F.store_keys_kind(p, i)) or "",
                         created=int(F.store_keys_created(p, i)),
                         in_use=F.store_keys_in_use(p, i) == 1)
                for i in range(F.store_keys_count(p))]
        return cls(encrypted=F.store_keys_encrypted(p) == 1,
                   fingerprint=dec(F.store_keys_fingerprint(p)) or "",
                   unlocked=F.store_keys_unlocked(p) == 1, keys=keys)


__all__ = ["Key", "StoreKey", "StoreKeys"]
