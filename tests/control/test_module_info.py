"""GET_MODULE_INFO (90) and GET_ASSET_INFO (91): the firmware modules Device OS reports in the
describe's own encoding, the same modules the serial console's ``s`` prints."""

from __future__ import annotations

import json

import pytest

from control_requests import RequestType as T
from control_requests import requests
from control_requests._pb import describe_pb2, storage_pb2
from transports.serial.device_port import DeviceConsoleServices

from .conftest import make_device, send

OK, NOT_SUPPORTED = 0, -120
ALL_CHECKS = 0x1E  # integrity, dependencies, range, platform


@pytest.mark.parametrize(("profile", "system_version"), [("p2", 6200), ("argon", 6200),
                                                         ("photon", 2302)])
def test_the_modules_and_their_dependencies(profile: str, system_version: int) -> None:
    world, device, _ = make_device(profile, connected=False)
    result, reply = send(world, device, T.GET_MODULE_INFO)
    assert result == OK
    message = storage_pb2.GetModuleInfoReply.FromString(reply)
    assert not message.modules_deprecated  # Device OS 6 fills in only the current form
    modules = requests.get_module_info().parse(reply)
    assert [(m.type, m.index, m.version) for m in modules] == [
        (describe_pb2.BOOTLOADER_MODULE, 0, 2300),
        (describe_pb2.SYSTEM_PART_MODULE, 1, system_version),
        (describe_pb2.USER_PART_MODULE, 1, device.options.app_version)]
    assert [m.dependencies for m in modules] == [
        (), ((describe_pb2.BOOTLOADER_MODULE, 0, 2300),),
        ((describe_pb2.SYSTEM_PART_MODULE, 1, system_version),)]
    for module in modules:
        assert module.checked_flags == module.passed_flags == ALL_CHECKS
        assert module.store == describe_pb2.MAIN_MODULE_STORE
        assert len(module.hash) == 32  # Device OS forces the SHA-256 in this reply
        assert 0 < module.size <= module.max_size
    for module in message.modules:
        assert module.HasField("hash")  # particle-usb reads hash.toString('hex')


def test_the_console_prints_the_same_modules(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    modules = requests.get_module_info().parse(send(world, device, T.GET_MODULE_INFO)[1])
    printed = json.loads("{" + DeviceConsoleServices(device).module_info_json() + "}")
    assert printed["p"] == 32
    assert [(m["f"], m["n"], m["v"], m["s"], m["vc"], m["vv"]) for m in printed["m"]] == [
        (f, str(m.index), m.version, m.max_size, m.checked_flags, m.passed_flags)
        for f, m in zip("bsu", modules, strict=True)]
    assert printed["m"][2]["u"] == modules[2].hash.hex()
    assert printed["m"][1]["d"] == [{"f": "b", "n": "0", "v": 2300}]


def test_the_user_part_hash_is_fixed_by_the_device() -> None:
    first = make_device("p2", connected=False, seed=1)
    again = make_device("p2", connected=False, seed=2)
    assert send(*first[:2], T.GET_MODULE_INFO) == send(*again[:2], T.GET_MODULE_INFO)


@pytest.mark.parametrize("profile", ["p2", "argon"])
def test_no_assets_on_a_simulated_device(profile: str) -> None:
    world, device, _ = make_device(profile, connected=False)
    assert send(world, device, T.GET_ASSET_INFO) == (OK, b"")  # both lists empty


def test_the_photon_has_no_assets() -> None:
    world, device, _ = make_device("photon", connected=False)
    assert send(world, device, T.GET_ASSET_INFO) == (NOT_SUPPORTED, b"")


def test_garbage_in_the_empty_requests_is_never_looked_at(p2: tuple) -> None:  # type: ignore[type-arg]
    world, device, _ = p2
    assert send(world, device, T.GET_MODULE_INFO, b"\xff\x00garbage")[0] == OK
    assert send(world, device, T.GET_ASSET_INFO, b"\xff" * 40) == (OK, b"")
