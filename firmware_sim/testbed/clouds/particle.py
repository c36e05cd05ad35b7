"""The Particle cloud in a testbed: :class:`cloud_sim.Cloud` built, linked and served.

In process, each device gets its own datagram link to the cloud's device endpoint (latency and
seeded loss from the device's :class:`~firmware_sim.testbed.spec.LinkSpec`). Served, the cloud
listens on a REST port (FastAPI on uvicorn) and a CoAP/UDP port through
:class:`cloud_sim.server.CloudServer`; both need the ``cloud`` extra, imported only then.

Settings (:class:`ParticleSettings`): an SQLite database (``db``; None keeps everything in
memory), the device endpoint's options, the claim-code lifetime and the API claim policy, and
the cloud-time epoch (None: the fixed 2026-01-01 of in-process runs; the serving commands pass
the wall clock so a persistent database's expiry times survive restarts), and whether silent
devices are marked offline (the serving commands: after 75 s, three keepalives).

What actors and the explorer do to the cloud in process goes through the plug: forget a device's
session, restart the cloud process (:meth:`ParticlePlug.restart`), change a device link's loss
and latency while it runs (:meth:`ParticlePlug.set_link_conditions`), claim through the API rules
(:meth:`ParticlePlug.api_claim`), watch the event bus (:meth:`ParticlePlug.subscribe_events`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cloud_sim import (
    ApiClaimPolicy,
    Cloud,
    CloudStore,
    EndpointOptions,
    MemoryStore,
    Principal,
    is_well_formed,
)
from cloud_sim.device_endpoint import CallResult
from cloud_sim.device_keys import DeviceKeyRegistry
from cloud_sim.events import CloudEvent
from cloud_sim.http.device_calls import await_device
from cloud_sim.http.render import api_variables

from ...kernel.errors import ConfigurationError
from ...kernel.link import DatagramLink, DatagramPort, LinkEnd, Receiver
from ...kernel.world import World
from ..actors import ApiClient
from ..spec import CloudSpec, LinkSpec
from . import ServedCloud, ServeOptions

if TYPE_CHECKING:
    from transports.net import UdpCloudConnector

    from ...kernel.realtime import AsyncioDriver
    from ...kernel.runtime import Runtime
    from ...system.device import Device

#: a device silent for three keepalives (25 s each) is marked offline when served
SERVED_OFFLINE_AFTER_S = 75.0


@dataclass(frozen=True)
class ParticleSettings:
    db: str | None = None
    endpoint: EndpointOptions | None = None
    claim_code_ttl_s: float | None = None
    claim_policy: ApiClaimPolicy | None = None
    epoch: int | None = None
    #: mark devices offline after this many silent seconds (None: never, as in process)
    offline_after_s: float | None = None
    #: tokens, ids, salts, claim codes and session ids from the OS CSPRNG instead of the world
    #: seed: every cloud that serves sockets (replayable in-process runs keep the seed)
    unpredictable: bool = False


def _missing_extra(exc: ModuleNotFoundError) -> ConfigurationError:
    return ConfigurationError(f"this needs the Particle cloud's REST API, which needs "
                              f"{exc.name}: install fwsim[cloud]")


class ParticlePlug:
    kind = "particle"

    def __init__(self, world: World, spec: CloudSpec) -> None:
        settings = spec.settings if spec.settings is not None else ParticleSettings()
        if not isinstance(settings, ParticleSettings):
            raise ConfigurationError("the particle cloud takes ParticleSettings")
        self.world = world
        self.name = spec.name
        self.settings = settings
        store: CloudStore
        if settings.db is not None:
            from cloud_sim import SqliteStore

            store = SqliteStore(settings.db)
        else:
            store = MemoryStore()
        # the testbed registers the key of every device it links (in process and served), so
        # the cloud refuses handshakes from any other device id
        options = replace(settings.endpoint or EndpointOptions(), registered_only=True)
        if settings.epoch is not None:
            options = replace(options or EndpointOptions(), epoch=settings.epoch)
        if settings.offline_after_s is not None:
            options = replace(options or EndpointOptions(),
                              offline_after_s=settings.offline_after_s)
        kwargs: dict[str, Any] = {}
        if settings.claim_code_ttl_s is not None:
            kwargs["claim_code_ttl_s"] = settings.claim_code_ttl_s
        self.cloud = Cloud(world, store=store, options=options, name=spec.name,
                           claim_policy=settings.claim_policy,
                           unpredictable=settings.unpredictable,
                           device_keys=DeviceKeyRegistry(settings.db), **kwargs)
        #: per device name: its connector (future links) and its link in use
        self._connectors: dict[str, Any] = {}
        self._links: dict[str, DatagramLink] = {}
        if settings.db is not None:
            # a cloud that just started has no device session; stale codes go
            self.cloud.mark_all_offline()
            store.delete_expired_claim_codes(self.cloud.unix_us)

    # -- the testbed's interface ---------------------------------------------------------------

    def enrol_device(self, device: Device) -> bytes:
        """Register the device's public key with the cloud (as at manufacturing) and give the
        device the cloud's server public key; returns that key (SubjectPublicKeyInfo DER)."""
        public = device.keys.public_key_der()
        if public is None:
            raise ConfigurationError(f"device {device.name} has no valid key pair in its DCT")
        self.cloud.register_device_key(device.device_id, public)
        server_key = self.cloud.device_keys.server_key().public_der
        device.server_config.set_public_key(server_key)
        return server_key

    def register_device(self, device: Device) -> None:
        """Register the device's public key (in process: the stand-in does no key exchange)."""
        public = device.keys.public_key_der()
        if public is not None:
            self.cloud.register_device_key(device.device_id, public)

    def connect_device(self, device: Device, link: LinkSpec) -> None:
        self.register_device(device)
        connector = self.cloud.connector(latency_s=link.latency_s, loss=link.loss)
        self._connectors[device.name] = connector
        name = device.name

        def connect(receiver: Receiver) -> DatagramPort:
            port = connector(receiver)
            if isinstance(port, LinkEnd):
                self._links[name] = port.link
            return port

        device.attach_cloud(connect)

    async def serve(self, driver: AsyncioDriver, options: ServeOptions) -> ServedCloud:
        try:
            from cloud_sim.server import CloudServer, ServerConfig
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        config = ServerConfig(host=options.host, http_port=options.http_port,
                              coap_host=options.host, coap_port=options.device_port,
                              speed=options.speed, **options.extra)
        server = CloudServer(self.cloud, config, driver=driver, run_driver=False)
        await server.start()
        lines = [("REST API", f"{server.http_url}  (OpenAPI {server.http_url}/openapi.json)"),
                 ("CoAP/UDP", f"{server.coap_url}  (DTLS 1.2; a device in another process "
                  "enrols its key: fwsim device run --api URL --admin-token T)")]
        return ServedCloud(lines, server.http_url, server.coap_url, server.stop, server)

    def close(self) -> None:
        self.cloud.store.close()
        self.cloud.device_keys.close()

    # -- what scenarios and actors use ---------------------------------------------------------

    @staticmethod
    def user(email: str) -> Principal:
        return Principal.user(email)

    def create_claim_code(self, owner: Principal, *, product_id: int | None = None,
                          ttl_s: float | None = None) -> str:
        return self.cloud.create_claim_code(owner, product_id, ttl_s).code

    def owner_of(self, device_id: str) -> Principal | None:
        return self.cloud.owner_of(device_id)

    def claim_code_consumed(self, code: str) -> bool:
        claim = self.cloud.store.get_claim_code(code)
        return bool(claim and claim.consumed)

    def forget_session(self, device_id: str) -> bool:
        """The cloud drops the device's session: its next resume gets a RST."""
        return self.cloud.endpoint.forget_session(device_id)

    def send_key_change(self, device_id: str) -> bool:
        """The cloud tells the device to discard its session (a key change message)."""
        return self.cloud.endpoint.send_key_change(device_id)

    def interface_of(self, device_id: str) -> tuple[list[str], list[tuple[str, str]]] | None:
        """The functions and the variables (name, API type name) of the device's last
        application describe (None before one came)."""
        interface = self.cloud.endpoint.interface_of(device_id)
        if interface is None:
            return None
        return list(interface.functions), list(api_variables(interface).items())

    async def call_function(self, device_id: str, name: str, argument: str,
                            runtime: Runtime) -> CallResult:
        """Call the device's function and await the outcome, as the REST route does
        (``runtime``: the World's driver). A device the cloud shows offline answers
        ``offline`` at once, by the endpoint's one rule for every caller
        (:meth:`~cloud_sim.device_endpoint.DeviceEndpoint.is_online`): nothing is sent on the
        session the cloud keeps for its resumption."""
        endpoint = self.cloud.endpoint
        return await await_device(self.cloud, runtime, lambda done: endpoint.call_function(
            device_id, name, argument, done))

    async def get_variable(self, device_id: str, name: str, runtime: Runtime) -> CallResult:
        """Ask the device for its variable's value and await the outcome (``offline`` at once
        for a device the cloud shows offline, as :meth:`call_function`)."""
        endpoint = self.cloud.endpoint
        return await await_device(self.cloud, runtime, lambda done: endpoint.get_variable(
            device_id, name, done))

    def restart(self) -> int:
        """The cloud process restarts: sessions are forgotten (the store stays)."""
        return self.cloud.endpoint.restart()

    def set_link_conditions(self, device_name: str, *, loss: float | None = None,
                            latency_s: float | None = None) -> None:
        """Change the loss and/or one-way latency of a device's link, for the link in use and
        every later one (a device reconnecting gets a new link)."""
        if loss is not None and not 0.0 <= loss <= 1.0:
            raise ConfigurationError(f"loss must be between 0 and 1, not {loss!r}")
        if latency_s is not None and not latency_s >= 0:
            raise ConfigurationError(f"latency must not be negative, not {latency_s!r}")
        connector = self._connectors.get(device_name)
        if connector is None:
            raise ConfigurationError(f"device {device_name!r} has no in-process link")
        targets: list[Any] = [connector]
        if device_name in self._links:
            targets.append(self._links[device_name])
        for target in targets:
            if loss is not None:
                target.loss = loss
            if latency_s is not None:
                target.latency_s = latency_s

    def link_conditions(self, device_name: str) -> tuple[float, float]:
        """``(loss, latency_s)`` new links of the device get."""
        connector = self._connectors.get(device_name)
        if connector is None:
            raise ConfigurationError(f"device {device_name!r} has no in-process link")
        return float(connector.loss), float(connector.latency_s)

    def api_claim(self, caller: Principal, device_id: str, *,
                  request_transfer: bool = False) -> str:
        """``POST /v1/devices`` decided in process (the REST API's rules); the outcome name."""
        return self.cloud.api_claim(caller, device_id, request_transfer).outcome.value

    def subscribe_events(self, listener: Callable[[CloudEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event on the cloud's bus; returns an unsubscribe."""
        return self.cloud.bus.subscribe(listener)

    def api(self) -> AbstractContextManager[ApiClient]:
        """The REST API called in process through its whole ASGI stack (virtual time)."""
        try:
            from cloud_sim.http import create_app
            from cloud_sim.http.client import AsgiApiClient
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        return AsgiApiClient(create_app(self.cloud))


def remote_api(base_url: str, *, admin_token: str | None = None
               ) -> AbstractContextManager[ApiClient]:
    """A client of a Particle cloud's REST API in another process (HTTP); ``admin_token`` goes
    with every request (the ``/fwsim`` namespace needs it)."""
    try:
        from cloud_sim.http.client import HttpApiClient
    except ModuleNotFoundError as exc:
        raise _missing_extra(exc) from None
    return HttpApiClient(base_url, admin_token=admin_token)


def enrol_remote(api: ApiClient, device: Device) -> bytes:
    """Enrol ``device`` with a Particle cloud in another process (its admin namespace, so
    ``api`` carries the admin token): register the device's public key and store the server's
    public key in the device's DCT. Returns that key; a refusal is a ConfigurationError."""
    public = device.keys.public_key_der()
    if public is None:
        raise ConfigurationError(f"device {device.name} has no valid key pair in its DCT")
    status, answer = api.request("POST", f"/fwsim/devices/{device.device_id}/key",
                                 json={"public_key": public.hex()})
    server_hex = answer.get("server_public_key") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(server_hex, str):
        detail = answer.get("error") if isinstance(answer, dict) else None
        raise ConfigurationError(
            f"the cloud refused to enrol device {device.device_id} (HTTP {status}"
            f"{': ' + str(detail) if detail else ''}); the admin namespace and its token "
            "are needed (`fwsim cloud serve --admin`, --admin-token)")
    try:
        server_key = bytes.fromhex(server_hex)
        device.server_config.set_public_key(server_key)
    except ValueError as exc:
        raise ConfigurationError(f"the cloud answered an unusable server key: {exc}") from None
    return server_key


def link_over_dtls(device: Device, cloud: Cloud, host: str, port: int,
                   runtime: Runtime) -> UdpCloudConnector:
    """Enrol ``device`` with ``cloud`` (both in this process; its key registered, the cloud's
    key in its DCT) and link it to the cloud's UDP socket at ``host:port`` over DTLS - for code
    that runs its own ``cloud_sim.server.CloudServer`` (tests, benchmarks, fuzzers)."""
    from transports.net import UdpCloudConnector

    from ..adapters import dtls_credentials

    public = device.keys.public_key_der()
    if public is None:
        raise ConfigurationError(f"device {device.name} has no valid key pair in its DCT")
    cloud.register_device_key(device.device_id, public)
    device.server_config.set_public_key(cloud.device_keys.server_key().public_der)
    connector = UdpCloudConnector(host, port, runtime,
                                  credentials=lambda: dtls_credentials(device),
                                  tracer=device.tracer.child("udp"))
    device.attach_cloud(connector)
    return connector


def claim_code_well_formed(code: str) -> bool:
    """63 characters of the claim-code alphabet (what the cloud issues)."""
    return is_well_formed(code)


__all__ = ["SERVED_OFFLINE_AFTER_S", "ParticlePlug", "ParticleSettings", "claim_code_well_formed",
           "enrol_remote", "link_over_dtls", "remote_api"]
