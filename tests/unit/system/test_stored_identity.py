"""A device kept in a storage folder has the same identity on every run (QA: the serial number
and the setup code derived from it changed between the first run and the next, while the
device id and the mobile secret were kept)."""

from __future__ import annotations

from pathlib import Path

from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device


def _identity(storage: Path, seed: int) -> tuple[str, str, str, str]:
    device = Device(World(seed), "dev1", profile="p2", storage_dir=storage)
    return device.device_id, device.serial_number, device.setup_code, device.mobile_secret


def test_the_identity_survives_a_restart(tmp_path: Path) -> None:
    first = _identity(tmp_path / "dev1", 5)
    assert _identity(tmp_path / "dev1", 5) == first
    assert _identity(tmp_path / "dev1", 5) == first
    assert _identity(tmp_path / "other", 5) == first  # same seed and name: the same device
