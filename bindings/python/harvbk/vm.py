"""VM descriptions (:class:`VM`) and image descriptions (:class:`Image`)."""
from __future__ import annotations

import ctypes
import enum
import os
from ctypes import byref, c_size_t, c_void_p
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, NamedTuple,
                    Optional, Tuple, Union)

from ._lib import F, check, dec, enc

if TYPE_CHECKING:
    from ._callbacks import Sink

PathLike = Union[str, "os.PathLike[str]"]


class PowerState(enum.IntEnum):
    """Power state the embedding program reports for a VM (harvbk_power_state)."""
    UNKNOWN = 0
    ON = 1
    OFF = 2


def power_state(value: Union[PowerState, int, str, bool, None]) -> PowerState:
    """``PowerState`` from an enum value, an int, "on"/"off"/"unknown" or a bool."""
    if value is None:
        return PowerState.UNKNOWN
    if isinstance(value, bool):
        return PowerState.ON if value else PowerState.OFF
    if isinstance(value, str):
        try:
            return PowerState[value.upper()]
        except KeyError:
            raise ValueError(f"power state must be 'on', 'off' or 'unknown', not {value!r}") \
                from None
    return PowerState(value)


class Volume(NamedTuple):
    """A volume of a VM: a file (``path``) or served by callbacks (``size``,
    ``read``, ``write``)."""
    name: str
    path: Optional[str]
    size: Optional[int] = None
    read: Optional[Callable[[int, int], bytes]] = None
    write: Optional[Callable[[int, bytes], Any]] = None


