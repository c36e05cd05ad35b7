"""Declarative descriptions of a testbed: what a world holds before it is built.

A :class:`TestbedSpec` says everything :class:`~firmware_sim.testbed.Testbed` needs to assemble a
world: the seed, the devices (profile, firmware, Wi-Fi, storage), the radio environment, which
cloud (by registry name, with its own settings), and the default device-cloud link. Specs are
frozen values: the same spec and seed build the same world and give the same trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..apps import FirmwareFactory
from ..hal.dct import FaultHook
from ..kernel.choice import Chooser
from ..kernel.trace import TraceSink
from ..system.device import FirmwareOptions
from ..system.network import WifiCredentials
from ..system.radio import AccessPoint
from ..system.timing import DEFAULT_TIMING

#: The access point every default testbed has in range (and every provisioned device knows).
HOME_NETWORK = AccessPoint("HomeNet", "home-pass-1")


@dataclass(frozen=True)
class LinkSpec:
    """How a device reaches its cloud.

    ``cloud_url`` None: an in-process datagram link to the testbed's own cloud, with ``latency_s``
    one way and seeded ``loss``. ``cloud_url`` ``coap://HOST:PORT``: real UDP sockets to a cloud
    in another process (or to the testbed's cloud when it is served on sockets).
    """

    latency_s: float = 0.09
    loss: float = 0.0
    cloud_url: str | None = None


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device. ``firmware`` is anything :func:`~firmware_sim.apps.resolve_firmware`
    accepts (a built-in name, ``module:Class``, ``path.py[:Class]``, or a class)."""

    name: str = "dev"
    profile: str = "p2"
    firmware: str | FirmwareFactory | None = None
    #: a FirmwareOptions, or a dict of its fields (``{"send_claim_code_on_resume": True}``)
    options: FirmwareOptions | Mapping[str, Any] | None = None
    device_id: str | None = None
    serial_number: str | None = None
    mobile_secret: str | None = None
    storage_dir: str | Path | None = None
    #: Wi-Fi credentials the device knows at first boot (ignored when its storage has some).
    wifi: tuple[WifiCredentials, ...] = ()
    #: the link to the cloud; None: the testbed's default link
    link: LinkSpec | None = None
    dct_fault_hook: FaultHook | None = None
    #: timing profile (``firmware_sim.system.timing``: "thread" or "fast"); None: the
    #: testbed's. It replaces ``options.timing``.
    timing: str | None = None


@dataclass(frozen=True)
class CloudSpec:
    """Which cloud the world holds: ``kind`` is a name in the cloud registry
    (:data:`firmware_sim.testbed.clouds.CLOUDS`); ``settings`` is that cloud's own settings
    object (None: its defaults)."""

    kind: str = "particle"
    name: str = "cloud"
    settings: Any = None


@dataclass(frozen=True)
class TestbedSpec:
    """A whole world: seed, radio, cloud, devices, default link, trace."""

    __test__ = False  # not a pytest test class

    seed: int = 0
    devices: tuple[DeviceSpec, ...] = ()
    access_points: tuple[AccessPoint, ...] = (HOME_NETWORK,)
    #: None: no cloud in this world (devices reach one through ``LinkSpec.cloud_url``)
    cloud: CloudSpec | None = field(default_factory=CloudSpec)
    link: LinkSpec = field(default_factory=LinkSpec)
    trace_path: str | Path | None = None
    trace_memory_limit: int | None = None
    sinks: Sequence[TraceSink] = ()
    #: where every nondeterministic choice comes from (None: seeded by ``seed``); a recording
    #: or scripted chooser makes a run recordable and replayable choice by choice
    chooser: Chooser | None = None
    #: timing profile of every device without its own (``DeviceSpec.timing``): "thread"
    #: (calibrated to the forum thread's P2, the default) or "fast" (fleets, exploration)
    timing: str = DEFAULT_TIMING
    #: what an exception in a device's user firmware does (``FirmwareOptions.firmware_errors``:
    #: "raise" or "panic") for every device; None: each device's own options decide
    firmware_errors: str | None = None
    #: devices draw their secrets (DTLS key pair, BLE mobile secret, SoftAP RSA key) from the
    #: OS CSPRNG even without a cloud link: a world that serves its devices' edges on sockets
    #: (``fwsim serve``), where a seeded secret could be computed by anyone knowing the seed.
    #: A device with a cloud link on a socket always does.
    secrets_from_os: bool = False


def provisioned(*names: str, profile: str = "p2", network: AccessPoint = HOME_NETWORK,
                **common: Any) -> tuple[DeviceSpec, ...]:
    """Device specs that already know ``network`` (the usual start of a scenario)."""
    wifi = (WifiCredentials(network.ssid, network.password),)
    return tuple(DeviceSpec(name, profile=profile, wifi=wifi, **common) for name in names)


__all__ = ["HOME_NETWORK", "CloudSpec", "DeviceSpec", "LinkSpec", "TestbedSpec",
           "provisioned"]
