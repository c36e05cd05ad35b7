"""``ListeningModeHandler::enter``/``exit`` (Device OS ``system/src/system_listening_mode.cpp``)
log ``Entering listening mode`` / ``Exiting listening mode`` at INFO in ``system.listen``,
before the cloud is paused and before ``setup_end``; a refused or repeated call logs nothing."""

from __future__ import annotations

from firmware_sim.kernel import World
from firmware_sim.services.log import DeviceLog, log_lines
from firmware_sim.system.events import SystemEventBus
from firmware_sim.system.listening import ListeningMode


def test_enter_and_exit_log_like_device_os() -> None:
    world = World(0)
    paused: list[tuple[bool, int]] = []
    log = DeviceLog(world.trace.bind("dev", "log"), lambda: 1234)

    def pause(on: bool) -> None:
        paused.append((on, len(log_lines(world.trace.records, "dev"))))

    allowed = [True]
    mode = ListeningMode(world.trace.bind("dev", "listening"),
                         SystemEventBus(world.scheduler, world.trace.bind("dev", "events")),
                         pause, allowed=lambda: allowed[0], log=log)
    assert mode.enter() and not mode.enter()
    assert mode.exit() and not mode.exit()
    allowed[0] = False
    assert not mode.enter()
    assert log_lines(world.trace.records, "dev") == [
        "0000001234 [system.listen] INFO: Entering listening mode",
        "0000001234 [system.listen] INFO: Exiting listening mode"]
    assert paused == [(True, 1), (False, 2)]  # each line comes before the cloud's pause/resume


def test_entering_listening_mode_takes_the_network_down_and_leaving_brings_it_back() -> None:
    """``ListeningModeHandler::enter`` (system/src/system_listening_mode.cpp): cloud_disconnect,
    then NetworkManager::deactivateConnections; the interface stays powered (it can scan)."""
    from firmware_sim.testbed import Testbed, TestbedSpec, provisioned

    with Testbed(TestbedSpec(seed=2, devices=tuple(provisioned("d")), timing="fast")) as bed:
        device = bed.devices["d"]
        bed.power_on()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        device.listening.enter()
        bed.run_for(1)
        assert device.listening.active and not device.network.ready
        assert not device.network.connecting and not device.cloud_connected
        device.listening.exit()
        assert bed.run_until(lambda: device.cloud_connected, 30)
        assert device.network.ready
