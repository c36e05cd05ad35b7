"""The ``product-customer-transfer`` scenario in process (the cross-process run is in
test_cli_cloud.py)."""

from __future__ import annotations

from firmware_sim.scenarios import DirectProvisioning, get_scenario


def test_the_scenario_passes_and_is_deterministic() -> None:
    scenario = get_scenario("product-customer-transfer")
    first = scenario.run(seed=11)
    again = scenario.run(seed=11)
    assert first.passed, [c.description for c in first.checks if not c.ok]
    assert [r.to_json() for r in first.world.trace.records] == \
        [r.to_json() for r in again.world.trace.records]
    http = first.world.trace.find("http.request", node="cloud")
    assert [(r.get("method"), r.get("path"), r.get("status")) for r in http[:5]] == [
        ("POST", "/fwsim/seed", 200), ("POST", "/oauth/token", 200),
        ("POST", "/v1/devices", 403), ("POST", "/v1/devices", 403),
        ("POST", "/v1/products/acme-sensors/device_claims", 200)]


def test_the_scenario_also_passes_with_direct_provisioning() -> None:
    result = get_scenario("product-customer-transfer").run(seed=3,
                                                           provisioning=DirectProvisioning)
    assert result.passed, [c.description for c in result.checks if not c.ok]
