"""Server-sent event streams (``GET /v1/devices/events`` and friends, cloud.md A1).

How this works
--------------
A stream subscribes a listener to the cloud's :class:`~cloud_sim.events.EventBus`. The listener
runs synchronously wherever the cloud publishes (inside a World step, on the event loop); it
decides right then whether the caller may see the event - ownership and product membership *at
publish time* - and queues it. The response body is an async generator that sends ``:ok``, then
each queued event as ``event: <name>`` / ``data: {"data", "ttl", "published_at", "coreid"}``,
and a keep-alive comment every few seconds (particle-api-js drops a stream idle for 15 s). A
full queue drops its oldest event. A ``None`` in the queue ends the stream (server shutdown);
a client that goes away cancels the generator, which unsubscribes.

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
import json as jsonlib
import threading
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..events import CloudEvent
from ..model import Product
from .auth import Caller
from .common import caller_of, find_product
from .context import ApiContext
from .devices import visible_device
from .errors import ApiError
from .openapi import ERRORS, query
from .render import iso

router = APIRouter(tags=["events"])

Filter = Callable[[CloudEvent], bool]


def _owned_by(ctx: ApiContext, caller: Caller) -> Filter:
    store = ctx.cloud.store

    def check(event: CloudEvent) -> bool:
        if event.device_id is None:
            return False
        device = store.get_device(event.device_id)
        return device is not None and device.owner == caller.principal
    return check


def _in_product(ctx: ApiContext, product: Product) -> Filter:
    store = ctx.cloud.store

    def check(event: CloudEvent) -> bool:
        if event.product_id == product.id:
            return True
        device = store.get_device(event.device_id) if event.device_id else None
        return device is not None and device.product_id == product.id
    return check


def _prefixed(prefix: str | None, check: Filter) -> Filter:
    if not prefix:
        return check
    return lambda event: event.name.startswith(prefix) and check(event)


def encode_event(event: CloudEvent) -> bytes:
    data = {"data": event.data, "ttl": event.ttl, "published_at": iso(event.published_us),
            "coreid": event.device_id or "particle-internal"}
    name = event.name.replace("\n", " ").replace("\r", " ")
    return (f"event: {name}\ndata: {jsonlib.dumps(data, separators=(',', ':'))}\n\n"
            ).encode()


def open_stream(ctx: ApiContext, check: Filter) -> Response:
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    queue: asyncio.Queue[object] = asyncio.Queue(ctx.config.sse_queue_size)

    def put(item: object) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)

    def listener(event: CloudEvent) -> None:
        if not check(event):
            return
        if threading.get_ident() == loop_thread:
            put(event)
        else:
            loop.call_soon_threadsafe(put, event)

    unsubscribe = ctx.cloud.bus.subscribe(listener)
    ctx.streams.add(queue)
    keepalive = ctx.config.sse_keepalive_s

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b":ok\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=keepalive)
                except TimeoutError:
                    yield b":keepalive\n\n"
                    continue
                if not isinstance(item, CloudEvent):
                    return
                yield encode_event(item)
        finally:
            unsubscribe()
            ctx.streams.discard(queue)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


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
    return open_stream(ctx, _owned_by(ctx, caller))


@router.get("/v1/devices/events/{prefix:path}", responses=RESPONSES, openapi_extra=NO_BODY)
async def my_events_prefixed(request: Request, prefix: str) -> Response:
    ctx, _, caller = await caller_of(request)
    return open_stream(ctx, _prefixed(_check_prefix(prefix), _owned_by(ctx, caller)))


@router.get("/v1/events", responses=RESPONSES, openapi_extra=NO_BODY)
async def public_events(request: Request) -> Response:
    return await _public(request, None)


@router.get("/v1/events/{prefix:path}", responses=RESPONSES, openapi_extra=NO_BODY)
async def public_events_prefixed(request: Request, prefix: str) -> Response:
    return await _public(request, _check_prefix(prefix))


async def _public(request: Request, prefix: str | None) -> Response:
    ctx, _, caller = await caller_of(request)
    mine = _owned_by(ctx, caller)
    return open_stream(ctx, _prefixed(prefix, lambda e: e.public or mine(e)))


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
    return open_stream(ctx, _prefixed(prefix, lambda e: e.device_id == device.id))


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


async def _product(request: Request, product_key: str, device_id: str | None,
                   prefix: str | None) -> Response:
    ctx, _, caller = await caller_of(request)
    product = find_product(ctx, product_key)
    caller.require_team(product)
    check = _in_product(ctx, product)
    if device_id is not None:
        wanted = device_id.strip().lower()
        inner = check
        check = lambda e: e.device_id == wanted and inner(e)  # noqa: E731
    return open_stream(ctx, _prefixed(prefix, check))
