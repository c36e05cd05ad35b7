"""The emulated ThingsBoard on real sockets: REST + device HTTP (uvicorn), MQTT, CoAP.

How this works
--------------
Like the Particle face's :class:`cloud_sim.server.CloudServer`, :class:`ThingsBoardServer` is
given a service (and so its World) and starts, on the running asyncio loop, an
:class:`~firmware_sim.kernel.realtime.AsyncioDriver` that keeps the World at wall time (unless
someone else runs the driver), uvicorn serving :func:`.http_api.create_app`, the MQTT listener
and the aiocoap CoAP endpoint, all on loopback by default. Every edge calls ``driver.sync()``
before it touches the service and ``driver.wake()`` after. ``stop()`` closes them in reverse.
Port 0 picks a free port; the URLs are known once ``start()`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.realtime import AsyncioDriver

from .coap import serve_coap
from .http_api import create_app
from .mqtt.asyncio_io import MqttListener, bind_tcp
from .service import ThingsBoardService


@dataclass
class TbServerConfig:
    host: str = "127.0.0.1"
    #: ThingsBoard's defaults: HTTP 8080, MQTT 1883, CoAP 5683 (0: any free port)
    http_port: int = 8080
    mqtt_port: int = 1883
    coap_port: int = 5683
    #: virtual seconds per wall second
    speed: float = 1.0
    log_level: str = "warning"


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                       socket.SOCK_DGRAM) as sock:
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
        self.mqtt = MqttListener(service, self.driver)
        self.http_port = 0
        self.coap_port = 0
        self._uvicorn: _Uvicorn | None = None
        self._coap: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.config.host)}:{self.http_port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{_url_host(self.config.host)}:{self.mqtt.port}"

    @property
    def coap_url(self) -> str:
        return f"coap://{_url_host(self.config.host)}:{self.coap_port}"

    @property
    def mqtt_port(self) -> int:
        return self.mqtt.port

    async def start(self) -> None:
        config = self.config
        sock = bind_tcp(config.host, config.http_port, "HTTP")
        self.http_port = int(sock.getsockname()[1])
        try:
            await self.mqtt.start(config.host, config.mqtt_port)
            port = config.coap_port or _free_udp_port(config.host)
            try:
                self._coap = await serve_coap(self.service, self.driver, config.host, port)
            except OSError as exc:
                raise ConfigurationError(f"cannot listen for CoAP on {config.host}:{port}: "
                                         f"{exc.strerror or exc}") from None
            self.coap_port = port
        except BaseException:
            sock.close()
            await self.mqtt.stop()
            raise
        if self._run_driver:
            self._tasks.append(asyncio.create_task(self.driver.run(), name="tb-driver"))
        server_config = uvicorn.Config(self.app, log_level=config.log_level, lifespan="off",
                                       access_log=False, timeout_graceful_shutdown=2)
        logging.getLogger("uvicorn.error").setLevel(config.log_level.upper())
        self._uvicorn = _Uvicorn(server_config)
        self._tasks.append(asyncio.create_task(self._uvicorn.serve(sockets=[sock]),
                                               name="tb-http"))
        while not self._uvicorn.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()
                raise ConfigurationError("the HTTP server did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        await self.mqtt.stop()
        if self._coap is not None:
            await self._coap.shutdown()
            self._coap = None
        if self._run_driver:
            self.driver.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
