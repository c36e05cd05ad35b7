"""One run: build the world of a scenario, play or search a schedule, check the properties.

How this works
--------------
:func:`execute` builds the testbed from the scenario (its seed, the tie-break policy and an
:class:`~firmware_sim.explore.choosers.ExplorerChooser`), starts the property checkers (fed every
trace record), powers the devices on and then steps the scheduler itself, stopping at the next
*target*: the next action, the next explorer timer, the next property deadline, or the horizon.
The explorer's own work happens *between* scheduler entries, at the target instant after every
entry due then has run; it never schedules entries, so a searched run and the replay of its
schedule ask the scheduler (and its tie-break stream) exactly the same questions and write
byte-identical traces.

* Replay (no decider): the scenario's steps run at their times (a step whose precondition does
  not hold is recorded as skipped) and exactly its fault firings fire.
* Search (a decider): the explorer asks ``explore:length`` (how many decisions), then before each
  decision ``explore:wait:<i>`` (from the scenario's waits) and at it ``explore:action:<i>`` among
  the actions that are ready, ``explore:param:<i>:<name>`` per parameter; no ready action makes
  the decision a ``wait`` step. Fault points matching the scenario's patterns ask the decider.
  Every decision is recorded as a :class:`~firmware_sim.explore.model.Step` and every firing as
  a :class:`~firmware_sim.explore.model.FaultFiring`: the schedule replays the run.

An exception from a device's user firmware (a frame in the file of its class) ends the run with
a violation of the pseudo-property ``firmware-raised`` (``user_code``); one from a user property
is a one-line ``PropertyError``.

A run ends at the first violation, at the horizon, or early - at least a second after the last
action - once no decision is left, nothing an action started is under way and every property
is settled. A replay without any step (a world left alone) never ends early: it lasts to the
horizon. A :class:`~firmware_sim.kernel.errors.PowerCut` raised inside a DCT write
(an armed ``operator.dct_power_cut`` or the fault point ``dct:<device>:power_cut:<step>``) is
caught here: the device loses power and boots again a second later.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..apps import BUILTIN_FIRMWARE, resolve_firmware
from ..kernel.errors import FwSimError, PowerCut
from ..kernel.trace import TraceRecord
from ..system.device import Device
from ..testbed import Testbed
from .actions import ACTIONS, ActionDef, get_action
from .choosers import Decider, ExplorerChooser
from .context import RunContext
from .model import (
    WAIT,
    Coverage,
    ParamValue,
    Schedule,
    Step,
    TiebreakPolicy,
    Violation,
    micros,
    params_of,
)
from .properties import Checker, PropertySpec
from .scenario_file import ExploreDesc, ScenarioFile
from .thingsboard_actions import TB_ACTIONS  # noqa: F401  (registers the ThingsBoard actions)
from .thingsboard_properties import TB_PROPERTIES  # noqa: F401  (and its properties)
from .thingsboard_world import add_buttons, power_on_buttons
from .user_code import FIRMWARE_RAISED, PropertyError, raised, source_file, user_frame

#: with no action left, how often (virtual time) the run loop asks whether it may end early
SETTLE_CHECK_US = 1_000_000


@dataclass
class RunOutcome:
    """What one run did and found."""

    seed: int
    tiebreak: TiebreakPolicy
    schedule: Schedule
    violations: list[Violation]
    coverage: Coverage = field(default_factory=Coverage)
    end_us: int = 0
    #: the run's trace records, when asked for (``execute(keep_records=True)``)
    records: list[TraceRecord] = field(default_factory=list)

    @property
    def violated(self) -> bool:
        return bool(self.violations)


def available_actions(scenario: ScenarioFile) -> list[ActionDef]:
    """The actions the explorer may take in ``scenario`` (its ``[explore] actions``, else every
    action of its cloud)."""
    explore = scenario.explore or ExploreDesc()
    cloud = scenario.world.cloud
    if explore.actions:
        return [get_action(name) for name in explore.actions]
    return [a for a in ACTIONS.values() if a.cloud in (None, cloud)]


class _Runner:
    def __init__(self, scenario: ScenarioFile, properties: Sequence[PropertySpec], *,
                 decider: Decider | None, seed: int, tiebreak: TiebreakPolicy,
                 trace_path: str | Path | None, stop_on_violation: bool,
                 keep_records: bool = False) -> None:
        self.scenario = scenario
        self.explore = scenario.explore or ExploreDesc()
        self.decider = decider
        self.chooser = ExplorerChooser(
            seed, tiebreak=tiebreak, decider=decider,
            patterns=self.explore.faults if decider is not None else (),
            firings=scenario.schedule.faults if decider is None else ())
        spec = replace(scenario.testbed_spec(chooser=self.chooser, trace_path=trace_path),
                       seed=seed)
        self.testbed = Testbed(spec)
        self.world = self.testbed.world
        self.ctx = RunContext(self.testbed, scenario)
        self.seed = seed
        self.tiebreak = tiebreak
        self.stop_on_violation = stop_on_violation
        self.keep_records = keep_records
        self.violations: list[Violation] = []
        self.stopped = False
        self.steps: list[Step] = []
        self.coverage = Coverage()
        self.checkers: list[Checker] = []
        self._wakeups: list[tuple[int, int, Checker]] = []
        self._wakeup_seq = 0
        self._last_action_us = 0
        self.world.trace.emit("world", "scenario", "scenario.start", name=scenario.name)
        add_buttons(self.testbed, scenario.world.buttons)
        for prop in properties:
            checker = prop.make()
            checker.name = prop.name
            checker._sink = self._violated  # type: ignore[attr-defined]
            checker._alarm = self._alarm  # type: ignore[attr-defined]
            self._user(checker, checker.start, self.ctx)
            self.checkers.append(checker)
        self._install_dct_faults()
        self.world.trace.subscribe(self._on_record)

    # -- properties ----------------------------------------------------------------------------

    def _on_record(self, record: TraceRecord) -> None:
        for checker in self.checkers:
            try:
                checker.on_record(record)
            except FwSimError:
                raise
            except Exception as exc:
                raise self._property_error(checker, exc) from None

    def _user(self, checker: Checker, call: Callable[..., object], *args: object) -> object:
        """``call(*args)``, a method of ``checker``: a user property's exception becomes a
        one-line :class:`PropertyError` naming its file and line."""
        try:
            return call(*args)
        except FwSimError:
            raise
        except Exception as exc:
            raise self._property_error(checker, exc) from None

    @staticmethod
    def _property_error(checker: Checker, exc: Exception) -> Exception:
        target = getattr(checker, "function", None) or type(checker)
        source = source_file(target)
        if source is None:  # a built-in property: fwsim's own bug, reported as such
            return exc
        return PropertyError(raised(f"property {checker.name}", exc, user_frame(exc, source)))

    def _violated(self, name: str, message: str, signature: str) -> None:
        if self.stopped and self.stop_on_violation:
            return
        record = self.ctx.world.trace.emit("explorer", "property", "explore.violation",
                                           property=name, signature=signature, message=message)
        self.violations.append(Violation(name, message, signature, record.t_us, record.seq))
        if self.stop_on_violation:
            self.stopped = True

    def _alarm(self, checker: Checker, t_us: int) -> None:
        self._wakeup_seq += 1
        heapq.heappush(self._wakeups, (t_us, self._wakeup_seq, checker))

    def _wake(self, now: int) -> None:
        woken: list[Checker] = []
        while self._wakeups and self._wakeups[0][0] <= now:
            checker = heapq.heappop(self._wakeups)[2]
            if checker not in woken:
                woken.append(checker)
        for checker in woken:
            self._user(checker, checker.at_time, now)

    # -- faults --------------------------------------------------------------------------------

    def _install_dct_faults(self) -> None:
        """The fault point ``dct:<device>:power_cut:<step>``, asked at every step of every DCT
        write - installed only when the run may fire it (it is asked ~70 times per write)."""
        wanted = (any(p.startswith(("dct", "*")) for p in self.explore.faults)
                  if self.decider is not None
                  else any(f.point.startswith("dct:") for f in self.scenario.schedule.faults))
        if not wanted:
            return
        fault = self.chooser.fault
        operator = self.ctx.operator
        for device in self.testbed.devices.values():
            previous = device.dct.fault_hook
            prefix = f"dct:{device.name}:power_cut:"

            def hook(step: str, device: Device = device, previous: Callable[[str], None]
                     = previous, prefix: str = prefix) -> None:
                previous(step)
                if fault(prefix + step):
                    operator.cut_in_dct_write(device, step, fault=prefix + step)

            device.dct.fault_hook = hook

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except PowerCut:
            cut = list(self.ctx.operator.power_cuts)
            if not cut:
                raise
            for name in cut:
                self.ctx.operator.power_lost(self.testbed.devices[name])
        except FwSimError:
            raise
        except Exception as exc:
            message = self._firmware_raised(exc)
            if message is None:
                raise
            # a firmware bug the run found: a violation that ends the run
            self._violated(FIRMWARE_RAISED, message, type(exc).__name__)
            self.stopped = True

    def _firmware_raised(self, exc: Exception) -> str | None:
        """``firmware REF raised ... (file.py:LINE, in f)`` when ``exc`` comes from a device's
        user firmware (a frame in the file that defines its class); None otherwise."""
        for desc in self.scenario.world.devices:
            ref = desc.firmware
            if not ref or ref in BUILTIN_FIRMWARE:
                continue
            try:
                factory = resolve_firmware(ref)
            except FwSimError:
                continue
            where = user_frame(exc, source_file(factory))
            if where is not None:
                return raised(f"firmware {ref}", exc, where)
        return None

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> RunOutcome:
        scheduler = self.world.scheduler
        clock = self.world.clock
        horizon = micros(self.scenario.horizon_s)
        for desc in self.scenario.world.devices:
            if desc.power_on:
                self._guard(self.testbed.devices[desc.name].power_on)
        power_on_buttons(self.testbed, self.scenario.world.buttons)
        # a replay without actions (a world left alone, faults only) watches it to the horizon
        may_end_early = self.decider is not None or bool(self.scenario.schedule.steps)
        if self.decider is None:
            pending = list(self.scenario.schedule.steps)
            next_us: int | None = pending[0].at_us if pending else None
        else:
            pending = []
            self.decisions_left = 1 + self.chooser.pick("explore:length",
                                                        range(self.explore.max_actions))
            next_us = self._decide_wait(0)
        while not self.stopped:
            target = horizon
            if next_us is None:  # no action left: look again whether everything settled
                target = min(target, clock.now_us + SETTLE_CHECK_US)
            for candidate in (next_us, self.ctx.next_timer_us()):
                if candidate is not None and candidate < target:
                    target = candidate
            wakeups = self._wakeups
            while not self.stopped:
                due = scheduler.next_due_us()
                if wakeups and wakeups[0][0] < target:
                    target = wakeups[0][0]
                if due is None or due > target:
                    break
                self._guard(scheduler.step)
            if self.stopped:
                break
            if target > clock.now_us:
                clock.advance_to(target)
            now = clock.now_us
            self._guard(self.ctx.run_timers)
            self._wake(now)
            if self.stopped:
                break
            if next_us is not None and now >= next_us:
                self._last_action_us = now
                if self.decider is None:
                    while pending and pending[0].at_us <= now:
                        self._replay_step(pending.pop(0))
                    next_us = pending[0].at_us if pending else None
                else:
                    self._decide_action(now)
                    next_us = self._decide_wait(now)
            if self.stopped or now >= horizon:
                break
            if (may_end_early and next_us is None
                    and now >= self._last_action_us + SETTLE_CHECK_US
                    and not self.ctx.busy()
                    and all(self._user(c, c.settled) for c in self.checkers)):
                break
        if not self.stopped:
            for checker in self.checkers:
                self._user(checker, checker.finish)
                if self.stopped:
                    break
        end_us = clock.now_us
        self.testbed.close(power_off=False)
        return RunOutcome(self.seed, self.tiebreak,
                          Schedule(tuple(self.steps), tuple(self.chooser.fired)),
                          self.violations, self.coverage, end_us,
                          self.world.trace.records if self.keep_records else [])

    # -- replay --------------------------------------------------------------------------------

    def _replay_step(self, step: Step) -> None:
        self.steps.append(step)
        if step.action == WAIT:
            return
        action = get_action(step.action)
        if not action.ready(self.ctx):
            self.ctx.record_step(step, skipped="precondition")
            return
        self._apply(action, step)

    def _apply(self, action: ActionDef, step: Step) -> None:
        ctx = self.ctx
        self._guard(lambda: action.apply(ctx, step))

    # -- search --------------------------------------------------------------------------------

    def _decide_wait(self, now: int) -> int | None:
        if self.decisions_left <= 0:
            return None
        self.decisions_left -= 1
        waits = self.explore.waits
        index = self.chooser.pick(f"explore:wait:{len(self.steps)}", waits)
        at = max(now + micros(waits[index]), self.ctx.hold_until_us)
        return at if at <= micros(self.explore.until_s) else None

    def _decide_action(self, now: int) -> None:
        ctx = self.ctx
        index = len(self.steps)
        state = ctx.abstract_state()
        self.coverage.states.add(state)
        ready = [a for a in available_actions(self.scenario) if a.ready(ctx)]
        step = Step(now, WAIT)
        if ready:
            action = ready[self.chooser.pick(f"explore:action:{index}", ready)]
            menus = action.menus(ctx, self.explore.params.get(action.name))
            params: dict[str, ParamValue] = {}
            for name in sorted(menus):
                menu = menus[name]
                if not menu:
                    break
                params[name] = menu[self.chooser.pick(f"explore:param:{index}:{name}", menu)]
            else:
                chosen = Step(now, action.name, params_of(params))
                self.coverage.pairs.add((state, action.name))
                self.steps.append(chosen)
                self._apply(action, chosen)
                return
        self.steps.append(step)


def execute(scenario: ScenarioFile, properties: Sequence[PropertySpec], *,
            decider: Decider | None = None, seed: int | None = None,
            tiebreak: TiebreakPolicy | None = None, trace_path: str | Path | None = None,
            stop_on_violation: bool = True, keep_records: bool = False) -> RunOutcome:
    """Run ``scenario`` once: replay its schedule, or search one with ``decider``
    (``keep_records``: the outcome keeps the trace records)."""
    runner = _Runner(scenario, properties, decider=decider,
                     seed=scenario.seed if seed is None else seed,
                     tiebreak=tiebreak or scenario.tiebreak, trace_path=trace_path,
                     stop_on_violation=stop_on_violation, keep_records=keep_records)
    return runner.run()


def replay_schedule(scenario: ScenarioFile, outcome: RunOutcome) -> ScenarioFile:
    """``scenario`` with the seed, tie-break policy and schedule of ``outcome``."""
    return scenario.with_run(seed=outcome.seed, tiebreak=outcome.tiebreak,
                             schedule=outcome.schedule)


__all__ = ["WAIT", "RunOutcome", "available_actions", "execute", "replay_schedule"]
