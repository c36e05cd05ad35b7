"""DFU mode: the bootloader's USB DFU target and the memories it exposes.

How this works
--------------
``System.dfu()`` (control request DFU_MODE 50, the cloud's ``spark/device/reset`` ``dfu``, the
USB serial port opened at 14400 baud) resets the device into its bootloader, which enumerates
as a DFU 1.1 device with the DfuSe extensions (``bootloader/src/rtl872x/usbd_dfu.cpp`` in
Device OS) on the platform's DFU product id (P2 0xD020, Photon 0xD006, ...). Each alternate
setting of its interface is a memory (``usbd_dfu_mal.h``):

* alt 0 ``@Internal Flash   /0x08000000/2048*004Kg`` (P2): the firmware flash. fwsim keeps
  what a host writes (erased bytes read 0xFF) but does not run firmware from it. The pages a
  host wrote or erased are remembered until the next boot, which reads the module slots they
  touched (``hal/modules.py``, ``InstalledModules.read_slots``): ``particle flash --local
  app.bin`` then shows the new user part in the module list;
* alt 1 ``@DCT Flash   /0x00000000/1*016Ke``: the DCT, read and written through
  ``dct_read_app_data_copy`` / ``dct_write_app_data`` - so a download of the claim code at
  offset 1762 (the community's ``dfu-util -d 2b04:d006 -a 1 -s 1762:64``) writes it exactly as
  ``HAL_Set_Claim_Code`` would, except that the host chooses the bytes. Addresses from 0 to
  16 KiB validate; past the DCT's 8391 bytes the DCT write fails.

:class:`DeviceDfu` is one device's DFU target. The USB transport finds it by device name in
``world.shared["dfu-targets"]`` (the transport never imports the system layer) and listens for
:meth:`on_change`; it enumerates the DFU descriptors while :attr:`active`. Leaving DFU - the
DfuSe "leave" (a zero-length download, then GETSTATUS through manifestation) or a reset - boots
Device OS with the reset reason ``dfu_mode``.

UNVERIFIED choice (docs/usb.md): the persisted cloud session does not survive DFU mode (the
bootloader and a reset into it do not keep Device OS's retained RAM), so the boot after DFU
does a full handshake - consistent with the forum thread, where a claim code set by DFU was
sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..hal.dct import DCT_SIZE, Dct
from ..kernel.errors import UsageError
from ..kernel.world import World

#: ``world.shared`` key: device name -> :class:`DeviceDfu`
DFU_TARGETS = "dfu-targets"

INTERNAL_FLASH_START = 0x08000000
INTERNAL_FLASH_END = 0x08800000
DCT_AREA_END = 0x4000


class DfuMemory(Protocol):
    """One alternate setting: what ``DfuMal`` offers (0 is success for write and erase)."""

    @property
    def name(self) -> str: ...

    def read(self, address: int, size: int) -> bytes | None: ...

    def write(self, address: int, data: bytes) -> int: ...

    def erase(self, address: int) -> int: ...


@dataclass
class InternalFlash:
    """Alt 0: sparse flash memory, 4 KiB pages, erased bytes 0xFF."""

    name: str = "@Internal Flash   /0x08000000/2048*004Kg"
    protected_name: str = "@Internal Flash   /0x08000000/2048*004Kb"
    pages: dict[int, bytearray] = field(default_factory=dict)
    #: pages written or erased since :meth:`take_changes`
    changed: set[int] = field(default_factory=set)

    PAGE = 4096

    def _valid(self, address: int, size: int) -> bool:
        return (size >= 0 and address >= INTERNAL_FLASH_START
                and address + size <= INTERNAL_FLASH_END)

    def read(self, address: int, size: int) -> bytes | None:
        if not self._valid(address, size):
            return None
        out = bytearray()
        end = address + size
        while address < end:
            page, offset = divmod(address, self.PAGE)
            take = min(self.PAGE - offset, end - address)
            content = self.pages.get(page)
            out += content[offset:offset + take] if content is not None else b"\xff" * take
            address += take
        return bytes(out)

    def write(self, address: int, data: bytes) -> int:
        if not self._valid(address, len(data)):
            return 1
        done, size = 0, len(data)
        while done < size:
            page, offset = divmod(address + done, self.PAGE)
            take = min(self.PAGE - offset, size - done)
            content = self.pages.setdefault(page, bytearray(b"\xff" * self.PAGE))
            content[offset:offset + take] = data[done:done + take]
            self.changed.add(page)
            done += take
        return 0

    def erase(self, address: int) -> int:
        if not self._valid(address, 1):
            return 1
        self.pages.pop(address // self.PAGE, None)
        self.changed.add(address // self.PAGE)
        return 0

    def take_changes(self) -> list[tuple[int, int]]:
        """The address ranges written or erased since the last call, merged."""
        ranges: list[tuple[int, int]] = []
        for page in sorted(self.changed):
            low = page * self.PAGE
            if ranges and ranges[-1][1] == low:
                ranges[-1] = (ranges[-1][0], low + self.PAGE)
            else:
                ranges.append((low, low + self.PAGE))
        self.changed.clear()
        return ranges


@dataclass
class DctMemory:
    """Alt 1: the DCT (``DctMal``)."""

    dct: Dct
    name: str = "@DCT Flash   /0x00000000/1*016Ke"
    protected_name: str = "@DCT Flash   /0x00000000/1*016Kb"

    def _valid(self, address: int, size: int) -> bool:
        return 0 <= address <= DCT_AREA_END and 0 <= address + size <= DCT_AREA_END

    def read(self, address: int, size: int) -> bytes | None:
        if not self._valid(address, size) or address + size > DCT_SIZE:
            return None
        return self.dct.read(address, size)

    def write(self, address: int, data: bytes) -> int:
        if not self._valid(address, len(data)) or address + len(data) > DCT_SIZE:
            return 1
        return self.dct.write(address, bytes(data))

    def erase(self, address: int) -> int:
        return 0  # DctMal::erase does nothing


class DeviceDfu:
    """The DFU target of one device (lives as long as the device object). Its memories and
    its listener list are made when first asked for: a fleet device never enters DFU."""

    __slots__ = ("_dct", "_dct_memory", "_flash", "_leave", "_listeners", "_protected", "active",
                 "device_id", "dfu_pid", "name", "series", "usb_vid", "world")

    def __init__(self, world: World, name: str, dct: Dct, *, dfu_pid: int, usb_vid: int,
                 series: str, device_id: str, protected: Callable[[], bool],
                 leave: Callable[[], None]) -> None:
        self.world = world
        self.name = name
        self.dfu_pid = dfu_pid
        self.usb_vid = usb_vid
        self.series = series
        self.device_id = device_id
        self._dct = dct
        self._flash: InternalFlash | None = None
        self._dct_memory: DctMemory | None = None
        self._protected = protected
        self._leave = leave
        self.active = False
        self._listeners: list[Callable[[bool], None]] | None = None
        targets: dict[str, DeviceDfu] = world.shared.setdefault(DFU_TARGETS, {})
        targets[name] = self

    @property
    def flash(self) -> InternalFlash:
        """Alt 0 (made on first use)."""
        if self._flash is None:
            self._flash = InternalFlash()
        return self._flash

    @property
    def dct_memory(self) -> DctMemory:
        """Alt 1 (made on first use), on the DCT the device had when this target was made."""
        if self._dct_memory is None:
            self._dct_memory = DctMemory(self._dct)
        return self._dct_memory

    @property
    def protected(self) -> bool:
        """Device Protection: the bootloader refuses uploads and downloads."""
        return self._protected()

    @property
    def memories(self) -> tuple[DfuMemory, ...]:
        return (self.flash, self.dct_memory)

    def alt_name(self, alt: int) -> str:
        memory = self.memories[alt]
        assert isinstance(memory, (InternalFlash, DctMemory))
        return memory.protected_name if self.protected else memory.name

    def take_flash_changes(self) -> list[tuple[int, int]]:
        """The internal flash's address ranges a host wrote or erased since the last boot
        (none when the flash was never used)."""
        return self._flash.take_changes() if self._flash is not None else []

    def on_change(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        if self._listeners is None:
            self._listeners = []
        listeners = self._listeners
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def set_active(self, active: bool) -> None:
        if self.active == active:
            return
        self.active = active
        for listener in list(self._listeners or ()):
            listener(active)

    def leave(self) -> None:
        """The host asked to leave DFU (DfuSe manifestation): boot Device OS."""
        if not self.active:
            raise UsageError(f"{self.name} is not in DFU mode")
        self._leave()


def dfu_target(world: World, name: str) -> DeviceDfu | None:
    targets: dict[str, DeviceDfu] = world.shared.get(DFU_TARGETS, {})
    return targets.get(name)


__all__ = ["DFU_TARGETS", "DctMemory", "DeviceDfu", "DfuMemory", "InternalFlash", "dfu_target"]
