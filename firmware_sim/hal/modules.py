"""The firmware modules a device holds (Device OS ``HAL_System_Info``): what
``GET_MODULE_INFO`` (90) replies and what the listening-mode console's ``s`` prints.

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
(its version, size, the SHA-256 of its suffix and its dependencies) or joins the list. Staged
and installed modules survive resets and power loss, and live in ``modules.json`` under a
file-backed device's storage directory. The checked/passed flags are computed each time, as
``HAL_System_Info`` does: range, platform, integrity and dependencies, a dependency being met
when the installed module of that type and index is at least the version required.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from control_requests.services import FirmwareModuleInfo
from control_requests.types import FirmwareModuleType

from ..kernel.errors import ConfigurationError
from .module_binary import OtaPlatform

BOOTLOADER = FirmwareModuleType.BOOTLOADER_MODULE
SYSTEM_PART = FirmwareModuleType.SYSTEM_PART_MODULE
USER_PART = FirmwareModuleType.USER_PART_MODULE
#: ``MODULE_INTEGRITY_VALID_FLAG | DEPENDENCIES | RANGE | PLATFORM``
ALL_CHECKS = 0x02 | 0x04 | 0x08 | 0x10
DEPENDENCIES_FLAG = 0x04
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
            "dependencies": [list(d) for d in module.dependencies]}


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
    return FirmwareModuleInfo(kind, index, version, size, max_size, ALL_CHECKS, ALL_CHECKS,
                              bytes.fromhex(str(entry["hash"])),
                              tuple((d[0], d[1], d[2]) for d in deps))


class InstalledModules:
    """The modules in a device's flash: the factory state with applied updates on top."""

    __slots__ = ("_factory", "_installed", "_path", "_platform", "_staged")

    def __init__(self, factory: Callable[[], list[FirmwareModuleInfo]], platform: OtaPlatform,
                 path: Path | None = None) -> None:
        self._factory = factory
        self._platform = platform
        self._path = path
        self._installed: dict[tuple[int, int], FirmwareModuleInfo] = {}
        self._staged: dict[tuple[int, int], FirmwareModuleInfo] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
            for key, target in (("installed", self._installed), ("staged", self._staged)):
                for entry in data.get(key, []):
                    module = _from_json(entry)
                    target[(int(module.type), module.index)] = module
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"{path}: not a module list fwsim wrote ({exc})") from None

    def _save(self) -> None:
        if self._path is None:
            return
        data = {"installed": [_to_json(m) for m in self._installed.values()],
                "staged": [_to_json(m) for m in self._staged.values()]}
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
        """The bootloader copies the staged modules into place; returns those it installed."""
        done = list(self._staged.values())
        if done:
            self._installed.update(self._staged)
            self._staged.clear()
            self._save()
        return done

    def modules(self) -> list[FirmwareModuleInfo]:
        """The modules ``HAL_System_Info`` reports, with their checks (module header)."""
        listed = {(int(m.type), m.index): m for m in self._factory()}
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
        passed = ALL_CHECKS if ok else ALL_CHECKS & ~DEPENDENCIES_FLAG
        if passed == module.passed_flags and module.checked_flags == ALL_CHECKS:
            return module
        return replace(module, checked_flags=ALL_CHECKS, passed_flags=passed)


__all__ = ["ALL_CHECKS", "BOOTLOADER_VERSION", "InstalledModules", "firmware_modules"]
