"""The testbed: the one place that assembles worlds.

How this works
--------------
``Testbed(spec)`` builds, in this order (the order is part of the trace, so it never changes):
the World (seed, trace sinks), the radio environment's access points, the cloud named by
``spec.cloud`` (through the cloud registry), then each device of ``spec.devices`` with its
firmware resolved, its timing profile (``DeviceSpec.timing``, else ``TestbedSpec.timing``) and
its link to the cloud. Nothing is powered on: scenarios decide when
(``testbed.power_on()``), because boot time is part of what they test.

A device's link (``DeviceSpec.link`` or the testbed default):

* no ``cloud_url``: an in-process datagram link to the testbed's cloud (virtual time);
* ``cloud_url="coap://HOST:PORT"``: real UDP sockets, which need the real-time driver
  (:meth:`Testbed.driver`); the link is attached when the device is added in real-time mode;
* the special value :data:`SERVED` reaches the testbed's own cloud through its UDP socket once
  :meth:`Testbed.serve_cloud` opened it (``fwsim up``: devices use the cloud exactly as devices
  in another process would).

Everything else that builds worlds - scenarios, the CLI, benchmarks, the pytest plugin - goes
through this class; it is the only code (with the CLI and plugin) that imports ``cloud_sim``
and ``transports``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..apps import resolve_firmware
from ..kernel.errors import ConfigurationError, UsageError
from ..kernel.link import DatagramPort, Receiver
from ..kernel.output_paths import check_output_file
from ..kernel.private_files import make_private_dir, open_private_text
from ..kernel.trace import JsonlSink, TraceRecord, TraceSink
from ..kernel.world import World, check_node_name
from ..system.device import Device, FirmwareOptions
from ..system.radio import radio_environment
from ..system.timing import timing_profile
from .clouds import CloudPlug, ServedCloud, ServeOptions, build_cloud
from .spec import DeviceSpec, LinkSpec, TestbedSpec

if TYPE_CHECKING:
    from ..kernel.realtime import AsyncioDriver

#: ``LinkSpec(cloud_url=SERVED)``: reach the testbed's own cloud over its served UDP socket.
SERVED = "served:"


class Testbed:
    """A world with its radio, cloud and devices, built from a :class:`TestbedSpec`."""

    __test__ = False  # not a pytest test class

    def __init__(self, spec: TestbedSpec | None = None, *,
                 world: World | None = None) -> None:
        self.spec = spec = spec or TestbedSpec()
        if world is None:
            sinks: list[TraceSink] = list(spec.sinks)
            if spec.trace_path is not None:
                sinks.append(LiveJsonlSink(spec.trace_path))
            world = World(spec.seed, sinks=sinks, trace_memory_limit=spec.trace_memory_limit,
                          chooser=spec.chooser)
        self.world = world
        self._driver: AsyncioDriver | None = None
        self.served: ServedCloud | None = None
        self._pending_links: list[tuple[Device, LinkSpec]] = []
        #: per device name: the steerable loss/latency of its UDP link (served devices)
        self.link_conditioners: dict[str, ConditionedConnector] = {}
        radio = radio_environment(world)
        for access_point in spec.access_points:
            radio.add(access_point)
        self.cloud: CloudPlug | None = (build_cloud(world, spec.cloud) if spec.cloud is not None
                                        else None)
        self.devices: dict[str, Device] = {}
        for device_spec in spec.devices:
            self.add_device(device_spec)

    # -- devices -------------------------------------------------------------------------------

    def add_device(self, spec: DeviceSpec) -> Device:
        """Build a device from ``spec`` and link it to its cloud (not powered on)."""
        check_node_name(spec.name)  # before any use of the name (seeding its random streams)
        if spec.name in self.devices:
            raise UsageError(f"a device named {spec.name!r} already exists in this testbed")
        storage = Path(spec.storage_dir) if spec.storage_dir is not None else None
        if storage is not None:
            try:
                make_private_dir(storage)
            except OSError as exc:
                raise ConfigurationError(f"cannot create the storage folder {str(storage)!r}: "
                                         f"{exc.strerror or exc}") from None
        options = replace(firmware_options(spec.options) or FirmwareOptions(),
                          timing=timing_profile(spec.timing or self.spec.timing).name)
        if self.spec.firmware_errors is not None:
            options = replace(options, firmware_errors=self.spec.firmware_errors)
        link = spec.link or self.spec.link
        # a device on a socket gets its secrets from the OS CSPRNG (a seeded key could be
        # computed by anyone who knows the seed); in process from the seeded stream
        served = link.cloud_url is not None or self.spec.secrets_from_os
        key_random = secrets.token_bytes if served else None
        device = Device(self.world, spec.name, profile=spec.profile, device_id=spec.device_id,
                        serial_number=spec.serial_number, mobile_secret=spec.mobile_secret,
                        storage_dir=storage, firmware=resolve_firmware(spec.firmware),
                        options=options, dct_fault_hook=spec.dct_fault_hook,
                        key_random=key_random)
        if len(device.credentials) == 0:  # a stored device keeps what it learnt
            for credentials in spec.wifi:
                device.credentials.set(credentials)
        self.devices[spec.name] = device
        self._link(device, link)
        return device

    def _link(self, device: Device, link: LinkSpec) -> None:
        if link.cloud_url is None:
            if self.cloud is None:
                raise ConfigurationError(f"device {device.name} has no cloud to link to: give "
                                         "the testbed a cloud or the device a cloud URL")
            self.cloud.connect_device(device, link)
        elif link.cloud_url == SERVED:
            if self.served is None:
                self._pending_links.append((device, link))
            else:
                # the testbed's own cloud knows the device's key, the device the cloud's
                enrol = getattr(self.cloud, "enrol_device", None)
                if enrol is not None:
                    enrol(device)
                self._attach_udp(device, self.served.device_url)
        elif self._driver is not None:
            self._attach_udp(device, link.cloud_url)
        else:
            self._pending_links.append((device, link))

    def _attach_udp(self, device: Device, url: str) -> None:
        from transports.net import UdpCloudConnector

        from .adapters import dtls_credentials

        connector = ConditionedConnector(
            UdpCloudConnector.from_url(url, self.driver(), tracer=device.tracer.child("udp"),
                                       credentials=lambda: dtls_credentials(device)),
            self.world, device.name)
        self.link_conditioners[device.name] = connector
        device.attach_cloud(connector)

    @property
    def device(self) -> Device:
        """The first device (most worlds have one)."""
        if not self.devices:
            raise UsageError("this testbed has no device")
        return next(iter(self.devices.values()))

    def power_on(self, *names: str) -> None:
        """Power on the named devices (all when none is named)."""
        for name in names or tuple(self.devices):
            self.devices[name].power_on()

    # -- time ----------------------------------------------------------------------------------

    def run_for(self, seconds: float) -> None:
        self.world.run_for(seconds)

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        return self.world.run_until(predicate, timeout)

    # -- real time -----------------------------------------------------------------------------

    def driver(self, speed: float = 1.0) -> AsyncioDriver:
        """The real-time driver of this world (created on first use; run it in a loop)."""
        if self._driver is None:
            from ..kernel.realtime import AsyncioDriver

            self._driver = AsyncioDriver(self.world, speed=speed)
            self._flush_links()
        return self._driver

    async def serve_cloud(self, options: ServeOptions | None = None) -> ServedCloud:
        """Open the cloud's sockets (REST and device link); devices linked with
        :data:`SERVED` are attached to its device port."""
        if self.cloud is None:
            raise ConfigurationError("this testbed has no cloud to serve")
        if self.served is not None:
            raise UsageError("the cloud is already served")
        options = options or ServeOptions()
        self.served = await self.cloud.serve(self.driver(options.speed), options)
        self._flush_links()
        return self.served

    def _flush_links(self) -> None:
        pending, self._pending_links = self._pending_links, []
        for device, link in pending:
            self._link(device, link)

    # -- the end -------------------------------------------------------------------------------

    def close(self, *, power_off: bool = True) -> None:
        """Power devices off (closing their sockets; ``power_off=False`` leaves them as they
        are, e.g. for inspection after a scenario), release the cloud, close the trace."""
        for device in self.devices.values():
            if power_off and device.running:
                device.power_off()
        if self.cloud is not None:
            self.cloud.close()
        self.world.trace.close()

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[Device]:
        return iter(self.devices.values())

    def describe(self) -> dict[str, Any]:
        return {"seed": self.world.seed,
                "cloud": self.cloud.kind if self.cloud is not None else None,
                "devices": {name: {"id": d.device_id, "profile": d.profile.name}
                            for name, d in self.devices.items()}}


def firmware_options(value: FirmwareOptions | Mapping[str, Any] | None
                     ) -> FirmwareOptions | None:
    """``DeviceSpec.options`` as :class:`FirmwareOptions`: one already, a mapping of its fields
    (``{"send_claim_code_on_resume": True}``; the others keep their defaults), or None. An
    unknown field or another type is a :class:`ConfigurationError` naming it."""
    if value is None or isinstance(value, FirmwareOptions):
        return value
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"firmware options must be a FirmwareOptions or a dict of its "
                                 f"fields, not {type(value).__name__}")
    known = {f.name for f in fields(FirmwareOptions)}
    unknown = sorted(repr(key) for key in value if key not in known)
    if unknown:
        raise ConfigurationError(
            f"unknown firmware option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(FirmwareOptions fields: {', '.join(sorted(known))})")
    return FirmwareOptions(**value)


class LiveJsonlSink:
    """A JSON-lines trace file written line by line as records happen (line-buffered, so a
    reader - ``fwsim trace show --follow`` - sees each record at once). Missing parent folders
    are created."""

    def __init__(self, path: str | Path) -> None:
        target = Path(path)
        check_output_file(target, "trace file")  # "not a directory", not "File exists"
        try:
            if target.parent != Path():
                target.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open_private_text(target, buffering=1)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write trace file {target}: {exc.strerror or exc}") from None
        self._sink = JsonlSink(self._stream)

    def write(self, record: TraceRecord) -> None:
        self._sink.write(record)

    def close(self) -> None:
        self._sink.close()
        self._stream.close()


class ConditionedConnector:
    """A device's cloud connector with steerable loss and one-way latency, applied to both
    directions of every port it opens (a served device's UDP link: what
    :meth:`~firmware_sim.testbed.steering.Steering.link` changes). At loss 0 and latency 0 it
    passes datagrams straight through."""

    def __init__(self, inner: Callable[[Receiver], DatagramPort], world: World,
                 name: str) -> None:
        self.inner = inner
        self.world = world
        self.name = name
        self.loss = 0.0
        self.latency_s = 0.0
        self._rng = world.rng_for(f"link-conditions:{name}")
        self._tracer = world.trace.bind(name, "link")

    def set(self, *, loss: float | None = None, latency_s: float | None = None) -> None:
        if loss is not None:
            self.loss = float(loss)
        if latency_s is not None:
            self.latency_s = float(latency_s)

    def _carry(self, direction: str, deliver: Callable[[bytes], None], data: bytes) -> None:
        if self.loss > 0 and self._rng.random() < self.loss:
            self._tracer.emit("datagram.lost", direction=direction, size=len(data))
            return
        if self.latency_s > 0:
            self.world.call_later(self.latency_s, deliver, data, label="link-latency")
        else:
            deliver(data)

    def __call__(self, receiver: Receiver) -> DatagramPort:
        holder: list[DatagramPort] = []

        def receive(data: bytes) -> None:
            def deliver(payload: bytes) -> None:
                if holder and not holder[0].closed:
                    receiver(payload)
            self._carry("to-device", deliver, data)

        port = self.inner(receive)
        holder.append(port)
        return _ConditionedPort(self, port)


class _ConditionedPort:
    def __init__(self, connector: ConditionedConnector, port: DatagramPort) -> None:
        self._connector = connector
        self._port = port

    def send(self, data: bytes) -> None:
        def deliver(payload: bytes) -> None:
            if not self._port.closed:
                self._port.send(payload)
        self._connector._carry("to-cloud", deliver, bytes(data))

    def close(self) -> None:
        self._port.close()

    @property
    def closed(self) -> bool:
        return self._port.closed


__all__ = ["SERVED", "ConditionedConnector", "LiveJsonlSink", "Testbed", "firmware_options"]
