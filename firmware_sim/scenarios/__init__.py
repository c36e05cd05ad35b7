"""Reproducible claim-code scenarios (runnable from ``fwsim scenario run`` and as tests)."""

from .apps import ClearSessionOnNewCredentials, SessionEndTooEarly, SessionEndWorkaround
from .catalog import SCENARIOS, Check, Scenario, ScenarioResult, get_scenario
from .phone import DirectProvisioning, Phone, Provisioning

__all__ = [
    "SCENARIOS",
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
]
