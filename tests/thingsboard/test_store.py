"""The ThingsBoard store migrates, persists and refuses a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cloud_sim.thingsboard.demo import seed_demo
from cloud_sim.thingsboard.service import ThingsBoardService
from cloud_sim.thingsboard.store import SCHEMA_VERSION, TbStore
from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.world import World


def test_store_persists_and_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "tb.db"
    service = ThingsBoardService(World(1), store=TbStore(path))
    seed_demo(service, devices=2)
    service.store.close()
    again = ThingsBoardService(World(2), store=TbStore(path))
    demo = seed_demo(again, devices=2)
    assert again.store.schema_version == SCHEMA_VERSION
    assert [d.name for d in demo.devices] == ["Claim Button 1", "Claim Button 2"]
    assert again.login("customerB@thingsboard.org", "customer")["token"]
    again.store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError):
        TbStore(path)
