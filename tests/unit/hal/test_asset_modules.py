"""Asset modules, asset dependencies and modules found in a flash slot
(``firmware_sim/hal/module_binary.py``), against vectors binary-version-reader 3.1.3 wrote
(tests/interop/support/make_asset_vectors.js): ``createAssetModule`` and the user part of a
``createApplicationAndAssetBundle`` bundle."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.hal.module_binary import (
    RTL872X,
    STM32F2XX_PHOTON,
    AssetError,
    Dependency,
    ExtensionType,
    FlashRegion,
    ModuleBounds,
    ModuleFlag,
    ModuleFunction,
    OtaPlatform,
    Validation,
    asset_dependencies,
    asset_dependency_extension,
    build_asset_module,
    build_module,
    extension,
    fetch_module,
    find_slot_module,
    read_asset,
)
from firmware_sim.hal.modules import AssetStorage

VECTORS = Path(__file__).parent / "vectors"
HELLO = b"hello asset world\n" * 50
USER_END = 0x08600000 - 4
USER_SLOT = RTL872X.bounds[4]
BAD_DATA, NOT_ENOUGH_DATA = -280, -191


def small_user_part(*, dynamic_location: bool = True, suffix: bytes | None = None) -> bytes:
    """The P2 user part v9 behind ``p2-user-part-9-asset.bin`` (before bundling)."""
    product = extension(ExtensionType.PRODUCT_DATA, struct.pack("<HHH", 0xFFFF, 32, 9))
    return build_module(platform_id=32, function=ModuleFunction.USER_PART, index=1, version=9,
                        end_address=USER_END, body=bytes(range(256)),
                        dynamic_location=dynamic_location,
                        dependency=Dependency(ModuleFunction.SYSTEM_PART, 1, 6200),
                        suffix_extensions=product if suffix is None else suffix)


def flash_with(image: bytes, at: int) -> Callable[[int, int], bytes | None]:
    """``read(address, size)`` over a flash holding ``image`` at ``at``, erased elsewhere."""
    def read(address: int, size: int) -> bytes | None:
        if size < 0 or address < 0x08000000 or address + size > 0x08800000:
            return None
        out = bytearray(b"\xff" * size)
        low, high = max(address, at), min(address + size, at + len(image))
        if low < high:
            out[low - address:high - address] = image[low - at:high - at]
        return bytes(out)
    return read


def test_an_asset_module_from_binary_version_reader_reads_as_the_device_stores_it() -> None:
    module = (VECTORS / "asset-hello-txt.bin").read_bytes()
    asset = read_asset(module)
    assert (asset.name, asset.hash) == ("hello.txt", hashlib.sha256(HELLO).digest())
    assert (asset.size, asset.storage_size) == (len(HELLO), len(module))


@pytest.mark.parametrize("compress", [True, False])
def test_build_asset_module_round_trips(compress: bool) -> None:
    module = build_asset_module("data.bin", HELLO, compress=compress)
    asset = read_asset(module)
    assert (asset.name, asset.hash, asset.size) == ("data.bin", hashlib.sha256(HELLO).digest(),
                                                    len(HELLO))
    assert (len(module) < len(HELLO)) is compress


def test_a_bad_asset_module_fails_with_device_os_codes() -> None:
    good = bytearray(build_asset_module("a", HELLO))
    flipped = bytearray(good)
    flipped[40] ^= 1
    not_asset = build_module(platform_id=0, function=ModuleFunction.USER_PART, index=0,
                             version=0, start_address=0, flags=ModuleFlag.DROP_MODULE_INFO)
    no_name = build_module(platform_id=0, function=ModuleFunction.ASSET, index=0, version=0,
                           start_address=0, flags=ModuleFlag.DROP_MODULE_INFO,
                           suffix_extensions=extension(ExtensionType.HASH, bytes([0, 32])
                                                       + b"\x01" * 32)
                           + extension(ExtensionType.PRODUCT_DATA, b"\xff" * 6))
    cases = [(bytes(good[:60]), NOT_ENOUGH_DATA), (bytes(flipped), BAD_DATA),
             (not_asset, BAD_DATA), (no_name, BAD_DATA), (bytes(good) + b"\x00", BAD_DATA)]
    for data, code in cases:
        with pytest.raises(AssetError) as failed:
            read_asset(data)
        assert failed.value.code == code, data


def test_a_bundled_user_part_requires_its_asset() -> None:
    """binary-version-reader put the dependency in the prefix (PREFIX_EXTENSIONS, then END)."""
    data = (VECTORS / "p2-user-part-9-asset.bin").read_bytes()
    module = fetch_module(FlashRegion(data, len(data)), 0, RTL872X, [])
    assert module is not None and module.info.flags & ModuleFlag.PREFIX_EXTENSIONS
    [required] = asset_dependencies(FlashRegion(data, len(data)), module)
    assert (required.name, required.hash) == ("hello.txt", hashlib.sha256(HELLO).digest())


def test_asset_dependencies_in_the_suffix_and_an_invalid_hash() -> None:
    """A hash length other than 32 leaves the asset without a valid hash (Device OS's
    ``AssetHash``); a hash type other than SHA-256 is skipped."""
    digest = hashlib.sha256(b"x").digest()
    kind = ExtensionType.ASSET_DEPENDENCY
    data = small_user_part(suffix=asset_dependency_extension("x.txt", digest)
                           + extension(kind, bytes([0, 16]) + digest + b"odd.txt")
                           + extension(kind, bytes([1, 32]) + digest + b"md5.txt")
                           + extension(ExtensionType.PRODUCT_DATA, b"\xff" * 6))
    region = FlashRegion(data, len(data))
    module = fetch_module(region, 0, RTL872X, [])
    assert module is not None
    assert [(a.name, a.hash) for a in asset_dependencies(region, module)] == [
        ("x.txt", digest), ("odd.txt", b"")]


def test_the_p2_user_slot_is_found_by_the_dynamic_location_at_its_fixed_end() -> None:
    data = (VECTORS / "p2-user-part-9-asset.bin").read_bytes()
    start = USER_END + 4 - len(data)
    found = find_slot_module(flash_with(data, start), RTL872X, USER_SLOT)
    assert found is not None and found.usable and found.address == start
    assert found.module.info.version == 9
    assert found.module.passed & Validation.INTEGRITY
    assert found.module.sha256 == data[-38:-6]
    assert [a.name for a in found.assets] == ["hello.txt"]
    # the same bytes written lower: the fixed end reads erased, there is no user part
    lower = find_slot_module(flash_with(data, start - 0x10000), RTL872X,
                             USER_SLOT)
    assert lower is None
    # a user part without a dynamic location is not found either
    plain = small_user_part(dynamic_location=False)
    assert find_slot_module(flash_with(plain, USER_END + 4 - len(plain)),
                            RTL872X, USER_SLOT) is None


def test_a_corrupted_slot_module_fails_its_integrity_check_and_requires_nothing() -> None:
    data = bytearray((VECTORS / "p2-user-part-9-asset.bin").read_bytes())
    data[200] ^= 0xFF
    found = find_slot_module(flash_with(bytes(data), USER_END + 4 - len(data)),
                             RTL872X, USER_SLOT)
    assert found is not None and not found.module.passed & Validation.INTEGRITY
    assert found.assets == ()


def test_a_module_named_for_another_address_is_not_usable() -> None:
    """Photon: the user slot's module is read at the slot's start; its prefix must name it."""
    slot = STM32F2XX_PHOTON.bounds[3]
    elsewhere = build_module(platform_id=6, function=ModuleFunction.USER_PART, index=1,
                             version=3, start_address=slot.start_address + 0x100)
    found = find_slot_module(flash_with(elsewhere, slot.start_address),
                             STM32F2XX_PHOTON, slot)
    assert found is not None and not found.usable


_SMALL_SLOT = ModuleBounds(ModuleFunction.USER_PART, 1, 0x08600000 - 0x2000, 0x08600000,
                           0x2000, fixed_end=True)
_SMALL = OtaPlatform(platform_id=32, ota_size=0x2000, bounds=(_SMALL_SLOT,),
                     dynamic_user_location=True)
_BUNDLED = (VECTORS / "p2-user-part-9-asset.bin").read_bytes()
_ASSET = (VECTORS / "asset-hello-txt.bin").read_bytes()


def _mutated(base: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(base)
    for index, value in edits:
        data[index % len(data)] = value
    return bytes(data)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=600),
                 st.builds(_mutated, st.sampled_from([_BUNDLED, _ASSET]),
                           st.lists(st.tuples(st.integers(0, 399), st.integers(0, 255)),
                                    min_size=1, max_size=6))))
def test_any_bytes_are_read_without_an_exception(data: bytes) -> None:
    """Arbitrary and mutated asset modules and user parts, as stored assets and as the content
    of the P2 user slot: a Device OS code or nothing found, never an exception."""
    try:
        read_asset(data)
    except AssetError as failed:
        assert failed.code in (BAD_DATA, NOT_ENOUGH_DATA)
    region = FlashRegion(data, len(data))
    module = fetch_module(region, 0, RTL872X, [])
    if module is not None:
        asset_dependencies(region, module)
    read = flash_with(data, 0x08600000 - len(data))
    for platform, slot in ((_SMALL, _SMALL_SLOT), (RTL872X, USER_SLOT)):
        found = find_slot_module(read, platform, slot)
        assert found is None or found.module.info.function == ModuleFunction.USER_PART


def test_the_asset_storage_refuses_names_and_sizes_littlefs_would(tmp_path: Path) -> None:
    """UNVERIFIED choices (docs/firmware-update.md): directory-like names, and whole 4088-byte
    blocks counted against the capacity (blocks less the 10 reserved)."""
    storage = AssetStorage(tmp_path / "assets.json", blocks=13)  # 3 usable blocks
    for name, code in (("\0hidden", -1906), ("..", -1906), ("a/b", -1903), ("n" * 256, -1900)):
        module = build_asset_module(name, b"x")
        with pytest.raises(AssetError) as failed:
            storage.store(module, read_asset(module), [])
        assert failed.value.code == code
    big = build_asset_module("big", bytes(range(256)) * 40, compress=False)  # 3 blocks
    storage.store(big, read_asset(big), [])
    small = build_asset_module("small", b"y")
    with pytest.raises(AssetError) as failed:  # "big" is required, so it stays
        storage.store(small, read_asset(small), [read_asset(big)])
    assert failed.value.code == -1911
    storage.boot()
    assert [a.name for a in storage.available()] == ["big"]
    # a file that no longer validates is removed when the storage is read at boot
    data = json.loads((tmp_path / "assets.json").read_text())
    data["assets"].append({"name": "junk", "data": base64.b64encode(b"junk" * 30).decode()})
    (tmp_path / "assets.json").write_text(json.dumps(data))
    again = AssetStorage(tmp_path / "assets.json", blocks=13)
    assert [a.name for a in again.available()] == ["big"] and "junk" not in again.files()
