"""fwsim explore on a ThingsBoard world: its actions only, determinism per strategy, the claim
cache's pitfalls found from scratch and shrunk, byte-identical replays, the documented flow
clean, each property's rule (and the safety properties against a broken service)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cloud_sim.thingsboard.claiming as claiming
from firmware_sim.cli import main
from firmware_sim.explore import RunOutcome, execute, explore, load, load_scenario, loads
from firmware_sim.explore import resolve_all as properties
from firmware_sim.explore.run import available_actions
from firmware_sim.kernel.errors import ConfigurationError

WORLD = """
[scenario]
name = "{name}"
horizon_s = 200.0
[world]
cloud = "thingsboard"
{settings}
[[world.buttons]]
name = "Lamp L1"
transport = "{transport}"
duration_ms = 60000
press_on_boot = false
"""


def _file(steps: str, *, transport: str = "mqtt", settings: str = "",
          name: str = "tb-test") -> str:
    return WORLD.format(name=name, transport=transport, settings=settings) + steps


def _step(at: float, action: str, **params: object) -> str:
    lines = [f"[[steps]]\nat = {at}\ndo = \"{action}\""]
    for key, value in params.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}"
                     .replace("'", '"'))
    return "\n".join(lines) + "\n"


def _run(text: str, *names: str) -> RunOutcome:
    return execute(loads(text, "tb-test.toml"), properties(list(names) or ["tb-claim-liveness",
                                                                           "tb-safety"]),
                   keep_records=True)


def _claims(outcome: RunOutcome) -> list[str]:
    return [str(r.fields["response"]) for r in outcome.records if r.kind == "tb.claim.customer"]


def test_a_thingsboard_world_offers_only_thingsboard_actions() -> None:
    tb = {a.cloud for a in available_actions(load_scenario("tb-claiming"))}
    particle = {a.cloud for a in available_actions(load_scenario("p2-provisioning"))}
    assert tb == {"thingsboard"} and "thingsboard" not in particle


def _runs(strategy: str, seed: int, runs: int) -> list[tuple[object, ...]]:
    seen: list[tuple[object, ...]] = []
    explore("tb-press-and-claim", strategy=strategy, runs=runs, seed=seed,
            properties=["tb-secret-once"], shrink_failures=False, progress=False,
            on_run=lambda o: seen.append((o.seed, o.tiebreak, o.schedule, o.end_us)))
    return seen


@pytest.mark.parametrize("strategy", ["random", "pct", "exhaustive", "hypothesis"])
def test_same_seed_same_runs(strategy: str) -> None:
    runs = 6 if strategy == "hypothesis" else 10
    first = _runs(strategy, 3, runs)
    assert len(first) == runs and first == _runs(strategy, 3, runs)
    if strategy in ("random", "pct"):
        assert first != _runs(strategy, 4, runs)


def test_the_putifabsent_and_wrong_key_pitfalls_are_found_from_scratch_and_shrunk(
        tmp_path: Path) -> None:
    report = explore("tb-press-and-claim", properties=["tb-claim-liveness"], runs=50, seed=7,
                     out=tmp_path, diagram=True, progress=False)
    assert report.found("tb-claim-liveness", "kept-first-secret")
    assert report.found("tb-claim-liveness", "evicted-by-failed-attempt")
    kept = report.finding("tb-claim-liveness", "kept-first-secret")
    assert kept.after <= 5
    assert [s.action for s in kept.scenario.schedule.steps] == [
        "button.press", "button.press", "tb.customer_claim"]
    assert "putIfAbsent" in kept.violation.message
    # the replay file replays byte-identically, from the command line too
    replay = kept.files["replay"]
    trace = tmp_path / "again.jsonl"
    assert main(["scenario", "run", "--file", str(replay), "--trace", str(trace), "--quiet"]) == 0
    assert trace.read_bytes() == kept.files["trace"].read_bytes()
    mermaid = kept.files["mermaid"].read_text()
    assert "VIOLATION tb-claim-liveness [kept-first-secret]" in mermaid
    assert kept.files["html"].read_text().startswith("<!DOCTYPE html>")
    # the picture shows the button, the service and the customer, not only the explorer's steps
    assert mermaid.count("participant ") == 4
    assert mermaid.count("claim (mqtt, ") == 2
    assert "claim data saved (registered)" in mermaid
    assert "claim data not_saved (kept_first_secret)" in mermaid
    assert "-> FAILURE (secret_mismatch)" in mermaid


def test_the_documented_flow_shows_no_violation() -> None:
    report = explore("tb-documented-flow", runs=40, seed=0, progress=False)
    assert report.ok and report.runs == 40 and len(report.coverage.pairs) > 5


def test_every_failed_claim_is_explained_by_a_documented_rule() -> None:
    report = explore("tb-claiming", runs=50, seed=2, progress=False,
                     properties=["tb-claim-liveness:allow=documented", "tb-ownership",
                                 "tb-secret-once"])
    assert report.ok, report.summary()


def test_a_claim_with_the_displayed_secret_succeeds_over_each_transport() -> None:
    for transport in ("mqtt", "http", "coap"):
        outcome = _run(_file(_step(1, "button.press") + _step(2, "tb.customer_claim"),
                             transport=transport))
        assert not outcome.violations and _claims(outcome) == ["SUCCESS"], transport


@pytest.mark.parametrize("steps, settings, signature", [
    # an expired first press keeps its expiry: the second press's window does not count
    (_step(1, "button.press", secret="fixed", duration_ms=1000)
     + _step(1.5, "button.press", secret="fixed", duration_ms=60_000)
     + _step(3, "tb.customer_claim"), "",
     "kept-first-secret"),
    # ThingsBoard before 2021 (cache time-to-live 1 min): a 2 min window is cut short
    (_step(1, "button.press", duration_ms=120_000) + _step(80, "tb.customer_claim"),
     "thingsboard = { cache_ttl_minutes = 1 }", "cache-ttl-expired"),
    (_step(1, "button.press") + _step(2, "tb.reclaim", who="admin")
     + _step(3, "tb.customer_claim"), "", "evicted-by-reclaim"),
    # a second-hand device: customer A never reclaimed it
    (_step(1, "button.press") + _step(2, "tb.customer_claim") + _step(3, "button.press")
     + _step(4, "tb.customer_claim", customer="B"), "", "already-assigned"),
    (_step(1, "button.press") + _step(2, "tb.customer_claim"),
     "thingsboard = { allow_claiming_by_default = false }", "claiming-not-allowed"),
    (_step(1, "tb.claiming_data") + _step(2, "button.press")
     + _step(3, "tb.customer_claim", secret="box"), "", "cache-shadows-claiming-data"),
    # the connection drops while the button connects: its queued claim message fails
    (_step(1, "button.press") + _step(1.01, "button.reconnect")
     + _step(1.5, "tb.customer_claim"), "", "claim-info-lost"),
])
def test_liveness_names_the_rule_that_stopped_the_claim(steps: str, settings: str,
                                                        signature: str) -> None:
    outcome = _run(_file(steps, settings=settings), "tb-claim-liveness")
    assert [v.key for v in outcome.violations] == [("tb-claim-liveness", signature)]


def test_no_obligation_past_the_window_and_with_claiming_allowed() -> None:
    late = _run(_file(_step(1, "button.press") + _step(2, "tb.cache_expiry")
                      + _step(63, "tb.customer_claim")))
    assert not late.violations and _claims(late) == ["FAILURE"]
    allowed = _run(_file(_step(0.5, "tb.allow_claiming") + _step(1, "button.press")
                         + _step(2, "tb.customer_claim"),
                         settings="thingsboard = { allow_claiming_by_default = false }"))
    assert not allowed.violations and _claims(allowed) == ["SUCCESS"]


def test_another_customer_reclaiming_the_device_breaks_reclaim_by_owner() -> None:
    outcome = _run(_file(_step(1, "button.press") + _step(2, "tb.customer_claim")
                         + _step(3, "tb.reclaim", who="other")))
    assert [v.key for v in outcome.violations] == [("tb-reclaim-by-owner",
                                                    "reclaimed-by-other-customer")]
    owner = _run(_file(_step(1, "button.press") + _step(2, "tb.customer_claim")
                       + _step(3, "tb.reclaim", who="owner")))
    assert not owner.violations


def test_a_service_that_ignores_the_secret_is_found_and_shrunk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claiming, "secret_key_is_empty_or_equal", lambda given, saved: True)
    report = explore("tb-press-and-claim", properties=["tb-safety"], runs=60, seed=0,
                     progress=False)
    finding = report.finding("tb-ownership", "claimed-with-wrong-secret")
    assert finding.after <= 5


def test_a_service_that_keeps_used_claim_data_reuses_a_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(claiming.ClaimCache, "evict", lambda self, key: False)
    outcome = _run(_file(_step(1, "button.press") + _step(2, "tb.customer_claim")
                         + _step(3, "tb.reclaim", who="owner")
                         + _step(4, "tb.customer_claim", customer="B")), "tb-secret-once")
    assert [v.key for v in outcome.violations] == [("tb-secret-once", "secret-reused")]


@pytest.mark.parametrize("text, message", [
    (WORLD.format(name="x", transport="mqtt", settings="") + "[[world.devices]]\n",
     "no endpoint for Particle devices"),
    ("[world]\ncloud = 'thingsboard'\n", r"needs at least one \[\[world.buttons\]\]"),
    ("[[world.devices]]\n[[world.buttons]]\n", 'need cloud = "thingsboard"'),
    (WORLD.format(name="x", transport="lora", settings=""), "transport must be mqtt"),
    (WORLD.format(name="x", transport="mqtt", settings="thingsboard = { ttl = 1 }"),
     "unknown option 'ttl'"),
])
def test_bad_thingsboard_files_give_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        loads(text, "bad.toml")
    assert "\n" not in str(info.value)


def test_thingsboard_properties_refuse_a_particle_world() -> None:
    with pytest.raises(ConfigurationError, match="checks a thingsboard world"):
        execute(load_scenario("p2-provisioning"), properties(["tb-ownership"]))
    with pytest.raises(ConfigurationError, match="unknown signature 'nope'"):
        properties(["tb-claim-liveness:allow=nope"])[0].make()


@pytest.mark.parametrize("name", ["claim-liveness", "ownership", "code-once", "dct-untorn",
                                  "no-lost-publish"])
def test_particle_properties_refuse_a_thingsboard_world(name: str) -> None:
    """They would check nothing there and always pass."""
    with pytest.raises(ConfigurationError, match="checks Particle devices; this world has none "
                                                 r"\(its cloud is thingsboard\)"):
        execute(load_scenario("tb-press-and-claim"), properties([name]))


def test_a_replay_file_reads_back_unchanged(tmp_path: Path) -> None:
    scenario = loads(_file(_step(1, "button.press", secret="empty"),
                           settings="thingsboard = { cache_ttl_minutes = 5 }"), "x.toml")
    from firmware_sim.explore import dump

    assert load(dump(scenario, tmp_path / "x.toml")) == scenario
