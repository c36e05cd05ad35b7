"""Scenarios pass and replay byte-identically; the store migrates and persists; QR output."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sim.thingsboard.device import ButtonConfig, ClaimButtonDevice, SecretMode, ServiceUplink
from cloud_sim.thingsboard.scenarios import TB_SCENARIOS
from cloud_sim.thingsboard.store import SCHEMA_VERSION, TbStore
from firmware_sim.kernel.errors import ConfigurationError

from .conftest import make_tb


@pytest.mark.parametrize("name", sorted(TB_SCENARIOS))
def test_scenario_passes(name: str) -> None:
    result = TB_SCENARIOS[name].run(seed=1)
    assert result.passed, [c.description for c in result.checks if not c.ok]
    assert result.timeline


def test_same_seed_same_trace(tmp_path: Path) -> None:
    scenario = TB_SCENARIOS["tb-wrong-key-evicts"]
    scenario.run(5, trace_path=tmp_path / "a.jsonl")
    scenario.run(5, trace_path=tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_store_persists_and_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "tb.db"
    from cloud_sim.thingsboard.demo import seed_demo
    from cloud_sim.thingsboard.service import ThingsBoardService
    from firmware_sim.kernel.world import World

    service = ThingsBoardService(World(1), store=TbStore(path))
    seed_demo(service, devices=2)
    service.store.close()
    again = ThingsBoardService(World(2), store=TbStore(path))
    demo = seed_demo(again, devices=2)
    assert again.store.schema_version == SCHEMA_VERSION
    assert [d.name for d in demo.devices] == ["Claim Button 1", "Claim Button 2"]
    assert again.login("customerB@thingsboard.org", "customer")["token"]
    again.store.close()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError):
        TbStore(path)


def test_secret_modes_and_qr_files(tmp_path: Path) -> None:
    tb = make_tb()
    device = tb.device("QR Dev")
    uplink = ServiceUplink(tb.service, tb.service.access_token_of(device), "http")
    button = ClaimButtonDevice(tb.world, "QR Dev", uplink,
                               ButtonConfig(qr_dir=tmp_path, duration_ms=5000))
    button.power_on()
    tb.world.run_for(1)
    assert button.secret and len(button.secret) == 12 and button.acked == 1
    assert (tmp_path / "QR_Dev.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "QR_Dev.svg").read_bytes()
    assert button.qr_text.count("\n") > 10
    fixed = ButtonConfig(secret=SecretMode.FIXED, fixed_secret="abc")
    with pytest.raises(ConfigurationError):
        ButtonConfig(secret=SecretMode.FIXED)
    assert fixed.fixed_secret == "abc"


def test_bad_token_over_coap_is_reported_by_the_device() -> None:
    tb = make_tb()
    button = ClaimButtonDevice(tb.world, "Lost", ServiceUplink(tb.service, "bad", "coap"),
                               ButtonConfig(secret=SecretMode.EMPTY, qr_text=False))
    button.power_on()
    tb.world.run_for(1)
    assert button.failed == 1 and button.secret == ""
    failed = tb.world.trace.first("claim.failed", node="Lost")
    assert failed is not None and failed.get("detail") == "4.01"
