"""The firmware modules a device holds (Device OS ``HAL_System_Info``): what
``GET_MODULE_INFO`` (90) replies and what the listening-mode console's ``s`` prints; and the
assets it keeps (``system/src/asset_manager.cpp``): what ``GET_ASSET_INFO`` (91) replies.

How this works
--------------
The factory state is three modules in the main store, each depending on the one before: the
bootloader (index 0), the system part (index 1, the profile's system module version) and the
user part (index 1, the firmware's app version, with a SHA-256 that stands for the application
binary: fixed by the device id). Maximum sizes (the console's ``s``) are 48 KiB for the
bootloader and 1.5 MiB for each part; the modules' own sizes, the bootloader version 2300 and
the hashes of the bootloader and system part are UNVERIFIED placeholders (a simulated device has
no binaries), the same every run.

:class:`InstalledModules` is the flash holding them. A firmware update
(``system/firmware_update.py``) stages each module it applies - Device OS puts it in a DCT
module slot for the bootloader to copy at the next boot - and :meth:`InstalledModules.boot`
installs the staged modules: an applied module replaces the entry of the same type and index
(its version, size, the SHA-256 of its suffix, its dependencies and the assets it requires) or
joins the list. Bytes a host wrote over DFU are read at the next boot instead
(:meth:`InstalledModules.read_slots`): the user or system part slot they touched then holds
whatever ``module_binary.find_slot_module`` finds there - a module, with the checks it fails,
or, for a user part that is missing or fails its integrity check, nothing (``HAL_System_Info``
does not list such a user part). Staged and installed modules survive resets and power loss,
and live in ``modules.json`` under a file-backed device's storage directory. The checked/passed
flags are computed each time, as ``HAL_System_Info`` does: range, platform and integrity as
found, dependencies met when the installed module of that type and index is at least the
version required. :meth:`InstalledModules.safe_mode_reason` is why Device OS would not run the
application: no valid user part (``system_part1_pre_init``) or assets it requires missing
(``app_setup_and_loop``).

:class:`AssetStorage` is the asset filesystem: the asset modules stored by
``AssetManager::storeAsset`` (validated, then the assets the current application does not
require removed, then the module written under the asset's name), kept in ``assets.json``. What
``GET_ASSET_INFO`` lists is read at boot (``AssetManager::init``) and, as on the device, empty
after a store until the next boot.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from control_requests.services import FirmwareAsset, FirmwareModuleInfo
from control_requests.types import FirmwareModuleType

from ..kernel.errors import ConfigurationError
from .module_binary import (
    AssetError,
    ModuleBounds,
    OtaPlatform,
    SlotModule,
    Validation,
    read_asset,
)
from .module_binary import find_slot_module as _find_slot_module

BOOTLOADER = FirmwareModuleType.BOOTLOADER_MODULE
SYSTEM_PART = FirmwareModuleType.SYSTEM_PART_MODULE
USER_PART = FirmwareModuleType.USER_PART_MODULE
#: ``MODULE_INTEGRITY_VALID_FLAG | DEPENDENCIES | RANGE | PLATFORM``
ALL_CHECKS = 0x02 | 0x04 | 0x08 | 0x10
DEPENDENCIES_FLAG = 0x04
#: the asset filesystem's limits (Particle's ``@particle/device-constants``: 4 KiB blocks of
#: which 10 are reserved, 8 bytes of each block for the filesystem)
ASSET_BLOCK_SIZE = 4096
ASSET_RESERVED_BLOCKS = 10
ASSET_BLOCK_OVERHEAD = 8
#: ``LFS_NAME_MAX``
ASSET_NAME_MAX = 255
BOOTLOADER_VERSION = 2300
#: ``HAL_System_Info`` lists modules in ``module_bounds`` order: bootloaders, radio stack,
#: system parts, user parts (then an NCP)
_LIST_ORDER = {int(BOOTLOADER): 0, int(FirmwareModuleType.RADIO_STACK_MODULE): 1,
               int(SYSTEM_PART): 2, int(USER_PART): 3,
               int(FirmwareModuleType.NCP_FIRMWARE_MODULE): 4}


def firmware_modules(*, system_version: int, app_version: int, device_id: str
                     ) -> list[FirmwareModuleInfo]:
    """The factory modules in ``HAL_System_Info`` order (module header)."""
    def placeholder(what: str) -> bytes:
        return hashlib.sha256(f"fwsim-{what}".encode()).digest()

    return [
        FirmwareModuleInfo(BOOTLOADER, 0, BOOTLOADER_VERSION, size=41_216, max_size=49_152,
                           checked_flags=ALL_CHECKS, passed_flags=ALL_CHECKS,
                           hash=placeholder(f"bootloader:{BOOTLOADER_VERSION}")),
        FirmwareModuleInfo(SYSTEM_PART, 1, system_version, size=1_261_568, max_size=1_572_864,
                           checked_flags=ALL_CHECKS, passed_flags=ALL_CHECKS,
                           hash=placeholder(f"system-part:{system_version}"),
                           dependencies=((BOOTLOADER, 0, BOOTLOADER_VERSION),)),
        FirmwareModuleInfo(USER_PART, 1, app_version, size=8_704, max_size=1_572_864,
                           checked_flags=ALL_CHECKS, passed_flags=ALL_CHECKS,
                           hash=placeholder(f"app:{device_id}"),
                           dependencies=((SYSTEM_PART, 1, system_version),)),
    ]


def _to_json(module: FirmwareModuleInfo) -> dict[str, object]:
    return {"type": int(module.type), "index": module.index, "version": module.version,
            "size": module.size, "max_size": module.max_size, "hash": module.hash.hex(),
            "dependencies": [list(d) for d in module.dependencies],
            "passed": module.passed_flags,
            "assets": [{"name": a.name, "hash": a.hash.hex()} for a in module.assets]}


def _asset_from_json(entry: object) -> FirmwareAsset:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError("an asset is not an object with a name")
    return FirmwareAsset(entry["name"], bytes.fromhex(str(entry["hash"])))


def _from_json(entry: object) -> FirmwareModuleInfo:
    if not isinstance(entry, dict):
        raise ValueError("a module is not an object")
    deps = entry["dependencies"]
    if not isinstance(deps, list) or not all(isinstance(d, list) and len(d) == 3 for d in deps):
        raise ValueError("bad dependencies")
    numbers = [entry[key] for key in ("type", "index", "version", "size", "max_size")]
    if not all(isinstance(n, int) and n >= 0 for n in numbers) or not all(
            isinstance(n, int) for d in deps for n in d):
        raise ValueError("a number is not a non-negative integer")
    kind, index, version, size, max_size = numbers
    passed = entry.get("passed", ALL_CHECKS)
    assets = entry.get("assets", [])
    if not isinstance(passed, int) or not isinstance(assets, list):
        raise ValueError("bad passed flags or assets")
    return FirmwareModuleInfo(kind, index, version, size, max_size, ALL_CHECKS,
                              passed & ALL_CHECKS, bytes.fromhex(str(entry["hash"])),
                              tuple((d[0], d[1], d[2]) for d in deps),
                              assets=tuple(_asset_from_json(a) for a in assets))


def _keys_from_json(data: object) -> set[tuple[int, int]]:
    if not isinstance(data, list) or not all(
            isinstance(k, list) and len(k) == 2 and all(isinstance(n, int) for n in k)
            for k in data):
        raise ValueError("bad slot list")
    return {(k[0], k[1]) for k in data}


def _check_asset_name(name: str) -> None:
    """UNVERIFIED (fwsim): the names littlefs would refuse as a file in its root."""
    if name in ("", ".", ".."):
        raise AssetError(-1906, f"asset name {name!r} is a directory")  # FILESYSTEM_ISDIR
    if "/" in name:
        raise AssetError(-1903, f"asset name {name!r} names a directory")  # FILESYSTEM_NOENT
    if len(name.encode()) > ASSET_NAME_MAX:
        raise AssetError(-1900, "asset name too long")  # FILESYSTEM (LFS_ERR_NAMETOOLONG)


class AssetStorage:
    """The asset filesystem of a device (module header)."""

    __slots__ = ("_available", "_capacity", "_files", "_path")

    def __init__(self, path: Path | None, blocks: int) -> None:
        self._path = path
        self._capacity = max(0, blocks - ASSET_RESERVED_BLOCKS)
        #: file name -> the asset module as stored
        self._files: dict[str, bytes] = {}
        #: ``availableAssets_``: read at boot; None until first asked for
        self._available: list[FirmwareAsset] | None = None
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for entry in data["assets"]:
                name = entry["name"]
                if not isinstance(name, str):
                    raise ValueError("an asset name is not a string")
                self._files[name] = base64.b64decode(entry["data"], validate=True)
        except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise ConfigurationError(f"{path}: not an asset list fwsim wrote ({exc})") from None

    def _save(self) -> None:
        if self._path is None:
            return
        data = {"assets": [{"name": name, "data": base64.b64encode(module).decode()}
                           for name, module in sorted(self._files.items())]}
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temporary, self._path)

    @staticmethod
    def blocks(size: int) -> int:
        """The blocks a file of ``size`` bytes takes."""
        return -(-size // (ASSET_BLOCK_SIZE - ASSET_BLOCK_OVERHEAD))

    def boot(self) -> None:
        """``AssetManager::init`` reads the storage again when first asked."""
        self._available = None

    def available(self) -> list[FirmwareAsset]:
        """``parseAvailableAssets``: each stored file that validates; one that does not is
        removed ("Invalid asset, removing")."""
        if self._available is None:
            found: list[FirmwareAsset] = []
            for name, module in sorted(self._files.items()):
                try:
                    found.append(read_asset(module))
                except AssetError:
                    del self._files[name]
                    self._save()
            self._available = found
        return list(self._available)

    def store(self, module: bytes, asset: FirmwareAsset,
              required: Iterable[FirmwareAsset]) -> None:
        """``storeAsset`` after validation: remove the assets ``required`` does not name, then
        write ``module`` under the asset's name (the listing stays empty until the next boot).
        Raises :class:`AssetError` with the filesystem's error."""
        wanted = {a.key for a in required}
        for unused in self.available():
            if unused.key not in wanted:
                self._files.pop(unused.name, None)
        self._available = []
        self._files.pop(asset.name, None)
        try:
            _check_asset_name(asset.name)
            used = sum(self.blocks(len(data)) for data in self._files.values())
            if used + self.blocks(len(module)) > self._capacity:
                # UNVERIFIED (fwsim): littlefs's own accounting is finer than whole blocks
                raise AssetError(-1911, "no space left for the asset")  # FILESYSTEM_NOSPC
            self._files[asset.name] = bytes(module)
        finally:
            self._save()

    def files(self) -> dict[str, bytes]:
        """The stored asset modules by file name."""
        return dict(self._files)


