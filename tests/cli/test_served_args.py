"""Served commands refuse what they cannot run, in one line (QA: ``--speed 1e308`` was an
internal OverflowError, a non-UTF-8 ``--config`` an internal UnicodeDecodeError, and an
unreachable ``--api`` of ``fwsim device run`` an internal ConnectError)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.cli import main


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" not in err[0] and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("argv", [["up", "--speed", "1e308", "--for", "1"],
                                  ["device", "run", "--cloud", "coap://127.0.0.1:9", "--speed",
                                   "2e6"]])
def test_a_speed_beyond_real_time_serving_is_refused(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err  # argparse: the usage, then the one error line
    assert "at most 1e+06" in err.strip().splitlines()[-1] and "Traceback" not in err


def test_a_config_that_is_not_text_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(b"\xff\xfe")
    assert main(["up", "--config", str(config), "--for", "1", "--db", ":memory:", "--http", "0",
                 "--coap", "0"]) == 2
    assert _one_line(capsys).endswith("is not a TOML file (not UTF-8 text)")


def test_device_run_with_an_unreachable_api_is_a_one_line_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["device", "run", "--cloud", "coap://127.0.0.1:9", "--api",
                 "http://127.0.0.1:9", "--admin-token", "x" * 20, "--for", "1",
                 "--quiet"]) == 2
    assert "cannot reach the cloud's REST API at http://127.0.0.1:9" in _one_line(capsys)
