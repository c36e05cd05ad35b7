"""The firmware modules a device reports (Device OS ``HAL_System_Info``): what
``GET_MODULE_INFO`` (90) replies and what the listening-mode console's ``s`` prints.

How this works
--------------
Three modules in the main store, each depending on the one before: the bootloader (index 0),
the system part (index 1, the profile's system module version) and the user part (index 1, the
firmware's app version, with a SHA-256 that stands for the application binary: fixed by the
device id). Every validity check Device OS runs passed (integrity, dependencies, range,
platform: checked and passed flags 0x1e). Maximum sizes (the console's ``s``) are 48 KiB for the
bootloader and 1.5 MiB for each part; the modules' own sizes, the bootloader version 2300 and
the hashes of the bootloader and system part are UNVERIFIED placeholders (a simulated device has
no binaries), the same every run.
"""

from __future__ import annotations

import hashlib

from control_requests.services import FirmwareModuleInfo
from control_requests.types import FirmwareModuleType

BOOTLOADER = FirmwareModuleType.BOOTLOADER_MODULE
SYSTEM_PART = FirmwareModuleType.SYSTEM_PART_MODULE
USER_PART = FirmwareModuleType.USER_PART_MODULE
#: ``MODULE_INTEGRITY_VALID_FLAG | DEPENDENCIES | RANGE | PLATFORM``
ALL_CHECKS = 0x02 | 0x04 | 0x08 | 0x10
BOOTLOADER_VERSION = 2300


def firmware_modules(*, system_version: int, app_version: int, device_id: str
                     ) -> list[FirmwareModuleInfo]:
    """The modules in ``HAL_System_Info`` order (module header)."""
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


__all__ = ["firmware_modules"]
