"""The explorer's answers to a firmware engineer's findings that need no subprocess (the CLI
ones are in tests/cli/test_explore_qa_findings.py): the diagram shows what the cloud could not
send, the progress bar counts down a budget and ends its line."""

from __future__ import annotations

import io
from pathlib import Path

from firmware_sim.diagram import build_diagram, to_html, to_mermaid
from firmware_sim.explore import execute, load_scenario, loads, resolve_all
from firmware_sim.explore.api import Progress

DATA = Path(__file__).parent / "data"


def test_the_diagram_shows_the_confirm_the_cloud_could_not_send() -> None:
    scenario = load_scenario(str(DATA / "code-refused.toml"))
    outcome = execute(scenario, resolve_all(scenario.properties), keep_records=True)
    assert [v.key for v in outcome.violations] == [("claim-liveness", "code-refused")]
    [lost] = [r for r in outcome.records if r.kind == "event.undeliverable"]
    diagram = build_diagram(outcome.records, title="code refused")
    [row] = [r for r in diagram.rows if r.seq == lost.seq]
    assert (row.kind, row.source, row.style) == ("note", "cloud", "alert")
    assert row.text == "spark/device/claim/confirm to p2 NOT SENT: no session to send on"
    assert f"Note over cloud: {row.text}" in to_mermaid(diagram)
    # the note's box has room for its whole text: it is not cut
    assert f">{row.text}</text>" in to_html(diagram)


def test_progress_counts_down_the_budget_and_ends_its_line() -> None:
    stream = io.StringIO()
    bar = Progress(10, None, stream, "explore x")
    bar.update(4, 1, force=True)
    assert "4/10 runs, 1 violating" in stream.getvalue() and "ETA" in stream.getvalue()
    bar.status("shrinking 1/1 claim-liveness")
    bar.done()
    last = stream.getvalue().rsplit("\r", 1)[1]
    # blanks cover the rest of the longer bar before it; the line is ended
    assert last.rstrip(" \n") == "explore x: shrinking 1/1 claim-liveness"
    assert last.endswith("\n") and len(last) > len("explore x: shrinking 1/1 claim-liveness\n")
    timed = io.StringIO()
    Progress(None, 5.0, timed, "explore y").update(3, 0, force=True)
    assert "3 runs, 0 violating" in timed.getvalue() and "/5 s" in timed.getvalue()
    silent = io.StringIO()
    Progress(10, None, silent, "explore z").done()  # nothing drawn: no empty line either
    assert silent.getvalue() == ""


SET_ON_A_LIVE_SESSION = """
[scenario]
name = "set-then-new-session"
horizon_s = 300.0
[world]
cloud = "particle"
timing = "fast"
[[world.access_points]]
ssid = "HomeNet"
password = "home-pass-1"
[[world.devices]]
name = "p2"
wifi = ["HomeNet"]
[properties]
claim-liveness = {}
[[steps]]
at = 5.0
do = "phone.set_claim_code"
via = "control"
"""

NEW_SESSION = """
[[steps]]
at = 20.0
do = "operator.disconnect"
clear_session = true
[[steps]]
at = 22.0
do = "operator.connect"
"""


def test_a_code_set_on_a_live_session_is_due_unless_a_new_session_sends_it() -> None:
    left_alone = loads(SET_ON_A_LIVE_SESSION, "set.toml")
    outcome = execute(left_alone, resolve_all(left_alone.properties))
    assert [(v.key, v.t_us) for v in outcome.violations] == [
        (("claim-liveness", "set-while-connected"), 65_000_000)]
    # the workaround (a new session with a full handshake) delivers it: no violation
    bounced = loads(SET_ON_A_LIVE_SESSION + NEW_SESSION, "bounced.toml")
    outcome = execute(bounced, resolve_all(bounced.properties), keep_records=True)
    assert outcome.violations == []
    assert any(r.kind == "claim.redeem" and r.fields.get("outcome") == "claimed"
               for r in outcome.records)
