"""A firmware engineer's findings with ``fwsim explore`` and scenario files, through the real
command line (a subprocess each, as they were found): Ctrl-C keeps what the search found, bad
output paths fail before any work, a firmware or a property that raises is named by its file
and line, a scenario's horizon is bounded, a claim code stored on a live session is a
claim-liveness violation, and the outputs are private, plural-correct and file-name safe."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FWSIM = str(Path(sys.executable).with_name("fwsim"))

FIRMWARE = '''
from firmware_sim import Firmware


class Crashy(Firmware):
    def setup(self, particle):
        particle.after(3.0, lambda: 1 / 0)
'''

PROPERTIES = '''
from firmware_sim.explore import Checker


class Boom(Checker):
    def on_record(self, record):
        if record.kind == "log":
            raise ValueError("my checker bug")


def returns_int(records):
    return 5


def always(records):
    return "it always breaks"
'''

WORLD = '''
[scenario]
name = "{name}"
horizon_s = {horizon}
[world]
cloud = "particle"
timing = "fast"
[[world.access_points]]
ssid = "HomeNet"
password = "home-pass-1"
[[world.devices]]
name = "p2"
firmware = "{firmware}"
wifi = ["HomeNet"]
[properties]
claim-liveness = {{}}
'''

SET_ONLY = WORLD.format(name="set-only", horizon=300.0, firmware="default") + '''
[[steps]]
at = 5.0
do = "phone.set_claim_code"
via = "control"
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "my_fw.py").write_text(FIRMWARE, encoding="utf-8")
    (tmp_path / "my_props.py").write_text(PROPERTIES, encoding="utf-8")
    (tmp_path / "crashy.toml").write_text(
        WORLD.format(name="crashy", horizon=60.0, firmware="my_fw:Crashy"), encoding="utf-8")
    (tmp_path / "huge.toml").write_text(
        WORLD.format(name="huge", horizon=1e300, firmware="default"), encoding="utf-8")
    (tmp_path / "setonly.toml").write_text(SET_ONLY, encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder\n", encoding="utf-8")
    return tmp_path


def fwsim(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FWSIM, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_the_search_and_keeps_what_it_found(project: Path) -> None:
    out = project / "found"
    proc = subprocess.Popen(
        [FWSIM, "explore", "--runs", "100000", "--out", str(out), "--progress"], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # this test's own runner may ignore SIGINT: the search must see a real Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while not re.search(rb"[1-9]\d* violating", seen) and time.monotonic() < deadline:
        chunk = os.read(proc.stderr.fileno(), 4096)
        if not chunk:
            break
        seen += chunk
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    stdout_text, stderr_text = stdout.decode(), (seen + stderr).decode()
    assert proc.returncode == 130, stdout_text + stderr_text
    assert re.search(r"^interrupted after \d+ runs \(Ctrl-C\)", stdout_text, re.M)
    assert "not shrunk (interrupted)" in stdout_text
    assert "/100000 runs" in stderr_text and "ETA" in stderr_text
    assert "fwsim: interrupted" not in stderr_text
    assert stderr_text.endswith("\n")  # the progress line was ended
    replays = sorted(out.glob("*.toml"))
    assert replays and len(list(out.glob("*.jsonl"))) == len(replays)
    replayed = fwsim(project, "scenario", "run", "--file", str(replays[0]), "--quiet")
    assert replayed.returncode == 0 and "reproduced" in replayed.stdout


@pytest.mark.parametrize("args, message", [
    (["explore", "--runs", "100000", "--out", "a-file"], "--out a-file is not a directory"),
    (["explore", "--runs", "100000", "--out", "a-file/sub"],
     "--out a-file/sub: a-file is not a directory"),
    (["scenario", "run", "resume-bug", "--trace", "a-file/t.jsonl"],
     "cannot write trace file a-file/t.jsonl: a-file is not a directory"),
    (["scenario", "run", "--file", "setonly.toml", "--trace", "a-file/t.jsonl"],
     "a-file is not a directory"),
    (["scenario", "run", "--file", "huge.toml"],
     "horizon_s must be at most 86400 (one virtual day), not 1e+300"),
    (["explore", "--file", "huge.toml", "--runs", "1"], "horizon_s must be at most 86400"),
    (["scenario", "run", "--file", "crashy.toml"],
     "firmware my_fw:Crashy raised ZeroDivisionError: division by zero (my_fw.py:7, in "
     "<lambda>)"),
    (["explore", "--property", "my_props:Boom", "--runs", "2"],
     "property my_props:Boom raised ValueError: my checker bug (my_props.py:8, in on_record)"),
    (["explore", "--property", "my_props:returns_int", "--runs", "1"],
     "property my_props:returns_int must return str or None"),
    (["explore", "--property", "os:system", "--runs", "1"],
     "property os:system: system is not a property: give a Checker subclass or a Python "
     "function"),
    (["explore", "--property", "no-lost-publish:event=", "--runs", "1"],
     "property no-lost-publish: event must not be empty"),
    (["trace", "diagram", "empty.jsonl"], "empty.jsonl holds no trace record"),
])
def test_mistakes_are_one_line_errors_before_any_search(project: Path, args: list[str],
                                                        message: str) -> None:
    # --runs 100000 would search for minutes: the error comes first
    one_line_error(fwsim(project, *args, timeout=30), message)


def test_a_firmware_that_raises_is_a_finding_with_a_replay_file(project: Path) -> None:
    result = fwsim(project, "explore", "--firmware", "my_fw:Crashy", "--runs", "3", "--out",
                   "crash", "--diagram")
    assert result.returncode == 1, result.stderr
    assert "- firmware-raised-ZeroDivisionError: 3 runs" in result.stdout
    assert ("firmware my_fw:Crashy raised ZeroDivisionError: division by zero (my_fw.py:7, in "
            "<lambda>)") in result.stdout
    assert "the firmware raised at t=" in result.stdout
    replay = project / "crash" / "firmware-raised-ZeroDivisionError.toml"
    again = fwsim(project, "scenario", "run", "--file", str(replay), "--quiet")
    assert again.returncode == 0
    assert "reproduced: firmware-raised (ZeroDivisionError) violated" in again.stdout
    # the diagrams show the claim codes, as the trace does: private like it
    for suffix in (".jsonl", ".mmd", ".html"):
        mode = replay.with_suffix(suffix).stat().st_mode & 0o777
        assert mode == 0o600, (suffix, oct(mode))


def test_a_code_stored_on_a_live_session_that_never_ends_breaks_claim_liveness(
        project: Path) -> None:
    result = fwsim(project, "scenario", "run", "--file", "setonly.toml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("claim-liveness [set-while-connected] at t=65.000000s: the claim code set on p2 at "
            "5.000 s, while it was connected to the cloud, was not confirmed within 60 s"
            ) in result.stdout


def test_progress_and_summary_of_a_small_search(project: Path) -> None:
    result = fwsim(project, "explore", "--runs", "2", "--no-shrink", "--progress",
                   "--property", "my_props:always", "--out", "mine")
    assert result.returncode == 1, result.stderr
    assert "2/2 runs" in result.stderr and "writing 1/1 my_props:always" in result.stderr
    assert re.search(r": 2 runs in [\d.]+ s .*; then writing [\d.]+ s\n", result.stdout)
    assert re.search(r"- my_props:always: 2 runs; not shrunk: \d+ actions\+faults\n",
                     result.stdout)
    assert "shrunk by" not in result.stdout
    # a file name without the colon of module:attr
    assert sorted(p.name for p in (project / "mine").iterdir()) == [
        "my_props_always.jsonl", "my_props_always.toml"]
    one = fwsim(project, "explore", "--runs", "1", "--property", "dct-untorn")
    assert "no violation in 1 run\n" in one.stdout and ": 1 run in " in one.stdout
    assert not re.search(r"(?<![\d.])1 runs\b", one.stdout)  # "(11 runs/s)" is fine


def test_a_diagram_that_cannot_be_written_names_its_file(project: Path) -> None:
    trace = project / "t.jsonl"
    assert fwsim(project, "scenario", "run", "resume-bug", "--trace", str(trace),
                 "--quiet").returncode == 0
    one_line_error(fwsim(project, "trace", "diagram", str(trace), "-o", "no/such/x"),
                   "cannot write the diagram no/such/x.mmd: No such file or directory")
    assert fwsim(project, "trace", "diagram", str(trace)).returncode == 0
    assert (project / "t.html").stat().st_mode & 0o777 == 0o600
