"""The emulated ThingsBoard in a testbed: the service, its demo data and claim-button devices.

How this works
--------------
``ThingsBoardPlug(world, CloudSpec("thingsboard", settings=...))`` builds, in this order (the
order is part of the trace): the :class:`~cloud_sim.thingsboard.ThingsBoardService` (SQLite at
``settings.db``, in memory when None; cloud time = ``settings.epoch_ms`` + virtual time, the
fixed 2026-01-01 when None), ThingsBoard's demo accounts (``settings.demo``), then
``settings.buttons`` claim-button devices ``Claim Button 1..N`` of the demo tenant
(``firmware_sim.claim_button``), each linked in process. Nothing is powered on:
:meth:`ThingsBoardPlug.power_on` (or each button's ``power_on``) does. ``settings`` is a
:class:`TbCloudSettings`, or just a :class:`ThingsBoardSettings` (the other fields default).

In process (virtual time):

* MQTT: a kernel :class:`~firmware_sim.kernel.stream.StreamListener` (``<service>-mqtt``) whose
  every accepted end carries a :class:`~cloud_sim.thingsboard.MqttServerSession`;
  :meth:`~ThingsBoardPlug.mqtt_connector` is a button's connector to it,
  :meth:`~ThingsBoardPlug.connect_mqtt` a raw client end (e.g. a gateway);
* HTTP and CoAP: :class:`ServiceUplink` calls the service's device API after a latency and
  answers as that transport would (200/401/400, 2.01/4.01/4.00);
* REST: :meth:`~ThingsBoardPlug.rest` runs one request through the whole FastAPI app.

Served (:meth:`~ThingsBoardPlug.serve`): the REST + device HTTP API on ``options.http_port`` and
CoAP on ``options.extra["coap_port"]`` (:class:`cloud_sim.thingsboard.ThingsBoardServer`; the
HTTP API answers the bound address and ``options.extra["allowed_hosts"]`` only), MQTT on
``options.device_port`` (``transports.tcp``: each TCP connection a stream link with a session on
it, at most ``MqttLimits.max_connections``); the buttons stay linked in process. The HTTP face
needs the ``thingsboard`` extra; everything else runs on the base install. A world built to be
served sets ``TbCloudSettings.unpredictable``: its ids, device tokens and button secrets come
from the OS CSPRNG, not the seed.

Particle devices have no endpoint here: :meth:`~ThingsBoardPlug.connect_device` refuses them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cloud_sim.security import csprng
from cloud_sim.thingsboard.claiming import ClaimOutcome, Reason, fingerprint
from cloud_sim.thingsboard.demo import (
    CUSTOMERS,
    SYSADMIN,
    TENANT_ADMIN,
    TENANT_TITLE,
    DemoWorld,
    device_name,
    seed_demo,
)
from cloud_sim.thingsboard.model import (
    CLAIM_ATTRIBUTE_NAME,
    CLAIM_DATA_ATTRIBUTE_NAME,
    SERVER_SCOPE,
    Authority,
    User,
)
from cloud_sim.thingsboard.model import Device as TbDevice
from cloud_sim.thingsboard.mqtt_session import MqttServerSession
from cloud_sim.thingsboard.service import DeviceAck, ThingsBoardService
from cloud_sim.thingsboard.settings import (
    DEFAULT_EPOCH_MS,
    BodylessClaim,
    MqttLimits,
    ReclaimBody,
    ThingsBoardSettings,
)
from cloud_sim.thingsboard.store import TbStore

from ...claim_button import (
    ButtonConfig,
    ClaimButtonDevice,
    Connector,
    Done,
    MqttUplink,
    SecretMode,
    Uplink,
)
from ...kernel.errors import ConfigurationError, UsageError
from ...kernel.stream import StreamEnd, StreamListener
from ...kernel.world import World
from ..spec import CloudSpec, LinkSpec
from . import ServedCloud, ServeOptions

if TYPE_CHECKING:
    from ...kernel.realtime import AsyncioDriver
    from ...system.device import Device

#: one-way latency of the in-process MQTT links (seconds)
MQTT_LATENCY_S = 0.02
#: the keys ``ServeOptions.extra`` may hold for this cloud
SERVE_EXTRA = ("coap_port", "log_level", "allowed_hosts")


@dataclass(frozen=True)
class TbCloudSettings:
    """How the testbed builds the ThingsBoard cloud."""

    #: the service's own settings (claim rules, JWT lifetimes, MQTT limits)
    service: ThingsBoardSettings = field(default_factory=ThingsBoardSettings)
    #: SQLite database file (None: in memory)
    db: str | None = None
    #: cloud time of virtual instant 0, ms since 1970 (None: the fixed 2026-01-01 of
    #: in-process runs; the serving commands pass the wall clock)
    epoch_ms: int | None = None
    #: seed ThingsBoard's demo accounts (tenant, customers A-C, their users)
    demo: bool = True
    #: give the demo users their passwords (False: no password hashing, ~8 ms a user, and
    #: nobody can log in: worlds driven in process only, like the explorer's)
    demo_logins: bool = True
    #: claim-button devices ``Claim Button 1..N`` of the demo tenant, linked in process
    buttons: int = 0
    #: how those buttons behave
    button: ButtonConfig = field(default_factory=ButtonConfig)
    #: one-way latency of the in-process MQTT links
    mqtt_latency_s: float = MQTT_LATENCY_S
    #: ids, device access tokens, password salts and the buttons' secrets from the OS CSPRNG
    #: instead of the world seed: every world that serves sockets (``fwsim up``, ``fwsim cloud
    #: serve``); replayable in-process runs keep the seed
    unpredictable: bool = False

    def __post_init__(self) -> None:
        if self.buttons < 0:
            raise ConfigurationError("the number of claim buttons must be >= 0")
        if self.buttons and not self.demo:
            raise ConfigurationError("claim buttons belong to the demo tenant: keep demo=True")
        if not self.mqtt_latency_s >= 0:
            raise ConfigurationError("the in-process MQTT latency must be >= 0 seconds")


def _missing_extra(exc: ModuleNotFoundError) -> ConfigurationError:
    return ConfigurationError(f"this needs the emulated ThingsBoard's HTTP face, which needs "
                              f"{exc.name}: install fwsim[thingsboard]")


class ServiceUplink:
    """HTTP or CoAP claim info to a service in the same World, answered after ``latency_s``."""

    def __init__(self, service: ThingsBoardService, token: str, transport: str,
                 latency_s: float = 0.05) -> None:
        if transport not in ("http", "coap"):
            raise ConfigurationError(f"unknown transport {transport!r}: http or coap")
        self.name = transport
        self.service = service
        self.token = token
        self.latency_s = latency_s

    def send_claim(self, payload: bytes, done: Done) -> None:
        def arrive() -> None:
            ack = self.service.device_claim(self.token, payload, transport=self.name)
            answers = {DeviceAck.ACCEPTED: (True, "200" if self.name == "http" else "2.01"),
                       DeviceAck.UNAUTHORIZED: (False, "401" if self.name == "http" else "4.01"),
                       DeviceAck.MALFORMED: (False, "400" if self.name == "http" else "4.00")}
            ok, detail = answers[ack]
            self.service.world.call_later(self.latency_s, done, ok, detail,
                                          label="tb-uplink-answer")

        self.service.world.call_later(self.latency_s, arrive, label="tb-uplink-request")

    def close(self) -> None:
        pass


class ThingsBoardPlug:
    """The ``thingsboard`` cloud of a testbed (see the module header)."""

    kind = "thingsboard"

    def __init__(self, world: World, spec: CloudSpec) -> None:
        settings = spec.settings if spec.settings is not None else TbCloudSettings()
        if isinstance(settings, ThingsBoardSettings):
            settings = TbCloudSettings(service=settings)
        if not isinstance(settings, TbCloudSettings):
            raise ConfigurationError("the thingsboard cloud takes TbCloudSettings or "
                                     "ThingsBoardSettings")
        self.world = world
        self.name = spec.name
        self.settings = settings
        store = TbStore(settings.db) if settings.db is not None else TbStore()
        epoch_ms = settings.epoch_ms if settings.epoch_ms is not None else DEFAULT_EPOCH_MS
        self.service = ThingsBoardService(world, store=store, settings=settings.service,
                                          epoch_ms=epoch_ms,
                                          unpredictable=settings.unpredictable)
        if settings.demo and not settings.demo_logins:
            _demo_accounts_without_logins(self.service)
        self.demo: DemoWorld | None = (seed_demo(self.service, devices=settings.buttons)
                                       if settings.demo else None)
        self.buttons: dict[str, ClaimButtonDevice] = {}
        self._listener: StreamListener | None = None
        self._sessions: set[MqttServerSession] = set()
        #: the MQTT session on each World-side stream end (served connections at the cap)
        self._session_on: dict[StreamEnd, MqttServerSession] = {}
        #: (host, port, driver) of the MQTT listener once served
        self._served_mqtt: tuple[str, int, AsyncioDriver] | None = None
        for index in range(1, settings.buttons + 1):
            self.add_button(device_name(index))

    # -- the testbed's interface ---------------------------------------------------------------

    def connect_device(self, device: Device, link: LinkSpec) -> None:
        raise ConfigurationError(f"device {device.name} is a Particle device: the thingsboard "
                                 "cloud has no endpoint for it (its devices are claim buttons, "
                                 "ThingsBoardPlug.add_button)")

    async def serve(self, driver: AsyncioDriver, options: ServeOptions) -> ServedCloud:
        unknown = sorted(set(options.extra) - set(SERVE_EXTRA))
        if unknown:
            raise ConfigurationError(f"unknown serve options for the thingsboard cloud: "
                                     f"{', '.join(unknown)} (known: {', '.join(SERVE_EXTRA)})")
        try:
            from cloud_sim.thingsboard.server import TbServerConfig, ThingsBoardServer, url_host
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        from transports.tcp import TcpStreamListener

        server = ThingsBoardServer(self.service, TbServerConfig(
            host=options.host, http_port=options.http_port,
            coap_port=int(options.extra.get("coap_port", 0)), speed=options.speed,
            log_level=str(options.extra.get("log_level", "warning")),
            allowed_hosts=tuple(options.extra.get("allowed_hosts", ()))),
            driver=driver, run_driver=False)
        mqtt = TcpStreamListener(self.world, driver, f"{self.service.name}-mqtt-tcp",
                                 self._accept, on_refused=self._refused,
                                 max_connections=self.settings.service.mqtt.max_connections,
                                 established=self._logged_in)
        await mqtt.start(options.host, options.device_port, what="MQTT")
        try:
            await server.start()
        except BaseException:
            await mqtt.stop()
            raise
        mqtt_url = f"mqtt://{url_host(options.host)}:{mqtt.port}"
        self._served_mqtt = (url_host(options.host).strip("[]"), mqtt.port, driver)

        async def stop() -> None:
            driver.sync()
            for session in list(self._sessions):
                session.close()
            driver.wake()
            self._served_mqtt = None
            await mqtt.stop()
            await server.stop()

        http = server.http_url
        lines = [("REST API", f"{http}  (OpenAPI {http}/openapi.json)"),
                 ("device HTTP", f"{http}/api/v1/<token>/claim"),
                 ("MQTT", f"{mqtt_url}  (3.1.1 and 5; username = device token)"),
                 ("CoAP", f"{server.coap_url}/api/v1/<token>/claim")]
        return ServedCloud(lines, http, mqtt_url, stop, server)

    def close(self) -> None:
        """Stop accepting in-process MQTT connections and close the store; buttons and
        sessions are left as they are (for inspection after a scenario)."""
        if self._listener is not None:
            self._listener.close()
        self.service.store.close()

    # -- MQTT in process -----------------------------------------------------------------------

    def _accept(self, end: StreamEnd, peer: str = "") -> None:
        session = MqttServerSession(self.service, end, peer=peer or end.link.name)
        self._sessions.add(session)
        self._session_on[end] = session

        def closed(gone: MqttServerSession) -> None:
            self._sessions.discard(gone)
            self._session_on.pop(gone.stream, None)

        session.on_closed.append(closed)

    def _logged_in(self, end: StreamEnd) -> bool:
        """Has the MQTT session on ``end`` completed its CONNECT? (Those that have not are
        evicted first when the listener is full: ``transports.tcp``.)"""
        session = self._session_on.get(end)
        return session is not None and session.device is not None

    def _refused(self, peer: str) -> None:
        self.service.tracer.emit("tb.mqtt.refused", peer=peer, reason="too_many_connections")

    def connect_mqtt(self) -> StreamEnd:
        """A client end of a new in-process MQTT connection to the service."""
        if self._listener is None:
            self._listener = StreamListener(self.world, f"{self.service.name}-mqtt",
                                            self._accept, latency_s=self.settings.mqtt_latency_s)
        return self._listener.connect()

    def mqtt_connector(self) -> Connector:
        """A claim button's connector to the service's in-process MQTT listener."""
        def connect(ready: Callable[[StreamEnd | None], None]) -> None:
            ready(self.connect_mqtt())

        return connect

    def served_mqtt_connector(self) -> Connector:
        """A connector over real TCP to this cloud's served MQTT port (once :meth:`serve`
        opened it): buttons linked this way use the cloud exactly as devices elsewhere do."""
        if self._served_mqtt is None:
            raise UsageError("the thingsboard cloud is not served: no MQTT port to connect to")
        from transports.tcp import tcp_connector

        host, port, driver = self._served_mqtt
        return tcp_connector(host, port, self.world, driver, name=f"{self.name}-button-tcp")

    # -- claim buttons -------------------------------------------------------------------------

    def add_button(self, name: str, config: ButtonConfig | None = None, *,
                   transport: str = "mqtt", gateway: bool = False,
                   connector: Connector | None = None) -> ClaimButtonDevice:
        """A claim-button device ``name`` of the demo tenant (its ThingsBoard device is created
        unless it exists), linked in process over ``transport`` (mqtt, http or coap); an MQTT
        button uses ``connector`` when given (e.g. :meth:`served_mqtt_connector`)."""
        if self.demo is None:
            raise UsageError("claim buttons belong to the demo tenant: build with demo=True")
        if name in self.buttons:
            raise UsageError(f"a claim button named {name!r} already exists")
        tenant = self.demo.tenant.id
        device = (self.service.store.find_device(tenant, name)
                  or self.service.create_device(tenant, name, gateway=gateway))
        token = self.service.access_token_of(device)
        uplink: Uplink
        if transport == "mqtt":
            uplink = MqttUplink(self.world, name, token, connector or self.mqtt_connector())
        else:
            uplink = ServiceUplink(self.service, token, transport)
        button = ClaimButtonDevice(self.world, name, uplink, config or self.settings.button)
        if self.settings.unpredictable:
            # a served button's secret claims the device: not from the (often default) seed.
            # ClaimButtonDevice takes no generator yet, so its seeded one is replaced here
            button._rng = csprng()
        self.service.buttons[name] = button.press_button
        self.buttons[name] = button
        return button

    def power_on(self) -> None:
        """Power on every claim button (in the order they were added)."""
        for button in self.buttons.values():
            button.power_on()

    def token_of(self, name: str) -> str:
        """The access token of the demo tenant's device ``name``."""
        if self.demo is None:
            raise UsageError("no demo tenant in this cloud")
        return self.service.access_token_of(self.service.device_named(self.demo.tenant.id,
                                                                      name))

    # -- what scenarios and actors use ---------------------------------------------------------

    def user(self, email: str) -> User:
        user = self.service.store.find_user(email)
        if user is None:
            raise UsageError(f"no user {email!r} in this cloud")
        return user

    def customer_user(self, letter: str) -> User:
        """The demo user of Customer ``letter`` (A, B or C)."""
        emails = {title[-1]: email for title, email in CUSTOMERS}
        if letter not in emails:
            raise UsageError(f"no demo customer {letter!r} (A, B or C)")
        return self.user(emails[letter])

    def rest(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             body: bytes = b"") -> tuple[int, bytes]:
        """One request through the REST API's whole ASGI stack, in process (virtual time)."""
        try:
            from cloud_sim.thingsboard.http_api import create_app
        except ModuleNotFoundError as exc:
            raise _missing_extra(exc) from None
        raw_headers = [(key.lower().encode(), value.encode())
                       for key, value in (headers or {}).items()]
        return asyncio.run(_asgi(create_app(self.service), method, path, raw_headers, body))


