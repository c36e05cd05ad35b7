"""The steering operations as admin routes of a served cloud's HTTP app: ``/fwsim/devices``.

How this works
--------------
:func:`mount_steering` adds an ``APIRouter`` to the FastAPI app a served Particle cloud runs
(``ServedCloud.server.app``), from the testbed side - the cloud package knows nothing of
devices. The routes sit under ``/fwsim``, so the cloud's guard (``cloud_sim/http/guard.py``)
applies to them exactly as to the rest of the admin namespace: the admin token, JSON bodies only,
Host and Origin checks. The app's runtime wrapper brings the world up to the wall clock before
each request and wakes the real-time driver after it, so a handler calls :class:`Steering`
directly. Errors are the API's JSON errors (400 bad input, 404 unknown device, 409 a device that
is off or an operation this testbed cannot do, 504 a control request that did not complete).

=======================================  ===================================================
``GET  /fwsim/devices``                  every device's state
``GET  /fwsim/devices/{device}``         one device's state (name or id)
``POST /fwsim/devices/{device}/drop-session``  ``{}``
``POST /fwsim/devices/{device}/key-change``    ``{}``
``POST /fwsim/devices/{device}/power-cycle``   ``{"off_s": 1.0}``
``POST /fwsim/devices/{device}/reset``         ``{}``
``POST /fwsim/devices/{device}/listening``     ``{"active": true}``
``POST /fwsim/devices/{device}/network``       ``{"up": false}``
``POST /fwsim/devices/{device}/link``          ``{"loss": 0.2, "latency_ms": 150}``
``POST /fwsim/devices/{device}/publish``       ``{"name": "...", "data": "", "private": true}``
``POST /fwsim/devices/{device}/claim-code``    ``{"code": "..."}``
=======================================  ===================================================

Importing this module needs the ``cloud`` extra (FastAPI), which serving needs anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from cloud_sim.http.common import json, params_of
from cloud_sim.http.errors import ApiError, api_error, bad_request
from cloud_sim.http.params import get_bool, get_str

from ..kernel.errors import FwSimError, UsageError
from .steering import Steering, UnknownDevice

#: how long (wall seconds) a control request may take before the route answers 504
CONTROL_TIMEOUT_S = 10.0


def _number(params: dict[str, Any], name: str, *, minimum: float, maximum: float
            ) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not minimum <= value <= maximum:
        raise bad_request(f"{name} must be a number between {minimum:g} and {maximum:g}")
    return float(value)


def _flag(params: dict[str, Any], name: str) -> bool:
    if name not in params:
        raise bad_request(f"{name} (true or false) is required")
    return get_bool(params, name)


def _refused(exc: FwSimError) -> ApiError:
    if isinstance(exc, UnknownDevice):
        return api_error(404, "Unknown device", error_description=str(exc))
    if isinstance(exc, UsageError):
        return api_error(409, "Conflict", error_description=str(exc))
    return bad_request(str(exc))


def steering_router(steering: Steering) -> APIRouter:
    router = APIRouter(prefix="/fwsim", tags=["fwsim testbed"])

    async def run(operation: Callable[[], dict[str, Any]]) -> Response:
        try:
            return json({"ok": True, **operation()})
        except FwSimError as exc:
            raise _refused(exc) from None

    @router.get("/devices")
    async def devices() -> Response:
        return json({"ok": True, "devices": steering.states()})

    @router.get("/devices/{device}")
    async def device_state(device: str) -> Response:
        return await run(lambda: steering.state(device))

    def action(name: str, body: Callable[[str, dict[str, Any]], dict[str, Any]]) -> None:
        async def handler(request: Request, device: str) -> Response:
            params = await params_of(request)
            return await run(lambda: body(device, params))

        router.add_api_route(f"/devices/{{device}}/{name}", handler, methods=["POST"],
                             name=f"steer_{name.replace('-', '_')}")

    action("drop-session", lambda device, p: steering.drop_session(device))
    action("key-change", lambda device, p: steering.key_change(device))
    action("power-cycle", lambda device, p: steering.power_cycle(
        device, _number(p, "off_s", minimum=0.001, maximum=3600) or 1.0))
    action("reset", lambda device, p: steering.reset(device))
    action("listening", lambda device, p: steering.listening(device, _flag(p, "active")))
    action("network", lambda device, p: steering.network(device, _flag(p, "up")))

    def link(device: str, params: dict[str, Any]) -> dict[str, Any]:
        loss = _number(params, "loss", minimum=0, maximum=1)
        latency_ms = _number(params, "latency_ms", minimum=0, maximum=60_000)
        if loss is None and latency_ms is None:
            raise bad_request("give loss (0..1) and/or latency_ms")
        return steering.link(device, loss=loss,
                             latency_s=None if latency_ms is None else latency_ms / 1000)

    action("link", link)
    action("publish", lambda device, p: steering.publish(
        device, get_str(p, "name", required=True, max_length=64) or "",
        get_str(p, "data", max_length=1024) or "", private=get_bool(p, "private", True)))

    async def claim_code(request: Request, device: str) -> Response:
        params = await params_of(request)
        # SetClaimCodeRequest.code is nanopb max_length 64 (bytes: the request decides); the
        # HAL keeps 63 of them, as over USB
        code = get_str(params, "code", required=True, max_length=64) or ""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, Any]] = loop.create_future()

        def done(result: dict[str, Any]) -> None:
            if not answer.done():
                answer.set_result(result)

        try:
            steering.set_claim_code(device, code, done)
        except FwSimError as exc:
            raise _refused(exc) from None
        wake: Callable[[], None] = getattr(request.app.state.fwsim.runtime, "wake",
                                           lambda: None)
        wake()
        try:
            result = await asyncio.wait_for(answer, CONTROL_TIMEOUT_S)
        except TimeoutError:
            raise api_error(504, "Timeout", error_description="the device did not answer the "
                            "control request in time") from None
        return json({"ok": result["result"] == 0, **result})

    router.add_api_route("/devices/{device}/claim-code", claim_code, methods=["POST"],
                         name="steer_claim_code")
    return router


def mount_steering(app: Any, steering: Steering) -> None:
    """Add the steering routes to a served cloud's FastAPI app (``CloudServer.app``)."""
    if not isinstance(app, FastAPI):
        raise TypeError("mount_steering needs the FastAPI app of a served Particle cloud")
    # the routes themselves, not the router: FastAPI matches an included router through
    # per-request route contexts, and the app's route prefilter (and its 404 shortcut) needs
    # plain routes (``cloud_sim/http/app.py``); the router has a prefix and no dependencies, so
    # the routes carry their whole paths
    app.router.routes.extend(steering_router(steering).routes)


__all__ = ["CONTROL_TIMEOUT_S", "mount_steering", "steering_router"]
