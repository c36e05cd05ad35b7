"""Server-sent event streams (``GET /v1/devices/events`` and friends, cloud.md A1).

How this works
--------------
A stream registers with the API's :class:`~.fanout.StreamHub` under the keys of what it follows
(the caller's devices, one device, a product, public events); the hub, subscribed once to the
cloud's event bus, decides at publish time - ownership and product membership *then* - which
streams get an event, at a cost that does not depend on how many other streams are open. The
response body is an async generator that sends ``:ok``, then each queued event as ``event:
<name>`` / ``data: {"data", "ttl", "published_at", "coreid"}`` (what is queued when it runs
goes out in one write; each event's bytes are encoded once for all streams), and a keep-alive
comment when nothing arrived for a few seconds (particle-api-js drops a stream idle for 15 s).
A full queue drops its oldest event. A ``None`` in the queue ends the stream (server shutdown,
or the hub gave its place to an account holding fewer streams); a client that goes away cancels
the generator. The stream's place in the hub is given back by the response itself
(:class:`EventStreamResponse`), however it ends - even when the client left before the body
generator first ran, which then never runs its ``finally``. Streams are capped in all and per
token (429); at the global cap the hub shares the places fairly between accounts (a newcomer
whose account holds fewer streams than another ends that account's oldest stream; fanout.py).

Who sees what:

* ``/v1/devices/events[/<prefix>]``: events of the caller's devices;
* ``/v1/devices/<id>/events[/<prefix>]``: one device the caller may see;
* ``/v1/events[/<prefix>]``: public events of every device, plus the caller's own devices';
* ``/v1/products/<p>/events[/<prefix>]`` and ``/v1/products/<p>/devices/<id>/events``: every
  event of the product's devices (team members).

Events include the device's own (``spark/device/claim/code`` too) and the cloud's
(``spark/status``, and events the cloud sends to devices such as
``spark/device/claim/confirm``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..events import CloudEvent
from .auth import Caller
from .common import caller_of, find_product
from .context import ApiContext
from .devices import visible_device
from .errors import ApiError, api_error
from .fanout import (
    PUBLIC,
    Key,
    Stream,
    StreamHub,
    StreamLimitError,
    device_key,
    encode_event,
    owner_key,
    product_key,
)
from .openapi import ERRORS, query

router = APIRouter(tags=["events"])

__all__ = ["EventStreamResponse", "encode_event", "open_stream", "router"]


class EventStreamResponse(StreamingResponse):
    """An event stream's response: gives the stream's place in the hub back when it ends, however
    it ends (the body ran out, the client left - before or after the body first ran -, the
    server stopped); a client that left is the normal end of a stream, not an error."""

    def __init__(self, hub: StreamHub, stream: Stream, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._hub = hub
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # the client went away before or while the stream was sent
        finally:
            self._hub.close(self._stream)


def open_stream(ctx: ApiContext, caller: Caller, keys: Iterable[Key],
                prefix: str | None) -> Response:
    try:
        stream = ctx.hub.open(keys, prefix, caller.token.token, str(caller.principal))
    except StreamLimitError as exc:
        raise api_error(429, "Too many event streams", error_description=str(exc)) from None
    keepalive = ctx.config.sse_keepalive_s
    hub = ctx.hub

    queue = stream.queue

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b":ok\n\n"
            while True:
                if queue.empty():  # a timer only while waiting, not a task per event
                    try:
                        async with asyncio.timeout(keepalive):
                            item = await queue.get()
                    except TimeoutError:
                        yield b":keepalive\n\n"
                        continue
                else:
                    item = queue.get_nowait()
                # everything queued goes out in one write
                chunks: list[bytes] = []
                while isinstance(item, CloudEvent):
                    chunks.append(encode_event(item))
                    if queue.empty():
                        break
                    item = queue.get_nowait()
                if chunks:
                    yield b"".join(chunks)
                if not isinstance(item, CloudEvent):
                    return
        finally:
            hub.close(stream)

    return EventStreamResponse(hub, stream, body())


def _check_prefix(prefix: str | None) -> str | None:
    if prefix is not None and len(prefix) > 64:
        raise ApiError(400, {"ok": False, "error": "event prefix longer than 64 characters"})
    return prefix or None


SSE = {"description": "a stream of server-sent events",
       "content": {"text/event-stream": {"schema": {"type": "string"}}}}
RESPONSES = {200: SSE, **ERRORS}
NO_BODY = query()


@router.get("/v1/devices/events", responses=RESPONSES, openapi_extra=NO_BODY)
async def my_events(request: Request) -> Response:
    ctx, _, caller = await caller_of(request)
    return open_stream(ctx, caller, [owner_key(caller.principal)], None)


@router.get("/v1/devices/events/{prefix:path}", responses=RESPONSES, openapi_extra=NO_BODY)
async def my_events_prefixed(request: Request, prefix: str) -> Response:
    ctx, _, caller = await caller_of(request)
    return open_stream(ctx, caller, [owner_key(caller.principal)], _check_prefix(prefix))


@router.get("/v1/events", responses=RESPONSES, openapi_extra=NO_BODY)
async def public_events(request: Request) -> Response:
    return await _public(request, None)


@router.get("/v1/events/{prefix:path}", responses=RESPONSES, openapi_extra=NO_BODY)
async def public_events_prefixed(request: Request, prefix: str) -> Response:
    return await _public(request, _check_prefix(prefix))


async def _public(request: Request, prefix: str | None) -> Response:
    ctx, _, caller = await caller_of(request)
    return open_stream(ctx, caller, [PUBLIC, owner_key(caller.principal)], prefix)


@router.get("/v1/devices/{device_id}/events", responses=RESPONSES, openapi_extra=NO_BODY)
async def device_events(request: Request, device_id: str) -> Response:
    return await _device(request, device_id, None)


@router.get("/v1/devices/{device_id}/events/{prefix:path}", responses=RESPONSES,
            openapi_extra=NO_BODY)
async def device_events_prefixed(request: Request, device_id: str, prefix: str) -> Response:
    return await _device(request, device_id, _check_prefix(prefix))


async def _device(request: Request, device_id: str, prefix: str | None) -> Response:
    ctx, _, caller = await caller_of(request)
    device = visible_device(ctx, caller, device_id)
    return open_stream(ctx, caller, [device_key(device.id)], prefix)


@router.get("/v1/products/{product}/events", responses=RESPONSES, openapi_extra=NO_BODY)
async def product_events(request: Request, product: str) -> Response:
    return await _product(request, product, None, None)


@router.get("/v1/products/{product}/events/{prefix:path}", responses=RESPONSES,
            openapi_extra=NO_BODY)
async def product_events_prefixed(request: Request, product: str, prefix: str) -> Response:
    return await _product(request, product, None, _check_prefix(prefix))


@router.get("/v1/products/{product}/devices/{device_id}/events", responses=RESPONSES,
            openapi_extra=NO_BODY)
async def product_device_events(request: Request, product: str, device_id: str) -> Response:
    return await _product(request, product, device_id, None)


@router.get("/v1/products/{product}/devices/{device_id}/events/{prefix:path}",
            responses=RESPONSES, openapi_extra=NO_BODY)
async def product_device_events_prefixed(request: Request, product: str, device_id: str,
                                         prefix: str) -> Response:
    return await _product(request, product, device_id, _check_prefix(prefix))


async def _product(request: Request, product_ref: str, device_id: str | None,
                   prefix: str | None) -> Response:
    ctx, _, caller = await caller_of(request)
    product = find_product(ctx, product_ref)
    caller.require_team(product)
    wanted = device_id.strip().lower() if device_id is not None else None
    return open_stream(ctx, caller, [product_key(product.id, wanted)], prefix)
