"""The live log, trace following, CI outputs and the one-line errors of issue 13's findings."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from firmware_sim.cli import main, missing_extra_hint
from firmware_sim.cli.live import LiveLog
from firmware_sim.kernel.trace import TraceRecord, read_jsonl
from firmware_sim.scenarios import CATALOG
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_live_log_labels_clocks_filters_levels_and_colours() -> None:
    bed = Testbed(TestbedSpec(seed=1, devices=provisioned("dev"), timing="fast"))
    stream = io.StringIO()
    log = LiveLog(bed.world, devices=["dev"], cloud="cloud", level="info", stream=stream,
                  color=False)
    log.name_ids([("dev", bed.device.device_id)])
    log.start()
    bed.power_on()
    bed.run_for(10)
    bed.cloud.forget_session(bed.device.device_id)  # type: ignore[union-attr]
    log.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("log: dev lines: the Device OS log, stamped with that device's "
                               "uptime in ms; cloud lines: cloud events, stamped with world time")
    assert any(re.match(r"^dev +\d{10} \[system\] INFO: Cloud connected", line)
               for line in lines)
    assert not any(" TRACE: " in line for line in lines)  # below --log-level info
    assert any(re.match(r"^cloud +world \d+\.\d{3}s full handshake with dev \(e00f", line)
               for line in lines)
    assert re.match(r"^cloud +world .* session of dev \(e00f\w+\) dropped", lines[-1])
    record = TraceRecord(0, 1, "dev", "log", "log", {"uptime_ms": 5, "level": "WARN",
                                                      "category": "system", "message": "x"})
    painted = LiveLog(bed.world, devices=["dev"], stream=io.StringIO(), color=True)
    assert painted.format(record) == ("\x1b[32mdev     \x1b[0m "
                                      "\x1b[33m0000000005 [system] WARN: x\x1b[0m")
    bed.close()


def test_live_log_shows_function_calls_and_variable_reads() -> None:
    from firmware_sim.kernel.trace import TraceRecord as Record

    bed = Testbed(TestbedSpec(seed=1, devices=provisioned("dev"), timing="fast"))
    log = LiveLog(bed.world, devices=["dev"], cloud="cloud", stream=io.StringIO(), color=False)
    device_id = bed.device.device_id
    log.name_ids([("dev", device_id)])
    who = f"dev ({device_id})"
    for kind, fields, text in (
            ("function.to_device", {"name": "brightness", "mid": 3},
             f"function brightness called on {who}"),
            ("variable.to_device", {"name": "level", "mid": 4},
             f"variable level asked of {who}"),
            ("call.answer", {"name": "brightness", "code": "2.04", "outcome": "ok"},
             f"{who} answered brightness: 2.04 (ok)"),
            ("call.timeout", {"name": "level"}, f"{who} did not answer level (timed out)"),
            ("function.undeliverable", {"name": "brightness"},
             f"function brightness not sent: {who} is offline")):
        line = log.format(Record(2_500_000, 7, "cloud", "endpoint", kind,
                                 {"device_id": device_id, **fields}))
        assert line == f"cloud    world 2.500s {text}", line
    bed.close()


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushed: list[str] = []  # the text as it stood at each flush

    def flush(self) -> None:
        self.flushed.append(self.getvalue())


def test_live_log_flushes_once_per_loop_round_in_order_and_at_once_without_a_loop() -> None:
    import asyncio

    bed = Testbed(TestbedSpec(seed=1, devices=provisioned("dev"), timing="fast"))
    lines = [f"line {n}" for n in range(5)]
    stream = _CountingStream()
    log = LiveLog(bed.world, stream=stream, color=False)
    for line in lines[:2]:  # no running loop: each line flushed as printed
        log._print(line)
    assert stream.flushed == ["line 0\n", "line 0\nline 1\n"]

    async def one_round_then_next() -> list[str]:
        for line in lines[2:]:
            log._print(line)
        seen = list(stream.flushed)  # nothing flushed within the round
        await asyncio.sleep(0)
        return seen

    assert len(asyncio.run(one_round_then_next())) == 2
    assert stream.flushed[2:] == ["".join(f"{line}\n" for line in lines)]  # one flush, in order
    bed.close()


def test_trace_show_follow_prints_records_as_they_are_appended(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text("")
    follow = subprocess.Popen([sys.executable, "-m", "firmware_sim.cli", "trace", "show",
                               "--follow", str(trace), "--log", "--for", "8"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout or []), daemon=True)
    reader.start()
    time.sleep(1.0)
    record = TraceRecord(1000, 1, "dev", "log", "log", {"uptime_ms": 1, "level": "INFO",
                                                         "category": "system",
                                                         "message": "hello"})
    with trace.open("a") as stream:
        stream.write(record.to_json()[:20])  # half a line: not printed yet
        stream.flush()
        time.sleep(0.5)
        stream.write(record.to_json()[20:] + "\n")
    deadline = time.monotonic() + 5
    while not lines and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lines == ["dev: 0000000001 [system] INFO: hello\n"]
    follow.terminate()
    follow.wait(5)
    reader.join(5)
    assert follow.stdout is not None
    follow.stdout.close()


def test_scenario_run_json_trace_dir_and_firmware(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    code, out, _ = run(capsys, "scenario", "run", "resume-bug", "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"] and report["seed"] == 0
    assert all(check["ok"] for check in report["checks"]) and report["wall_seconds"] >= 0
    code, out, _ = run(capsys, "scenario", "run", "--all", "--json", "--trace-dir",
                       str(tmp_path / "new" / "dir"))
    document = json.loads(out)
    assert code == 0 and document["total"] == len(CATALOG) == document["passed"]
    assert sorted(p.stem for p in (tmp_path / "new" / "dir").glob("*.jsonl")) == sorted(CATALOG)
    assert read_jsonl(tmp_path / "new" / "dir" / "resume-bug.jsonl")[0].kind == "world.created"
    code, out, _ = run(capsys, "scenario", "run", "resume-bug", "--firmware",
                       "session-end-workaround", "--quiet")
    assert code == 1 and out.startswith("FAIL resume-bug (seed 0): expected: BUG REPRODUCED")
    assert "failed checks: only the first boot did a full handshake" in out


@pytest.mark.parametrize("argv,message", [
    (["scenario", "run", "tb-device-key", "--firmware", "default"],
     "scenario tb-device-key has no Particle device: --firmware does not apply"),
    (["scenario", "run", "resume-bug", "--firmware", "no_such_module:App"], "no_such_module"),
    (["device", "run", "--cloud", "coap://127.0.0.1:9", "--api", "http://127.0.0.1:1",
      "--scenario", "product-customer-transfer", "--timeout", "5"],
     "cannot reach the cloud's REST API at http://127.0.0.1:1"),
    (["up", "--device", "a:p2", "--device", "a:p2", "--db", ":memory:"],
     "device names must be unique: a, a"),
    (["ctl", "devices", "--url", "http://127.0.0.1:1"], "cannot reach http://127.0.0.1:1"),
])
def test_one_line_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                         message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_up_config_file_errors_are_one_line(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[device]]\nname = 'x'\ncolour = 'red'\n")
    code, _, err = run(capsys, "up", "--config", str(bad), "--db", ":memory:")
    assert code == 2 and "device 1 has unknown keys colour" in err
    bad.write_text("not = [toml")
    code, _, err = run(capsys, "up", "--config", str(bad), "--db", ":memory:")
    assert code == 2 and "is not valid TOML" in err


def test_ble_os_bluetooth_without_bluez_is_one_line(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("bleak")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    code, _, err = run(capsys, "ble", "scan", "--os-bluetooth")
    assert code == 2
    assert err.strip() == ("fwsim: error: --os-bluetooth needs BlueZ: no D-Bus system bus at "
                           "/nonexistent/bus (start dbus and bluetoothd, or use --hci with "
                           "`fwsim serve --ble ...`, or --in-process)")


def test_a_missing_module_names_its_extra() -> None:
    assert missing_extra_hint("uvicorn.server") == (
        "this needs uvicorn, which is not installed: install fwsim[cloud] for this")
    assert "fwsim[bumble]" in missing_extra_hint("bumble")
    assert missing_extra_hint("mystery") == ("this needs the Python module 'mystery', which is "
                                             "not installed")


def test_serial_link_folder_is_created(tmp_path: Path) -> None:
    link = tmp_path / "made" / "for" / "ttyACM0"
    done = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "serve", "--serial-link",
                           str(link), "--for", "1", "--timing", "fast", "--quiet"],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert f"(link {link})" in done.stdout
