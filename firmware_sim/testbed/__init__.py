"""The testbed: the one place that assembles worlds (devices, clouds, actors, transports).

``Testbed(TestbedSpec(...))`` builds a world from a declarative description; scenarios, the CLI,
benchmarks and the pytest plugin all build through it. Clouds come from a lazy registry
(:data:`CLOUDS`), edge services (the transports served on real sockets) from another
(:data:`EDGE_SERVICES`). This package - with the CLI and the pytest plugin - is the only code
that imports ``cloud_sim`` and ``transports``; the cloud plugs, the SoftAP phone and edge services
are imported only when used (PEP 562 lazy names below).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .actors import (
    CARRIERS,
    ApiClient,
    ControlRequestProvisioning,
    Customer,
    DirectProvisioning,
    Operator,
    Phone,
    Provisioning,
    ProvisioningFactory,
    SerialConsoleProvisioning,
    carrier,
)
from .clouds import CLOUDS, CloudPlug, ServedCloud, ServeOptions, cloud_kinds
from .spec import HOME_NETWORK, CloudSpec, DeviceSpec, LinkSpec, TestbedSpec, provisioned
from .testbed import SERVED, Testbed

if TYPE_CHECKING:
    from .clouds.particle import (
        ParticlePlug,
        ParticleSettings,
        claim_code_well_formed,
        enrol_remote,
        remote_api,
    )
    from .clouds.thingsboard import TbCloudSettings, ThingsBoardPlug
    from .softap_carrier import SoftApPhoneOptions, SoftApProvisioning
    from .steering import Steering, UnknownDevice

_LAZY = {
    "ParticlePlug": "firmware_sim.testbed.clouds.particle",
    "ParticleSettings": "firmware_sim.testbed.clouds.particle",
    "claim_code_well_formed": "firmware_sim.testbed.clouds.particle",
    "remote_api": "firmware_sim.testbed.clouds.particle",
    "enrol_remote": "firmware_sim.testbed.clouds.particle",
    "TbCloudSettings": "firmware_sim.testbed.clouds.thingsboard",
    "ThingsBoardPlug": "firmware_sim.testbed.clouds.thingsboard",
    "SoftApPhoneOptions": "firmware_sim.testbed.softap_carrier",
    "SoftApProvisioning": "firmware_sim.testbed.softap_carrier",
    "Steering": "firmware_sim.testbed.steering",
    "UnknownDevice": "firmware_sim.testbed.steering",
}

__all__ = [
    "CARRIERS",
    "CLOUDS",
    "HOME_NETWORK",
    "SERVED",
    "ApiClient",
    "CloudPlug",
    "CloudSpec",
    "ControlRequestProvisioning",
    "Customer",
    "DeviceSpec",
    "DirectProvisioning",
    "LinkSpec",
    "Operator",
    "ParticlePlug",
    "ParticleSettings",
    "Phone",
    "Provisioning",
    "ProvisioningFactory",
    "SerialConsoleProvisioning",
    "ServeOptions",
    "ServedCloud",
    "SoftApPhoneOptions",
    "SoftApProvisioning",
    "Steering",
    "TbCloudSettings",
    "Testbed",
    "TestbedSpec",
    "ThingsBoardPlug",
    "UnknownDevice",
    "carrier",
    "claim_code_well_formed",
    "cloud_kinds",
    "enrol_remote",
    "provisioned",
    "remote_api",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'firmware_sim.testbed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
