"""Calling a device's function and reading its variable: ``POST /v1/devices/:id/:function``
and ``GET /v1/devices/:id/:variable`` ("Call a function" and "Get a variable value" of the
Cloud API reference, docs.particle.io reference/cloud-apis/api).

How this works
--------------
The handler checks the caller and the device as the other device routes do (400/401 for the
token, 403 "Permission Denied" for a device the caller may not see, owner, product team member
or the customer owning it), then asks the cloud's device endpoint
(:meth:`~cloud_sim.device_endpoint.DeviceEndpoint.call_function`,
:meth:`~cloud_sim.device_endpoint.DeviceEndpoint.get_variable`), which answers through a
callback from inside the World: at once (offline, unknown name) or when the device's answer or
the call's virtual-time timeout comes. The handler waits for it without blocking the World:

* served (an :class:`~firmware_sim.kernel.realtime.AsyncioDriver` runs the World on this event
  loop): on an asyncio future the callback completes, at most ``2 * call_timeout_s + 5`` wall
  seconds (past that: 408, as for the virtual timeout);
* in process (:class:`~firmware_sim.kernel.runtime.NullRuntime`: the World is stepped by its
  owner, who is blocked in this request): the handler steps the World's scheduler itself until
  the answer comes - never past the call's timeout - so a call on virtual time costs no wall
  time.

The product form, ``POST /v1/products/:p/devices/:id/:function`` and ``GET
/v1/products/:p/devices/:id/:variable``, is for the members of the product's team (403 for
others, 404 for a product or a device not in it) and answers alike.

Answers: a call ``{"id", "name" (the device's), "connected": true, "return_value"}``; a variable
``{"name", "result", "coreInfo": {"last_app", "last_heard", "connected", "last_handshake_at",
"deviceID", "product_id"}}``, or with ``?format=raw`` the value alone as text. The argument is
``arg`` or ``args`` (particle-api-js sends ``args``), at most 1024 bytes of UTF-8 (Device OS 6
``MAX_FUNCTION_ARG_LENGTH``). Errors: 404 ``Function <name> not found`` / ``Variable not found``
(a name the device's last describe does not list, or a variable the device answers 4.04 for),
408 ``Timed out.`` (the device is offline - ``online`` false in the device list, answered at
once even while the cloud keeps its session for resumption - or has no session, did not answer
within the timeout, or answered something that cannot be read), 400 for a bad argument. The
statuses and texts other than the 404 (particle-cli reports a 404 as "Function `x` not found")
are UNVERIFIED choices (docs/cloud-api.md).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from firmware_sim.communication.wire import MAX_FUNCTION_ARG_LENGTH, MAX_FUNCTION_KEY_LENGTH

from ..cloud import Cloud
from ..device_endpoint import CallCallback, CallResult
from ..model import DeviceRecord, Product
from ..runtime import NullRuntime, Runtime
from .common import caller_of, json
from .context import ApiContext
from .devices import visible_device
from .errors import api_error, bad_request
from .openapi import ERRORS, body, query
from .params import get_str
from .products import device_in_product, team_call
from .render import display_name, iso

router = APIRouter(tags=["devices"])

__all__ = ["await_device", "router"]

TIMED_OUT = "Timed out."
#: at most this many scheduler entries run for one in-process call (a guard, never reached by a
#: sane world: the call's timeout is a few thousand entries away at most)
_MAX_STEPS = 1_000_000


async def await_device(cloud: Cloud, runtime: Runtime,
                       start: Callable[[CallCallback], None]) -> CallResult:
    """Start a device call and wait for its result without blocking ``cloud``'s World, driven
    by ``runtime`` (the REST routes', the dashboard's)."""
    world = cloud.world
    timeout_s = cloud.endpoint.options.call_timeout_s
    if isinstance(runtime, NullRuntime):
        box: list[CallResult] = []
        start(box.append)
        scheduler = world.scheduler
        deadline_us = world.clock.now_us + round((timeout_s + 1.0) * 1e6)
        for _ in range(_MAX_STEPS):
            if box:
                break
            due = scheduler.next_due_us()
            if due is None or due > deadline_us:
                break
            scheduler.step()
        return box[0] if box else CallResult("timeout")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[CallResult] = loop.create_future()
    thread = threading.get_ident()

    def settle(result: CallResult) -> None:
        if not future.done():
            future.set_result(result)

    def deliver(result: CallResult) -> None:
        if threading.get_ident() == thread:
            settle(result)
        else:
            loop.call_soon_threadsafe(settle, result)

    start(deliver)
    runtime.wake()  # the call armed timers (its retransmission, its timeout)
    try:
        return await asyncio.wait_for(future, 2 * timeout_s + 5.0)
    except TimeoutError:
        return CallResult("timeout")


def _raise_for(result: CallResult, not_found: str) -> None:
    """The REST answer of a call's result: an offline device (no session, or not ``online``
    as the device list shows it: ``DeviceEndpoint.is_online``) answers 408 at once."""
    if result.outcome == "not_found":
        raise api_error(404, not_found)
    if result.outcome != "ok":  # offline, timeout, or an answer that could not be read
        raise api_error(408, TIMED_OUT)


def _argument(params: dict[str, Any]) -> str:
    name = "arg" if params.get("arg") not in (None, "") else "args"
    argument = get_str(params, name, max_length=MAX_FUNCTION_ARG_LENGTH) or ""
    if len(argument.encode("utf-8")) > MAX_FUNCTION_ARG_LENGTH:
        raise bad_request(f"{name} is longer than {MAX_FUNCTION_ARG_LENGTH} bytes")
    return argument


def _valid_name(name: str) -> bool:
    try:
        return 0 < len(name.encode("utf-8")) <= MAX_FUNCTION_KEY_LENGTH
    except UnicodeEncodeError:
        return False


def raw_text(value: object) -> str:
    """A value as ``?format=raw`` shows it (JSON's spelling of numbers and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS, 408: {**ERRORS[404], "description": "the device is offline or did not answer"}}
CALL_BODY = body({"arg": {"type": "string", "maxLength": MAX_FUNCTION_ARG_LENGTH},
                  "args": {"type": "string", "maxLength": MAX_FUNCTION_ARG_LENGTH}})


async def call_response(ctx: ApiContext, device: DeviceRecord, function: str,
                        params: dict[str, Any]) -> Response:
    argument = _argument(params)
    not_found = f"Function {function[:MAX_FUNCTION_KEY_LENGTH]} not found"
    if not _valid_name(function):
        raise api_error(404, not_found)
    endpoint = ctx.cloud.endpoint
    result = await await_device(ctx.cloud, ctx.runtime, lambda done: endpoint.call_function(
        device.id, function, argument, done))
    _raise_for(result, not_found)
    return json({"id": device.id, "name": display_name(device), "connected": True,
                 "return_value": result.value})


async def read_response(ctx: ApiContext, device: DeviceRecord, variable: str,
                        params: dict[str, Any]) -> Response:
    raw = get_str(params, "format", max_length=16) == "raw"
    if not _valid_name(variable):
        raise api_error(404, "Variable not found")
    endpoint = ctx.cloud.endpoint
    result = await await_device(ctx.cloud, ctx.runtime, lambda done: endpoint.get_variable(
        device.id, variable, done))
    _raise_for(result, "Variable not found")
    if raw:
        return PlainTextResponse(raw_text(result.value))
    fresh = ctx.cloud.store.get_device(device.id) or device
    platform_id = fresh.platform_id or 0
    return json({"name": variable, "result": result.value, "coreInfo": {
        "last_app": "", "last_heard": iso(fresh.last_heard_us), "connected": fresh.online,
        "last_handshake_at": iso(fresh.last_handshake_us), "deviceID": fresh.id,
        "product_id": fresh.product_id if fresh.product_id is not None else platform_id}})


@router.post("/v1/devices/{device_id}/{function}", responses=RESPONSES, openapi_extra=CALL_BODY)
async def call_function(request: Request, device_id: str, function: str) -> Response:
    ctx, params, caller = await caller_of(request)
    return await call_response(ctx, visible_device(ctx, caller, device_id), function, params)


@router.get("/v1/devices/{device_id}/{variable}", responses=RESPONSES,
            openapi_extra=query(("format", "string")))
async def get_variable(request: Request, device_id: str, variable: str) -> Response:
    ctx, params, caller = await caller_of(request)
    return await read_response(ctx, visible_device(ctx, caller, device_id), variable, params)


def _product_device(ctx: ApiContext, product: Product, device_id: str) -> DeviceRecord:
    device = ctx.cloud.store.get_device(device_in_product(ctx, product, device_id))
    assert device is not None
    return device


@router.post("/v1/products/{product}/devices/{device_id}/{function}", responses=RESPONSES,
             openapi_extra=CALL_BODY)
async def call_product_function(request: Request, product: str, device_id: str,
                                function: str) -> Response:
    """The product form (a member of the product's team; 404 for a device not in it)."""
    ctx, params, _, found = await team_call(request, product)
    return await call_response(ctx, _product_device(ctx, found, device_id), function, params)


@router.get("/v1/products/{product}/devices/{device_id}/{variable}", responses=RESPONSES,
            openapi_extra=query(("format", "string")))
async def get_product_variable(request: Request, product: str, device_id: str,
                               variable: str) -> Response:
    ctx, params, _, found = await team_call(request, product)
    return await read_response(ctx, _product_device(ctx, found, device_id), variable, params)
