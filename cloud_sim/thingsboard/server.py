"""The emulated ThingsBoard's HTTP and CoAP faces on real sockets (uvicorn, aiocoap).

How this works
--------------
Like the Particle face's :class:`cloud_sim.server.CloudServer`, :class:`ThingsBoardServer` is
given a service (and so its World) and the real-time driver that keeps the World at wall time,
and starts on the running asyncio loop uvicorn serving :func:`.http_api.create_app` (the REST
API and the device HTTP API) and the aiocoap CoAP endpoint, on loopback by default. Every edge
calls ``driver.sync()`` before it touches the service and ``driver.wake()`` after. ``stop()``
closes them in reverse. Port 0 picks a free port; the URLs are known once ``start()`` returns.
Once bound, the HTTP API answers only requests whose ``Host`` names the bound address (or a name
of ``allowed_hosts``) and that come from no other web origin (``http_api.set_host_policy``).
CoAP is served over UDP only (``coap.COAP_TRANSPORTS``): none of aiocoap's default TCP, TLS or
WebSocket listeners.

The MQTT face is a TCP listener of the transports (``transports.tcp``) whose connections carry
:class:`~.mqtt_session.MqttServerSession` objects: the testbed's ThingsBoard plug
(``firmware_sim.testbed.clouds.thingsboard``) opens it beside this server and runs the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import Any

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.realtime import AsyncioDriver

from ..http.guard import HostPolicy
from ..serving import QuietUvicorn, bind_tcp, start_uvicorn, url_host
from .coap import serve_coap
from .http_api import create_app, set_host_policy
from .service import ThingsBoardService


@dataclass
class TbServerConfig:
    host: str = "127.0.0.1"
    #: ThingsBoard's defaults: HTTP 8080, CoAP 5683 (0: any free port)
    http_port: int = 8080
    coap_port: int = 5683
    #: virtual seconds per wall second
    speed: float = 1.0
    log_level: str = "warning"
    #: further host names the HTTP API answers to (``--allow-host``; the bound address always
    #: works): any other ``Host`` header is refused (docs/security.md, "Host and Origin")
    allowed_hosts: tuple[str, ...] = ()


def listen_tcp(host: str, port: int, what: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port; uvicorn listens on it); a
    one-line error if not."""
    return bind_tcp(host, port, what)


def _free_udp_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ThingsBoardServer:
    def __init__(self, service: ThingsBoardService, config: TbServerConfig | None = None, *,
                 driver: AsyncioDriver | None = None, run_driver: bool = True) -> None:
        self.service = service
        self.config = config or TbServerConfig()
        self.driver = driver or AsyncioDriver(service.world, speed=self.config.speed)
        self._run_driver = run_driver
        self.app = create_app(service, runtime=self.driver)
        self.http_port = 0
        self.coap_port = 0
        self._uvicorn: QuietUvicorn | None = None
        self._coap: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def http_url(self) -> str:
        return f"http://{url_host(self.config.host)}:{self.http_port}"

    @property
    def coap_url(self) -> str:
        return f"coap://{url_host(self.config.host)}:{self.coap_port}"

    async def start(self) -> None:
        config = self.config
        sock = listen_tcp(config.host, config.http_port, "HTTP")
        self.http_port = int(sock.getsockname()[1])
        set_host_policy(self.app, HostPolicy.for_bound(config.host, self.http_port,
                                                       config.allowed_hosts))
        port = config.coap_port
        # port 0: a free port is picked first (aiocoap binds by address); another process may
        # take it in between, so a picked port is tried a few times
        attempts = 1 if config.coap_port else 5
        for attempt in range(attempts):
            try:
                port = config.coap_port or _free_udp_port(config.host)
                self._coap = await serve_coap(self.service, self.driver, config.host, port)
                break
            except OSError as exc:
                if attempt + 1 < attempts:
                    continue
                sock.close()
                raise ConfigurationError(f"cannot listen for CoAP on {config.host}:{port}: "
                                         f"{exc.strerror or exc}") from None
            except BaseException:
                sock.close()
                raise
        self.coap_port = port
        if self._run_driver:
            self._tasks.append(asyncio.create_task(self.driver.run(), name="tb-driver"))
        self._uvicorn, task = await start_uvicorn(self.app, sock, name="tb-http",
                                                  log_level=config.log_level)
        self._tasks.append(task)

    async def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._coap is not None:
            await self._coap.shutdown()
            self._coap = None
        if self._run_driver:
            self.driver.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


__all__ = ["TbServerConfig", "ThingsBoardServer", "listen_tcp", "url_host"]
