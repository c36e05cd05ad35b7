"""``fwsim explore``: search the orders and faults around a device for property violations.

A user states what must hold (properties), fwsim searches the space of actions, orders and
faults (strategies), shrinks what breaks to a minimal schedule, and hands back a replay file
(TOML, ``fwsim scenario run --file``) and a sequence diagram. docs/explore.md is the guide::

    from firmware_sim.explore import explore
    report = explore("p2-provisioning", properties=["claim-liveness"], runs=500, seed=1,
                     out="found", diagram=True)
    print(report.summary())

Modules: ``model`` (steps, schedules, violations), ``scenario_file`` (the TOML format),
``actions`` (the vocabulary), ``choosers`` (the explorer as the world's chooser), ``run`` (one
run), ``properties``, ``strategies``, ``shrink``, ``api`` (``explore``), ``user_code`` (a
firmware or property that raises, named by its file and line), ``pytest`` helpers in
``firmware_sim.pytest_plugin`` (``fwsim_explore``). ``--out`` and ``--trace`` are checked before
any work by ``firmware_sim.kernel.output_paths``.
"""

from __future__ import annotations

from .actions import ACTIONS, ActionDef, get_action, register
from .api import (
    DEFAULT_RUNS,
    DEFAULT_SCENARIO,
    ExploreReport,
    Finding,
    builtin_scenarios,
    explore,
    load_scenario,
    with_firmware,
)
from .context import RunContext
from .model import FaultFiring, Schedule, Step, TiebreakPolicy, Violation
from .properties import (
    DEFAULT_PROPERTIES,
    PROPERTIES,
    Checker,
    PropertySpec,
    resolve_all,
    user_property,
)
from .run import RunOutcome, execute
from .scenario_file import ScenarioFile, dump, dumps, load, loads
from .shrink import shrink
from .strategies import STRATEGIES

__all__ = [
    "ACTIONS",
    "DEFAULT_PROPERTIES",
    "DEFAULT_RUNS",
    "DEFAULT_SCENARIO",
    "PROPERTIES",
    "STRATEGIES",
    "ActionDef",
    "Checker",
    "ExploreReport",
    "FaultFiring",
    "Finding",
    "PropertySpec",
    "RunContext",
    "RunOutcome",
    "ScenarioFile",
    "Schedule",
    "Step",
    "TiebreakPolicy",
    "Violation",
    "builtin_scenarios",
    "dump",
    "dumps",
    "execute",
    "explore",
    "get_action",
    "load",
    "load_scenario",
    "loads",
    "register",
    "resolve_all",
    "shrink",
    "user_property",
    "with_firmware",
]
