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

Extensions (``module_info_extension_t``: type u16, length u16 counting the header) may sit after
the prefix (``MODULE_INFO_FLAG_PREFIX_EXTENSIONS``) and at the start of the suffix. Three uses:

* :func:`read_asset` is ``AssetReader::validate`` (``system/src/asset_manager.cpp``): an asset
  module (function 9, ``DROP_MODULE_INFO``, maybe ``COMPRESSED`` with an 8-byte raw-deflate
  header) is valid when its CRC-32 matches and its suffix holds a NAME and a SHA-256 HASH
  extension; its size is the original data's, its storage size the module's;
* :func:`asset_dependencies` is ``AssetManager::requiredAssetsForModule``: the
  ``ASSET_DEPENDENCY`` extensions (hash, then the name) of a user part's prefix and suffix;
* :func:`find_slot_module` is what a boot finds in a module slot of the flash (``fetch_module``
  over ``module_bounds``; on the P2 the user part is located first by the ``DYNAMIC_LOCATION``
  extension of the suffix ending at the slot's fixed end, as ``HAL_Core_Config`` does).

Everything raises an :class:`OtaError` carrying the ``system_error_t`` and Device OS's text.
:func:`build_module` writes a valid binary from the same layout, :func:`build_asset_module` an
asset module (tests and documentation).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag
from typing import Protocol

from control_requests.services import FirmwareAsset

from ..kernel.errors import DeviceOsError, ResultCode

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
EXTENSION_HEADER_SIZE = 4
#: ``module_info_hash_ext_t`` (and the fixed part of ``module_info_asset_dependency_ext_t``):
#: the header, the hash type, its length and 32 bytes
HASH_EXTENSION_SIZE = 38
SHA256_SIZE = 32
#: ``module_info_dynamic_location_ext_t``: the header and three addresses
DYNAMIC_LOCATION_SIZE = 16
#: ``compressed_module_header``: header size u16, method u8 (0 raw deflate), window bits u8,
#: original size u32
COMPRESSED_HEADER_SIZE = 8


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


class ExtensionType(IntEnum):
    """``module_info_extension_type_t``."""

    END = 0x0000
    PRODUCT_DATA = 0x0001
    DYNAMIC_LOCATION = 0x0002
    DEPENDENCY = 0x0003
    HASH = 0x0010
    NAME = 0x0011
    ASSET_DEPENDENCY = 0x0012
    SECURITY_MODE = 0x0013
    ASSET_TYPE = 0x0014
    INVALID = 0xFFFF


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


class AssetError(OtaError):
    """The asset manager refused an asset: BAD_DATA, NOT_ENOUGH_DATA or a filesystem error."""

    def __init__(self, code: int, detail: str = "") -> None:
        self.code_value = int(code)
        self.text = "Unable to store asset"
        super().__init__(detail)


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
    #: blocks of the asset filesystem (``EXTERNAL_FLASH_ASSET_STORAGE_PAGE_COUNT``, 4 KiB each)
    asset_blocks: int = 288
    #: the user part is found by the ``DYNAMIC_LOCATION`` extension of the suffix that ends at
    #: its slot's fixed end (``hal/src/rtl872x/core_hal.c``, ``HAL_Core_Config``)
    dynamic_user_location: bool = False

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
    platform_id=32, ota_size=0x180000, assets=True, dynamic_user_location=True,
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


# -- extensions, assets, module slots --------------------------------------------------------


def _c_string(raw: bytes) -> str:
    """A name as Device OS reads it: up to the first NUL (fwsim: bytes that are not UTF-8 are
    replaced, the protobuf ``string`` a host receives)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _asset_name_and_hash(data: bytes, offset: int, size: int) -> tuple[str, bytes]:
    """``parseAssetInfo``: the NAME and HASH extensions of an asset module's suffix."""
    name: str | None = None
    digest: bytes | None = None
    bad = int(ResultCode.BAD_DATA)
    while size > 0:  # the area ends 40 bytes before the end of ``data``: headers always read
        kind, length = struct.unpack_from("<HH", data, offset)
        if length > size:
            raise AssetError(bad, "extension longer than the suffix")
        if kind == ExtensionType.NAME:
            if length <= EXTENSION_HEADER_SIZE:
                raise AssetError(bad, "empty name extension")
            name = _c_string(data[offset + EXTENSION_HEADER_SIZE:offset + length])
        elif kind == ExtensionType.HASH:
            if length < HASH_EXTENSION_SIZE:
                raise AssetError(bad, "short hash extension")
            hash_type, hash_length = data[offset + 4], data[offset + 5]
            # AssetHash: only a 32-byte SHA-256 is valid
            digest = (data[offset + 6:offset + HASH_EXTENSION_SIZE]
                      if hash_type == 0 and hash_length == SHA256_SIZE else None)
        elif kind == ExtensionType.END:
            break
        if length == 0:
            # UNVERIFIED (fwsim): Device OS's loop would not advance past it
            raise AssetError(bad, "zero-length extension")
        offset += length
        size -= length
    if name is None or digest is None:
        raise AssetError(bad, "no name or no valid SHA-256 in the asset suffix")
    return name, digest


def read_asset(data: bytes, *, full: bool = True) -> FirmwareAsset:
    """``AssetReader::validate``: the asset an asset module holds (its original size and the
    size it takes in storage), or :class:`AssetError` (NOT_ENOUGH_DATA, BAD_DATA)."""
    size = len(data)
    bad = int(ResultCode.BAD_DATA)
    if size <= MODULE_INFO_SIZE + COMPRESSED_HEADER_SIZE + SUFFIX_BASE_SIZE + CRC_SIZE:
        raise AssetError(int(ResultCode.NOT_ENOUGH_DATA), "asset module too short")
    info = ModuleInfo.unpack(data)
    if (info.function != ModuleFunction.ASSET or not info.flags & ModuleFlag.DROP_MODULE_INFO
            or info.flags & ModuleFlag.PREFIX_EXTENSIONS):
        raise AssetError(bad, "not an asset module")
    if size != info.length + CRC_SIZE:
        raise AssetError(bad, "asset module size does not match its prefix")
    compressed = bool(info.flags & ModuleFlag.COMPRESSED)
    original = 0
    if compressed:
        header_size, method = struct.unpack_from("<HB", data, MODULE_INFO_SIZE)
        (original,) = struct.unpack_from("<I", data, MODULE_INFO_SIZE + 4)
        if header_size < COMPRESSED_HEADER_SIZE or method != 0:
            raise AssetError(bad, "bad compression header")
    (suffix_size,) = struct.unpack_from("<H", data, size - CRC_SIZE - 2)
    if full and zlib.crc32(data[:-CRC_SIZE]) != int.from_bytes(data[-CRC_SIZE:], "big"):
        raise AssetError(bad, "CRC-32 mismatch")
    if (size < MODULE_INFO_SIZE + COMPRESSED_HEADER_SIZE + suffix_size + CRC_SIZE
            or suffix_size < SUFFIX_BASE_SIZE + 2 * EXTENSION_HEADER_SIZE):
        raise AssetError(bad, "bad suffix size")
    name, digest = _asset_name_and_hash(data, size - suffix_size - CRC_SIZE,
                                        suffix_size - SUFFIX_BASE_SIZE)
    if not compressed:
        original = size - MODULE_INFO_SIZE - CRC_SIZE - suffix_size
    return FirmwareAsset(name, digest, original, size)


def _parse_asset_dependencies(region: FlashRegion, start: int, end: int,
                              out: list[FirmwareAsset]) -> bool:
    """``parseAssetDependencies``; False when a read fails."""
    offset = start
    while offset < end:
        header = region.read(offset, EXTENSION_HEADER_SIZE)
        if header is None:
            return False
        kind, length = struct.unpack("<HH", header)
        if kind == ExtensionType.ASSET_DEPENDENCY:
            ext = region.read(offset, length)
            if ext is None:
                return False
            # UNVERIFIED (fwsim): one shorter than its fixed part is skipped (the device would
            # read past it); a hash type other than SHA-256 is skipped as Device OS does
            if length >= HASH_EXTENSION_SIZE and ext[4] == 0:
                digest = ext[6:HASH_EXTENSION_SIZE] if ext[5] == SHA256_SIZE else b""
                out.append(FirmwareAsset(_c_string(ext[HASH_EXTENSION_SIZE:]), digest))
        elif kind == ExtensionType.END:
            break
        if length == 0:
            break  # UNVERIFIED (fwsim): Device OS's loop would not advance
        offset += length
    return True


def asset_dependencies(region: FlashRegion, module: FetchedModule) -> tuple[FirmwareAsset, ...]:
    """``requiredAssetsForModule``: the assets a module requires, from its prefix extensions and
    its suffix extensions; none when a read fails (Device OS then reports none)."""
    info = module.info
    found: list[FirmwareAsset] = []
    if info.flags & ModuleFlag.PREFIX_EXTENSIONS:
        start = module.offset + module.info_offset + MODULE_INFO_SIZE
        if not _parse_asset_dependencies(region, start, module.offset + info.length, found):
            return ()
    suffix_start = module.offset + info.length - SUFFIX_BASE_SIZE
    base = region.read(suffix_start, SUFFIX_BASE_SIZE) if suffix_start >= 0 else None
    if base is None:
        return ()
    (suffix_size,) = struct.unpack_from("<H", base, SUFFIX_BASE_SIZE - 2)
    if suffix_size > SUFFIX_BASE_SIZE + 2 * EXTENSION_HEADER_SIZE:
        start = module.offset + info.length - suffix_size
        if start < 0 or not _parse_asset_dependencies(region, start, suffix_start, found):
            return ()
    return tuple(found)


@dataclass(frozen=True, slots=True)
class SlotModule:
    """The module a boot finds in a slot of the flash."""

    address: int  # where the module starts
    module: FetchedModule  # offsets from ``address``
    #: the assets it requires (a module that fails its integrity check requires none)
    assets: tuple[FirmwareAsset, ...]
    #: ``FLASH_isUserModuleInfoValid``: the prefix names this address as the start and the
    #: module is for this platform (on the P2 it ends inside the user region)
    usable: bool


def _dynamic_user_start(read: Callable[[int, int], bytes | None],
                        bounds: ModuleBounds) -> int | None:
    """``HAL_Core_Config``: the user part's start from the ``DYNAMIC_LOCATION`` extension of the
    suffix ending at the slot's fixed end (followed by the CRC-32); None: no user part."""
    user_end = bounds.end_address - CRC_SIZE
    raw = read(user_end - 2, 2)
    if raw is None:
        return None
    (suffix_size,) = struct.unpack("<H", raw)
    address = user_end - suffix_size
    if address >= user_end - SUFFIX_BASE_SIZE:
        return None
    ext = read(address, DYNAMIC_LOCATION_SIZE)
    if ext is None:
        return None
    kind, length, start = struct.unpack_from("<HHI", ext)
    # Device OS looks at the first extension only (its loop does not advance): END or INVALID
    # means no user part; UNVERIFIED (fwsim): any other first extension means none too (the
    # device would loop there)
    if kind != ExtensionType.DYNAMIC_LOCATION or length < DYNAMIC_LOCATION_SIZE:
        return None
    # the OTA region (1.5 MiB) must fit below the user part: its 4 KiB-aligned start is not
    # below the slot's lowest start ("Invalid user module" otherwise)
    if start & ~0xFFF < bounds.end_address - bounds.maximum_size:
        return None
    return int(start)


def find_slot_module(read: Callable[[int, int], bytes | None], platform: OtaPlatform,
                     bounds: ModuleBounds, installed: Sequence[InstalledModule] = ()
                     ) -> SlotModule | None:
    """The module a boot finds in ``bounds`` of a flash that ``read(address, size)`` reads
    (None past it): ``fetch_module(..., MODULE_VALIDATION_INTEGRITY)`` at the slot's start, or
    on the P2's user slot at the dynamic location. None when nothing is found - including,
    UNVERIFIED (fwsim), a module whose function and index are not the slot's."""
    start: int | None = bounds.start_address
    dynamic = platform.dynamic_user_location and bounds.fixed_end
    if dynamic:
        start = _dynamic_user_start(read, bounds)
    if start is None or start >= bounds.end_address:
        return None
    size = bounds.end_address - start
    data = read(start, size)
    if data is None:
        return None
    region = FlashRegion(data, size)
    module = fetch_module(region, 0, platform, installed, checks=Validation.INTEGRITY)
    if module is None or (module.info.function, module.info.index) != (bounds.function,
                                                                       bounds.index):
        return None
    info = module.info
    usable = (info.start_address == start and info.platform_id == platform.platform_id
              and (not dynamic or info.end_address <= bounds.end_address))
    assets = (asset_dependencies(region, module) if module.passed & Validation.INTEGRITY
              else ())
    return SlotModule(start, module, assets, usable)


# -- writing modules -------------------------------------------------------------------------


def extension(kind: int, payload: bytes = b"") -> bytes:
    """One ``module_info_extension_t`` with its payload."""
    return struct.pack("<HH", kind, EXTENSION_HEADER_SIZE + len(payload)) + payload


def asset_dependency_extension(name: str, digest: bytes) -> bytes:
    """``module_info_asset_dependency_ext_t``: a SHA-256 and the asset's name."""
    return extension(ExtensionType.ASSET_DEPENDENCY,
                     bytes([0, len(digest)]) + digest + name.encode())


def build_module(*, platform_id: int, function: int, index: int, version: int,
                 start_address: int | None = None, end_address: int | None = None,
                 body: bytes = b"\x00" * 64, flags: int = 0,
                 mcu_target: int = 0, dependency: Dependency | None = None,
                 dependency2: Dependency | None = None, header: bytes = b"",
                 prefix_extensions: bytes = b"", suffix_extensions: bytes = b"",
                 dynamic_location: bool = False) -> bytes:
    """A module binary with a correct SHA-256 and CRC-32: ``header`` (an RTL header or a vector
    table, counted in the module), the prefix, ``prefix_extensions`` (set
    ``ModuleFlag.PREFIX_EXTENSIONS`` with them), ``body``, the suffix (``suffix_extensions``,
    led by a ``DYNAMIC_LOCATION`` extension naming the start when ``dynamic_location``, then
    the 36-byte base) and the CRC. Give the start, or the end (``module_end_address``: where
    the CRC starts) as a P2 user part has."""
    none = Dependency(0, 0, 0)
    if dynamic_location:
        suffix_extensions = b"\x00" * DYNAMIC_LOCATION_SIZE + suffix_extensions
    length = (len(header) + MODULE_INFO_SIZE + len(prefix_extensions) + len(body)
              + len(suffix_extensions) + SUFFIX_BASE_SIZE)
    if start_address is None:
        if end_address is None:
            raise ValueError("give start_address or end_address")
        start_address = (end_address - length) & 0xFFFFFFFF
    if dynamic_location:
        location = struct.pack("<III", start_address, start_address, 0)
        suffix_extensions = (extension(ExtensionType.DYNAMIC_LOCATION, location)
                             + suffix_extensions[DYNAMIC_LOCATION_SIZE:])
    info = ModuleInfo(start_address, (start_address + length) & 0xFFFFFFFF, mcu_target, flags,
                      version, platform_id, function, index, dependency or none,
                      dependency2 or none)
    data = header + info.pack() + prefix_extensions + body + suffix_extensions
    data += b"\x00\x00"  # the suffix's reserved u16
    data += hashlib.sha256(data).digest()
    data += struct.pack("<H", SUFFIX_BASE_SIZE + len(suffix_extensions))
    return data + struct.pack(">I", zlib.crc32(data))


def build_asset_module(name: str, data: bytes, *, compress: bool = True) -> bytes:
    """An asset module as ``createAssetModule`` lays it out: the prefix (function 9,
    ``DROP_MODULE_INFO``, start 0), the data (raw deflate behind a compression header when
    ``compress``), a suffix with the data's SHA-256 and the name, the CRC-32."""
    flags = ModuleFlag.DROP_MODULE_INFO | (ModuleFlag.COMPRESSED if compress else 0)
    body = data
    if compress:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = deflate.compress(data) + deflate.flush()
        body = struct.pack("<HBBI", COMPRESSED_HEADER_SIZE, 0, 0, len(data)) + packed
    suffix = (extension(ExtensionType.HASH, bytes([0, SHA256_SIZE]) + hashlib.sha256(data).digest())
              + extension(ExtensionType.NAME, name.encode()))
    return build_module(platform_id=0, function=ModuleFunction.ASSET, index=0, version=0,
                        start_address=0, body=body, flags=int(flags), suffix_extensions=suffix)


__all__ = [
    "COMPRESSED_HEADER_SIZE",
    "CRC_SIZE",
    "MAX_COMBINED_MODULES",
    "MODULE_INFO_SIZE",
    "NRF52840_ARGON",
    "OTA_CHECKS",
    "OTA_PLATFORMS",
    "RTL872X",
    "STM32F2XX_PHOTON",
    "SUFFIX_BASE_SIZE",
    "AssetError",
    "Dependency",
    "DependencyCheckFailed",
    "ExtensionType",
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
    "SlotModule",
    "UnsupportedModule",
    "UpdatesDisabled",
    "Validation",
    "ValidationFailed",
    "asset_dependencies",
    "asset_dependency_extension",
    "build_asset_module",
    "build_module",
    "extension",
    "fetch_module",
    "fetch_modules",
    "find_slot_module",
    "ota_platform",
    "read_asset",
    "validate_modules",
    "validate_ota",
    "validity_error",
]