@dataclass(frozen=True, slots=True)
class SlotRead:
    """What a boot found in a slot DFU wrote to: the module, or None (nothing it lists)."""

    bounds: ModuleBounds
    found: SlotModule | None
    listed: FirmwareModuleInfo | None


class InstalledModules:
    """The modules in a device's flash: the factory state with applied updates on top."""

    __slots__ = ("_absent", "_factory", "_installed", "_path", "_platform", "_staged",
                 "_unusable", "assets")

    def __init__(self, factory: Callable[[], list[FirmwareModuleInfo]], platform: OtaPlatform,
                 path: Path | None = None) -> None:
        self._factory = factory
        self._platform = platform
        self._path = path
        self._installed: dict[tuple[int, int], FirmwareModuleInfo] = {}
        self._staged: dict[tuple[int, int], FirmwareModuleInfo] = {}
        #: slots DFU left without a module ``HAL_System_Info`` lists
        self._absent: set[tuple[int, int]] = set()
        #: listed modules the system does not run (``FLASH_isUserModuleInfoValid`` fails)
        self._unusable: set[tuple[int, int]] = set()
        if path is not None and path.exists():
            self._load(path)
        #: the asset filesystem (``assets.json`` next to ``modules.json``)
        self.assets = AssetStorage(path.with_name("assets.json") if path is not None else None,
                                   platform.asset_blocks)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for key, target in (("installed", self._installed), ("staged", self._staged)):
                for entry in data.get(key, []):
                    module = _from_json(entry)
                    target[(int(module.type), module.index)] = module
            self._absent = _keys_from_json(data.get("absent", []))
            self._unusable = _keys_from_json(data.get("unusable", []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"{path}: not a module list fwsim wrote ({exc})") from None

    def _save(self) -> None:
        if self._path is None:
            return
        data = {"installed": [_to_json(m) for m in self._installed.values()],
                "staged": [_to_json(m) for m in self._staged.values()],
                "absent": sorted([list(k) for k in self._absent]),
                "unusable": sorted([list(k) for k in self._unusable])}
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(temporary, self._path)

    @property
    def platform(self) -> OtaPlatform:
        return self._platform

    @property
    def staged(self) -> list[FirmwareModuleInfo]:
        """Modules applied by an update, installed at the next boot."""
        return list(self._staged.values())

    def stage(self, module: FirmwareModuleInfo) -> None:
        """``FLASH_AddToNextAvailableModulesSlot``: copy ``module`` at the next boot."""
        self._staged[(int(module.type), module.index)] = module
        self._save()

    def boot(self) -> list[FirmwareModuleInfo]:
        """The bootloader copies the staged modules into place; returns those it installed.
        The asset manager reads its storage again."""
        done = list(self._staged.values())
        if done:
            self._installed.update(self._staged)
            self._absent.difference_update(self._staged)
            self._unusable.difference_update(self._staged)
            self._staged.clear()
            self._save()
        self.assets.boot()
        return done

    def read_slots(self, read: Callable[[int, int], bytes | None],
                   changed: Sequence[tuple[int, int]]) -> list[SlotRead]:
        """The user and system part slots that DFU wrote to (``changed``: address ranges) hold
        what :func:`~.module_binary.find_slot_module` finds there now (module header).
        UNVERIFIED (fwsim): bootloader slots are not read back (the CLI updates a bootloader
        with a firmware update); bytes no host wrote read as erased."""
        reads: list[SlotRead] = []
        for bounds in self._platform.bounds:
            if bounds.function not in (int(SYSTEM_PART), int(USER_PART)) or not any(
                    low < bounds.end_address and high > bounds.start_address
                    for low, high in changed):
                continue
            key = (bounds.function, bounds.index)
            found = _find_slot_module(read, self._platform, bounds, self.modules())
            listed = _slot_entry(found, bounds)
            self._absent.discard(key)
            self._unusable.discard(key)
            if listed is None:
                self._installed.pop(key, None)
                self._absent.add(key)
            else:
                self._installed[key] = listed
                if found is not None and not found.usable:
                    self._unusable.add(key)
            reads.append(SlotRead(bounds, found, listed))
        if reads:
            self._save()
        return reads

    def user_part(self) -> FirmwareModuleInfo | None:
        """The user part listed, with its checks."""
        return next((m for m in self.modules() if m.type == USER_PART), None)

    def required_assets(self) -> tuple[FirmwareAsset, ...]:
        """``parseRequiredAssets``: the assets the user part requires - none when the system
        would not run it (``hal_user_module_get_descriptor`` fails)."""
        user = self.user_part()
        if user is None or not self._runnable(user):
            return ()
        return user.assets

    def missing_assets(self) -> list[FirmwareAsset]:
        """``missingAssets``: required and not available."""
        required = self.required_assets()
        if not required:
            return []
        available = {a.key for a in self.assets.available()}
        return [a for a in required if a.key not in available]

    def safe_mode_reason(self) -> str | None:
        """Why Device OS would boot into safe mode: the user part is missing or invalid
        (``system_part1_pre_init``), or assets it requires are missing (``app_setup_and_loop``)."""
        user = self.user_part()
        if user is None or not self._runnable(user):
            return "invalid user part"
        if self._platform.assets and self.missing_assets():
            return "missing assets"
        return None

    def store_asset(self, module: bytes, asset: FirmwareAsset) -> None:
        """``AssetManager::storeAsset`` after validation (:class:`AssetStorage`)."""
        self.assets.store(module, asset, self.required_assets())

    def _runnable(self, module: FirmwareModuleInfo) -> bool:
        return (module.passed_flags == module.checked_flags
                and (int(module.type), module.index) not in self._unusable)

    def modules(self) -> list[FirmwareModuleInfo]:
        """The modules ``HAL_System_Info`` reports, with their checks (module header)."""
        listed = {(int(m.type), m.index): m for m in self._factory()}
        for key in self._absent:
            listed.pop(key, None)
        for key, module in self._installed.items():
            factory = listed.get(key)
            bounds = self._platform.find_bounds(*key)
            max_size = (factory.max_size if factory is not None
                        else bounds.maximum_size if bounds is not None else module.size)
            listed[key] = replace(module, max_size=max_size)
        ordered = sorted(listed.values(), key=lambda m: (_LIST_ORDER.get(int(m.type), 5),
                                                          m.index))
        return [self._checked(m, ordered) for m in ordered]

    def _checked(self, module: FirmwareModuleInfo, modules: list[FirmwareModuleInfo]
                 ) -> FirmwareModuleInfo:
        """``fetch_module(..., userDepsOptional=false, MODULE_VALIDATION_INTEGRITY)``: every
        dependency must be met."""
        def met(kind: int, index: int, version: int) -> bool:
            return (self._platform.find_bounds(kind, index) is not None
                    and any(int(m.type) == kind and m.index == index and m.version >= version
                            for m in modules))

        ok = all(met(*dep) for dep in module.dependencies)
        found = module.passed_flags & ~DEPENDENCIES_FLAG  # range, platform, integrity
        passed = found | (DEPENDENCIES_FLAG if ok else 0)
        if passed == module.passed_flags and module.checked_flags == ALL_CHECKS:
            return module
        return replace(module, checked_flags=ALL_CHECKS, passed_flags=passed)


def _slot_entry(found: SlotModule | None, bounds: ModuleBounds) -> FirmwareModuleInfo | None:
    """The entry ``HAL_System_Info`` lists for a slot: none for a user part that is missing or
    fails its integrity check; the checks it passed otherwise (dependencies computed when
    listed)."""
    if found is None:
        return None
    module = found.module
    passed = module.passed & (Validation.RANGE | Validation.PLATFORM | Validation.INTEGRITY)
    if bounds.function == USER_PART and not passed & Validation.INTEGRITY:
        return None
    info = module.info
    deps = tuple((d.function, d.index, d.version) for d in (info.dependency, info.dependency2)
                 if 0 < d.function <= 9)
    return FirmwareModuleInfo(info.function, info.index, info.version, module.size,
                              bounds.maximum_size, ALL_CHECKS, passed | DEPENDENCIES_FLAG,
                              module.sha256, deps, assets=found.assets)


__all__ = ["ALL_CHECKS", "BOOTLOADER_VERSION", "AssetStorage", "InstalledModules", "SlotRead",
           "firmware_modules"]
