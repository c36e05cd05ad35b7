"""A claim button's HTTP and CoAP uplinks to a real server (the emulated one, or ThingsBoard).

* :class:`HttpUplink`: ``POST {base_url}/api/v1/{token}/claim`` (httpx; the ``thingsboard``
  extra) - accepted on 200;
* :class:`CoapUplink`: ``POST coap://host:port/api/v1/{token}/claim`` (aiocoap) - accepted on
  2.01 Created.

Both have the shape of the device's uplink (``name``, ``send_claim(payload, done)``, ``close``),
run on the asyncio loop of a real-time driver (``runtime``) and hand the answer back to the World
with ``runtime.sync()`` before and ``runtime.wake()`` after. Every failure - refused, unreachable,
timed out - is an answer ``done(False, detail)``, never an exception in the loop. The MQTT uplink
needs no module here: the device's own ``MqttUplink`` runs over ``transports.tcp.tcp_connector``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.runtime import Runtime

#: ``done(ok, detail)``, as the device's uplinks answer
Done = Callable[[bool, str], None]

_TASKS: set[asyncio.Task[Any]] = set()


def _background(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coroutine)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _answer(runtime: Runtime, done: Done, ok: bool, detail: str) -> None:
    runtime.sync()
    try:
        done(ok, detail)
    finally:
        runtime.wake()


class HttpUplink:
    """``POST {base_url}/api/v1/{token}/claim``."""

    name = "http"

    def __init__(self, base_url: str, token: str, runtime: Runtime,
                 timeout_s: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/api/v1/{token}/claim"
        self.runtime = runtime
        self.timeout_s = timeout_s

    def send_claim(self, payload: bytes, done: Done) -> None:
        try:
            import httpx
        except ModuleNotFoundError:
            raise ConfigurationError("the HTTP claim uplink needs httpx: install "
                                     "fwsim[thingsboard]") from None

        async def post() -> None:
            try:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.post(
                        self.url, content=payload, headers={"Content-Type": "application/json"})
                result = (response.status_code == 200, f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                result = (False, f"HTTP error: {exc}")
            _answer(self.runtime, done, *result)

        _background(post())

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
            _answer(self.runtime, done, *result)

        _background(post())

    def close(self) -> None:
        pass


__all__ = ["CoapUplink", "HttpUplink"]
