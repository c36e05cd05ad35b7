"""Reproducible claim-code scenarios (runnable from ``fwsim scenario run`` and as tests).

Each scenario describes its world as a :class:`~firmware_sim.testbed.TestbedSpec` and plays it
on virtual time through the testbed; the phone, the app server and the operator are the
testbed's actors.
"""

from ..apps import ClearSessionOnNewCredentials, SessionEndTooEarly, SessionEndWorkaround
from ..testbed.actors import DirectProvisioning, Phone, Provisioning
from .base import Check, Scenario, ScenarioResult
from .catalog import CATALOG, SCENARIOS, get_scenario, get_story
from .thingsboard import TB_SCENARIOS

__all__ = [
    "CATALOG",
    "SCENARIOS",
    "TB_SCENARIOS",
    "Check",
    "ClearSessionOnNewCredentials",
    "DirectProvisioning",
    "Phone",
    "Provisioning",
    "Scenario",
    "ScenarioResult",
    "SessionEndTooEarly",
    "SessionEndWorkaround",
    "get_scenario",
    "get_story",
]
