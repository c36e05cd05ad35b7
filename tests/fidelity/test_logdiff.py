"""``fwsim logdiff`` (issue 15): parsing a noisy serial log, templates, alignment, timing, the
three renderings, the CLI; agreement with the thread's excerpts on ``resume-bug`` and
``fresh-claim``; a shifted or missing line is reported."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.cli import main
from firmware_sim.logdiff import (
    LogLine,
    Sources,
    TimingMode,
    diff_logs,
    line_template,
    message_template,
    model_log_from_records,
    parse_lines,
    parse_log,
    render_html,
    render_json,
    render_text,
)
from firmware_sim.scenarios import SCENARIOS
from firmware_sim.scenarios.base import default_provisioning
from firmware_sim.testbed import Testbed

DATA = Path(__file__).with_name("data")
RESUME = DATA / "thread-resume.log"
POWER_UP = DATA / "thread-power-up.log"
NOISY = DATA / "thread-power-up-noisy.log"


def model(name: str) -> list[LogLine]:
    testbed = Testbed(replace(SCENARIOS[name].stage(), seed=0))
    SCENARIOS[name].runner(testbed, default_provisioning)
    return model_log_from_records(testbed.world.trace.records, "p2")[0]


_MODELS: dict[str, list[LogLine]] = {}


def cached(name: str) -> list[LogLine]:
    if name not in _MODELS:
        _MODELS[name] = model(name)
    return _MODELS[name]


def real(path: Path) -> list[LogLine]:
    return parse_log(path).lines


def shifted(lines: list[LogLine], index: int, by_ms: int) -> list[LogLine]:
    out = list(lines)
    out[index] = replace(out[index], uptime_ms=out[index].uptime_ms + by_ms)
    return out


# -- parsing ---------------------------------------------------------------------------------


def test_the_noisy_capture_yields_the_threads_two_lines() -> None:
    clean, noisy = parse_log(POWER_UP), parse_log(NOISY)
    assert [x.render() for x in noisy.lines] == [x.render() for x in clean.lines]
    assert noisy.lines[0].number == 3 and noisy.lines[1].number == 7
    assert len(noisy.noise) == 5  # banner, app prints, garbage, a line cut by a reset
    assert noisy.lines[1].level == "TRACE" and noisy.lines[1].category == "system"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=80).filter(lambda t: "\n" not in t and "\r" not in t),
                max_size=12), st.randoms(use_true_random=False))
def test_noise_never_changes_the_parsed_lines(noise: list[str], rng: object) -> None:
    base = POWER_UP.read_text().splitlines()
    mixed = list(base)
    for text in noise:
        mixed.insert(rng.randrange(len(mixed) + 1), text)  # type: ignore[attr-defined]
    parsed = parse_lines(mixed)
    wanted = [x.render() for x in parse_lines(base).lines]
    got = [x.render() for x in parsed.lines]
    # noise can only add lines that are themselves well-formed log lines, never drop ours
    assert [line for line in got if line in wanted] == wanted


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    from firmware_sim.kernel.errors import UsageError

    with pytest.raises(UsageError, match="cannot read"):
        parse_log(tmp_path / "missing.log")


def test_templates_put_placeholders_on_ids_codes_and_numbers() -> None:
    assert message_template("restored session from persisted session data. next_msg_id=8") == \
        "restored session from persisted session data. next_msg_id=<n>"
    assert message_template("Cloud handshake failed, code=-220") == \
        "Cloud handshake failed, code=<n>"
    assert message_template("device e00fce68aabbccddeeff0011 at 0x1f") == \
        "device <id> at <n>"
    thread = ("Send spark/device/claim/code event for code "
              "xxxxxxxx5GvuPJBVDv3cf0Nq1TjyJLgeETsKHR/36QogoGZ0ipy0EnFnjCSMZ5m")
    ours = "Send spark/device/claim/code event for code G8t5jO4hAGJMpH9DW76ToC4r9HyPpAjIruAD124Uu"
    assert message_template(thread) == message_template(ours) == \
        "Send spark/device/claim/code event for code <token>"
    warn = LogLine(1, "system", "WARN", "Cloud handshake failed, code=10")
    assert line_template(warn) != line_template(replace(warn, level="ERROR"))


# -- agreement with the thread ---------------------------------------------------------------


def test_resume_excerpt_agrees_with_resume_bug() -> None:
    diff = diff_logs(real(RESUME), cached("resume-bug"))
    assert diff.agree
    assert [p.real_ms for p in diff.pairs] == [None, 183]
    assert diff.pairs[1].model_ms == 183 and not diff.only_real


def test_power_up_excerpt_agrees_with_fresh_claim() -> None:
    for path in (POWER_UP, NOISY):
        diff = diff_logs(real(path), cached("fresh-claim"))
        assert diff.agree
        assert diff.pairs[1].real_ms == 2426 and diff.pairs[1].model_ms == 2430


def test_the_single_claim_code_line_agrees_with_a_full_handshake_only() -> None:
    line = real(DATA / "thread-claim-code-sent.log")
    assert diff_logs(line, cached("fresh-claim")).agree
    bug = diff_logs(line, cached("resume-bug"))  # the bug: the code is never sent
    assert not bug.agree and [x.message[:30] for x in bug.only_real] == [
        "Send spark/device/claim/code e"]


def test_a_shifted_line_is_reported() -> None:
    excerpt = shifted(real(RESUME), 1, 300)  # 483 ms instead of 183
    diff = diff_logs(excerpt, cached("resume-bug"))
    assert not diff.agree
    [off] = diff.timing_differences
    assert (off.real_ms, off.model_ms, off.delta_ms) == (483, 183, -300)
    assert "timing differences: 1" in render_text(diff, Sources("x", "y"))
    small = diff_logs(shifted(real(RESUME), 1, 15), cached("resume-bug"))
    assert small.agree  # 198 vs 183 ms: within +-20 ms


def test_a_missing_line_is_reported() -> None:
    excerpt = real(RESUME)
    without = [x for x in cached("resume-bug")
               if x.message != "cloud connected from existing session."]
    diff = diff_logs(excerpt, without)
    assert not diff.agree and [x.uptime_ms for x in diff.only_real] == [33807]
    extra = [*excerpt, LogLine(33900, "system", "INFO", "Sending HELLO message", 3)]
    assert not diff_logs(extra, cached("resume-bug")).agree


def test_an_order_difference_is_reported() -> None:
    lines = real(RESUME)
    swapped = [replace(lines[1], uptime_ms=33600), replace(lines[0], uptime_ms=33700)]
    diff = diff_logs(swapped, cached("resume-bug"))
    assert not diff.agree and len(diff.order_differences) == 1 and len(diff.pairs) == 1


def test_absolute_mode_compares_uptimes() -> None:
    diff = diff_logs(real(POWER_UP), cached("fresh-claim"), mode=TimingMode.ABSOLUTE)
    assert not diff.agree  # fresh-claim boots into listening mode: 28.3 s, not 15.4 s
    assert diff.pairs[0].real_ms == 15435 and diff.pairs[0].model_ms == 28335


def test_strict_mode_counts_model_lines_within_the_span() -> None:
    diff = diff_logs(real(POWER_UP), cached("fresh-claim"), strict=True)
    # 6: ... and ``All handshake messages have been processed`` before ``Cloud connected``
    assert not diff.agree and len(diff.only_model_in_span) == 6


# -- renderings and the CLI ------------------------------------------------------------------


def test_json_and_html_renderings() -> None:
    diff = diff_logs(real(RESUME), cached("resume-bug"))
    sources = Sources("thread <resume>.log", "scenario resume-bug")
    data = json.loads(render_json(diff, sources))
    assert data["agree"] is True and data["pairs"][1]["delta_ms"] == 0
    assert data["timing"] == {"mode": "relative", "tolerance": 0.1, "min_tolerance_ms": 20}
    page = render_html(diff, sources)
    assert page.startswith("<!DOCTYPE html>") and "thread &lt;resume&gt;.log" in page
    assert page.count('<tr class="pair">') == 2 and "verdict: AGREE" in page


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logdiff", str(RESUME), "--scenario", "resume-bug"]) == 0
    assert "verdict: AGREE" in capsys.readouterr().out
    assert main(["logdiff", str(POWER_UP), "--scenario", "fresh-claim", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agree"] is True
    page = tmp_path / "report.html"
    assert main(["logdiff", str(RESUME), "--scenario", "resume-bug", "--timing", "fast",
                 "--html", str(page)]) == 1  # fast: 0 ms instead of 183
    assert "verdict: DIFFER" in page.read_text()
    trace = tmp_path / "t.jsonl"
    assert main(["scenario", "run", "resume-bug", "--quiet", "--trace", str(trace)]) == 0
    capsys.readouterr()
    assert main(["logdiff", str(RESUME), "--trace", str(trace)]) == 0
    assert main(["logdiff", str(tmp_path / "nope.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["logdiff", str(RESUME), "--trace", str(trace), "--device", "ghost"]) == 2
    assert main(["logdiff", str(RESUME), "--scenario", "nope"]) == 2
