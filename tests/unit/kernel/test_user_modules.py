"""User firmware loaded from a file: a module name that is the same in every process, and the
file's name (not the private module name) wherever the firmware is named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.apps import firmware_name, resolve_firmware
from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.user_modules import load_file

LAMP = """
from firmware_sim.system.app import Firmware


class Lamp(Firmware):
    pass
"""


def test_a_firmware_file_is_named_by_its_file(tmp_path: Path) -> None:
    source = tmp_path / "lamp.py"
    source.write_text(LAMP)
    factory = resolve_firmware(f"{source}:Lamp")
    assert firmware_name(factory) == "lamp.py:Lamp"


def test_the_module_name_is_the_same_in_every_process(tmp_path: Path) -> None:
    source = tmp_path / "lamp.py"
    source.write_text(LAMP)
    here = load_file(source, "firmware").__name__
    code = ("import sys; from pathlib import Path; from firmware_sim.kernel.user_modules "
            f"import load_file; print(load_file(Path({str(source)!r}), 'firmware').__name__)")
    for seed in ("1", "2"):  # Python's str hash differs between these processes
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, env={"PYTHONHASHSEED": seed, "PATH": ""},
                               cwd=Path(__file__).resolve().parents[3]).stdout.strip()
        assert other == here


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"firmware file .* not found"):
        load_file(tmp_path / "nope.py", "firmware")
