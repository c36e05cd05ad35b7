"""DCT layout, HAL claim-code semantics (device-os.md §1) and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.hal import (
    CLAIM_CODE_SIZE,
    DCT_LAYOUT,
    DCT_SIZE,
    FIELDS,
    HAL_GET_ERROR,
    ClaimCodeHal,
    Dct,
    DctSizeError,
    DeviceConfigHal,
    FileDctBackend,
    MemoryDctBackend,
)
from firmware_sim.kernel.errors import PowerCut

CODE63 = "rCFr2KAJNgzJ2rR3Jm1ZoUd7G4Sr3ak7MRHdWrM274eYzInP1+psZ0fP2qNehlj"


def test_layout_matches_device_os_static_asserts() -> None:
    assert DCT_SIZE == 8391
    expected = {"claim_code": (1762, 63), "claimed": (1825, 1), "ssid_prefix": (1826, 26),
                "device_code": (1852, 6), "device_secret": (8119, 15), "setup_done": (8134, 1),
                "country_code": (1758, 4), "device_private_key": (34, 1216),
                "device_public_key": (1250, 384), "device_id": (3618, 12),
                "eap_config": (3823, 4296), "reserved2": (8172, 219)}
    for name, (offset, size) in expected.items():
        assert (FIELDS[name].offset, FIELDS[name].size) == (offset, size), name
    # Contiguous and ending at 8391.
    position = 0
    for field in DCT_LAYOUT:
        assert field.offset == position, field.name
        position = field.end
    assert position == DCT_SIZE


def test_a_new_dct_is_all_0xff() -> None:
    dct = Dct()
    assert dct.image() == b"\xff" * 8391
    hal = ClaimCodeHal(dct)
    assert not hal.is_device_claimed()
    assert hal.pending_code() is None  # first byte 0xFF: not published


def test_set_writes_exactly_63_bytes_nul_padded_and_leaves_claimed_alone() -> None:
    dct = Dct()
    hal = ClaimCodeHal(dct)
    assert hal.set_claim_code("SHORT") == 0
    assert dct.read(1762, 63) == b"SHORT" + b"\x00" * 58
    assert dct.read(1825, 1) == b"\xff"
    assert dct.read(1761, 1) == b"\xff" and dct.read(1826, 1) == b"\xff"
    assert hal.pending_code() == "SHORT"


def test_longer_codes_are_truncated_to_63_without_validation() -> None:
    hal = ClaimCodeHal(Dct())
    hal.set_claim_code(CODE63 + "EXTRA")
    assert hal.stored_code() == CODE63.encode()
    hal.set_claim_code(b"\x01\x02 not base64 \xfe")
    assert hal.stored_code().startswith(b"\x01\x02 not base64 \xfe\x00")


def test_empty_code_means_no_code() -> None:
    hal = ClaimCodeHal(Dct())
    hal.set_claim_code("")
    assert hal.stored_code() == b"\x00" * 63
    assert hal.pending_code() is None


def test_clear_writes_one_nul_and_marks_claimed_ascii_1() -> None:
    dct = Dct()
    hal = ClaimCodeHal(dct)
    hal.set_claim_code(CODE63)
    writes = dct.writes
    assert hal.set_claim_code(None) == 0
    assert dct.read(1762, 63) == b"\x00" + CODE63.encode()[1:]
    assert dct.read(1825, 1) == b"1"
    assert hal.is_device_claimed()
    assert dct.writes == writes + 2
    hal.set_claim_code(None)  # claimed already '1': only the NUL is written
    assert dct.writes == writes + 3


@pytest.mark.parametrize("value,claimed", [(0x31, True), (0x01, False), (0x00, False),
                                           (0xFF, False), (ord("2"), False)])
def test_only_ascii_1_counts_as_claimed(value: int, claimed: bool) -> None:
    dct = Dct()
    dct.write(1825, bytes([value]))
    assert ClaimCodeHal(dct).is_device_claimed() is claimed


def test_get_requires_a_buffer_larger_than_63() -> None:
    hal = ClaimCodeHal(Dct())
    hal.set_claim_code(CODE63)
    assert hal.get_claim_code(63) == (HAL_GET_ERROR, b"")
    assert HAL_GET_ERROR == 0xFFFF
    result, buf = hal.get_claim_code(64)
    assert result == 0 and buf == CODE63.encode() + b"\x00" and len(buf) == CLAIM_CODE_SIZE + 1


def test_file_backed_dct_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "dev" / "dct.bin"
    hal = ClaimCodeHal(Dct(FileDctBackend(path)))
    hal.set_claim_code(CODE63)
    assert path.stat().st_size == 8391
    reopened = ClaimCodeHal(Dct(FileDctBackend(path)))
    assert reopened.pending_code() == CODE63


@pytest.mark.parametrize("size", [0, 100, 8390, 8392, 16384])
def test_wrong_size_dct_file_is_refused_and_never_overwritten(tmp_path: Path, size: int) -> None:
    path = tmp_path / "dct.bin"
    content = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path.write_bytes(content)
    with pytest.raises(DctSizeError, match=f"has {size} bytes, expected 8391"):
        Dct(FileDctBackend(path))
    assert path.read_bytes() == content


def test_memory_backend_refuses_wrong_size_images() -> None:
    with pytest.raises(DctSizeError):
        MemoryDctBackend(b"\x00" * 10)


def _write_steps(backend_factory: type[FileDctBackend] | None, tmp: Path) -> list[str]:
    steps: list[str] = []
    backend = FileDctBackend(tmp / "count.bin") if backend_factory else MemoryDctBackend()
    ClaimCodeHal(Dct(backend, fault_hook=steps.append)).set_claim_code(CODE63)
    return steps


@pytest.mark.parametrize("file_backed", [False, True], ids=["memory", "file"])
def test_power_cut_at_every_step_leaves_the_whole_old_or_new_image(tmp_path: Path,
                                                                   file_backed: bool) -> None:
    """Cuts at the DCT's own steps, real files; the page cache is modelled in
    test_dct_power_cut.py (which also proves its check fails on unsafe writers)."""
    old, new = "A" * 63, CODE63
    steps = _write_steps(FileDctBackend if file_backed else None, tmp_path)
    assert steps[0] == "begin" and steps[-1] == "done" and "commit" in steps
    assert len([s for s in steps if s.startswith("modify:")]) == 63
    outcomes = set()
    for index, step in enumerate(steps):
        directory = tmp_path / f"cut{index}"
        backend = (FileDctBackend(directory / "dct.bin") if file_backed
                   else MemoryDctBackend())
        before = Dct(backend)
        ClaimCodeHal(before).set_claim_code(old)
        old_image = before.image()
        new_image = old_image[:1762] + new.encode() + old_image[1825:]

        def cut(current: str, target: str = step) -> None:
            if current == target:
                raise PowerCut(f"power lost at {target}")

        dying = Dct(backend, fault_hook=cut)
        with pytest.raises(PowerCut):
            ClaimCodeHal(dying).set_claim_code(new)
        with pytest.raises(PowerCut):
            dying.read(0, 1)  # the dead DCT refuses further use
        if file_backed:
            backend = FileDctBackend(directory / "dct.bin")  # a new process after reboot
        image = Dct(backend).image()
        assert image in (old_image, new_image), f"torn image after a cut at {step}"
        outcomes.add(image == new_image)
        if file_backed:
            assert not (directory / "dct.bin.tmp").exists()
            assert (directory / "dct.bin").stat().st_size == 8391
    assert outcomes == {False, True}


def test_device_config_fields() -> None:
    dct = Dct()
    config = DeviceConfigHal(dct)
    assert config.device_secret() is None
    config.set_device_secret("ABCDEFGHJKLMNPQ")
    assert dct.read(8119, 15) == b"ABCDEFGHJKLMNPQ"
    with pytest.raises(ValueError):
        config.set_device_secret("short")
    assert config.setup_code("P046AB1234ABC12") == "4ABC12"
    assert config.setup_code(None) == "XXXXXX"
    config.set_device_code("ZZ7788")
    assert config.setup_code("P046AB1234ABC12") == "ZZ7788"
    assert config.ssid_prefix() is None
    config.set_ssid_prefix("Photon")
    assert dct.read(1826, 7) == b"\x06Photon"
    assert config.ssid_prefix() == "Photon"
