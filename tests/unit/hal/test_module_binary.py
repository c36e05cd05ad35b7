"""Module binaries and the OTA checks (``firmware_sim/hal/module_binary.py``).

The two vectors in ``vectors/`` were written by binary-version-reader 3.1.3's own
``createFirmwareBinary`` (``tests/interop/support/make_module_vectors.js``); the expected fields
are what its ``HalModuleParser`` read from them.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from control_requests.services import FirmwareModuleInfo
from firmware_sim.hal.module_binary import (
    MODULE_INFO_SIZE,
    NRF52840_ARGON,
    RTL872X,
    RTL_HEADER_SIZE,
    STM32F2XX_PHOTON,
    Dependency,
    FlashRegion,
    InvalidSize,
    ModuleFlag,
    ModuleFunction,
    ModuleInfo,
    OtaError,
    OtaPlatform,
    build_module,
    fetch_modules,
    ota_platform,
    validate_ota,
)
from firmware_sim.hal.modules import firmware_modules

VECTORS = Path(__file__).parent / "vectors"
BOOT, SYS, USER = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART
INSTALLED = firmware_modules(system_version=6200, app_version=1, device_id="e00f")


def region(data: bytes, platform: OtaPlatform = RTL872X) -> FlashRegion:
    return FlashRegion(data, platform.ota_size)


def validate(data: bytes, platform: OtaPlatform = RTL872X,
             installed: list[FirmwareModuleInfo] = INSTALLED) -> list[ModuleInfo]:
    return [m.info for m in validate_ota(region(data, platform), platform, installed)]


def code_of(data: bytes, platform: OtaPlatform = RTL872X,
            installed: list[FirmwareModuleInfo] = INSTALLED) -> int:
    try:
        validate(data, platform, installed)
    except OtaError as exc:
        return exc.code
    return 0


def p2_bootloader(version: int = 2301, **kwargs: object) -> bytes:
    return build_module(platform_id=32, function=BOOT, index=0, version=version,
                        start_address=0x08004000, **kwargs)  # type: ignore[arg-type]


def test_binary_version_reader_vectors_parse_as_it_read_them() -> None:
    boot = (VECTORS / "p2-bootloader-2301.bin").read_bytes()
    user = (VECTORS / "p2-user-part-7.bin").read_bytes()
    assert ModuleInfo.unpack(boot) == ModuleInfo(0x8004000, 0x80040A0, 0, 0, 2301, 32, 2, 0,
                                                 Dependency(0, 0, 0), Dependency(0, 0, 0))
    assert ModuleInfo.unpack(user) == ModuleInfo(0x85FE000, 0x85FE0E0, 0, 0, 7, 32, 5, 1,
                                                 Dependency(4, 1, 6200), Dependency(0, 0, 0))
    assert boot[-4:].hex() == "c4d02fa8" and user[-4:].hex() == "195ce8ce"
    [fetched] = validate_ota(region(user), RTL872X, INSTALLED)
    assert fetched.sha256.hex() == ("26aceec577c7cf0c336aa89012c8e01a"
                                    "89f6a59b91af57cf11609667463e8607")
    assert fetched.size == len(user) and fetched.passed == fetched.checked == 0x5E
    assert validate(boot)[0].version == 2301


def test_build_module_round_trips_and_is_valid() -> None:
    data = p2_bootloader(body=b"\x01" * 100)
    info = ModuleInfo.unpack(data)
    assert info.pack() == data[:MODULE_INFO_SIZE]
    assert info.length + 4 == len(data)
    assert zlib.crc32(data[:-4]) == struct.unpack(">I", data[-4:])[0]
    assert validate(data) == [info]


@pytest.mark.parametrize("position", [MODULE_INFO_SIZE, 40, -20, -1])
def test_a_flipped_byte_fails_the_integrity_check(position: int) -> None:
    """In the body, the suffix's SHA-256 or the CRC itself."""
    data = bytearray(p2_bootloader())
    data[position] ^= 0x01
    assert code_of(bytes(data)) == -1330


def test_platform_dependency_range_and_missing_module_codes() -> None:
    assert code_of(build_module(platform_id=12, function=BOOT, index=0, version=1,
                                start_address=0x08004000)) == -1360
    system = build_module(platform_id=32, function=SYS, index=1, version=6300,
                          start_address=0x08060000, dependency=Dependency(BOOT, 0, 2400))
    assert code_of(system) == -1340  # the installed bootloader is 2300
    assert code_of(build_module(platform_id=32, function=SYS, index=1, version=6300,
                                start_address=0x08060000,
                                dependency=Dependency(BOOT, 0, 2300))) == 0
    # no bounds for (function, index): fetch_module fails
    assert code_of(build_module(platform_id=32, function=SYS, index=2, version=1,
                                start_address=0x08060000)) == -1300
    # an end address outside the slot
    assert code_of(build_module(platform_id=32, function=BOOT, index=0, version=1,
                                start_address=0x08100000)) == -1300
    assert code_of(b"") == -1300  # an erased region
    assert code_of(b"\x00" * 10) == -1300


