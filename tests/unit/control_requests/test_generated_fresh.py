"""control_requests/_pb must be exactly what scripts/gen_proto.py generates from proto/."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "gen_proto.py"
PB_DIR = REPO / "control_requests" / "_pb"


def _script_pin() -> str:
    match = re.search(r'^GRPCIO_TOOLS_VERSION = "([^"]+)"', SCRIPT.read_text(), re.M)
    assert match
    return match.group(1)


def test_generated_files_are_fresh() -> None:
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools not installed (pip install -e '.[dev-proto]')")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr.strip() or done.stdout.strip()


def test_pyproject_pins_match_generated_code() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"grpcio-tools=={_script_pin()}" in project["optional-dependencies"]["dev-proto"]
    gencode = {
        re.search(r"^# Protobuf Python Version: (\S+)$", path.read_text(), re.M).group(1)  # type: ignore[union-attr]
        for path in PB_DIR.glob("*_pb2.py")
    }
    assert len(gencode) == 1
    (protobuf,) = [dep for dep in project["dependencies"] if dep.startswith("protobuf")]
    assert f">={gencode.pop()}" in protobuf


def test_every_proto_has_generated_modules() -> None:
    for source in (REPO / "proto").glob("*.proto"):
        stem = source.stem + "_pb2"
        assert (PB_DIR / f"{stem}.py").is_file() and (PB_DIR / f"{stem}.pyi").is_file()
    assert not list((REPO / "proto").glob("*.py")), "proto/ holds .proto sources only"
