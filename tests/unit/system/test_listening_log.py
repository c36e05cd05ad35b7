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
