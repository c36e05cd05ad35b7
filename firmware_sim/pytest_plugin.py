"""pytest plugin (registered through the ``pytest11`` entry point).

Fixtures: ``fwsim_explore`` (search a scenario for property violations and fail the test with
the report, replay files and diagrams when one is found: a regression suite's "no violation in
N runs"; see docs/explore.md); ``fwsim_seed``; ``fwsim_testbed`` (a
:class:`~firmware_sim.testbed.Testbed` with ``HomeNet`` in range and the Particle cloud, no
device yet); ``fwsim_world`` and ``fwsim_cloud`` (its World and its :class:`cloud_sim.Cloud`);
``fwsim_device`` (a P2 named ``dev`` with Wi-Fi credentials for ``HomeNet``, linked to the
cloud, not yet powered on).

Options: ``--fwsim-seed N`` (default: ``$FWSIM_SEED`` or 0), ``--fwsim-trace-dir DIR``
(default ``.fwsim-traces``), ``--fwsim-trace-lines N`` (default 40).

When a test that used ``fwsim_world`` fails, the report gets a section with the seed, the command
to rerun with it, and the last trace lines, and the full trace is written as JSON lines to the
trace directory. The simulator is imported inside the fixtures, so loading the plugin costs
nothing for test suites that do not use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from cloud_sim import Cloud

    from .explore import ExploreReport
    from .kernel.world import World
    from .system.device import Device
    from .testbed import Testbed

_WORLD_KEY = pytest.StashKey[list[Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fwsim", "fwsim device simulator")
    group.addoption("--fwsim-seed", action="store", default=None,
                    help="seed of the fwsim worlds (default: $FWSIM_SEED or 0)")
    group.addoption("--fwsim-trace-dir", action="store", default=".fwsim-traces",
                    help="where full traces of failed fwsim tests are written")
    group.addoption("--fwsim-trace-lines", action="store", type=int, default=40,
                    help="trace lines shown in a failure report")


_SEED_KEY = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    raw = config.getoption("--fwsim-seed", None) or os.environ.get("FWSIM_SEED")
    if raw is None:
        return
    from .kernel.errors import ConfigurationError
    from .kernel.world import parse_seed

    try:
        config.stash[_SEED_KEY] = parse_seed(raw)
    except ConfigurationError as exc:
        raise pytest.UsageError(f"--fwsim-seed: {exc}") from None


@pytest.fixture
def fwsim_seed(request: pytest.FixtureRequest) -> int:
    return request.config.stash.get(_SEED_KEY, 0)


@pytest.fixture
def fwsim_testbed(request: pytest.FixtureRequest, fwsim_seed: int) -> Iterator[Testbed]:
    from .testbed import CloudSpec, Testbed, TestbedSpec

    testbed = Testbed(TestbedSpec(seed=fwsim_seed, cloud=CloudSpec("particle")))
    request.node.stash.setdefault(_WORLD_KEY, []).append(testbed.world)
    yield testbed
    testbed.close(power_off=False)


@pytest.fixture
def fwsim_world(fwsim_testbed: Testbed) -> World:
    return fwsim_testbed.world


@pytest.fixture
def fwsim_cloud(fwsim_testbed: Testbed) -> Cloud:
    from .testbed.clouds.particle import ParticlePlug

    plug = fwsim_testbed.cloud
    assert isinstance(plug, ParticlePlug)
    return plug.cloud


@pytest.fixture
def fwsim_device(fwsim_testbed: Testbed) -> Device:
    from .testbed import DeviceSpec, provisioned

    spec: DeviceSpec = provisioned("dev")[0]
    return fwsim_testbed.add_device(spec)


@pytest.fixture
def fwsim_explore(request: pytest.FixtureRequest, fwsim_seed: int
                  ) -> Callable[..., ExploreReport]:
    """``fwsim_explore(scenario="p2-provisioning", *, runs=..., properties=..., strategy=...,
    expect_violation=False, **explore_options)``: run :func:`firmware_sim.explore.explore`
    (seed: ``--fwsim-seed``, unless given) and return its report. Unless
    ``expect_violation`` is true, a violation fails the test with the report; the replay files
    (and diagrams) of what was found are written under ``--fwsim-trace-dir``."""
    from .explore import explore

    def run(scenario: Any = "p2-provisioning", *, expect_violation: bool = False,
            **options: Any) -> ExploreReport:
        options.setdefault("seed", fwsim_seed)
        options.setdefault("progress", False)
        out = Path(request.config.getoption("--fwsim-trace-dir")) / _safe_name(
            request.node.nodeid)
        if not expect_violation:
            options.setdefault("out", out)
            options.setdefault("diagram", True)
        report = explore(scenario, **options)
        if not report.ok and not expect_violation:
            pytest.fail(f"fwsim explore found property violations\n{report.summary()}",
                        pytrace=False)
        return report

    return run


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150] or "test"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    worlds = item.stash.get(_WORLD_KEY, [])
    if not worlds or not report.failed:
        return
    config = item.config
    lines_wanted = int(config.getoption("--fwsim-trace-lines"))
    trace_dir = Path(config.getoption("--fwsim-trace-dir"))
    sections = []
    for index, world in enumerate(worlds):
        path = trace_dir / (f"{_safe_name(item.nodeid)}"
                            f"{'' if len(worlds) == 1 else f'-{index}'}.jsonl")
        written = ""
        try:
            trace_dir.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as stream:
                for record in world.trace.records:
                    stream.write(record.to_json() + "\n")
            written = f"full trace: {path}"
        except OSError as exc:
            written = f"full trace not written: {exc}"
        tail = "\n".join(r.summary() for r in world.trace.tail(lines_wanted))
        sections.append(
            f"seed: {world.seed}  (rerun: pytest {item.nodeid} --fwsim-seed {world.seed})\n"
            f"{written}\nlast {lines_wanted} trace records:\n{tail}")
    report.sections.append(("fwsim", "\n\n".join(sections)))
