"""The REST API application: a FastAPI app over one :class:`~cloud_sim.cloud.Cloud`.

How this works
--------------
Handlers are thin: they read parameters (:mod:`.params`), identify the caller (:mod:`.auth`),
call the cloud's operations and rules (``cloud_sim.ownership``, ``cloud_sim.claims``) and render
JSON (:mod:`.render`). Every handler is ``async`` and does its store work without awaiting, so
requests are serialized on the event loop: two concurrent claims of one device cannot interleave
and exactly one wins.

An outer ASGI wrapper (:class:`_Runtime`) brings the cloud's World up to the wall clock before
each request (``runtime.sync()``), wakes the real-time driver afterwards if the request
scheduled work sooner than the driver's next wake-up, and writes one ``http.request`` trace
record per request. It calls the simple fixed-path endpoints (``endpoint(request)``, no FastAPI
parameters) directly, past FastAPI's request handling (:mod:`.direct`). Other routes with a
fixed path are found by a direct lookup (:class:`_StaticRoutes`, the same route the router's
walk would pick); the routers' routes are added to the app's own router, not included as
routers (FastAPI matches an included router through per-request route contexts, about half of
the CPU of a request). Outside it, :class:`~.guard.Guard` checks Host, Origin and the admin
namespace's rules first. Every error is a JSON body (:mod:`.errors`): the router's 404/405 too,
a value a store cannot keep (400), and a last-resort 500 - the API's own errors in one shape,
``{"ok": false, "error", "error_description"}``, except the OAuth errors and the claim API's
``errors`` list, whose shapes the real API and its clients fix (cloud.md A3, A5).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..cloud import Cloud
from ..runtime import NullRuntime, Runtime
from ..store import StoreInputError
from . import (
    admin,
    device_calls,
    device_keys,
    devices,
    events,
    oauth,
    openapi,
    products,
    publish,
)
from .context import ApiConfig, ApiContext
from .direct import DirectEndpoints, fixed_route_table
from .errors import ApiError
from .guard import Guard
from .responses import ApiJSONResponse

log = logging.getLogger("cloud_sim.http")


def create_app(cloud: Cloud, *, runtime: Runtime | None = None,
               config: ApiConfig | None = None, direct_endpoints: bool = True) -> FastAPI:
    """The REST API of ``cloud`` (an ASGI app; serve it with uvicorn).

    ``direct_endpoints=False`` sends every request through FastAPI's request handling (the
    same answers, more CPU; :mod:`.direct`), for comparisons."""
    ctx = ApiContext(cloud, config=config or ApiConfig())
    if runtime is not None:
        ctx.runtime = runtime
    app = FastAPI(title="fwsim emulated Particle cloud", version="1",
                  description="A Particle cloud REST API subset for claiming (users, OAuth "
                  "tokens, products, customers, claim codes, devices, transfers, event "
                  "streams) and the emulator's own /fwsim namespace.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  **_NO_TELEMETRY)
    app.state.fwsim = ctx
    routers = [oauth.router, events.router, publish.router, devices.router, products.router]
    if ctx.config.admin.enabled:
        routers += [admin.router, device_keys.router]
    # last: ``/v1/devices/{id}/{name}`` must not shadow the routes above (``.../events``)
    routers.append(device_calls.router)
    for router in routers:
        # the routes themselves, not the routers: FastAPI matches an included router through
        # per-request route contexts (about half of the CPU of a request); these routers have
        # no prefix, dependencies or settings of their own to combine, so it is the same table
        app.router.routes.extend(router.routes)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreInputError, _store_input_error)
    app.add_exception_handler(Exception, _internal_error)
    openapi.install(app)
    fixed = _StaticRoutes.install(app, prefilter=direct_endpoints).table
    app.add_middleware(_Runtime, ctx=ctx,
                       direct=DirectEndpoints(app, fixed) if direct_endpoints else None)
    app.add_middleware(Guard, config=ctx.config,
                       tracer=cloud.world.trace.bind(cloud.name, "http"))
    return app


#: FastAPI 0.16x reports requests to OpenTelemetry providers when the process has any; the
#: emulator's own record of a request is its trace, and the check costs CPU on every request
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


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
    """ASGI wrapper: World sync before, one trace record per request, and a driver wake when
    the request moved the World's next due time earlier.

    The driver sleeps until the earliest due time it last saw, which is never later than the
    earliest due time when a request begins. So only a request that leaves something due
    *sooner* than that needs to wake it (most requests schedule nothing); waking it after every
    request cost a task switch and a new ``wait_for`` each."""

    def __init__(self, app: ASGIApp, ctx: ApiContext, direct: DirectEndpoints | None) -> None:
        self.app = app
        self.ctx = ctx
        self.direct = direct
        self.tracer = ctx.cloud.world.trace.bind(ctx.cloud.name, "http")
        self.scheduler = ctx.cloud.world.scheduler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = self.ctx.runtime
        driven = not isinstance(runtime, NullRuntime)
        due_before = self.scheduler.next_due_us() if driven else None
        runtime.sync()

        def wake_if_sooner() -> None:
            if driven:
                due = self.scheduler.next_due_us()
                if due is not None and (due_before is None or due < due_before):
                    runtime.wake()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.tracer.emit("http.request", method=scope["method"],
                                 path=scope["path"][:200], status=message["status"])
                wake_if_sooner()
            await send(message)

        direct = self.direct
        route = direct.route_for(scope) if direct is not None else None
        try:
            if direct is not None and route is not None:
                await direct.call(route, scope, receive, watch)
            else:
                await self.app(scope, receive, watch)
        finally:
            wake_if_sooner()


class _StaticRoutes:
    """Direct lookup of the routes with a fixed path (``/v1/devices``, ``/oauth/token``, ...):
    the route the router's walk would pick for that method and path, found in a dict. Other
    requests (paths with parameters, 405) take the router's walk as before.

    The table (:func:`.direct.fixed_route_table`) is built by asking every route, in the
    router's order, whether it matches each fixed path with each of its methods - the walk's
    own rule - so the lookup always picks the route the walk would pick.

    With ``prefilter``, other paths (with parameters: ``/v1/devices/{device_id}``, or unknown)
    are walked asking only the routes whose own ``path_regex`` matches the path, in the
    router's order: a route whose regex does not match would answer NONE, so the first full
    match is the walk's. When no regex matches the path, nor the path with its trailing slash
    toggled (the walk's redirect rule), the request is answered as the walk answers it, by
    raising Starlette's 404 ``HTTPException`` (the app's handler renders it): an unknown path
    costs ~90 us instead of ~340 in process. A 405 or a redirect is left to the walk. The
    regexes are taken from the router's own list of routes, again whenever that list has grown
    (routes mounted later count); a route of any other kind than ``Route``/``Mount``/
    ``WebSocketRoute`` (FastAPI's included routers match through per-request contexts) turns
    the prefilter off."""

    def __init__(self, routes: list[BaseRoute], walk: ASGIApp, *,
                 prefilter: bool = True, redirect_slashes: bool = True) -> None:
        self.walk = walk
        self.routes = routes
        self.table = fixed_route_table(routes)
        self.prefilter = prefilter
        self.redirect_slashes = redirect_slashes
        self._regexes: tuple[re.Pattern[str], ...] | None = None
        self._regexes_of = -1  # the number of routes the regexes were taken from

    @classmethod
    def install(cls, app: FastAPI, *, prefilter: bool = True) -> _StaticRoutes:
        router = app.router
        # Starlette's Router calls ``middleware_stack``, which is its ``app`` when it has no
        # middleware of its own
        assert router.middleware_stack == router.app, "the router has middleware"
        router.middleware_stack = static = cls(router.routes, router.app,
                                               prefilter=prefilter,
                                               redirect_slashes=router.redirect_slashes)
        return static

    def _route_regexes(self) -> tuple[re.Pattern[str], ...] | None:
        """Every route's path regex (None: a route matches some other way)."""
        if self._regexes_of != len(self.routes):
            self._regexes_of = len(self.routes)
            self._regexes = None
            regexes = []
            for route in self.routes:
                if not isinstance(route, Route | Mount | WebSocketRoute):
                    return None
                regexes.append(route.path_regex)
            self._regexes = tuple(regexes)
        return self._regexes

    def _redirect_finds_nothing(self, path: str, regexes: tuple[re.Pattern[str], ...]
                                ) -> bool:
        """No route matches ``path`` (the caller found none): does the walk's trailing-slash
        redirect find none either, so that the walk ends in its 404 (class header)?"""
        if self.redirect_slashes and path != "/":
            toggled = path.rstrip("/") if path.endswith("/") else path + "/"
            if any(regex.match(toggled) for regex in regexes):
                return False
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.walk(scope, receive, send)
            return
        route = self.table.get((scope.get("method", ""), scope.get("path", "")))
        if route is None:
            await self._prefiltered_walk(scope, receive, send)
            return
        _, child_scope = route.matches(scope)
        await _handle(route, child_scope, scope, receive, send)

    async def _prefiltered_walk(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The walk's first full match, asking only the routes whose regex matches the path (a
        route whose regex does not match answers NONE); anything else - a 405, a redirect -
        is left to the walk itself, and no match at all is its 404 (class header)."""
        regexes = self._route_regexes() if self.prefilter and "app" in scope else None
        if regexes is None:
            await self.walk(scope, receive, send)
            return
        path = scope.get("path", "")
        matched = False
        for route, regex in zip(self.routes, regexes, strict=True):
            if regex.match(path) is None:
                continue
            matched = True
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                await _handle(route, child_scope, scope, receive, send)
                return
        if not matched and self._redirect_finds_nothing(path, regexes):
            raise HTTPException(status_code=404)  # what the walk ends in (class header)
        await self.walk(scope, receive, send)


async def _handle(route: BaseRoute, child_scope: Scope, scope: Scope, receive: Receive,
                  send: Send) -> None:
    """Hand the request to the route it fully matched, with the scope the walk would give it."""
    scope.setdefault("router", scope["app"].router)
    scope["route"] = route
    scope.update(child_scope)
    await route.handle(scope, receive, send)