def test_user_part_dependencies_are_optional_for_an_update() -> None:
    user = build_module(platform_id=32, function=USER, index=1, version=9,
                        start_address=0x085F0000, dependency=Dependency(SYS, 1, 9999))
    assert code_of(user) == 0


def test_full_dependencies_keep_other_system_parts_satisfied() -> None:
    installed = [*INSTALLED, FirmwareModuleInfo(SYS, 2, 2302, 1, 1, 0x1E, 0x1E, b"",
                                                ((SYS, 1, 2302),))]
    older = build_module(platform_id=6, function=SYS, index=1, version=2301,
                         start_address=0x08020000)
    newer = build_module(platform_id=6, function=SYS, index=1, version=2302,
                         start_address=0x08020000)
    assert code_of(older, STM32F2XX_PHOTON, installed) == -1340
    assert code_of(newer, STM32F2XX_PHOTON, installed) == 0


def test_combined_modules() -> None:
    boot = p2_bootloader(flags=ModuleFlag.COMBINED)
    user = build_module(platform_id=32, function=USER, index=1, version=3,
                        start_address=0x085F0000)
    assert [m.function for m in validate(boot + user)] == [BOOT, USER]
    third = p2_bootloader(version=2302, flags=ModuleFlag.COMBINED)
    too_many: list[int] = []
    modules = validate_ota(region(boot + third + user), RTL872X, INSTALLED,
                           on_too_many=too_many.append)
    assert len(modules) == 2 and too_many == [3]
    assert code_of(boot) == -1300  # the module it announces is not there (erased flash)
    bad_user = bytearray(user)
    bad_user[-1] ^= 0xFF
    assert code_of(boot + bytes(bad_user)) == -1330
    # the Photon's HAL reads one module: the combined flag is ignored
    photon = build_module(platform_id=6, function=BOOT, index=0, version=9,
                          start_address=0x08000000, flags=ModuleFlag.COMBINED)
    assert len(validate(photon, STM32F2XX_PHOTON)) == 1


def test_combined_module_larger_than_the_region_is_an_invalid_size() -> None:
    small = OtaPlatform(platform_id=32, ota_size=200, bounds=RTL872X.bounds)
    boot = p2_bootloader(flags=ModuleFlag.COMBINED, body=b"\x00" * 200)
    assert len(boot) > small.ota_size
    with pytest.raises(InvalidSize) as raised:
        fetch_modules(FlashRegion(boot, len(boot) + 8), small, INSTALLED)
    assert raised.value.code == -1351 and "Invalid module size" in str(raised.value)


def test_headers_before_the_prefix() -> None:
    rtl_header = struct.pack("<II", 0x96969999, 0xFC66CC3F) + b"\x00" * (RTL_HEADER_SIZE - 8)
    assert len(validate(p2_bootloader(header=rtl_header))) == 1
    vectors = struct.pack("<I", 0x20010000) + b"\x00" * (0x200 - 4)
    argon_boot = build_module(platform_id=12, function=BOOT, index=0, version=1100,
                              start_address=0x000F4000, header=vectors)
    [fetched] = validate_ota(region(argon_boot, NRF52840_ARGON), NRF52840_ARGON, INSTALLED)
    assert fetched.info_offset == 0x200 and fetched.info.version == 1100
    compressed = build_module(platform_id=12, function=SYS, index=1, version=6300,
                              start_address=0x00028000, header=vectors,
                              flags=ModuleFlag.COMPRESSED,
                              dependency=Dependency(BOOT, 0, 2300))
    assert code_of(compressed, NRF52840_ARGON) == -1370


def test_format_and_ncp_rules() -> None:
    assert code_of(p2_bootloader(flags=ModuleFlag.COMPRESSED)) == -1310
    ncp = {"function": ModuleFunction.NCP_FIRMWARE, "index": 0, "version": 7,
           "start_address": 0}
    assert code_of(build_module(platform_id=32, **ncp)) == -1300  # no NCP slot on a P2
    assert code_of(build_module(platform_id=12, mcu_target=0x21, **ncp), NRF52840_ARGON) == 0
    assert code_of(build_module(platform_id=12, mcu_target=0x41, **ncp),
                   NRF52840_ARGON) == -1360


def test_platform_tables() -> None:
    assert ota_platform(32) is RTL872X and RTL872X.ota_size == 0x180000
    assert ota_platform(12).ota_size == 1500 * 1024
    assert ota_platform(6).ota_size == 0x40000
    assert ota_platform(99).platform_id == 99
    assert RTL872X.find_bounds(USER, 1) is not None
    assert RTL872X.find_bounds(USER, 1, mcu=0x21) is None
