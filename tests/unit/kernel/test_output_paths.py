"""Output paths are checked before anything is written: a trace file under a file says "not a
directory" (the errno of the call that tripped on it said "File exists"), wherever the trace is
opened - the kernel's sink, the testbed's live sink (``fwsim up --trace``) and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.output_paths import check_output_file, output_folder
from firmware_sim.kernel.trace import JsonlSink
from firmware_sim.testbed.testbed import LiveJsonlSink


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


@pytest.mark.parametrize("sink", [JsonlSink, LiveJsonlSink])
def test_a_trace_under_a_file_is_not_a_directory(sink: type, a_file: Path) -> None:
    with pytest.raises(ConfigurationError, match=f"cannot write trace file {a_file}/t.jsonl: "
                                                 f"{a_file} is not a directory"):
        sink(a_file / "t.jsonl")


def test_a_folder_is_not_a_trace_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="it is a directory"):
        check_output_file(tmp_path, "trace file")


def test_an_output_folder_is_made_private_or_refused(tmp_path: Path, a_file: Path) -> None:
    made = output_folder(tmp_path / "a" / "b")
    assert made.is_dir() and made.stat().st_mode & 0o777 == 0o700
    with pytest.raises(ConfigurationError, match="is not a directory"):
        output_folder(a_file / "sub")


def test_fwsim_up_says_not_a_directory(a_file: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "up", "--http", "0",
                           "--coap", "0", "--db", ":memory:", "--for", "1", "--quiet",
                           "--trace", str(a_file / "t.jsonl")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"fwsim: error: cannot write trace file {a_file}/t.jsonl: "
                                   f"{a_file} is not a directory")
