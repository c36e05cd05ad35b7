"""Running the emulated cloud for real: REST API on uvicorn, device link on UDP, World on the
wall clock - all on one asyncio event loop.

How this works
--------------
:class:`CloudServer` owns nothing simulated; it is given a :class:`~cloud_sim.cloud.Cloud` (and
so its World) and starts three things on the running loop:

1. an :class:`~firmware_sim.kernel.realtime.AsyncioDriver` that advances the World with the wall
   clock (``speed`` times faster when asked), so timers of the device endpoint (claim-code
   redemption, retransmissions) fire in real time;
2. uvicorn serving :func:`cloud_sim.http.create_app` on a socket bound up front (so port 0
   works and the real port is known before anything is printed);
3. the UDP device endpoint (:mod:`cloud_sim.udp`).

uvicorn runs with a guarded HTTP/1.1 protocol of :mod:`cloud_sim.connections` (httptools when
installed, else h11; connection cap, request-head deadline, JSON 400s) and the API behind
:mod:`cloud_sim.http.guard` (Host/Origin, the admin namespace). The HTTP layer and the UDP
protocol call ``driver.sync()`` before touching the cloud and ``driver.wake()`` after; since
everything runs on one thread there are no locks.
Signals are left to the caller (``fwsim cloud serve`` / ``fwsim up``): uvicorn's own handlers
are disabled, ``stop()`` ends event streams, then the servers, then the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field, replace

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.realtime import AsyncioDriver

from .cloud import Cloud
from .connections import (
    ConnectionLimits,
    ConnectionRegistry,
    default_http_protocol,
    guarded_protocol,
    http_protocol_name,
)
from .dtls import DtlsLimits, DtlsServer
from .http import AdminAccess, ApiConfig, HostPolicy, context_of, create_app
from .security import check_token_text, new_token
from .serving import QuietUvicorn, start_uvicorn, url_host
from .serving import bind_tcp as _bind_tcp
from .udp import CloudUdpProtocol, serve_udp


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    http_port: int = 8080
    coap_host: str = "127.0.0.1"
    coap_port: int = 5683
    #: virtual seconds per wall second
    speed: float = 1.0
    api: ApiConfig = field(default_factory=ApiConfig)
    log_level: str = "warning"
    #: serve the ``/fwsim`` admin namespace (off by default); always behind an admin token:
    #: ``admin_token``, or a fresh one from the CSPRNG (``CloudServer.admin_token``)
    admin: bool = False
    admin_token: str | None = None
    #: further host names the API answers to (the bound address always works)
    allowed_hosts: tuple[str, ...] = ()
    #: HTTP connection cap and timeouts (cloud_sim.connections)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    #: device peers (UDP source addresses) remembered; beyond, the oldest is forgotten
    max_device_peers: int = 4096
    #: the device link's DTLS handshake and peer limits (cloud_sim.dtls)
    dtls: DtlsLimits = field(default_factory=DtlsLimits)
    #: uvicorn's HTTP/1.1 protocol: "auto" (httptools when installed, else h11), "h11" or
    #: "httptools" (cloud_sim.connections; env FWSIM_HTTP_PROTOCOL sets the default)
    http_protocol: str = field(default_factory=default_http_protocol)


class CloudServer:
    def __init__(self, cloud: Cloud, config: ServerConfig | None = None, *,
                 driver: AsyncioDriver | None = None, run_driver: bool = True) -> None:
        """``driver``/``run_driver``: share a driver someone else runs (``fwsim up`` runs it
        with the edge services of the devices in the same World)."""
        self.cloud = cloud
        self.config = config or ServerConfig()
        self.driver = driver or AsyncioDriver(cloud.world, speed=self.config.speed)
        self._run_driver = run_driver
        #: the token of the ``/fwsim`` namespace (None: the namespace is off)
        self.admin_token: str | None = None
        if self.config.admin:
            self.admin_token = (check_token_text(self.config.admin_token, "the admin token")
                                if self.config.admin_token is not None else new_token())
        api = replace(self.config.api, admin=AdminAccess(self.config.admin, self.admin_token))
        self.app = create_app(cloud, runtime=self.driver, config=api)
        self.http_port = 0
        self.coap_port = 0
        self._uvicorn: QuietUvicorn | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._udp: asyncio.DatagramTransport | None = None
        self.udp_protocol: CloudUdpProtocol | None = None
        #: the open HTTP connections (cap, evictions, refusals, timeouts)
        self.connections = ConnectionRegistry(self.config.limits)
        try:
            #: the HTTP/1.1 protocol served ("h11" or "httptools")
            self.http_protocol = http_protocol_name(self.config.http_protocol)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    @property
    def http_url(self) -> str:
        return f"http://{url_host(self.config.host)}:{self.http_port}"

    @property
    def coap_url(self) -> str:
        return f"coap://{url_host(self.config.coap_host)}:{self.coap_port}"

    def _dtls_server(self) -> DtlsServer:
        """DTLS for the device link: the cloud's server key, its registry of device keys."""
        keys = self.cloud.device_keys
        tracer = self.cloud.world.trace.bind(self.cloud.name, "dtls")

        def on_event(kind: str, fields: dict[str, object]) -> None:
            tracer.emit(kind, **fields)

        return DtlsServer(keys.server_key(), keys.public_key, limits=self.config.dtls,
                          on_event=on_event)

    async def start(self) -> None:
        config = self.config
        sock = _bind_tcp(config.host, config.http_port)
        self.http_port = int(sock.getsockname()[1])
        context_of(self.app).config.hosts = HostPolicy.for_bound(
            config.host, self.http_port, config.allowed_hosts)
        try:
            self._udp, self.udp_protocol = await serve_udp(
                self.cloud.endpoint, config.coap_host, config.coap_port, self.driver,
                max_peers=config.max_device_peers, dtls=self._dtls_server())
        except OSError as exc:
            sock.close()
            raise ConfigurationError(f"cannot listen for CoAP on {config.coap_host}:"
                                     f"{config.coap_port}: {exc.strerror or exc}") from None
        self.coap_port = int(self._udp.get_extra_info("sockname")[1])
        if self._run_driver:
            self._tasks.append(asyncio.create_task(self.driver.run(), name="fwsim-driver"))
        self._uvicorn, task = await start_uvicorn(
            self.app, sock, name="fwsim-http", log_level=config.log_level,
            http=guarded_protocol(self.connections, self.http_protocol),
            timeout_keep_alive=max(1, round(config.limits.keep_alive_s)))
        self._tasks.append(task)

    async def stop(self) -> None:
        context = context_of(self.app)
        context.close_streams()
        # a request awaiting a device's answer finishes (408) before uvicorn's graceful
        # shutdown runs out and cancels it mid-request (a traceback on Ctrl-C)
        context.cloud.endpoint.abandon_calls()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._udp is not None:
            self._udp.close()
        if self._run_driver:
            self.driver.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


async def wait_until_stopped(duration_s: float | None) -> str:
    """Wait for SIGINT/SIGTERM, or ``duration_s`` wall seconds; returns which."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration_s)
        return "signal"
    except TimeoutError:
        return "time"
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
