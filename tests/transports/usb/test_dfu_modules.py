"""A user part written over DFU (``particle flash --local app.bin``) is what the next boot finds
in the user slot: GET_MODULE_INFO lists it with its version, size and SHA-256; one that fails
its checks is not run (safe mode) and, failing its integrity check, is not listed at all
(``HAL_System_Info`` hides such a user part)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from control_requests import RequestType as T
from control_requests._pb import storage_pb2
from firmware_sim.hal.module_binary import (
    Dependency,
    ExtensionType,
    ModuleFunction,
    build_module,
    extension,
)
from firmware_sim.kernel import World
from firmware_sim.system import Device, FirmwareOptions
from firmware_sim.system.device import DeviceState
from transports.usb import attach_usb
from transports.usb.device_port import UsbDevicePort
from transports.usb.protocol import SetupPacket
from transports.usb.transfer import TransferResult

from .dfu_host import DfuHost

USER_END = 0x08600000 - 4  # the P2 user slot's fixed end, less the CRC-32
BOOT, SYS, USER = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART


def p2_user_part(version: int = 9, system: int = 6200) -> bytes:
    """A P2 user part as Device OS builds one (``DYNAMIC_LOCATION`` first in the suffix)."""
    return build_module(platform_id=32, function=USER, index=1, version=version,
                        end_address=USER_END, body=bytes(range(256)) * 4,
                        dynamic_location=True, dependency=Dependency(SYS, 1, system),
                        suffix_extensions=extension(ExtensionType.PRODUCT_DATA,
                                                    struct.pack("<HHH", 0xFFFF, 32, version)))


def make(storage: Path | None = None) -> tuple[World, Device, UsbDevicePort]:
    world = World(0)
    device = Device(world, "dev", device_id="e00fce68aabbccddeeff0011", storage_dir=storage,
                    options=FirmwareOptions(timing="fast"))
    port = attach_usb(device)
    device.power_on()
    world.run_for(0.5)
    return world, device, port


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def flash_over_dfu(world: World, device: Device, port: UsbDevicePort, address: int,
                   data: bytes) -> None:
    """Enter DFU, download ``data`` at ``address`` on alt 0, leave, wait for the boot."""
    boots = device.boot_count
    device.enter_dfu()
    world.run_for(1)
    assert device.state is DeviceState.DFU

    async def control(setup: SetupPacket, payload: bytes) -> TransferResult:
        return port.control_transfer(setup, payload)

    host = DfuHost(control)
    run(host.describe())  # the transfer size the device announces (blocks land at its steps)
    run(host.download(0, address, data))
    run(host.leave(address))
    assert world.run_until(lambda: device.boot_count == boots + 1, timeout=10)
    world.run_for(0.2)


def module_list(world: World, device: Device) -> list[tuple[int, int, int, int, bytes]]:
    result, reply = device_request(world, device, T.GET_MODULE_INFO)
    assert result == 0
    return [(m.type, m.version, m.size, m.passed_flags, m.hash)
            for m in storage_pb2.GetModuleInfoReply.FromString(reply).modules]


def device_request(world: World, device: Device, kind: int) -> tuple[int, bytes]:
    out: list[tuple[int, bytes]] = []
    handle = device.control.submit("usb", kind, b"", lambda r, p: out.append((r, p)))
    assert world.run_until(lambda: bool(out), timeout=10)
    handle.reply_delivered()
    return out[0]


def test_a_user_part_written_over_dfu_is_listed_after_leaving(tmp_path: Path) -> None:
    world, device, port = make(tmp_path)
    data = p2_user_part()
    flash_over_dfu(world, device, port, USER_END + 4 - len(data), data)
    assert not device.safe_mode
    user = module_list(world, device)[2]
    assert user == (USER, 9, len(data), 0x1E, data[-38:-6])
    [found] = [r.fields for r in world.trace.records if r.kind == "bootloader.module_found"]
    assert found == {"function": 5, "index": 1, "version": 9, "listed": True, "usable": True}
    # kept in modules.json: a new device object on the same storage lists it
    world2, again, _ = make(tmp_path)
    assert module_list(world2, again)[2] == user


def test_a_corrupted_user_part_is_not_listed_and_the_device_runs_safe_mode() -> None:
    world, device, port = make()
    data = bytearray(p2_user_part())
    data[300] ^= 0x01
    flash_over_dfu(world, device, port, USER_END + 4 - len(data), bytes(data))
    assert [m[0] for m in module_list(world, device)] == [BOOT, SYS]
    assert device.safe_mode
    assert [r.fields["reason"] for r in world.trace.records
            if r.kind == "system.safe_mode"] == ["invalid user part"]


def test_a_user_part_needing_a_newer_system_part_is_listed_failing_and_not_run() -> None:
    world, device, port = make()
    data = p2_user_part(version=10, system=6300)
    flash_over_dfu(world, device, port, USER_END + 4 - len(data), data)
    assert module_list(world, device)[2][:4] == (USER, 10, len(data), 0x1A)
    assert device.safe_mode


def test_writes_outside_the_module_slots_change_nothing() -> None:
    world, device, port = make()
    before = module_list(world, device)
    flash_over_dfu(world, device, port, 0x08001000, b"firmware")
    assert module_list(world, device) == before and not device.safe_mode
    assert not [r for r in world.trace.records if r.kind == "bootloader.module_found"]


def test_erasing_a_page_counts_as_a_change() -> None:
    _, device, _ = make()
    flash = device.dfu.flash
    assert flash.write(0x085FF000, b"\x00" * 10) == 0 and flash.erase(0x085FE000) == 0
    assert flash.take_changes() == [(0x085FE000, 0x08600000)]
    assert flash.take_changes() == [] and flash.read(0x085FF000, 2) == b"\x00\x00"


_VALID = p2_user_part()


def _mutated(edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(_VALID)
    for index, value in edits:
        data[index % len(data)] = value
    return bytes(data)


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.binary(min_size=1, max_size=400),
                 st.builds(_mutated, st.lists(st.tuples(st.integers(0, 2000),
                                                        st.integers(0, 255)),
                                              min_size=1, max_size=4))),
       st.sampled_from([0, 0, 4, 64]))
def test_any_bytes_in_the_user_slot_boot_to_a_device_os_state(data: bytes, back: int) -> None:
    """Whatever DFU writes at the user slot's end (random, or a valid user part with a few
    bytes changed), the device boots - the user part listed and run, or safe mode - and
    GET_MODULE_INFO answers."""
    world, device, port = make()
    flash_over_dfu(world, device, port, 0x08600000 - len(data) - back, data)
    assert device.state is DeviceState.RUNNING
    listed = module_list(world, device)
    users = [m for m in listed if m[0] == USER]
    assert device.safe_mode or (len(users) == 1 and users[0][3] == 0x1E)
