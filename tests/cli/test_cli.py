"""The fwsim command line: scenarios from the CLI, one-line errors, --help everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sim.cli import build_parser, main
from firmware_sim.kernel import read_jsonl
from firmware_sim.scenarios import TB_SCENARIOS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits for --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_scenario_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scenario", "list")
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names[:7] == [
        "fresh-claim", "resume-bug", "session-end-workaround", "session-end-too-early",
        "clear-session", "fixed-firmware", "product-customer-transfer"]
    assert names[7:] == list(TB_SCENARIOS)  # then the ThingsBoard stories


def test_scenario_run_prints_timeline_and_verdict(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    code, out, err = run(capsys, "scenario", "run", "resume-bug", "--seed", "7",
                         "--trace", str(trace))
    assert code == 0, err
    lines = out.splitlines()
    assert "[comm.protocol.handshake] INFO: Skipping HELLO message" in out
    assert lines[-1].startswith("PASS resume-bug (seed 7): BUG REPRODUCED")
    records = read_jsonl(trace)
    assert records[0].kind == "world.created" and records[0].fields["seed"] == 7
    assert records[-1].kind == "scenario.verdict"


@pytest.mark.parametrize("argv,message", [
    (["scenario", "run", "no-such"], "fwsim: error: unknown scenario 'no-such'"),
    (["scenario", "run", "resume-bug", "--seed", "abc"], "invalid seed 'abc'"),
    (["scenario", "run", "resume-bug", "--seed", "-5"], "invalid seed '-5'"),
    (["scenario", "run", "resume-bug", "--trace", "/dev/null/x.jsonl"],
     "fwsim: error: cannot write trace file /dev/null/x.jsonl"),
    (["trace", "show", "/nonexistent-dir/x.jsonl"], "fwsim: error: cannot read trace file"),
    (["no-such-command"], "invalid choice"),
])
def test_bad_input_is_one_line_and_non_zero(capsys: pytest.CaptureFixture[str],
                                            argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out
    error_lines = [line for line in err.splitlines() if "error" in line]
    assert len(error_lines) == 1


def test_wrong_size_dct_file_is_a_one_line_error(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    from firmware_sim.kernel import FwSimError, World
    from firmware_sim.system import Device

    (tmp_path / "dct.bin").write_bytes(b"\x00" * 42)
    with pytest.raises(FwSimError, match="has 42 bytes, expected 8391"):
        Device(World(), storage_dir=tmp_path)
    assert (tmp_path / "dct.bin").read_bytes() == b"\x00" * 42


def test_trace_show(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    run(capsys, "scenario", "run", "fresh-claim", "--quiet", "--trace", str(trace))
    code, out, _ = run(capsys, "trace", "show", str(trace), "--log")
    assert code == 0
    assert "p2: " in out and "Send spark/device/claim/code event for code" in out
    code, out, _ = run(capsys, "trace", "show", str(trace), "--kind", "claim.redeem")
    assert code == 0 and "outcome=claimed" in out


def _all_parsers() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    parser = build_parser()

    def walk(p: object, prefix: list[str]) -> None:
        for action in getattr(p, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, child in choices.items():
                    paths.append([*prefix, name])
                    walk(child, [*prefix, name])

    walk(parser, [])
    return paths


@pytest.mark.parametrize("path", _all_parsers(), ids=lambda p: " ".join(p) or "fwsim")
def test_help_everywhere(capsys: pytest.CaptureFixture[str], path: list[str]) -> None:
    code, out, _ = run(capsys, *path, "--help")
    assert code == 0 and "usage: fwsim" in out


def test_console_script_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "firmware_sim.cli", "scenario", "run",
                           "fixed-firmware", "--quiet"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PASS fixed-firmware (seed 0)")


def test_control_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "control", "list")
    assert code == 0
    rows = {line.split()[1]: line.split() for line in out.splitlines()[1:]}
    assert rows["SET_CLAIM_CODE"][0] == "200" and rows["SET_CLAIM_CODE"][3:] == ["yes"] * 4
    assert rows["SET_SECURITY_KEY"][3:6] == ["NOT_SUPPORTED"] * 3
    assert rows["SET_SOFTAP_SSID"][3:] == ["NOT_SUPPORTED"] * 3 + ["yes"]
    assert rows["WIFI_SET_CREDENTIALS"][0] == "113" and rows["WIFI_SET_CREDENTIALS"][3] == "app"
    assert rows["MESH_AUTH"][2] == "commented-out"