class VM:
    """A VM description: namespace/name, volumes, metadata, images, power state.

    ``disks`` maps volume names to raw image files or block devices::

        vm = harvbk.VM("default", "web", disks={"root": "/images/web.raw"})

    Volumes served by Python callables instead of files are added with
    :meth:`add_volume`. Names are DNS-1123 labels (else
    :class:`harvbk.InvalidArgument`). A VM is a plain value: operations copy
    it when they start; do not change one VM from two threads at once.
    """

    def __init__(self, namespace: str, name: str,
                 disks: Optional[Mapping[str, PathLike]] = None, *,
                 metadata: Union[bytes, str, None] = None, images: Iterable[str] = (),
                 power_state: Union[PowerState, int, str, None] = None) -> None:
        ptr = c_void_p()
        check(F.vm_new(byref(ptr), enc(namespace), enc(name)))
        self._ptr: Optional[c_void_p] = ptr
        self._volumes: List[Volume] = []
        self._cb_sink: Optional["Sink"] = None
        for vol, path in (disks or {}).items():
            self.add_disk(vol, path)
        if metadata is not None:
            self.metadata = metadata  # type: ignore[assignment]
        for image in images:
            self.add_image(image)
        if power_state is not None:
            self.power_state = power_state  # type: ignore[assignment]

    @classmethod
    def _adopt(cls, ptr: c_void_p) -> "VM":
        """Wrap a harvbk_vm the caller owns (from the catalog)."""
        vm = cls.__new__(cls)
        vm._ptr = ptr
        vm._cb_sink = None
        vm._volumes = []
        for i in range(F.vm_volume_count(ptr)):
            vm._volumes.append(Volume(dec(F.vm_volume_name(ptr, i)) or "",
                                      dec(F.vm_volume_path(ptr, i))))
        return vm

    @classmethod
    def _copy_of(cls, ptr: Any) -> "VM":
        """A new VM equal to a borrowed harvbk_vm (file volumes only)."""
        vm = cls(dec(F.vm_namespace(ptr)) or "", dec(F.vm_name(ptr)) or "")
        for i in range(F.vm_volume_count(ptr)):
            path = dec(F.vm_volume_path(ptr, i))
            if path is not None:
                vm.add_disk(dec(F.vm_volume_name(ptr, i)) or "", path)
        n = c_size_t()
        data = F.vm_metadata(ptr, byref(n))
        if data and n.value:
            vm.metadata = ctypes.string_at(data, n.value)
        for i in range(F.vm_image_count(ptr)):
            vm.add_image(dec(F.vm_image(ptr, i)) or "")
        vm.power_state = F.vm_power_state(ptr)  # type: ignore[assignment]
        return vm

    def _p(self) -> c_void_p:
        if self._ptr is None:
            raise ValueError("operation on a closed VM")
        return self._ptr

    def close(self) -> None:
        """Free the C description now (also done when the object is collected)."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            F.vm_free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self) -> "VM":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- building
    def add_disk(self, volume: str, path: PathLike) -> "VM":
        """Add a volume whose bytes are in a raw image file or block device."""
        p = os.fspath(path)
        check(F.vm_add_volume_file(self._p(), enc(volume), enc(p)))
        self._volumes.append(Volume(volume, p))
        return self

    def add_volume(self, volume: str, size: int, *,
                   read: Optional[Callable[[int, int], bytes]] = None,
                   write: Optional[Callable[[int, bytes], Any]] = None) -> "VM":
        """Add a volume of ``size`` bytes served by Python callables.

        ``read(offset, length)`` returns exactly ``length`` bytes (used by
        backups and snapshots); ``write(offset, data)`` stores them (used
        when restoring into this VM with ``target_vm=``). They run on library
        worker threads, possibly concurrently for different offsets. An
        exception raised in one fails the operation and is re-raised by its
        ``wait()`` (a :class:`harvbk.HarvbkError` raised there also gives the
        operation its code, e.g. ``IOFailure``).
        """
        from ._callbacks import Sink
        if self._cb_sink is None:
            self._cb_sink = Sink(what="VM description")
        # the VM's own handle gets callbacks too (it validates the volume);
        # operations use a copy whose callbacks report to the operation
        check(F.vm_add_volume_callbacks(self._p(), enc(volume), size,
                                        self._cb_sink.volume_read(read, volume),
                                        self._cb_sink.volume_write(write, volume), None))
        self._volumes.append(Volume(volume, None, size, read, write))
        return self

    def add_image(self, image: str) -> "VM":
        """Add an image reference ("NS/NAME", or "NAME" in the VM's namespace)."""
        check(F.vm_add_image(self._p(), enc(image)))
        return self

    # ---- properties
    @property
    def namespace(self) -> str:
        return dec(F.vm_namespace(self._p())) or ""

    @property
    def name(self) -> str:
        return dec(F.vm_name(self._p())) or ""

    @property
    def volumes(self) -> List[Volume]:
        """The volumes, in the order they were added."""
        return list(self._volumes)

    @property
    def disks(self) -> Dict[str, Optional[str]]:
        """Volume name to file path (None for callback volumes)."""
        return {v.name: v.path for v in self._volumes}

    @property
    def metadata(self) -> bytes:
        """The opaque metadata document (e.g. the VM spec JSON); b"" when unset.
        Assign bytes or str (UTF-8)."""
        n = c_size_t()
        data = F.vm_metadata(self._p(), byref(n))
        return ctypes.string_at(data, n.value) if data and n.value else b""

    @metadata.setter
    def metadata(self, value: Union[bytes, str]) -> None:
        if isinstance(value, str):
            value = value.encode()
        value = bytes(value)
        check(F.vm_set_metadata(self._p(), value, len(value)))

    @property
    def images(self) -> List[str]:
        p = self._p()
        return [dec(F.vm_image(p, i)) or "" for i in range(F.vm_image_count(p))]

    @property
    def power_state(self) -> PowerState:
        return PowerState(F.vm_power_state(self._p()))

    @power_state.setter
    def power_state(self, value: Union[PowerState, int, str]) -> None:
        check(F.vm_set_power_state(self._p(), int(power_state(value))))

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<harvbk.VM closed>"
        return f"<harvbk.VM {self.namespace}/{self.name} volumes={list(self.disks)}>"

    # ---- for operations
    @property
    def has_callbacks(self) -> bool:
        return any(v.path is None for v in self._volumes)

    def _new_handle(self, sink: "Sink") -> c_void_p:
        """A new harvbk_vm equal to this one whose callbacks report to
        ``sink`` (which keeps them alive). The caller owns it."""
        src = self._p()
        ptr = c_void_p()
        check(F.vm_new(byref(ptr), F.vm_namespace(src), F.vm_name(src)))
        try:
            for v in self._volumes:
                if v.path is not None:
                    check(F.vm_add_volume_file(ptr, enc(v.name), enc(v.path)))
                else:
                    check(F.vm_add_volume_callbacks(ptr, enc(v.name), v.size,
                                                    sink.volume_read(v.read, v.name),
                                                    sink.volume_write(v.write, v.name), None))
            md = self.metadata
            if md:
                check(F.vm_set_metadata(ptr, md, len(md)))
            for image in self.images:
                check(F.vm_add_image(ptr, enc(image)))
            check(F.vm_set_power_state(ptr, F.vm_power_state(src)))
        except BaseException:
            F.vm_free(ptr)
            raise
        return ptr

    def _handle_for(self, sink: "Sink") -> Tuple[c_void_p, Optional[c_void_p]]:
        """(handle to pass to an operation, handle to free after the call)."""
        if not self.has_callbacks:
            return self._p(), None
        h = self._new_handle(sink)
        return h, h


class Image:
    """An image description NAMESPACE/NAME with an optional display name, URL
    and checksum (a Harvester VirtualMachineImage)."""

    def __init__(self, namespace: str, name: str, *, display_name: Optional[str] = None,
                 url: Optional[str] = None, checksum: Optional[str] = None) -> None:
        ptr = c_void_p()
        check(F.image_new(byref(ptr), enc(namespace), enc(name)))
        self._ptr: Optional[c_void_p] = ptr
        if display_name is not None:
            self.display_name = display_name  # type: ignore[assignment]
        if url is not None:
            self.url = url  # type: ignore[assignment]
        if checksum is not None:
            self.checksum = checksum  # type: ignore[assignment]

    @classmethod
    def _adopt(cls, ptr: c_void_p) -> "Image":
        img = cls.__new__(cls)
        img._ptr = ptr
        return img

    @classmethod
    def _copy_of(cls, ptr: Any) -> "Image":
        return cls(dec(F.image_namespace(ptr)) or "", dec(F.image_name(ptr)) or "",
                   display_name=dec(F.image_display_name(ptr)), url=dec(F.image_url(ptr)),
                   checksum=dec(F.image_checksum(ptr)))

    def _p(self) -> c_void_p:
        if self._ptr is None:
            raise ValueError("operation on a closed Image")
        return self._ptr

    def close(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            F.image_free(ptr)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def namespace(self) -> str:
        return dec(F.image_namespace(self._p())) or ""

    @property
    def name(self) -> str:
        return dec(F.image_name(self._p())) or ""

    @property
    def display_name(self) -> Optional[str]:
        return dec(F.image_display_name(self._p()))

    @display_name.setter
    def display_name(self, value: Optional[str]) -> None:
        check(F.image_set_display_name(self._p(), enc(value)))

    @property
    def url(self) -> Optional[str]:
        return dec(F.image_url(self._p()))

    @url.setter
    def url(self, value: Optional[str]) -> None:
        check(F.image_set_url(self._p(), enc(value)))

    @property
    def checksum(self) -> Optional[str]:
        return dec(F.image_checksum(self._p()))

    @checksum.setter
    def checksum(self, value: Optional[str]) -> None:
        check(F.image_set_checksum(self._p(), enc(value)))

    def __repr__(self) -> str:
        if self._ptr is None:
            return "<harvbk.Image closed>"
        return f"<harvbk.Image {self.namespace}/{self.name} display_name={self.display_name!r}>"
