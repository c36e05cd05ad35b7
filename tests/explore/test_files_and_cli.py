"""Scenario files (TOML both ways, clear errors), the CLI commands, the diagram library, the new
fault points, and the pytest fixture."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import main
from firmware_sim.diagram import build_diagram, to_html, to_mermaid
from firmware_sim.explore import (
    ExploreReport,
    builtin_scenarios,
    dumps,
    execute,
    load_scenario,
    loads,
    resolve_all,
)
from firmware_sim.explore.tomlio import value
from firmware_sim.kernel.choice import SeededChooser
from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.link import DatagramLink
from firmware_sim.kernel.world import World

USER_SCENARIO = """
# a user's own scenario: no Python, their firmware named by import path
[scenario]
name = "mine"
seed = 3
horizon_s = 120.0

[world]
timing = "fast"

[[world.access_points]]
ssid = "HomeNet"
password = "home-pass-1"

[[world.access_points]]
ssid = "NewNet"
password = "new-pass-22"

[[world.devices]]
name = "p2"
firmware = "firmware_sim.apps:SessionEndTooEarly"
wifi = ["HomeNet"]

[properties]
claim-liveness = { within_s = 45 }

[[steps]]
at = 10.0
do = "phone.provision"
network = "NewNet"

[expect]
violation = "claim-liveness"
signature = "session-end-lost"
"""

scalars = (st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=20)
           | st.integers(-2**63, 2**63 - 1) | st.booleans()
           | st.floats(allow_nan=False))


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), scalars | st.lists(scalars, max_size=3)
                       | st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), scalars,
                                         max_size=3), max_size=5))
@example({"0\n": ""})  # a key ending in a newline must be quoted (``$`` matches before it)
def test_written_toml_values_read_back_the_same(table: dict[str, Any]) -> None:
    from firmware_sim.explore.tomlio import TomlWriter

    writer = TomlWriter()
    writer.comment("a comment\nover two lines")
    writer.table("t")
    for key, item in table.items():
        writer.pair(key, item)
    assert tomllib.loads(writer.text()).get("t", {}) == table


def test_floats_and_strings_keep_their_toml_types() -> None:
    assert value(1.0) == "1.0" and value(1e-7) == "1e-07" and value(True) == "true"
    text = 'a"b#c;'
    assert tomllib.loads("x = " + value(text))["x"] == text


def test_every_built_in_scenario_reads_and_writes_back_unchanged() -> None:
    from firmware_sim.explore import builtin_scenarios

    names = builtin_scenarios()
    assert {"p2-provisioning", "p2-chaos"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert loads(dumps(scenario), name) == scenario


@pytest.mark.parametrize("text, message", [
    ("[scenario]\nseeed = 1\n[[world.devices]]\n", "unknown key 'seeed'"),
    ("[[world.devices]]\nname = 5\n", "name must be a string"),
    ("[world]\n", "needs at least one"),
    ("[[world.devices]]\n[[steps]]\ndo = 'x'\n", "at is required"),
    ("[[world.devices]]\n[[faults]]\npoint = 'p'\noccurrence = 0\n", "occurrence counts from 1"),
    ("not toml = = 1", "not valid TOML"),
    ("[[world.devices]]\nwifi = ['Nowhere']\n", None),
])
def test_bad_scenario_files_give_one_line_errors(text: str, message: str | None) -> None:
    if message is None:  # parses, fails when the world is built
        with pytest.raises(ConfigurationError, match="not one of the world's access points"):
            loads(text, "bad.toml").testbed_spec()
        return
    with pytest.raises(ConfigurationError, match=message) as info:
        loads(text, "bad.toml")
    assert "\n" not in str(info.value) and "bad.toml" in str(info.value)


def test_a_user_scenario_file_runs_its_own_firmware(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(USER_SCENARIO, encoding="utf-8")
    trace = tmp_path / "a.jsonl"
    assert main(["scenario", "run", "--file", str(path), "--trace", str(trace),
                 "--diagram", str(tmp_path / "mine")]) == 0
    out = capsys.readouterr().out
    assert "published spark/device/session/end: lost" in out
    assert "PASS mine (seed 3): reproduced: claim-liveness (session-end-lost)" in out
    assert (tmp_path / "mine.html").exists() and (tmp_path / "mine.mmd").exists()
    again = tmp_path / "b.jsonl"
    assert main(["scenario", "run", "--file", str(path), "--trace", str(again), "--quiet"]) == 0
    assert again.read_bytes() == trace.read_bytes()
    # another seed is another run of the same file
    assert main(["scenario", "run", "--file", str(path), "--seed", "4", "--quiet"]) in (0, 1)


def test_the_cli_reports_and_exits_one_on_a_violation(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["explore", "--runs", "40", "--seed", "0", "--property", "claim-liveness",
                   "--out", str(tmp_path), "--diagram", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 1
    assert "explored p2-provisioning with random (seed 0): 40 runs" in out
    assert "resumed-without-code" in out and "replay: fwsim scenario run --file" in out
    assert sorted(p.suffix for p in tmp_path.iterdir()) .count(".toml") >= 1
    assert main(["explore", "--runs", "20", "--property", "dct-untorn", "--no-progress"]) == 0
    assert "no violation in 20 runs" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["explore", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["explore", "--property", "nope", "--runs", "1"], "unknown property 'nope'"),
    (["explore", "--property", "claim-liveness:within=3", "--runs", "1"],
     "unknown parameter 'within'"),
    (["explore", "--firmware", "no.such:App", "--runs", "1"], "cannot import"),
    (["explore", "--option", "no_such_option=1", "--runs", "1"], "unknown option"),
    (["explore", "--diagram"], "--diagram needs --out"),
    (["scenario", "run", "--file", "/nonexistent.toml"], "cannot read scenario file"),
    (["trace", "diagram", "/nonexistent.jsonl"], "cannot read trace file"),
])
def test_cli_errors_are_one_line(argv: list[str], message: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_trace_diagram_draws_a_scenario_trace(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "resume.jsonl"
    assert main(["scenario", "run", "resume-bug", "--trace", str(trace), "--quiet"]) == 0
    assert main(["trace", "diagram", str(trace)]) == 0
    assert "lanes" in capsys.readouterr().out
    mermaid = (tmp_path / "resume.mmd").read_text(encoding="utf-8")
    assert "participant phone" in mermaid and "ping on a persisted session" in mermaid
    assert "cloud connected from existing session." in mermaid
    assert main(["trace", "diagram", str(trace), "-o", "-", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out == mermaid


def test_the_diagram_model_puts_each_record_in_its_lane() -> None:
    scenario = load_scenario(str(Path(__file__).parent / "data" / "resume-bug.toml"))
    outcome = execute(scenario, resolve_all(scenario.properties), keep_records=True)
    diagram = build_diagram(outcome.records, title="resume <bug> & co")
    kinds = [lane.kind for lane in diagram.lanes]
    assert kinds == ["explorer", "phone", "device", "cloud"]
    [violation] = diagram.violation_rows()
    assert diagram.rows[violation].seq == outcome.violations[0].seq
    arrows = {(r.source, r.target, r.text) for r in diagram.rows if r.kind == "arrow"}
    assert ("phone", "p2", "set_claim_code") in arrows
    assert ("p2", "cloud", "HELLO (full handshake)") in arrows
    html = to_html(diagram, summary=["line <1>"])
    assert "resume &lt;bug&gt; &amp; co" in html and "line &lt;1&gt;" in html
    assert f'href="#seq-{outcome.violations[0].seq}"' in html
    assert to_mermaid(diagram).count("participant ") == 4


def test_the_delay_fault_lets_a_later_datagram_overtake() -> None:
    class DelayFirst(SeededChooser):
        def fault(self, name: str) -> bool:
            return name == "link:l:delay" and not getattr(self, "done", False) and \
                not setattr(self, "done", True)

    world = World(0, chooser=DelayFirst(0))
    link = DatagramLink(world, "l", latency_s=0.01)
    got: list[bytes] = []
    link.b.receiver = got.append
    link.a.send(b"1")
    link.a.send(b"2")
    world.run_for(5.0)
    assert got == [b"2", b"1"]
    [delayed] = world.trace.find("datagram.delayed")
    assert 0.5 <= delayed.get("extra_s") <= 3.0


def test_cloud_fault_points_fire_by_name_and_occurrence() -> None:
    scenario = load_scenario(str(Path(__file__).parent / "data" / "skip-confirm.toml"))
    outcome = execute(scenario, resolve_all(scenario.properties), keep_records=True)
    faults = [r.get("fault") for r in outcome.records if r.kind == "endpoint.fault"]
    assert faults == ["endpoint:cloud:skip_confirm"]
    assert [v.signature for v in outcome.violations] == ["confirm-not-sent"]


def test_the_pytest_fixture(fwsim_explore: Any) -> None:
    report: ExploreReport = fwsim_explore("p2-provisioning", properties=["safety"], runs=30)
    assert report.ok and report.runs == 30
    found = fwsim_explore("p2-provisioning", properties=["claim-liveness"], runs=30,
                          expect_violation=True)
    assert not found.ok


def test_a_key_change_from_the_cloud_ends_the_resume_bug() -> None:
    """The resume bug's schedule, then the cloud sends a key change: the device discards the
    session, does a full handshake and sends the claim code (claim-liveness holds); without the
    step the same schedule violates it."""
    text = builtin_scenarios()["resume-bug"]
    bug = loads(text, "resume-bug.toml")
    assert [(v.prop, v.signature) for v in execute(bug, resolve_all(bug.properties)).violations
            ] == [("claim-liveness", "resumed-without-code")]
    fixed_text = text.replace('[expect]\nviolation = "claim-liveness"\n'
                              'signature = "resumed-without-code"\n', "")
    fixed_text += '\n[[steps]]\nat = 40.0\ndo = "cloud.key_change"\n'
    fixed = loads(fixed_text, "resume-bug-key-change.toml")
    outcome = execute(fixed, resolve_all(fixed.properties), keep_records=True)
    assert outcome.violations == []
    kinds = [r.kind for r in outcome.records]
    assert "key_change.to_device" in kinds
    assert any(r.kind == "log" and r.fields["message"] == "Received a key change message; "
               "discarding session" for r in outcome.records)
    assert any(r.kind == "log" and str(r.fields["message"]).startswith(
        "Send spark/device/claim/code event") for r in outcome.records)
    diagram = build_diagram(outcome.records, title="key change")
    arrows = [(r.source, r.target, r.text) for r in diagram.rows if r.kind == "arrow"]
    assert ("cloud", "p2", "key change: discard the session") in arrows
    after = arrows[arrows.index(("cloud", "p2", "key change: discard the session")):]
    assert ("p2", "cloud", "HELLO (full handshake)") in after
