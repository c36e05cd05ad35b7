"""The cloud registry: which emulated clouds a testbed can hold, loaded lazily by name.

How this works
--------------
:data:`CLOUDS` maps a cloud kind (``CloudSpec.kind``, ``--cloud`` on the command line) to the
``module:Class`` of its *plug*: the one testbed module that knows how to build that cloud in a
World, link devices to it in process, and serve it on sockets. Modules are imported only when a
kind is used (like bleak's backends), so a world with the Particle cloud never imports another
cloud's dependencies. Adding a cloud = its package + one plug module here + one line below.

A plug satisfies :class:`CloudPlug`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...kernel.errors import ConfigurationError

if TYPE_CHECKING:
    from ...kernel.realtime import AsyncioDriver
    from ...kernel.world import World
    from ...system.device import Device
    from ..spec import CloudSpec, LinkSpec

#: cloud kind -> "module:Class" of its plug
CLOUDS: dict[str, str] = {
    "particle": "firmware_sim.testbed.clouds.particle:ParticlePlug",
    "thingsboard": "firmware_sim.testbed.clouds.thingsboard:ThingsBoardPlug",
}


@dataclass(frozen=True)
class ServeOptions:
    """Where and how a served cloud listens (loopback by default; 0 picks a free port)."""

    host: str = "127.0.0.1"
    http_port: int = 0
    device_port: int = 0
    speed: float = 1.0
    #: extra, cloud-specific options (e.g. the API config of the Particle cloud)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServedCloud:
    """A cloud listening on sockets: the lines to print, the URLs, and how to stop it."""

    lines: list[tuple[str, str]]
    http_url: str
    device_url: str
    stop: Callable[[], Awaitable[None]]
    server: Any = None


class CloudPlug(Protocol):
    """What the testbed needs from a cloud."""

    kind: str
    name: str
    world: World

    def connect_device(self, device: Device, link: LinkSpec) -> None:
        """Link ``device`` to this cloud in process (virtual time, seeded latency/loss)."""

    async def serve(self, driver: AsyncioDriver, options: ServeOptions) -> ServedCloud:
        """Open the cloud's sockets; the world is driven by ``driver`` (run by the caller)."""

    def close(self) -> None:
        """Release what the cloud holds (a database, sockets)."""


def cloud_kinds() -> list[str]:
    return list(CLOUDS)


def load_plug(kind: str) -> Callable[[World, CloudSpec], CloudPlug]:
    """The plug class of ``kind``; a clear error for an unknown kind or a missing extra."""
    target = CLOUDS.get(kind)
    if target is None:
        raise ConfigurationError(f"unknown cloud {kind!r} (known: {', '.join(CLOUDS)})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"the {kind} cloud needs a package that is not installed "
                                 f"({exc.name}): install fwsim[cloud]") from None
    factory: Callable[[World, CloudSpec], CloudPlug] = getattr(module, attr)
    return factory


def build_cloud(world: World, spec: CloudSpec) -> CloudPlug:
    return load_plug(spec.kind)(world, spec)


__all__ = ["CLOUDS", "CloudPlug", "ServeOptions", "ServedCloud", "build_cloud", "cloud_kinds",
           "load_plug"]
