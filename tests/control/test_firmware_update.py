"""START/FINISH/CANCEL_FIRMWARE_UPDATE and FIRMWARE_UPDATE_DATA (250-253) on virtual time:
Device OS's ``storage.cpp`` transfer, ``firmware_update.cpp`` and the OTA HAL's checks, then the
module list after the reset with the reason ``update``."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from control_requests import RequestType as T
from control_requests import requests
from control_requests._pb import storage_pb2
from firmware_sim.hal.module_binary import Dependency, ModuleFunction, build_module
from firmware_sim.kernel import World
from firmware_sim.system import Device
from firmware_sim.system.device import FirmwareOptions

from .conftest import make_device, send

OK, NOT_SUPPORTED, INVALID_STATE, OUT_OF_RANGE, BAD_DATA = 0, -120, -210, -290, -280
NOT_FOUND, INTEGRITY, DEPENDENCY, INVALID_SIZE, DISABLED = -1300, -1330, -1340, -1351, -1380
BOOT, SYS, USER = ModuleFunction.BOOTLOADER, ModuleFunction.SYSTEM_PART, ModuleFunction.USER_PART


def p2_user(version: int = 7, body: bytes = b"\xa5" * 2500) -> bytes:
    return build_module(platform_id=32, function=USER, index=1, version=version,
                        start_address=0x085F0000, body=body,
                        dependency=Dependency(SYS, 1, 6200))


def start(world: World, device: Device, size: int, file_format: int = 0) -> tuple[int, bytes]:
    return send(world, device, T.START_FIRMWARE_UPDATE, storage_pb2.StartFirmwareUpdateRequest(
        size=size, format=file_format).SerializeToString())  # type: ignore[arg-type]


def chunk(world: World, device: Device, data: bytes) -> int:
    return send(world, device, T.FIRMWARE_UPDATE_DATA,
                storage_pb2.FirmwareUpdateDataRequest(data=data).SerializeToString())[0]


def finish(world: World, device: Device, validate_only: bool = False) -> int:
    return send(world, device, T.FINISH_FIRMWARE_UPDATE, storage_pb2.FinishFirmwareUpdateRequest(
        validate_only=validate_only).SerializeToString())[0]


def upload(world: World, device: Device, data: bytes) -> int:
    """What particle-usb's ``updateFirmware`` sends: the first failure's result, or 0."""
    result, reply = start(world, device, len(data))
    if result != OK:
        return result
    size = storage_pb2.StartFirmwareUpdateReply.FromString(reply).chunk_size
    for offset in range(0, len(data), size):
        result = chunk(world, device, data[offset:offset + size])
        if result != OK:
            return result
    return finish(world, device)


def modules(world: World, device: Device) -> list[tuple[int, int, int]]:
    reply = send(world, device, T.GET_MODULE_INFO)[1]
    return [(m.type, m.index, m.version) for m in requests.get_module_info().parse(reply)]


def kinds(world: World, prefix: str) -> list[str]:
    return [r.kind for r in world.trace.records if r.kind.startswith(prefix)]


def ota_events(world: World) -> list[str]:
    return [f"{r.fields['event']}:{r.fields['param_name']}" for r in world.trace.records
            if r.kind == "system_event" and r.fields["event"].startswith(("firmware", "reset"))]


def test_an_update_is_applied_after_the_reply_and_the_device_resets_for_it() -> None:
    world, device, _ = make_device("p2")
    data = p2_user()
    result, reply = start(world, device, len(data))
    assert result == OK
    assert storage_pb2.StartFirmwareUpdateReply.FromString(reply).chunk_size == 1024
    for offset in range(0, len(data), 1024):
        assert chunk(world, device, data[offset:offset + 1024]) == OK
    out: list[int] = []
    handle = device.control.submit("usb", T.FINISH_FIRMWARE_UPDATE, b"",
                                   lambda result, _: out.append(result))
    world.run_for(5)
    assert out == [OK] and device.boot_count == 1  # nothing happens before the reply is read
    assert not device.installed_modules.staged
    handle.reply_delivered()
    world.run_until(lambda: device.boot_count == 2, timeout=30)
    boots = [r.fields for r in world.trace.records if r.kind == "device.boot"]
    assert boots[-1]["reset_reason"] == "update"
    assert modules(world, device)[2] == (USER, 1, 7)
    info = requests.get_module_info().parse(send(world, device, T.GET_MODULE_INFO)[1])[2]
    assert info.size == len(data) and info.max_size == 1_572_864
    assert info.hash == data[-38:-6]  # the suffix's SHA-256
    assert info.dependencies == ((SYS, 1, 6200),) and info.passed_flags == 0x1E
    assert ota_events(world) == [
        "firmware_update:begin", "firmware_update_status:3", "firmware_update:progress",
        "firmware_update:progress", "firmware_update:progress", "firmware_update:complete",
        "firmware_update_status:0", "reset_pending:0", "reset:0"]
    assert any("[hal.ota] INFO: Applying module; type: 5; index: 1; version: 7" in line
               for line in device.log_lines())
    assert kinds(world, "led.firmware_update") == ["led.firmware_update"] * 2


def test_a_corrupted_binary_is_refused_and_changes_nothing() -> None:
    world, device, _ = make_device("p2")
    before = modules(world, device)
    data = bytearray(p2_user())
    data[100] ^= 0xFF
    assert upload(world, device, bytes(data)) == INTEGRITY
    world.run_for(5)
    assert device.boot_count == 1 and modules(world, device) == before
    assert finish(world, device) == INVALID_STATE  # the failure ended the transfer
    assert ota_events(world)[-2:] == ["firmware_update:failed", "firmware_update_status:0"]


def test_validate_only_answers_and_ends_the_transfer() -> None:
    world, device, _ = make_device("p2", connected=False)
    data = p2_user()
    assert start(world, device, len(data))[0] == OK
    assert chunk(world, device, data) == OK
    assert finish(world, device, validate_only=True) == OK
    assert finish(world, device) == INVALID_STATE
    world.run_for(3)
    assert device.boot_count == 1 and modules(world, device)[2][2] == 1


def test_transfer_errors_cancel_it() -> None:
    world, device, _ = make_device("p2", connected=False)
    assert chunk(world, device, b"x") == INVALID_STATE
    assert finish(world, device) == INVALID_STATE
    assert start(world, device, 10, file_format=1)[0] == NOT_SUPPORTED  # MINIZ
    assert start(world, device, 0x180001)[0] == INVALID_SIZE
    assert start(world, device, 10)[0] == OK
    assert chunk(world, device, b"0123456789a") == OUT_OF_RANGE
    assert chunk(world, device, b"0") == INVALID_STATE  # cancelled
    assert start(world, device, 10)[0] == OK
    assert chunk(world, device, b"") == OUT_OF_RANGE
    assert start(world, device, 10)[0] == OK
    assert chunk(world, device, b"01234") == OK
    assert finish(world, device) == INVALID_STATE  # five bytes left
    assert chunk(world, device, b"56789") == INVALID_STATE
    assert start(world, device, 10)[0] == OK
    assert send(world, device, T.FIRMWARE_UPDATE_DATA, b"\x0a\x05ab")[0] == BAD_DATA
    assert chunk(world, device, b"0") == INVALID_STATE  # a DATA that does not decode cancels
    assert start(world, device, 10)[0] == OK
    assert send(world, device, T.CANCEL_FIRMWARE_UPDATE)[0] == OK
    assert send(world, device, T.CANCEL_FIRMWARE_UPDATE)[0] == OK
    assert chunk(world, device, b"0") == INVALID_STATE
    assert not device.firmware_update.running


def test_size_zero_means_the_whole_region_and_an_erased_region_has_no_module() -> None:
    world, device, _ = make_device("p2", connected=False)
    assert start(world, device, 0)[0] == OK
    assert finish(world, device) == NOT_FOUND


def test_dependency_failure_and_disabled_updates() -> None:
    world, device, _ = make_device("p2", connected=False)
    system = build_module(platform_id=32, function=SYS, index=1, version=6300,
                          start_address=0x08060000, dependency=Dependency(BOOT, 0, 2400))
    assert upload(world, device, system) == DEPENDENCY
    world, device, _ = make_device("p2", connected=False,
                                   options=FirmwareOptions(updates_enabled=False))
    assert start(world, device, 100)[0] == DISABLED
    world, device, _ = make_device("p2", connected=False, options=FirmwareOptions(
        updates_enabled=False, updates_forced=True))
    assert start(world, device, 100)[0] == OK


def test_the_photon_applies_before_the_reply_and_resets_a_second_later() -> None:
    world, device, _ = make_device("photon")
    boot = build_module(platform_id=6, function=BOOT, index=0, version=2400,
                        start_address=0x08000000)
    assert upload(world, device, boot) == OK  # ``send`` delivered the reply
    assert device.installed_modules.staged[0].version == 2400  # applied inside FINISH
    world.run_for(0.9)
    assert device.boot_count == 1
    world.run_until(lambda: device.boot_count == 2, timeout=30)
    assert modules(world, device)[0] == (BOOT, 0, 2400)
    # a failure is answered and does not reset
    assert upload(world, device, boot[:-1] + bytes([boot[-1] ^ 1])) == INTEGRITY
    world.run_for(5)
    assert device.boot_count == 2


def test_applied_modules_persist_across_power_loss_and_restart(tmp_path: Path) -> None:
    world, device, _ = make_device("p2", connected=False, storage_dir=tmp_path)
    boot = build_module(platform_id=32, function=BOOT, index=0, version=2301,
                        start_address=0x08004000)
    assert upload(world, device, boot) == OK
    assert world.run_until(lambda: bool(device.installed_modules.staged), timeout=1)
    device.power_off()  # before the reset: the slot is in flash, the next boot copies it
    device.power_cycle()
    world.run_for(5)
    assert modules(world, device)[0] == (BOOT, 0, 2301)
    assert (tmp_path / "modules.json").exists()
    world2, again, _ = make_device("p2", connected=False, storage_dir=tmp_path)
    assert modules(world2, again)[0] == (BOOT, 0, 2301)
    assert modules(world2, again)[1] == (SYS, 1, 6200)


def test_a_system_part_downgrade_shows_the_user_part_dependency_failing() -> None:
    world, device, _ = make_device("p2", connected=False)
    system = build_module(platform_id=32, function=SYS, index=1, version=6100,
                          start_address=0x08060000, dependency=Dependency(BOOT, 0, 2300))
    assert upload(world, device, system) == OK
    world.run_until(lambda: device.boot_count == 2, timeout=30)
    world.run_for(1)
    listed = requests.get_module_info().parse(send(world, device, T.GET_MODULE_INFO)[1])
    assert [(m.version, m.passed_flags) for m in listed] == [(2300, 0x1E), (6100, 0x1E),
                                                             (1, 0x1A)]


_OPS = st.one_of(
    st.tuples(st.just("start"), st.integers(0, 0x200000), st.integers(0, 3)),
    st.tuples(st.just("data"), st.binary(max_size=1500)),
    st.tuples(st.just("valid"), st.integers(0, 4)),
    st.tuples(st.just("finish"), st.booleans()),
    st.tuples(st.just("cancel")),
    st.tuples(st.sampled_from([T.START_FIRMWARE_UPDATE, T.FIRMWARE_UPDATE_DATA,
                               T.FINISH_FIRMWARE_UPDATE, T.CANCEL_FIRMWARE_UPDATE]),
              st.binary(max_size=40)),
)
_CODES = {OK, NOT_SUPPORTED, INVALID_STATE, OUT_OF_RANGE, BAD_DATA, -1300, -1310, -1320, -1330,
          -1340, -1350, -1351, -1360, -1370}
_VALID = p2_user(body=b"\x11" * 300)


@settings(max_examples=40, deadline=None)
@given(st.lists(_OPS, max_size=12))
def test_any_request_sequence_answers_a_device_os_code(ops: list[tuple[object, ...]]) -> None:
    """Arbitrary sizes, bytes and orders: never an exception, always a Device OS result; a
    failed FINISH leaves the modules as they were (a corrupted CRC in the "valid" op)."""
    world, device, _ = make_device("p2", connected=False)
    before = modules(world, device)
    for op in ops:
        if op[0] == "start":
            result = start(world, device, int(op[1]), int(op[2]))[0]  # type: ignore[call-overload]
        elif op[0] == "data":
            result = chunk(world, device, bytes(op[1]))  # type: ignore[arg-type]
        elif op[0] == "valid":  # a whole binary, corrupted unless op[1] == 0
            data = bytearray(_VALID)
            if op[1]:
                data[50 * int(op[1])] ^= 0x40  # type: ignore[call-overload]
            result = upload(world, device, bytes(data))
            assert result == (OK if not op[1] else INTEGRITY)
            if result == OK:  # applied: the device resets with the reason ``update``
                assert world.run_until(lambda: device.boot_count == 2, timeout=30)
                assert modules(world, device)[2] == (USER, 1, 7)
                return
        elif op[0] == "finish":
            result = finish(world, device, bool(op[1]))
        elif op[0] == "cancel":
            result = send(world, device, T.CANCEL_FIRMWARE_UPDATE)[0]
        else:
            result = send(world, device, int(op[0]), bytes(op[1]))[0]  # type: ignore[call-overload]
        assert result in _CODES, (op, result)
        if result != OK:
            world.run_for(2)
            assert device.boot_count == 1 and modules(world, device) == before


def test_a_power_loss_before_the_apply_leaves_the_modules_alone() -> None:
    """The FINISH reply was read, but the power went before the completion handler ran: the
    RAM that held the transfer is gone, nothing is applied and no reset follows."""
    world, device, _ = make_device("p2", connected=False)
    assert upload(world, device, p2_user()) == OK
    device.power_cycle()
    world.run_for(10)
    assert device.boot_count == 2 and modules(world, device)[2] == (USER, 1, 1)
    assert [r.fields["reset_reason"] for r in world.trace.records
            if r.kind == "device.boot"] == ["power_down", "power_down"]
