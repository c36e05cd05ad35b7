"""fwsim's device simulator: the deterministic core and its composition roots.

Public names are resolved lazily (PEP 562) so that importing ``firmware_sim.kernel`` - which the
other top-level packages do - stays cheap and free of import cycles.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "World": "firmware_sim.kernel.world",
    "VirtualClock": "firmware_sim.kernel.clock",
    "Trace": "firmware_sim.kernel.trace",
    "TraceRecord": "firmware_sim.kernel.trace",
    "FwSimError": "firmware_sim.kernel.errors",
    "DeviceOsError": "firmware_sim.kernel.errors",
    "ResultCode": "firmware_sim.kernel.errors",
    "Device": "firmware_sim.system.device",
    "FirmwareOptions": "firmware_sim.system.device",
    "Firmware": "firmware_sim.system.app",
    "Particle": "firmware_sim.system.app",
    "SystemEvent": "firmware_sim.system.events",
    "CloudStatus": "firmware_sim.system.events",
    "NetworkStatus": "firmware_sim.system.events",
    "NetworkCredentials": "firmware_sim.system.events",
    "BleProvMode": "firmware_sim.system.events",
    "FirmwareUpdate": "firmware_sim.system.events",
    "TimeChanged": "firmware_sim.system.events",
    "LogLevel": "firmware_sim.services.log",
    "BUILTIN_FIRMWARE": "firmware_sim.apps",
    "resolve_firmware": "firmware_sim.apps",
    "SessionEndWorkaround": "firmware_sim.apps",
    "SessionEndTooEarly": "firmware_sim.apps",
    "ClearSessionOnNewCredentials": "firmware_sim.apps",
    "Testbed": "firmware_sim.testbed",
    "TestbedSpec": "firmware_sim.testbed",
    "DeviceSpec": "firmware_sim.testbed",
    "CloudSpec": "firmware_sim.testbed",
    "LinkSpec": "firmware_sim.testbed",
    "Phone": "firmware_sim.testbed",
    "Customer": "firmware_sim.testbed",
    "Operator": "firmware_sim.testbed",
    "provisioned": "firmware_sim.testbed",
    "Steering": "firmware_sim.testbed",
    "AccessPoint": "firmware_sim.system.radio",
    "WifiCredentials": "firmware_sim.system.network",
    "radio_environment": "firmware_sim.system.radio",
    "get_profile": "firmware_sim.profiles",
    "SCENARIOS": "firmware_sim.scenarios",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'firmware_sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
