"""Every name a package's ``__all__`` promises resolves (curated public API)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "firmware_sim", "firmware_sim.kernel", "firmware_sim.hal", "firmware_sim.system",
    "firmware_sim.communication", "firmware_sim.services", "firmware_sim.scenarios",
    "control_requests", "cloud_sim", "transports", "transports.usb", "transports.serial",
    "transports.ble", "transports.softap",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported, f"{name} has no curated __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for attribute in exported:
        assert getattr(module, attribute) is not None, f"{name}.{attribute}"
