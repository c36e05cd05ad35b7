"""The issue's "done when", one test each: found from scratch, shrunk, replayed byte for byte,
drawn; the fix and the workaround clean for the resume bug; injected safety bugs found."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.cli import main
from firmware_sim.explore import explore

BUDGET = 200  # runs; the same budget for every firmware below
RESUME_BUG = {"resumed-without-code", "session-end-lost"}


@pytest.fixture(scope="module")
def default_firmware(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    out = tmp_path_factory.mktemp("found")
    report = explore("p2-provisioning", properties=["claim-liveness"], runs=BUDGET, seed=0,
                     out=out, diagram=True, progress=False)
    return report, out


def test_the_resume_bug_and_the_too_early_session_end_are_found_from_scratch(
        default_firmware: tuple[object, Path]) -> None:
    report, _ = default_firmware
    assert report.found("claim-liveness", "resumed-without-code")  # type: ignore[attr-defined]
    assert report.found("claim-liveness", "session-end-lost")  # type: ignore[attr-defined]
    resume = report.finding("claim-liveness", "resumed-without-code")  # type: ignore[attr-defined]
    early = report.finding("claim-liveness", "session-end-lost")  # type: ignore[attr-defined]
    for finding in (resume, early):
        assert finding.after <= 5
        assert finding.after <= finding.before
    # the resume bug needs nothing but the phone's provisioning; the too-early publish needs
    # an application publish of spark/device/session/end while the device reconnects
    assert [s.action for s in resume.scenario.schedule.steps] == ["phone.provision"]
    actions = [s.action for s in early.scenario.schedule.steps]
    assert "phone.provision" in actions
    assert any(a.startswith("app.publish") for a in actions)


def test_the_shrunk_schedules_replay_byte_identically_from_their_toml_files(
        default_firmware: tuple[object, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    report, _ = default_firmware
    for finding in report.findings:  # type: ignore[attr-defined]
        replay = finding.files["replay"]
        again = tmp_path / f"{finding.name}.jsonl"
        assert main(["scenario", "run", "--file", str(replay), "--trace", str(again)]) == 0
        assert again.read_bytes() == finding.files["trace"].read_bytes()
        assert f"PASS {finding.name}" in capsys.readouterr().out


def test_their_diagrams_render(default_firmware: tuple[object, Path]) -> None:
    report, _ = default_firmware
    for finding in report.findings:  # type: ignore[attr-defined]
        mermaid = finding.files["mermaid"].read_text(encoding="utf-8")
        html = finding.files["html"].read_text(encoding="utf-8")
        assert mermaid.startswith("sequenceDiagram\n")
        assert "VIOLATION claim-liveness" in mermaid
        assert "<svg" in html and "</svg>" in html and "<script" not in html
        assert f'id="seq-{finding.violation.seq}"' in html  # the report's step is a row
        assert "phone.provision" in html and "Device OS log" in html


@pytest.mark.parametrize("firmware, options", [
    (None, {"send_claim_code_on_resume": True}),
    ("session-end-workaround", None),
], ids=["fix", "workaround"])
def test_the_fix_and_the_workaround_show_no_resume_bug_in_the_same_budget(
        firmware: str | None, options: dict[str, object] | None) -> None:
    report = explore("p2-provisioning", properties=["claim-liveness"], runs=BUDGET, seed=0,
                     firmware=firmware, options=options, shrink_failures=False, progress=False)
    assert report.runs == BUDGET
    assert not {sig for _, sig in report.signatures} & RESUME_BUG
    summary = report.summary()
    assert f"{BUDGET} runs" in summary
    assert len(report.coverage.states) >= 10 and len(report.coverage.pairs) >= 40
    assert "distinct states" in summary and "(state, action) pairs" in summary


def test_a_cloud_that_consumes_a_code_twice_is_found_and_shrunk(
        cloud_accepts_used_codes: None) -> None:
    report = explore("p2-provisioning", properties=["code-once"], runs=400, seed=0,
                     stop_at_first=True, progress=False)
    finding = report.finding("code-once", "consumed-twice")
    assert finding.after <= finding.before and finding.after <= 5
    assert "consumed twice" in finding.violation.message


def test_the_unmutated_cloud_consumes_each_code_once() -> None:
    report = explore("p2-provisioning", properties=["code-once", "ownership"], runs=150,
                     seed=0, progress=False)
    assert report.ok, report.summary()


def test_a_non_atomic_dct_write_is_found_and_shrunk(non_atomic_dct: None) -> None:
    report = explore("p2-chaos", properties=["dct-untorn"], runs=300, seed=0,
                     stop_at_first=True, progress=False)
    finding = report.finding("dct-untorn", "torn-code")
    actions = [s.action for s in finding.scenario.schedule.steps]
    assert actions == ["operator.dct_power_cut", "phone.set_claim_code"]
    assert finding.after < finding.before or finding.before == 2


def test_the_atomic_dct_never_holds_a_torn_code() -> None:
    report = explore("p2-chaos", properties=["dct-untorn"], runs=150, seed=0, progress=False)
    assert report.ok, report.summary()
    assert report.coverage.pairs  # power cuts inside DCT writes were tried
    assert any(action == "operator.dct_power_cut" for _, action in report.coverage.pairs)
