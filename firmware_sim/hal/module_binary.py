"""Firmware module binaries as the OTA HAL reads them: prefix, suffix, CRC-32, validity checks.

How this works
--------------
A module binary is ``module_info_t`` (the 24-byte prefix, ``dynalib/inc/module_info.h``: start
and end address, the MCU target byte, flags, version, platform id, function, index, two
dependencies), the module's code, the suffix (its last 36 bytes: a reserved u16, the SHA-256, the
suffix size u16) ending at ``module_end_address``, and a big-endian CRC-32 of everything before
it. The prefix may sit behind a platform header: the P2's RTL header (32 bytes, signature
``0x96969999 0xfc66cc3f``), or a Cortex-M vector table when the first word looks like a stack
pointer (0x200 bytes on the nRF52840, 0x184 on the Photon's STM32F2).

:func:`fetch_modules` and :func:`validate_modules` are Device OS's ``fetchModules`` /
``validateModules`` (``hal/src/rtl872x/ota_flash_hal.cpp``) and ``fetch_module``
(``hal/src/rtl872x/ota_module.cpp``), as pure functions over the bytes of the OTA region:

1. the module whose ``(function, index, mcu)`` the platform has no bounds for, or whose end
   address lies outside those bounds, is not found (-1300); a combined module
   (``MODULE_INFO_FLAG_COMBINED``) is followed by the next one right after its CRC;
2. each module is checked for range, platform, dependencies (user parts and a bootloader second
   dependency are optional), full dependencies (no installed system part may need a newer
   version of a system part being replaced) and integrity (the CRC-32); the first failed check
   in Device OS's order gives its code (``validityResultToSystemError``): integrity -1330,
   dependencies -1340, range -1350, platform -1360;
3. format checks: a compressed or drop-module-info module with a vector table is -1370, a
   compressed module that is not a user or system part -1310, an NCP module on a platform
   without an updatable NCP of its kind -1310 / -1360.

Everything raises an :class:`OtaError` carrying the ``system_error_t`` and Device OS's text.
:func:`build_module` writes a valid binary from the same layout (tests and documentation).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag
from typing import Protocol

from ..kernel.errors import DeviceOsError

MODULE_INFO_SIZE = 24
#: ``module_info_suffix_base_t``: reserved u16, SHA-256, suffix size u16
SUFFIX_BASE_SIZE = 36
CRC_SIZE = 4
#: ``MAX_COMBINED_MODULE_COUNT``: only the first two of a combined binary are used
MAX_COMBINED_MODULES = 2
RTL_HEADER_SIZE = 32
RTL_SIGNATURE = struct.pack("<II", 0x96969999, 0xFC66CC3F)
MCU_ANY = 0xFF
_INFO = struct.Struct("<IIBBHHBBBBHBBH")


class ModuleFunction(IntEnum):
    """``module_function_t`` (the same numbers as ``FirmwareModuleType``)."""

    NONE = 0
    RESOURCE = 1
    BOOTLOADER = 2
    MONO_FIRMWARE = 3
    SYSTEM_PART = 4
    USER_PART = 5
    SETTINGS = 6
    NCP_FIRMWARE = 7
    RADIO_STACK = 8
    ASSET = 9


class ModuleFlag(IntFlag):
    """``module_info_flags_t``."""

    DROP_MODULE_INFO = 0x01
    COMPRESSED = 0x02
    COMBINED = 0x04
    ENCRYPTED = 0x08
    PREFIX_EXTENSIONS = 0x10


class Validation(IntFlag):
    """``module_validation_flags_t`` (the checked/passed flags of a module)."""

    INTEGRITY = 1 << 1
    DEPENDENCIES = 1 << 2
    RANGE = 1 << 3
    PLATFORM = 1 << 4
    PRODUCT = 1 << 5
    DEPENDENCIES_FULL = 1 << 6


#: What ``HAL_FLASH_End`` and a validate-only FINISH ask for on top of fetch_module's own checks
OTA_CHECKS = Validation.INTEGRITY | Validation.DEPENDENCIES_FULL


class OtaError(DeviceOsError):
    """An OTA failure with its ``system_error_t`` (``services/inc/system_error.h``)."""

    code_value = -1320
    text = "Module validation failed"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(self.code_value, self.text + (f" ({detail})" if detail else ""))


class ModuleNotFound(OtaError):
    code_value, text = -1300, "Module not found"


class UnsupportedModule(OtaError):
    code_value, text = -1310, "Unsupported module"


class ValidationFailed(OtaError):
    code_value, text = -1320, "Module validation failed"


class IntegrityCheckFailed(OtaError):
    code_value, text = -1330, "Module integrity check failed"


class DependencyCheckFailed(OtaError):
    code_value, text = -1340, "Module dependency check failed"


class InvalidAddress(OtaError):
    code_value, text = -1350, "Invalid module address"


class InvalidSize(OtaError):
    code_value, text = -1351, "Invalid module size"


class InvalidPlatform(OtaError):
    code_value, text = -1360, "Invalid module platform"


class InvalidFormat(OtaError):
    code_value, text = -1370, "Invalid module format"


class UpdatesDisabled(OtaError):
    code_value, text = -1380, "Firmware updates are disabled"


@dataclass(frozen=True, slots=True)
class Dependency:
    function: int
    index: int
    version: int


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    """``module_info_t``."""

    start_address: int
    end_address: int
    mcu_target: int  # the ``reserved`` byte
    flags: int
    version: int
    platform_id: int
    function: int
    index: int
    dependency: Dependency
    dependency2: Dependency

    @property
    def length(self) -> int:
        """``module_length``: end - start, as the 32-bit subtraction it is."""
        return (self.end_address - self.start_address) & 0xFFFFFFFF

    @classmethod
    def unpack(cls, data: bytes) -> ModuleInfo:
        (start, end, reserved, flags, version, platform, function, index, d1f, d1i, d1v, d2f, d2i,
         d2v) = _INFO.unpack(data[:MODULE_INFO_SIZE])
        return cls(start, end, reserved, flags, version, platform, function, index,
                   Dependency(d1f, d1i, d1v), Dependency(d2f, d2i, d2v))

    def pack(self) -> bytes:
        d1, d2 = self.dependency, self.dependency2
        return _INFO.pack(self.start_address, self.end_address, self.mcu_target, self.flags,
                          self.version, self.platform_id, self.function, self.index,
                          d1.function, d1.index, d1.version, d2.function, d2.index, d2.version)


@dataclass(frozen=True, slots=True)
class ModuleBounds:
    """``module_bounds_t``: where a module of ``(function, index)`` lives on the platform."""

    function: int
    index: int
    start_address: int
    end_address: int
    maximum_size: int
    #: ``MODULE_BOUNDS_FLAG_FIXED_END_ADDRESS``: the end must lie in the last ``maximum_size``
    fixed_end: bool = False
    mcu: int = 0

    def end_in_range(self, end: int) -> bool:
        low = self.end_address - self.maximum_size if self.fixed_end else self.start_address
        return low <= end <= self.end_address


@dataclass(frozen=True, slots=True)
class OtaPlatform:
    """The OTA facts of one platform."""

    platform_id: int
    #: ``module_ota.maximum_size`` (``HAL_OTA_FlashLength``)
    ota_size: int
    bounds: tuple[ModuleBounds, ...]
    #: the first word of a vector table: ``word & mask == 0x20000000``; None: an RTL header
    vector_table_mask: int | None = None
    vector_table_size: int = 0
    #: identifiers of the NCPs an NCP module may target (``HAL_PLATFORM_NCP_UPDATABLE``);
    #: None: NCP modules are not updatable here
    updatable_ncps: frozenset[int] | None = None
    #: ``MODULE_FUNCTION_ASSET`` modules are stored by the asset manager (Device OS 5.5+)
    assets: bool = False
    #: Device OS 6 (``fetchModules``) reads combined binaries; the Gen2 HAL reads one module
    combined: bool = True
    #: Device OS 2.3.1's FINISH_FIRMWARE_UPDATE applies before it replies (Gen2)
    apply_before_reply: bool = False

    def find_bounds(self, function: int, index: int, mcu: int = MCU_ANY) -> ModuleBounds | None:
        """``find_module_bounds``."""
        for bounds in self.bounds:
            if (bounds.function == function and bounds.index == index
                    and (bounds.mcu == MCU_ANY or mcu == MCU_ANY or bounds.mcu == mcu)):
                return bounds
        return None

    def info_offset(self, head: bytes) -> int:
        """Where ``module_info_t`` starts (``FLASH_ModuleInfo``)."""
        if self.vector_table_mask is None:
            return RTL_HEADER_SIZE if head[:8] == RTL_SIGNATURE else 0
        if len(head) >= 4:
            (word,) = struct.unpack_from("<I", head)
            if word & self.vector_table_mask == 0x20000000:
                return self.vector_table_size
        return 0


_BOOT, _SYS, _USER = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART
#: ``hal/src/rtl872x/ota_module_bounds.c`` (modular firmware): bootloader, MBR, KM0 part 1,
#: system part 1, user part (fixed end); the OTA region is 1.5 MiB
RTL872X = OtaPlatform(
    platform_id=32, ota_size=0x180000, assets=True,
    bounds=(ModuleBounds(_BOOT, 0, 0x08004000, 0x08014000, 0x10000),
            ModuleBounds(_BOOT, 1, 0x08000000, 0x08002000, 0x2000),
            ModuleBounds(_BOOT, 2, 0x08014000, 0x0805E000, 0x4A000),
            ModuleBounds(_SYS, 1, 0x08060000, 0x081E0000, 0x180000),
            ModuleBounds(_USER, 1, 0x08600000 - 0x180000, 0x08600000, 0x180000,
                         fixed_end=True)))
#: ``hal/src/nRF52840/ota_module_bounds.c`` (Argon: modular firmware with an NCP); the OTA
#: region is ``EXTERNAL_FLASH_OTA_LENGTH`` 1500 KiB; the ESP32 NCP (``PLATFORM_NCP_ESP32``
#: 0x21) is updatable
NRF52840_ARGON = OtaPlatform(
    platform_id=12, ota_size=1500 * 1024, vector_table_mask=0x2FFC0000,
    vector_table_size=0x200, updatable_ncps=frozenset({0x21}), assets=True,
    bounds=(ModuleBounds(_BOOT, 0, 0x000F4000, 0x00100000, 0xC000),
            ModuleBounds(_SYS, 1, 0x00028000, 0x000B4000, 0x8C000),
            ModuleBounds(_USER, 1, 0x000D4000, 0x000F4000, 0x20000),
            ModuleBounds(_USER, 2, 0x000B4000, 0x000F4000, 0x40000),
            ModuleBounds(ModuleFunction.NCP_FIRMWARE, 0, 0, 1500 * 1024, 1500 * 1024,
                         mcu=MCU_ANY),
            ModuleBounds(ModuleFunction.RADIO_STACK, 0, 0x1000, 0x27000, 0x26000)))
#: Device OS 2.3.1 ``hal/src/photon/ota_module_bounds.c``: the OTA region is 256 KiB, one module
#: at a time (``fetchAndValidateModule``)
STM32F2XX_PHOTON = OtaPlatform(
    platform_id=6, ota_size=0x40000, vector_table_mask=0x2FF10000, vector_table_size=0x184,
    combined=False, apply_before_reply=True,
    bounds=(ModuleBounds(_BOOT, 0, 0x08000000, 0x08004000, 0x4000),
            ModuleBounds(_SYS, 1, 0x08020000, 0x08060000, 0x40000),
            ModuleBounds(_SYS, 2, 0x08060000, 0x080A0000, 0x40000),
            ModuleBounds(_USER, 1, 0x080A0000, 0x080C0000, 0x20000)))

OTA_PLATFORMS: dict[int, OtaPlatform] = {p.platform_id: p for p in
                                         (RTL872X, NRF52840_ARGON, STM32F2XX_PHOTON)}


def ota_platform(platform_id: int) -> OtaPlatform:
    """The OTA facts of a platform id (P2 and Photon 2 share 32); a platform fwsim has no facts
    for gets the P2's layout under its own id."""
    known = OTA_PLATFORMS.get(platform_id)
    return known if known is not None else replace(RTL872X, platform_id=platform_id)


