"""What an action or a property sees of a run: the testbed, its actors and the explorer's
timers.

Actions act through the testbed's actors (:class:`~firmware_sim.testbed.Phone`,
:class:`~firmware_sim.testbed.Operator`) and its cloud plug; every action leaves an
``explore.step`` record (node ``explorer``). Timers of the explorer (the end of a loss burst) are
*not* scheduler entries: the run loop fires them between entries, so they never touch the
scheduler's tie-break stream and a run replays the same whether it was searched or scripted.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..kernel.clock import to_micros
from ..kernel.errors import UsageError
from ..kernel.world import World
from ..system.device import Device
from ..system.radio import radio_environment
from ..testbed import Operator, Phone, Testbed
from ..testbed.clouds.particle import ParticlePlug
from .model import Step
from .scenario_file import ScenarioFile
from .thingsboard_world import abstract_state as tb_abstract_state
from .thingsboard_world import tb_plug

if TYPE_CHECKING:
    from ..testbed.clouds.thingsboard import ThingsBoardPlug


class RunContext:
    """One run's world, actors and explorer timers."""

    def __init__(self, testbed: Testbed, scenario: ScenarioFile) -> None:
        self.testbed = testbed
        self.scenario = scenario
        self.world: World = testbed.world
        self.operator = Operator(self.world)
        self.tracer = self.world.trace.bind("explorer", "explore")
        self.phones: dict[str, tuple[Phone, int]] = {}
        self._timers: list[tuple[int, int, Callable[[], None]]] = []
        self._timer_seq = 0
        #: claim codes the actions set (for the torn-code property)
        self.codes_set: list[str] = []
        self.step_index = 0
        #: during a search, the explorer's next decision comes no earlier than this
        #: (``hold``: an action that lets time pass)
        self.hold_until_us = 0
        self.passwords = {ap.ssid: ap.password for ap in scenario.world.access_points}

    # -- the world -----------------------------------------------------------------------------

    @property
    def device(self) -> Device:
        return self.testbed.device

    def device_named(self, name: str | None) -> Device:
        if name is None:
            return self.device
        device = self.testbed.devices.get(name)
        if device is None:
            raise UsageError(f"no device named {name!r} in this world")
        return device

    @property
    def particle(self) -> ParticlePlug | None:
        cloud = self.testbed.cloud
        return cloud if isinstance(cloud, ParticlePlug) else None

    @property
    def thingsboard(self) -> ThingsBoardPlug | None:
        return tb_plug(self.testbed)

    def in_range(self) -> list[str]:
        return [ap.ssid for ap in radio_environment(self.world).scan()]

    def phone_idle(self, device: Device) -> bool:
        """No phone flow is running on ``device`` (one cut short by a reboot counts as over)."""
        entry = self.phones.get(device.name)
        return entry is None or entry[0].finished or entry[1] != device.boot_count

    def busy(self) -> bool:
        """Something an action started is still under way (a phone flow, an explorer timer):
        the run must not end early."""
        if self._timers:
            return True
        return any(not self.phone_idle(device) for device in self.testbed.devices.values()
                   if device.name in self.phones)

    # -- explorer timers -----------------------------------------------------------------------

    def later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` ``delay_s`` from now, between scheduler entries (see the header)."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (self.world.clock.now_us + to_micros(delay_s),
                                      self._timer_seq, callback))

    def hold(self, seconds: float) -> None:
        """During a search, take the next decision no earlier than ``seconds`` from now (a
        replay plays its steps at their recorded times anyway)."""
        self.hold_until_us = max(self.hold_until_us, self.world.clock.now_us + to_micros(seconds))

    def next_timer_us(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def run_timers(self) -> None:
        now = self.world.clock.now_us
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    # -- records -------------------------------------------------------------------------------

    def record_step(self, step: Step, **extra: Any) -> None:
        self.step_index += 1
        self.tracer.emit("explore.step", index=self.step_index, action=step.action,
                         **dict(step.params), **extra)

    def abstract_state(self) -> tuple[object, ...]:
        """A small summary of the world at a decision point (coverage counts these)."""
        parts: list[object] = []
        for device in self.testbed.devices.values():
            running = device.running
            try:
                pending = device.claim.pending_code() is not None
            except Exception:  # a DCT that lost power mid-write reads as "unknown"
                pending = None
            parts.extend((device.state.value,
                          device.cloud.state.value if running else "-",
                          device.network.ready if running else False,
                          device.listening.active if running else False,
                          pending, device.session.load() is not None,
                          device.cloud.want_connected if running else False,
                          not self.phone_idle(device)))
        plug = self.thingsboard
        if plug is not None:
            parts.extend(tb_abstract_state(plug))
        return tuple(parts)


__all__ = ["RunContext"]
