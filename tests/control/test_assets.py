"""Assets over the firmware update requests and GET_ASSET_INFO (91) / GET_MODULE_INFO (90):
Device OS's ``HAL_FLASH_End`` hands an asset module to ``AssetManager::storeAsset``, the boot
lists what storage holds and what the user part requires, and a user part whose assets are
missing runs Device OS in safe mode."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from control_requests import RequestType as T
from control_requests._pb import storage_pb2
from firmware_sim.hal.module_binary import (
    Dependency,
    ExtensionType,
    ModuleFlag,
    ModuleFunction,
    asset_dependency_extension,
    build_asset_module,
    build_module,
    extension,
)
from firmware_sim.kernel import World
from firmware_sim.system import Device

from .conftest import make_device, send
from .test_firmware_update import upload

HELLO, OTHER = b"hello asset\n" * 40, b"another asset\n" * 30
BAD_DATA = -280


def user_part_requiring(*assets: tuple[str, bytes], version: int = 8) -> bytes:
    """A P2 user part with asset dependencies in its prefix, as ``particle bundle`` writes."""
    prefix = b"".join(asset_dependency_extension(name, hashlib.sha256(data).digest())
                      for name, data in assets) + extension(ExtensionType.END)
    return build_module(platform_id=32, function=ModuleFunction.USER_PART, index=1,
                        version=version, start_address=0x085F0000, body=b"\x11" * 500,
                        flags=ModuleFlag.PREFIX_EXTENSIONS, prefix_extensions=prefix,
                        dependency=Dependency(ModuleFunction.SYSTEM_PART, 1, 6200))


def asset_info(world: World, device: Device) -> storage_pb2.GetAssetInfoReply:
    result, reply = send(world, device, T.GET_ASSET_INFO)
    assert result == 0
    return storage_pb2.GetAssetInfoReply.FromString(reply)


def listed(assets: object) -> list[tuple[str, str, int, int]]:
    return [(a.name, a.hash.hex(), a.size, a.storage_size) for a in assets]  # type: ignore[attr-defined]


def applied(world: World, device: Device, data: bytes) -> None:
    """Upload ``data`` and wait for the reset that follows the FINISH reply."""
    boots = device.boot_count
    assert upload(world, device, data) == 0
    assert world.run_until(lambda: device.boot_count == boots + 1, timeout=30)
    world.run_for(0.5)


def test_an_applied_asset_is_stored_and_listed_as_available() -> None:
    world, device, _ = make_device("p2", connected=False)
    module = build_asset_module("hello.txt", HELLO)
    applied(world, device, module)
    info = asset_info(world, device)
    assert listed(info.available) == [("hello.txt", hashlib.sha256(HELLO).hexdigest(),
                                       len(HELLO), len(module))]
    assert list(info.required) == []  # the factory application requires none
    assert not device.safe_mode
    [stored] = [r for r in world.trace.records if r.kind == "ota.asset_stored"]
    assert stored.fields["name"] == "hello.txt" and stored.fields["storage_size"] == len(module)
    assert [r.fields["reset_reason"] for r in world.trace.records
            if r.kind == "device.boot"] == ["power_down", "update"]


def test_a_user_part_with_missing_assets_runs_in_safe_mode_until_they_arrive() -> None:
    world, device, _ = make_device("p2", connected=False)
    applied(world, device, user_part_requiring(("hello.txt", HELLO)))
    assert device.safe_mode
    digest = hashlib.sha256(HELLO).hexdigest()
    info = asset_info(world, device)
    assert list(info.available) == []
    assert listed(info.required) == [("hello.txt", digest, 0, 0)]
    modules = storage_pb2.GetModuleInfoReply.FromString(send(world, device, T.GET_MODULE_INFO)[1])
    user = modules.modules[2]
    assert (user.version, listed(user.asset_dependencies)) == (8, [("hello.txt", digest, 0, 0)])
    logged = [r.fields["message"] for r in world.trace.records if r.kind == "log"
              and "ssing" in str(r.fields.get("message", ""))]
    assert f"Missing hello.txt ({digest})" in logged, logged

    applied(world, device, build_asset_module("hello.txt", HELLO))
    assert not device.safe_mode
    info = asset_info(world, device)
    assert [a.name for a in info.available] == ["hello.txt"] == [a.name for a in info.required]
    reasons = [r.fields["reason"] for r in world.trace.records if r.kind == "system.safe_mode"]
    assert reasons == ["missing assets"]


def test_storing_an_asset_removes_those_the_application_does_not_require() -> None:
    """``clearUnusedAssets``: the factory application requires none, so a second asset replaces
    the first; one the application requires stays."""
    world, device, _ = make_device("p2", connected=False)
    applied(world, device, build_asset_module("a.txt", HELLO))
    applied(world, device, build_asset_module("b.txt", OTHER))
    assert [a.name for a in asset_info(world, device).available] == ["b.txt"]
    applied(world, device, user_part_requiring(("b.txt", OTHER), ("c.txt", HELLO)))
    applied(world, device, build_asset_module("c.txt", HELLO))
    assert [a.name for a in asset_info(world, device).available] == ["b.txt", "c.txt"]
    assert not device.safe_mode


def test_a_corrupted_asset_is_not_stored_and_the_device_still_resets() -> None:
    """FINISH cannot check an asset (``fetch_module`` returns it unchecked): it answers 0, the
    store fails BAD_DATA ("Unable to apply module") and the device resets anyway."""
    world, device, _ = make_device("p2", connected=False)
    module = bytearray(build_asset_module("hello.txt", HELLO))
    module[30] ^= 0x55
    applied(world, device, bytes(module))
    assert list(asset_info(world, device).available) == []
    [failed] = [r for r in world.trace.records if r.kind == "ota.apply_failed"]
    assert failed.fields["result"] == BAD_DATA


def test_assets_persist_in_the_storage_directory(tmp_path: Path) -> None:
    world, device, _ = make_device("p2", connected=False, storage_dir=tmp_path)
    applied(world, device, user_part_requiring(("hello.txt", HELLO)))
    applied(world, device, build_asset_module("hello.txt", HELLO))
    assert (tmp_path / "assets.json").exists()
    world2, again, _ = make_device("p2", connected=False, storage_dir=tmp_path)
    assert not again.safe_mode
    info = asset_info(world2, again)
    assert [a.name for a in info.available] == ["hello.txt"] == [a.name for a in info.required]


def _asset_like(name: bytes, payload: bytes, flags: int, flip: int) -> bytes:
    module = bytearray(build_module(
        platform_id=0, function=ModuleFunction.ASSET, index=0, version=0, start_address=0,
        flags=flags, body=payload,
        suffix_extensions=extension(ExtensionType.NAME, name)
        + extension(ExtensionType.HASH, bytes([0, 32]) + hashlib.sha256(payload).digest())))
    if flip:
        module[flip % len(module)] ^= 0xFF
    return bytes(module)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=200), st.sampled_from([1, 3, 0, 0x11]),
       st.integers(0, 400))
def test_any_asset_module_gives_a_device_os_code(name: bytes, payload: bytes, flags: int,
                                                 flip: int) -> None:
    """Odd names (empty, with '/', not UTF-8, too long), flags and flipped bytes: FINISH
    answers a Device OS code, the store either works or fails with one, the device resets and
    GET_ASSET_INFO still answers."""
    world, device, _ = make_device("p2", connected=False)
    result = upload(world, device, _asset_like(name, payload, flags, flip))
    assert result in (0, -1300, -1330, -1370)
    world.run_for(2)
    for record in world.trace.records:
        if record.kind == "ota.apply_failed":
            assert record.fields["result"] in (BAD_DATA, -191, -1900, -1903, -1906, -1911)
    assert device.boot_count == (2 if result == 0 else 1)
    assert len(asset_info(world, device).available) <= 1
