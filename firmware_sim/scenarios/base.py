"""What every scenario is made of: a world description, a runner, checks and a verdict.

A :class:`Scenario` describes its world as a :class:`~firmware_sim.testbed.TestbedSpec`
(``stage``) and plays it on virtual time (``runner``): the runner gets the built testbed and the
phone's provisioning carrier and returns :class:`Check` results and a one-line verdict.
:meth:`Scenario.run` adds the seed and the trace, emits ``scenario.start`` and
``scenario.verdict`` records and returns a :class:`ScenarioResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..kernel.errors import UsageError
from ..kernel.world import World
from ..services.log import log_lines
from ..system.device import Device
from ..testbed import Provisioning, ProvisioningFactory, Testbed, TestbedSpec
from ..testbed.clouds.particle import ParticlePlug


@dataclass
class Check:
    description: str
    ok: bool


@dataclass
class StoryResult:
    """What any scenario run gives back, whichever cloud it tells about."""

    name: str
    seed: int
    passed: bool
    verdict: str
    testbed: Testbed
    checks: list[Check] = field(default_factory=list)
    #: why the scenario did not run (a missing optional dependency), None when it ran
    skipped: str | None = None

    @property
    def world(self) -> World:
        return self.testbed.world

    @property
    def simulated_seconds(self) -> float:
        return self.world.now


@dataclass
class ScenarioResult(StoryResult):
    """A Particle story's run: its timeline is the device's Device OS log."""

    @property
    def header(self) -> str:
        """What the run was about, for the first line of a report."""
        device = self.device
        return f"device {device.name} ({device.profile.name}, id {device.device_id})"

    @property
    def device(self) -> Device:
        return self.testbed.device

    @property
    def cloud(self) -> ParticlePlug:
        return particle(self.testbed)

    @property
    def timeline(self) -> list[str]:
        return log_lines(self.world.trace.records, self.device.name)


#: a scenario's body: it gets the built testbed and the phone's carrier, runs, and judges
Runner = Callable[[Testbed, ProvisioningFactory], tuple[list[Check], str]]


@dataclass(frozen=True)
class Scenario:
    """A reproducible story: ``stage`` describes the world (everything but the seed and the
    trace), ``runner`` plays it on virtual time and returns the checks and a verdict."""

    name: str
    summary: str
    stage: Callable[[], TestbedSpec]
    runner: Runner

    def run(self, seed: int = 0, *, trace_path: str | Path | None = None,
            provisioning: ProvisioningFactory | None = None,
            timing: str | None = None) -> ScenarioResult:
        """Play the story with ``seed``; ``timing`` overrides the stage's timing profile."""
        spec = replace(self.stage(), seed=seed, trace_path=trace_path)
        if timing is not None:
            spec = replace(spec, timing=timing)
        testbed = Testbed(spec)
        world = testbed.world
        world.trace.emit("world", "scenario", "scenario.start", name=self.name)
        try:
            checks, verdict = self.runner(testbed, provisioning or default_provisioning)
            passed = all(check.ok for check in checks)
            world.trace.emit("world", "scenario", "scenario.verdict", name=self.name,
                             passed=passed, verdict=verdict,
                             failed=[c.description for c in checks if not c.ok])
        finally:
            testbed.close(power_off=False)
        return ScenarioResult(self.name, world.seed, passed, verdict, testbed, checks)


def default_provisioning(device: Device) -> Provisioning:
    from ..testbed import ControlRequestProvisioning

    return ControlRequestProvisioning(device)


def particle(testbed: Testbed) -> ParticlePlug:
    """The testbed's Particle cloud (every catalog scenario has one)."""
    cloud = testbed.cloud
    if not isinstance(cloud, ParticlePlug):
        raise UsageError("this scenario needs the particle cloud")
    return cloud


__all__ = ["Check", "Runner", "Scenario", "ScenarioResult", "StoryResult", "default_provisioning",
           "particle"]
