"""Every claim-code scenario gives the same verdict when the phone provisions over BLE."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware_sim.scenarios.catalog import SCENARIOS
from firmware_sim.system.device import Device
from firmware_sim.testbed.adapters import surface_for
from transports.ble.provisioning import BlePhone, ble_provisioning


def over_ble(mobile_secret: str | None = None) -> Callable[[Device], BlePhone]:
    """A scenario provisioning factory: the device seen through its transport surface."""
    factory = ble_provisioning(mobile_secret=mobile_secret)
    return lambda device: factory(surface_for(device))


# product-customer-transfer does not provision through a phone
PHONE_SCENARIOS = [name for name in SCENARIOS if name != "product-customer-transfer"]


@pytest.mark.parametrize("name", PHONE_SCENARIOS)
def test_scenario_verdict_is_the_same_over_ble(name: str) -> None:
    scenario = SCENARIOS[name]
    direct = scenario.run(0)
    result = scenario.run(0, provisioning=over_ble())
    assert result.passed, [c.description for c in result.checks if not c.ok]
    assert result.passed == direct.passed and result.verdict == direct.verdict
    assert [c.ok for c in result.checks] == [c.ok for c in direct.checks]
    trace = result.world.trace
    node = result.device.name
    assert trace.count("ble.handshake_done", node=node) == 1
    steps = trace.count("phone.step", node="phone")
    assert trace.count("ble.request", node=node) == steps
    assert any("[system.ctrl.ble] TRACE: Handshake done" in line
               for line in result.timeline)


def test_a_wrong_secret_makes_every_step_fail_with_io() -> None:
    result = SCENARIOS["resume-bug"].run(0, provisioning=over_ble("WRONGWRONGWRONG"))
    assert not result.passed
    results = result.world.trace.find("phone.result", node="phone")
    assert results and all(r.fields["result"] == -220 for r in results)
    assert result.world.trace.count("ble.handshake_failed", node=result.device.name) >= 1
