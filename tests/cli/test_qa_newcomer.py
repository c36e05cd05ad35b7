"""A newcomer's findings on the CLI: hand-made traces with lone surrogates, non-UTF-8 file names,
a user firmware that raises, --all with --firmware, an empty log, trace show's filters. Each is a
result or a one-line ``fwsim: error:`` (exit status 2), never an internal error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from firmware_sim.cli import main

REAL_LOG = Path(__file__).parents[1] / "fidelity" / "data" / "thread-resume.log"
SURROGATE_LINE = ('{"fields":{"message":"\\udcff"},"kind":"log","layer":"log","node":"\\udcff",'
                  '"seq":1,"t_us":0}\n')
SURROGATE_LOG = ('{"fields":{"uptime_ms":5,"category":"app","level":"INFO","message":"\\udcff"},'
                 '"kind":"log","layer":"log","node":"\\udcff","seq":1,"t_us":0}\n')


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status: int, err: str) -> str:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fwsim: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def resume_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "resume.jsonl"
    assert main(["scenario", "run", "resume-bug", "--quiet", "--trace", str(path)]) == 0
    return path


def test_a_log_record_without_log_fields_is_a_one_line_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "surr.jsonl"
    trace.write_text(SURROGATE_LINE)
    for argv in (["trace", "show", str(trace), "--log"],
                 ["logdiff", str(REAL_LOG), "--trace", str(trace)]):
        line = one_line_error(*run(capsys, *argv)[::2])
        assert "not a Device OS log record" in line and "uptime_ms" in line


def test_lone_surrogates_are_printed_and_drawn(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    trace = tmp_path / "surr.jsonl"
    trace.write_text(SURROGATE_LOG)
    status, out, _ = run(capsys, "trace", "show", str(trace), "--log")
    assert status == 0 and out == "\\udcff: 0000000005 [app] INFO: \\udcff\n"
    status, out, _ = run(capsys, "trace", "show", str(trace))
    assert status == 0 and "\\udcff" in out
    status, out, err = run(capsys, "trace", "diagram", str(trace), "--title", "\udcff")
    assert status == 0, err
    assert "\\udcff" in (tmp_path / "surr.html").read_text()


@pytest.mark.skipif(sys.platform != "linux", reason="a non-UTF-8 file name (POSIX bytes)")
def test_a_non_utf8_file_name_is_a_title_and_a_source(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, resume_trace: Path) -> None:
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/t\xff.jsonl"))
    odd.write_bytes(resume_trace.read_bytes())
    status, out, err = run(capsys, "trace", "diagram", str(odd))
    assert status == 0, err
    assert "t\\udcff.mmd" in out
    html = tmp_path / "hh.html"
    status, out, err = run(capsys, "logdiff", str(REAL_LOG), "--trace", str(odd),
                           "--html", str(html))
    assert status == 0, err
    assert "t\\udcff.jsonl" in html.read_text()


BOOM = '''from firmware_sim.apps import Firmware


def boom():
    raise RuntimeError("boom in my firmware")


class App(Firmware):
    def setup(self, particle):
        particle.after(1.0, boom)
'''


def test_an_exception_of_the_users_firmware_names_its_file_and_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    firmware = tmp_path / "boom.py"
    firmware.write_text(BOOM)
    status, _, err = run(capsys, "scenario", "run", "fresh-claim", "--firmware",
                         f"{firmware}:App")
    line = one_line_error(status, err)
    assert line == (f"fwsim: error: firmware {firmware}:App raised RuntimeError: boom in my "
                    "firmware (boom.py:5, in boom)")


def test_all_with_a_firmware_skips_the_thingsboard_scenarios(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    firmware = tmp_path / "my_app.py"
    firmware.write_text("from firmware_sim.apps import Firmware\n\n\nclass App(Firmware):\n"
                        "    pass\n")
    status, out, err = run(capsys, "scenario", "run", "--all", "--firmware",
                           f"{firmware}:App", "--json")
    assert status in (0, 1) and "error" not in err, err
    document = json.loads(out)
    skipped = {s["name"] for s in document["scenarios"] if s["skipped"]}
    ran = {s["name"] for s in document["scenarios"] if not s["skipped"]}
    assert "tb-device-key" in skipped and all(name.startswith("tb-") for name in skipped)
    assert {"fresh-claim", "resume-bug"} <= ran


@pytest.mark.parametrize("content", [b"", b"\x00\xff random bytes\n not a log line\n"])
def test_a_log_without_log_lines_is_bad_input(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path, content: bytes) -> None:
    log = tmp_path / "empty.log"
    log.write_bytes(content)
    line = one_line_error(*run(capsys, "logdiff", str(log), "--scenario", "resume-bug")[::2])
    assert "no Device OS log lines" in line


@pytest.mark.parametrize("argv, says", [
    (["--kind", "handshake.resumd"], "no record of kind 'handshake.resumd'"),
    (["--node", "p3"], "no record of node 'p3'"),
    (["--log", "--kind", "log"], "does not combine with --kind"),
    (["--for", "1"], "--for applies to --follow only"),
])
def test_trace_show_filters_that_match_nothing_or_do_not_apply(
        capsys: pytest.CaptureFixture[str], resume_trace: Path, argv: list[str],
        says: str) -> None:
    line = one_line_error(*run(capsys, "trace", "show", str(resume_trace), *argv)[::2])
    assert says in line


@pytest.mark.parametrize("value", ["-1", "nan", "0", "inf"])
def test_trace_show_for_must_be_a_positive_duration(
        capsys: pytest.CaptureFixture[str], resume_trace: Path, value: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["trace", "show", str(resume_trace), "--follow", "--for", value])
    assert stopped.value.code == 2
    assert "positive number" in capsys.readouterr().err


def test_trace_show_log_prints_node_and_serial_line(capsys: pytest.CaptureFixture[str],
                                                    resume_trace: Path) -> None:
    status, out, _ = run(capsys, "trace", "show", str(resume_trace), "--log", "--node", "p2")
    assert status == 0
    assert out.splitlines()[0] == "p2: 0000010000 [system] INFO: Cloud: connecting"


def test_modules_in_the_current_folder_are_found(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_qa_app.py").write_text(
        "from firmware_sim.apps import Firmware\n\n\nclass App(Firmware):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    status, out, err = run(capsys, "scenario", "run", "fresh-claim", "--firmware",
                           "my_qa_app:App", "--quiet")
    assert status == 0, err
    assert out.startswith("PASS fresh-claim")
