"""Device Configuration Table (DCT) storage with Device OS's layout and atomic writes.

How this works
--------------
The image is ``application_dct_t`` from Device OS (``platform/MCU/rtl872x/inc/dct.h``): 8391 bytes,
created filled with 0xFF so unset fields read back as 0xFF (on Gen3/P2 it is the LittleFS file
``/sys/dct.bin``). Offsets below are pinned to the static asserts of that header.

A write never modifies the committed image in place. It is performed as a sequence of *steps*,
each announced to an optional fault hook before it happens:

``begin`` -> ``modify:0`` ... ``modify:n-1`` (one per byte, into a shadow copy) -> the backend's
own steps (``persist:k`` chunks of a temporary file, then ``commit``) -> ``done``.

The backend makes ``commit`` atomic (an ``os.replace`` of a fully written and fsync'ed temporary
file, or a reference swap in memory). A fault hook that raises :class:`PowerCut` at any step
leaves the committed image either entirely old or entirely new: a claim code is never torn. The
Dct object that saw the power cut is dead; "rebooting" means opening a new Dct on the same
backend, exactly as the device would re-read flash.

A DCT file whose size is not 8391 bytes is refused with :class:`DctSizeError` and never
overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..kernel.errors import ConfigurationError, PowerCut, UsageError

DCT_SIZE = 8391
ERASED = 0xFF


@dataclass(frozen=True, slots=True)
class DctField:
    name: str
    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


#: Every field of ``application_dct_t`` (Device OS 6.2, identical on rtl872x and nRF52840).
DCT_LAYOUT: tuple[DctField, ...] = (
    DctField("system_flags", 0, 32),
    DctField("version", 32, 2),
    DctField("device_private_key", 34, 1216),
    DctField("device_public_key", 1250, 384),
    DctField("ip_config", 1634, 24),
    DctField("unused", 1658, 95),
    DctField("ota_update_flag", 1753, 1),
    DctField("feature_flags", 1754, 4),
    DctField("country_code", 1758, 4),
    DctField("claim_code", 1762, 63),
    DctField("claimed", 1825, 1),
    DctField("ssid_prefix", 1826, 26),
    DctField("device_code", 1852, 6),
    DctField("version_string", 1858, 32),
    DctField("dns_resolve", 1890, 128),
    DctField("reserved1", 2018, 64),
    DctField("server_public_key", 2082, 768),
    DctField("padding", 2850, 2),
    DctField("flash_modules", 2852, 100),
    DctField("product_store", 2952, 24),
    DctField("antenna_selection", 2976, 1),
    DctField("cloud_transport", 2977, 1),
    DctField("alt_device_public_key", 2978, 128),
    DctField("alt_device_private_key", 3106, 192),
    DctField("alt_server_public_key", 3298, 192),
    DctField("alt_server_address", 3490, 128),
    DctField("device_id", 3618, 12),
    DctField("radio_flags", 3630, 1),
    DctField("mode_button_mirror", 3631, 32),
    DctField("led_mirror", 3663, 96),
    DctField("led_theme", 3759, 64),
    DctField("eap_config", 3823, 4296),
    DctField("device_secret", 8119, 15),
    DctField("setup_done", 8134, 1),
    DctField("ncp_id", 8135, 4),
    DctField("power_config", 8139, 32),
    DctField("radio_antenna", 8171, 1),
    DctField("reserved2", 8172, 219),
)
FIELDS: dict[str, DctField] = {f.name: f for f in DCT_LAYOUT}

#: ``platform_system_flags_t.StartupMode_SysFlag`` inside ``system_flags`` (1 = listening).
STARTUP_MODE_FLAG_OFFSET = 18

FaultHook = Callable[[str], None]


class DctSizeError(ConfigurationError):
    """A DCT file exists but has the wrong size; it is left untouched."""


def _no_fault(step: str) -> None:
    return None


class DctBackend(Protocol):
    """Where the committed image lives."""

    def load(self) -> bytes | None:
        """The committed image, or None if nothing was ever written."""

    def commit(self, image: bytes, fault: FaultHook) -> None:
        """Atomically replace the committed image, announcing each step to ``fault``."""

    def describe(self) -> str: ...


class MemoryDctBackend:
    """Committed image held in memory (survives a simulated reboot, not the process)."""

    def __init__(self, image: bytes | None = None) -> None:
        if image is not None and len(image) != DCT_SIZE:
            raise DctSizeError(f"DCT image has {len(image)} bytes, expected {DCT_SIZE}")
        self._image = image

    def load(self) -> bytes | None:
        return self._image

    def commit(self, image: bytes, fault: FaultHook) -> None:
        fault("commit")
        self._image = image

    def describe(self) -> str:
        return "memory"


class FileDctBackend:
    """Committed image in a file (``dct.bin``), replaced atomically on every write."""

    CHUNK = 2048

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")

    def load(self) -> bytes | None:
        if self._tmp.exists():
            # A write was cut before its commit: the temporary file is garbage.
            self._tmp.unlink()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if len(data) != DCT_SIZE:
            raise DctSizeError(
                f"{self.path} has {len(data)} bytes, expected {DCT_SIZE}: "
                "refusing to use it (the file is left untouched)")
        return data

    def commit(self, image: bytes, fault: FaultHook) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._tmp.open("wb") as tmp:
                for index, start in enumerate(range(0, len(image), self.CHUNK)):
                    fault(f"persist:{index}")
                    tmp.write(image[start:start + self.CHUNK])
                tmp.flush()
                os.fsync(tmp.fileno())
            fault("commit")
            os.replace(self._tmp, self.path)
        except OSError as exc:
            raise ConfigurationError(f"cannot write {self.path}: {exc.strerror or exc}") from exc

    def describe(self) -> str:
        return str(self.path)


class Dct:
    """The DCT image of one device, read from and written through a backend."""

    def __init__(self, backend: DctBackend | None = None, *,
                 fault_hook: FaultHook | None = None) -> None:
        self.backend: DctBackend = backend if backend is not None else MemoryDctBackend()
        self.fault_hook: FaultHook = fault_hook or _no_fault
        loaded = self.backend.load()
        self._image = bytearray(loaded if loaded is not None else bytes([ERASED]) * DCT_SIZE)
        self._dead = False
        self.writes = 0

    @property
    def size(self) -> int:
        return len(self._image)

    def _check_alive(self) -> None:
        if self._dead:
            raise PowerCut("this DCT lost power mid-write; reopen it (reboot) to continue")

    def _check_range(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > DCT_SIZE:
            raise UsageError(f"DCT access [{offset}, {offset + size}) outside 0..{DCT_SIZE}")

    def read(self, offset: int, size: int) -> bytes:
        self._check_alive()
        self._check_range(offset, size)
        return bytes(self._image[offset:offset + size])

    def read_field(self, name: str) -> bytes:
        field = FIELDS[name]
        return self.read(field.offset, field.size)

    def image(self) -> bytes:
        self._check_alive()
        return bytes(self._image)

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` atomically. Returns 0 (``dct_write_app_data``)."""
        self._check_alive()
        self._check_range(offset, len(data))
        fault = self.fault_hook
        try:
            fault("begin")
            shadow = bytearray(self._image)
            for index, byte in enumerate(data):
                fault(f"modify:{index}")
                shadow[offset + index] = byte
            committed = bytes(shadow)
            self.backend.commit(committed, fault)
            self._image = shadow
            self.writes += 1
            fault("done")
        except PowerCut:
            self._dead = True
            raise
        return 0

    def write_field(self, name: str, data: bytes) -> int:
        field = FIELDS[name]
        if len(data) > field.size:
            raise UsageError(f"{len(data)} bytes do not fit DCT field {name} ({field.size})")
        return self.write(field.offset, data)