class InstalledModule(Protocol):
    """What the checks read of an installed module (``FirmwareModuleInfo`` provides it)."""

    @property
    def type(self) -> int: ...

    @property
    def index(self) -> int: ...

    @property
    def version(self) -> int: ...

    @property
    def dependencies(self) -> tuple[tuple[int, int, int], ...]: ...


class FlashRegion:
    """The OTA region: the bytes written so far, erased (0xFF) up to ``size``; nothing past it."""

    __slots__ = ("data", "size")

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def read(self, offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0 or offset + length > self.size:
            return None
        chunk = self.data[offset:offset + length]
        return bytes(chunk) + b"\xff" * (length - len(chunk))


@dataclass(frozen=True, slots=True)
class FetchedModule:
    """``hal_module_t``: one module of the OTA region with the checks it passed."""

    offset: int  # where the module starts in the region
    info_offset: int  # ``module_info_offset``: the header / vector table before the prefix
    info: ModuleInfo
    bounds: ModuleBounds | None  # None for an asset
    checked: int
    passed: int
    sha256: bytes = field(default=b"\x00" * 32)

    @property
    def size(self) -> int:
        """The size GET_MODULE_INFO reports: the module and its CRC."""
        return self.info.length + CRC_SIZE if self.info.length else 0


def _dependency_met(platform: OtaPlatform, dep: Dependency,
                    installed: Sequence[InstalledModule]) -> bool:
    if platform.find_bounds(dep.function, dep.index) is None:
        return False
    # UNVERIFIED (fwsim): a dependency on a slot that holds no module is not met; the device
    # would read whatever the slot's flash holds
    return any(m.type == dep.function and m.index == dep.index and m.version >= dep.version
               for m in installed)


def _dependencies_valid(platform: OtaPlatform, info: ModuleInfo,
                        installed: Sequence[InstalledModule]) -> bool:
    """``validate_module_dependencies`` with ``userOptional`` (both OTA paths pass true)."""
    if info.dependency.function == ModuleFunction.NONE or info.function == _USER:
        return True
    valid = _dependency_met(platform, info.dependency, installed)
    dep2 = info.dependency2
    if dep2.function not in (ModuleFunction.NONE, _BOOT):
        valid = valid and _dependency_met(platform, dep2, installed)
    return valid


def _full_dependencies_valid(info: ModuleInfo, installed: Sequence[InstalledModule]) -> bool:
    """``validate_module_dependencies_full``: another installed system part that depends on the
    system part being replaced must still be satisfied by the new version."""
    if info.function != _SYS:
        return True
    for module in installed:
        if module.type != _SYS or (module.type, module.index) == (info.function, info.index):
            continue
        for function, index, version in module.dependencies:
            if (function, index) == (info.function, info.index) and info.version < version:
                return False
    return True


def _crc_valid(region: FlashRegion, offset: int, length: int) -> bool:
    """``FLASH_VerifyCRC32``: CRC-32 of ``length`` bytes against the big-endian word after them
    (fwsim: a length that runs past the OTA region fails)."""
    if length == 0:
        return False
    data = region.read(offset, length + CRC_SIZE)
    if data is None:
        return False
    return zlib.crc32(data[:length]) == int.from_bytes(data[length:], "big")


def fetch_module(region: FlashRegion, offset: int, platform: OtaPlatform,
                 installed: Sequence[InstalledModule],
                 checks: int = OTA_CHECKS) -> FetchedModule | None:
    """``fetch_module`` on the OTA region at ``offset``: None when Device OS returns false."""
    head = region.read(offset, RTL_HEADER_SIZE) or b""
    info_offset = platform.info_offset(head)
    raw = region.read(offset + info_offset, MODULE_INFO_SIZE)
    if raw is None:
        return None
    info = ModuleInfo.unpack(raw)
    if info.function == ModuleFunction.ASSET and platform.assets:
        return FetchedModule(offset, info_offset, info, None, 0, 0)
    checked = int(Validation.RANGE | Validation.DEPENDENCIES | Validation.PLATFORM) | checks
    bounds = platform.find_bounds(info.function, info.index, info.mcu_target)
    if bounds is None or not bounds.end_in_range(info.end_address):
        return None
    passed = int(Validation.RANGE)
    if info.platform_id == platform.platform_id:
        passed |= Validation.PLATFORM
    full = not checks & Validation.DEPENDENCIES_FULL or _full_dependencies_valid(info, installed)
    if full and _dependencies_valid(platform, info, installed):
        passed |= Validation.DEPENDENCIES | (checked & Validation.DEPENDENCIES_FULL)
    if checked & Validation.INTEGRITY and _crc_valid(region, offset, info.length):
        passed |= Validation.INTEGRITY
    sha = b"\x00" * 32
    if info.length >= SUFFIX_BASE_SIZE:
        suffix = region.read(offset + info.length - SUFFIX_BASE_SIZE, SUFFIX_BASE_SIZE)
        if suffix is not None:
            sha = suffix[2:34]
    return FetchedModule(offset, info_offset, info, bounds, checked, passed, sha)


def fetch_modules(region: FlashRegion, platform: OtaPlatform,
                  installed: Sequence[InstalledModule],
                  checks: int = OTA_CHECKS) -> list[FetchedModule]:
    """``fetchModules``: the module at the start of the region and those combined with it."""
    modules: list[FetchedModule] = []
    offset, remaining = 0, platform.ota_size
    while True:
        module = fetch_module(region, offset, platform, installed, checks)
        if module is None:
            raise ModuleNotFound("unable to fetch module")
        modules.append(module)
        if not (platform.combined and module.info.flags & ModuleFlag.COMBINED):
            return modules
        size = module.info.length + CRC_SIZE
        if remaining < size:
            raise InvalidSize("invalid module size")
        offset += size
        remaining -= size


def validity_error(passed: int, checked: int) -> OtaError | None:
    """``validityResultToSystemError``."""
    if passed == checked:
        return None
    detail = f"result: 0x{passed:02x}; checked: 0x{checked:02x}"
    for flag, error in ((Validation.INTEGRITY, IntegrityCheckFailed),
                        (Validation.DEPENDENCIES, DependencyCheckFailed),
                        (Validation.DEPENDENCIES_FULL, DependencyCheckFailed),
                        (Validation.RANGE, InvalidAddress),
                        (Validation.PLATFORM, InvalidPlatform)):
        if checked & flag and not passed & flag:
            return error(detail)
    return ValidationFailed(detail)


def validate_modules(modules: Sequence[FetchedModule], platform: OtaPlatform,
                     on_validate: Callable[[ModuleInfo], None] | None = None) -> None:
    """``validateModules``: raise the first module's failure (``on_validate`` sees each module
    before its checks, where Device OS logs "Validating module")."""
    for module in modules:
        info = module.info
        if on_validate is not None:
            on_validate(info)
        error = validity_error(module.passed, module.checked)
        if error is not None:
            raise error
        compressed = bool(info.flags & ModuleFlag.COMPRESSED)
        if module.info_offset > 0 and (compressed or info.flags & ModuleFlag.DROP_MODULE_INFO):
            raise InvalidFormat("a compressed or drop-module-info module has a vector table")
        if compressed and info.function not in (_USER, _SYS, ModuleFunction.ASSET):
            raise UnsupportedModule("unsupported compressed module")
        if info.function == ModuleFunction.NCP_FIRMWARE:
            if platform.updatable_ncps is None:
                raise UnsupportedModule("NCP module is not updatable on this platform")
            if info.mcu_target not in platform.updatable_ncps:
                raise InvalidPlatform(f"NCP module is not for this platform; module NCP: "
                                      f"0x{info.mcu_target:02x}")


def validate_ota(region: FlashRegion, platform: OtaPlatform,
                 installed: Sequence[InstalledModule],
                 on_validate: Callable[[ModuleInfo], None] | None = None,
                 on_too_many: Callable[[int], None] | None = None) -> list[FetchedModule]:
    """``HAL_FLASH_OTA_Validate`` / the checks of ``HAL_FLASH_End``: the modules to apply."""
    modules = fetch_modules(region, platform, installed)
    if len(modules) > MAX_COMBINED_MODULES:
        if on_too_many is not None:
            on_too_many(len(modules))
        modules = modules[:MAX_COMBINED_MODULES]
    validate_modules(modules, platform, on_validate)
    return modules


def build_module(*, platform_id: int, function: int, index: int, version: int,
                 start_address: int, body: bytes = b"\x00" * 64, flags: int = 0,
                 mcu_target: int = 0, dependency: Dependency | None = None,
                 dependency2: Dependency | None = None, header: bytes = b"") -> bytes:
    """A module binary with a correct SHA-256 and CRC-32: ``header`` (an RTL header or a vector
    table, counted in the module), the prefix, ``body``, the 36-byte suffix and the CRC."""
    none = Dependency(0, 0, 0)
    length = len(header) + MODULE_INFO_SIZE + len(body) + SUFFIX_BASE_SIZE
    info = ModuleInfo(start_address, (start_address + length) & 0xFFFFFFFF, mcu_target, flags,
                      version, platform_id, function, index, dependency or none,
                      dependency2 or none)
    data = header + info.pack() + body + b"\x00\x00"  # + the suffix's reserved u16
    data += hashlib.sha256(data).digest() + struct.pack("<H", SUFFIX_BASE_SIZE)
    return data + struct.pack(">I", zlib.crc32(data))


__all__ = [
    "CRC_SIZE",
    "MAX_COMBINED_MODULES",
    "MODULE_INFO_SIZE",
    "NRF52840_ARGON",
    "OTA_CHECKS",
    "OTA_PLATFORMS",
    "RTL872X",
    "STM32F2XX_PHOTON",
    "SUFFIX_BASE_SIZE",
    "Dependency",
    "DependencyCheckFailed",
    "FetchedModule",
    "FlashRegion",
    "InstalledModule",
    "IntegrityCheckFailed",
    "InvalidAddress",
    "InvalidFormat",
    "InvalidPlatform",
    "InvalidSize",
    "ModuleBounds",
    "ModuleFlag",
    "ModuleFunction",
    "ModuleInfo",
    "ModuleNotFound",
    "OtaError",
    "OtaPlatform",
    "UnsupportedModule",
    "UpdatesDisabled",
    "Validation",
    "ValidationFailed",
    "build_module",
    "fetch_module",
    "fetch_modules",
    "ota_platform",
    "validate_modules",
    "validate_ota",
    "validity_error",
]