def _demo_accounts_without_logins(service: ThingsBoardService) -> None:
    """The demo accounts of ``seed_demo`` (which then leaves them as they are), with no
    passwords."""
    store = service.store
    if store.find_tenant(TENANT_TITLE) is not None:
        return
    with store.transaction():
        service.create_user(SYSADMIN[0], Authority.SYS_ADMIN, tenant_id=None)
        tenant = service.create_tenant(TENANT_TITLE)
        service.create_user(TENANT_ADMIN[0], Authority.TENANT_ADMIN, tenant_id=tenant.id)
        for title, email in CUSTOMERS:
            customer = service.create_customer(tenant.id, title, email)
            service.create_user(email, Authority.CUSTOMER_USER, tenant_id=tenant.id,
                                customer_id=customer.id)


async def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
                body: bytes) -> tuple[int, bytes]:
    """One request through an ASGI app, in process."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


__all__ = [
    "CLAIM_ATTRIBUTE_NAME",
    "CLAIM_DATA_ATTRIBUTE_NAME",
    "MQTT_LATENCY_S",
    "SERVER_SCOPE",
    "BodylessClaim",
    "ButtonConfig",
    "ClaimButtonDevice",
    "ClaimOutcome",
    "MqttLimits",
    "Reason",
    "ReclaimBody",
    "SecretMode",
    "ServiceUplink",
    "TbCloudSettings",
    "TbDevice",
    "ThingsBoardPlug",
    "ThingsBoardSettings",
    "User",
    "fingerprint",
]
