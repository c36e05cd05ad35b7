"""Connectors and uplinks that put a claim-button device on a network.

* :func:`service_connector`: an MQTT connection to a :class:`~.service.ThingsBoardService` in
  the same World (a :class:`~.mqtt.loopback.LoopbackPair` with an
  :class:`~.mqtt.server.MqttServerSession` on the far end);
* :func:`socket_connector`: an MQTT connection over TCP to any host:port - the emulated server or
  a real ThingsBoard (``demo.thingsboard.io:1883``, your own install);
* :class:`HttpUplink` / :class:`CoapUplink`: the device HTTP and CoAP claim APIs of a real (or
  emulated) server, over sockets.

Socket variants run on the asyncio loop of a real-time driver (``runtime``): results are handed
back to the World with ``runtime.sync()`` before and ``runtime.wake()`` after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..runtime import Runtime
from .device import Connector, Done
from .mqtt.asyncio_io import open_stream
from .mqtt.loopback import LoopbackPair
from .mqtt.server import MqttServerSession
from .mqtt.stream import ByteStream
from .service import ThingsBoardService


def service_connector(service: ThingsBoardService, *, latency_s: float = 0.02) -> Connector:
    counter = [0]

    def connect(ready: Callable[[ByteStream | None], None]) -> None:
        counter[0] += 1
        pair = LoopbackPair(service.world, f"{service.name}-mqtt-{counter[0]}",
                            latency_s=latency_s)
        MqttServerSession(service, pair.b, peer=pair.name)
        ready(pair.a)

    return connect


def _background(coroutine: Any, tasks: set[asyncio.Task[Any]]) -> None:
    task = asyncio.ensure_future(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


_TASKS: set[asyncio.Task[Any]] = set()


def socket_connector(host: str, port: int, runtime: Runtime, *,
                     timeout_s: float = 10.0) -> Connector:
    def connect(ready: Callable[[ByteStream | None], None]) -> None:
        async def opening() -> None:
            try:
                stream: ByteStream | None = await open_stream(host, port, runtime, timeout_s)
            except (OSError, TimeoutError):
                stream = None
            runtime.sync()
            ready(stream)
            runtime.wake()

        _background(opening(), _TASKS)

    return connect


class HttpUplink:
    """``POST {base_url}/api/v1/{token}/claim``."""

    name = "http"

    def __init__(self, base_url: str, token: str, runtime: Runtime,
                 timeout_s: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/api/v1/{token}/claim"
        self.runtime = runtime
        self.timeout_s = timeout_s

    def send_claim(self, payload: bytes, done: Done) -> None:
        import httpx

        async def post() -> None:
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.post(
                        self.url, content=payload, headers={"Content-Type": "application/json"})
                result = (response.status_code == 200, f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                result = (False, f"HTTP error: {exc}")
            self.runtime.sync()
            done(*result)
            self.runtime.wake()

        _background(post(), _TASKS)

    def close(self) -> None:
        pass


class CoapUplink:
    """``POST coap://host:port/api/v1/{token}/claim``."""

    name = "coap"

    def __init__(self, host: str, port: int, token: str, runtime: Runtime,
                 timeout_s: float = 10.0) -> None:
        self.uri = f"coap://{host}:{port}/api/v1/{token}/claim"
        self.runtime = runtime
        self.timeout_s = timeout_s

    def send_claim(self, payload: bytes, done: Done) -> None:
        import aiocoap

        async def post() -> None:
            context = await aiocoap.Context.create_client_context()
            try:
                request = aiocoap.Message(code=aiocoap.POST, uri=self.uri, payload=payload)
                response = await asyncio.wait_for(context.request(request).response,
                                                  self.timeout_s)
                result = (response.code == aiocoap.CREATED, f"CoAP {response.code}")
            except (aiocoap.error.Error, OSError, TimeoutError) as exc:
                result = (False, f"CoAP error: {exc}")
            finally:
                await context.shutdown()
            self.runtime.sync()
            done(*result)
            self.runtime.wake()

        _background(post(), _TASKS)

    def close(self) -> None:
        pass
