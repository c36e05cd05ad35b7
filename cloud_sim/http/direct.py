"""Direct calls of the simple fixed-path endpoints, past FastAPI's per-request machinery.

How this works
--------------
Most of the API's busiest endpoints (``POST /v1/devices``, ``GET /v1/devices``,
``POST /v1/device_claims``, ``POST /oauth/token``, ...) are written as ``async def
endpoint(request: Request) -> Response``: they parse and validate their own input and return a
finished response. For such an endpoint FastAPI has nothing to do - no parameters to solve, no
body to read, no model to serialize - yet a request still passes through its exception and
exit-stack middleware, the router, the route's request handler and its dependency solver:
about a quarter of the CPU of a claim.

:class:`DirectEndpoints` is built once, when the app is made, from the app's own routes: for
each ``(method, path)`` with a fixed path it takes the route the router's walk would pick
(:func:`fixed_route_table`, the table the app's fixed-path lookup uses too), and keeps it when
that route qualifies (an :class:`APIRoute` whose
endpoint is a coroutine function taking exactly one parameter, a ``Request``, with no
dependencies, response model or status code of its own). A request for one of those is then
served by calling the endpoint with a ``Request`` and sending the response it returns - the
same response object FastAPI would have sent. An exception the endpoint raises is answered by
the app's own exception handlers, looked up as Starlette does (the handler for the exception's
status first, for an ``HTTPException``, then by the exception's class hierarchy); one without a
handler propagates to the outer error middleware, as before, which answers 500.

Everything else - paths with parameters, 404 and 405, endpoints with FastAPI parameters - goes
the usual way. ``tests/cloud/test_direct_endpoints.py`` sends the same generated requests to an
app with and without this lane and compares the answers byte for byte.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, get_type_hints

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send


class DirectEndpoints:
    """The qualifying fixed-path routes of ``app`` by ``(method, path)`` (module header)."""

    def __init__(self, app: FastAPI,
                 fixed: Mapping[tuple[str, str], BaseRoute] | None = None) -> None:
        """``fixed``: :func:`fixed_route_table` of the app's routes, when the caller has it."""
        self.app = app
        self.router = app.router
        if fixed is None:
            fixed = fixed_route_table(app.router.routes)
        self.table: dict[tuple[str, str], APIRoute] = {
            key: route for key, route in fixed.items()
            if isinstance(route, APIRoute) and qualifies(route)}
        handlers = dict(app.exception_handlers)
        #: Starlette's ExceptionMiddleware leaves these to the outer error middleware
        handlers.pop(Exception, None)
        handlers.pop(500, None)
        self.status_handlers = {key: value for key, value in handlers.items()
                                if isinstance(key, int)}
        self.class_handlers = {key: value for key, value in handlers.items()
                               if not isinstance(key, int)}
        #: per route, the scope entries its match adds (its endpoint and itself), learnt from
        #: its first match; a fixed path matches without path parameters, so later requests
        #: need no regular expression and no FastAPI route-context lookup (by ``id``: a route
        #: is not hashable, and every route here lives as long as ``self.table``)
        self._matched: dict[int, dict[str, Any]] = {}

    def route_for(self, scope: Scope) -> APIRoute | None:
        """The route to call directly, or None: the request goes the usual way."""
        if scope.get("root_path"):
            return None
        return self.table.get((scope.get("method", ""), scope.get("path", "")))

    async def call(self, route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._matched.get(id(route))
        if matched is None or scope.get("path_params"):
            _, child_scope = route.matches(scope)
            if set(child_scope) == {"endpoint", "path_params", "route"} and not (
                    child_scope["path_params"] or scope.get("path_params")):
                self._matched[id(route)] = {key: value for key, value in child_scope.items()
                                        if key != "path_params"}
        else:
            child_scope = {**matched, "path_params": {}}
        scope.setdefault("router", self.router)
        scope.update(child_scope)
        request = Request(scope, receive)
        try:
            response: Response = await route.endpoint(request)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Any:
        handler = None
        if isinstance(exc, HTTPException):
            handler = self.status_handlers.get(exc.status_code)
        if handler is None:
            for cls in type(exc).__mro__:
                handler = self.class_handlers.get(cls)
                if handler is not None:
                    break
        if handler is not None and not inspect.iscoroutinefunction(handler):
            return None  # a synchronous handler: leave it to Starlette's middleware
        return handler


def fixed_route_table(routes: Sequence[BaseRoute]) -> dict[tuple[str, str], BaseRoute]:
    """For every ``(method, path)`` of a route whose path has no parameters, the route the
    router's walk picks for it: the first that matches it fully, asked in the router's order
    (the walk's own rule)."""
    table: dict[tuple[str, str], BaseRoute] = {}
    keys = {(method, path) for route in routes
            if "{" not in (path := getattr(route, "path", "{"))
            for method in (getattr(route, "methods", None) or ())}
    for method, path in keys:
        probe: Scope = {"type": "http", "path": path, "root_path": "", "method": method}
        for route in routes:
            match, _ = route.matches(probe)
            if match is Match.FULL:
                table[(method, path)] = route
                break
    return table


def qualifies(route: APIRoute) -> bool:
    """An endpoint FastAPI has nothing to do for (module header)."""
    endpoint = route.endpoint
    if not inspect.iscoroutinefunction(endpoint):
        return False
    if route.dependencies or route.dependant.dependencies or route.response_model is not None:
        return False
    if route.status_code is not None or route.dependant.body_params:
        return False
    parameters = list(inspect.signature(endpoint).parameters.values())
    if len(parameters) != 1 or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY):
        return False
    try:
        hints = get_type_hints(endpoint)
    except (NameError, TypeError):
        return False
    return hints.get(parameters[0].name) is Request


__all__ = ["DirectEndpoints", "fixed_route_table", "qualifies"]
