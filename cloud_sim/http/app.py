"""The REST API application: a FastAPI app over one :class:`~cloud_sim.cloud.Cloud`.

How this works
--------------
Handlers are thin: they read parameters (:mod:`.params`), identify the caller (:mod:`.auth`),
call the cloud's operations and rules (``cloud_sim.ownership``, ``cloud_sim.claims``) and render
JSON (:mod:`.render`). Every handler is ``async`` and does its store work without awaiting, so
requests are serialized on the event loop: two concurrent claims of one device cannot interleave
and exactly one wins.

An outer ASGI wrapper (:class:`_Runtime`) brings the cloud's World up to the wall clock before
each request (``runtime.sync()``), wakes the real-time driver afterwards (the request may have
scheduled work) and writes one ``http.request`` trace record per request. Outside it,
:class:`~.guard.Guard` checks Host, Origin and the admin namespace's rules first. Every error is
a JSON body (:mod:`.errors`): the router's 404/405 too, a value a store cannot keep (400), and a
last-resort 500 - the API's own errors in one shape, ``{"ok": false, "error",
"error_description"}``, except the OAuth errors and the claim API's ``errors`` list, whose
shapes the real API and its clients fix (cloud.md A3, A5).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..cloud import Cloud
from ..runtime import Runtime
from ..store import StoreInputError
from . import admin, device_keys, devices, events, oauth, openapi, products
from .context import ApiConfig, ApiContext
from .errors import ApiError
from .guard import Guard
from .responses import ApiJSONResponse

log = logging.getLogger("cloud_sim.http")


def create_app(cloud: Cloud, *, runtime: Runtime | None = None,
               config: ApiConfig | None = None) -> FastAPI:
    """The REST API of ``cloud`` (an ASGI app; serve it with uvicorn)."""
    ctx = ApiContext(cloud, config=config or ApiConfig())
    if runtime is not None:
        ctx.runtime = runtime
    app = FastAPI(title="fwsim emulated Particle cloud", version="1",
                  description="A Particle cloud REST API subset for claiming (users, OAuth "
                  "tokens, products, customers, claim codes, devices, transfers, event "
                  "streams) and the emulator's own /fwsim namespace.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.fwsim = ctx
    routers = [oauth.router, events.router, devices.router, products.router]
    if ctx.config.admin.enabled:
        routers += [admin.router, device_keys.router]
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreInputError, _store_input_error)
    app.add_exception_handler(Exception, _internal_error)
    openapi.install(app)
    app.add_middleware(_Runtime, ctx=ctx)
    app.add_middleware(Guard, config=ctx.config,
                       tracer=cloud.world.trace.bind(cloud.name, "http"))
    return app


def context_of(app: FastAPI) -> ApiContext:
    ctx: ApiContext = app.state.fwsim
    return ctx


def error_response(status: int, error: str, description: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The API's own error shape."""
    return ApiJSONResponse({"ok": False, "error": error, "error_description": description},
                           status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return ApiJSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = str(exc.detail)
    return error_response(exc.status_code, detail, detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return error_response(400, "Bad request", "the request does not match this endpoint")


async def _store_input_error(request: Request, exc: Exception) -> Response:
    return error_response(400, "Bad request", str(exc))


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error", "an internal error; see the log")


class _Runtime:
    """ASGI wrapper: World sync before, driver wake after, one trace record per request."""

    def __init__(self, app: ASGIApp, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx
        self.tracer = ctx.cloud.world.trace.bind(ctx.cloud.name, "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.ctx.runtime.sync()
        status: dict[str, Any] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                self.tracer.emit("http.request", method=scope["method"],
                                 path=scope["path"][:200], status=message["status"])
                self.ctx.runtime.wake()
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.ctx.runtime.wake()
