"""What fwsim writes that holds secrets is its owner's alone, whatever the umask (security QA:
another local user read the DCT - the device's private key, enough to log in as it - the Wi-Fi
passwords, the cloud database's tokens and a trace's claim codes)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_sim.sqlite_store import SqliteStore
from firmware_sim.kernel.private_files import open_private_text, private_file
from firmware_sim.kernel.trace import JsonlSink
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the common default: files 0644, folders 0755
    try:
        yield
    finally:
        os.umask(old)


def test_a_stored_device_keeps_its_dct_and_wifi_file_private(tmp_path: Path) -> None:
    storage = tmp_path / "state" / "dev"
    spec = TestbedSpec(seed=1, devices=tuple(provisioned("d", storage_dir=storage)),
                       timing="fast", trace_path=tmp_path / "run.jsonl")
    with Testbed(spec) as bed:
        bed.power_on()
        assert bed.run_until(lambda: bed.devices["d"].cloud_connected, 30)
    assert mode(storage) == 0o700
    files = sorted(p.name for p in storage.iterdir())
    assert "dct.bin" in files and "wifi.json" in files
    for name in ("dct.bin", "wifi.json"):
        assert mode(storage / name) == 0o600, name
    assert mode(tmp_path / "run.jsonl") == 0o600


def test_the_cloud_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    store = SqliteStore(str(path))
    try:
        # the schema was written on opening: the WAL and its index exist
        made = [p for p in tmp_path.iterdir() if p.name.startswith("cloud.db")]
        assert {p.name for p in made} == {"cloud.db", "cloud.db-wal", "cloud.db-shm"}
        for p in made:
            assert mode(p) == 0o600, p.name
    finally:
        store.close()


def test_an_existing_file_is_narrowed_and_a_trace_sink_is_private(tmp_path: Path) -> None:
    wide = tmp_path / "old.db"
    wide.write_text("")
    os.chmod(wide, 0o644)
    private_file(wide)
    assert mode(wide) == 0o600
    rewritten = tmp_path / "old.txt"
    rewritten.write_text("x")
    os.chmod(rewritten, 0o666)
    with open_private_text(rewritten) as stream:
        stream.write("y")
    assert mode(rewritten) == 0o600 and rewritten.read_text() == "y"
    sink = JsonlSink(tmp_path / "t.jsonl")
    sink.close()
    assert mode(tmp_path / "t.jsonl") == 0o600


def test_the_missing_parents_of_a_private_folder_are_private_too(tmp_path: Path) -> None:
    """Security QA: ``--state-dir s`` made ``s`` 0755 (only the device folders in it were
    0700): ``mkdir(parents=True)`` gives the parents the default mode."""
    from firmware_sim.kernel.private_files import make_private_dir

    make_private_dir(tmp_path / "state" / "dev1")
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state" / "dev1").stat().st_mode & 0o777 == 0o700
    make_private_dir(tmp_path / "state" / "dev1")  # existing: no error, left alone
