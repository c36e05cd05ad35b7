"""The dashboard's ASGI application (Starlette), mounted at ``/ui`` of a served cloud's app.

How this works
--------------
Pages are rendered on the server with Jinja2 (``templates/``), so the first paint needs no
script; ``static/dashboard.js`` then opens one Server-Sent Events stream per page
(``/ui/api/stream``, ``?device=NAME`` on a device page) and updates the page in place: the rows'
fields, the session panel, the "why" panel, new log lines and events, the sequence diagram. The
stream recomputes its payload when the :class:`~.feed.Feed` says the world changed (at most every
:data:`MIN_INTERVAL_S`, and never more than a fifth of the time: the world runs on the same event
loop) and sends only what differs; a comment every :data:`KEEPALIVE_S` keeps it open. Actions
are ``POST /ui/api/devices/{name}/{action}`` with a JSON body.

=====================================  ======================================================
``GET  /ui/``                          the device list (the login page without a session)
``GET  /ui/devices/{name}``            a device's page
``POST /ui/login`` / ``/ui/logout``    the admin token for a session cookie, and back
``GET  /ui/api/devices[/{name}]``      the rows, or one device's panels, as JSON
``GET  /ui/api/devices/{name}/secret`` the claim code (or button secret): "click to reveal"
``POST /ui/api/devices/{name}/{action}``  power-cycle, reset, listening, network, drop-session,
                                       key-change, claim-code, new-claim-code; press, claim,
                                       reclaim
``GET  /ui/api/stream[?device=NAME]``  the live stream
``GET  /ui/static/{file}``             the stylesheet and the script (no session needed)
=====================================  ======================================================

The rules of :mod:`.security` apply to every request: same origin, a session for everything but
the login and the static files, JSON plus the session's CSRF token for every POST. Bad input is
a 4xx with ``{"ok": false, "error": "<one line>"}`` (a page for browsers asking for HTML) - never
a 5xx for input; every response carries a strict Content-Security-Policy (scripts, styles and
connections from this origin only; no inline script), ``nosniff``, a referrer only to this
origin, no framing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..diagram import to_mermaid, to_svg
from .backends import ActionError, Backend
from .security import CSRF_HEADER, SameOrigin, Session, Sessions, session_cookie

log = logging.getLogger("firmware_sim.dashboard")

#: seconds between keep-alive comments of an idle stream
KEEPALIVE_S = 15.0
#: seconds between two updates of one stream at most
MIN_INTERVAL_S = 0.15
#: seconds between two diagram renderings of one stream at most
DIAGRAM_INTERVAL_S = 1.0
#: open live streams at most (429 beyond)
MAX_STREAMS = 16
#: bytes of a request body at most, and seconds it may take to arrive
MAX_BODY_BYTES = 16 * 1024
BODY_TIMEOUT_S = 10.0
#: log lines and events a page shows at most
LOG_LINES = 400
EVENT_ROWS = 100
#: the tooltip of a button that cannot work on a panicking device
PANIC_NOTE = ("the device is panicking (flashing SOS): it runs no code until it resets; only "
              "Reset and Power-cycle work now")
STATIC_TYPES = {"dashboard.css": "text/css; charset=utf-8",
                "dashboard.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
     b"img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
     b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


@dataclass(frozen=True)
class Settings:
    base: str
    cookie: str
    title: str


class _Guard:
    """Same-origin checks and security headers around the whole dashboard app."""

    def __init__(self, app: ASGIApp, same_origin: SameOrigin) -> None:
        self.app = app
        self.same_origin = same_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
                   for k, v in reversed(scope.get("headers", []))}
        refusal = self.same_origin.refusal(headers)
        if refusal is not None:
            status, message = refusal
            response = JSONResponse({"ok": False, "error": message}, status_code=status)
            await response(scope, receive, self._secured(send))
            return
        await self.app(scope, receive, self._secured(send))

    @staticmethod
    def _secured(send: Send) -> Send:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        return secured


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("firmware_sim.dashboard").joinpath("static")
    found = {}
    for name in STATIC_TYPES:
        body = folder.joinpath(name).read_bytes()
        found[name] = (body, hashlib.sha256(body).hexdigest()[:12])
    return found


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status,
                        headers={"cache-control": "no-store"})


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise ActionError(413, f"the request body must be at most {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0

    async def read() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ActionError(413, f"the request body must be at most {MAX_BODY_BYTES} "
                                  "bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT_S)
    except TimeoutError:
        raise ActionError(408, "the request body took too long") from None
    return b"".join(chunks)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


async def _json_body(request: Request) -> dict[str, Any]:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ActionError(415, "the dashboard takes application/json bodies only")
    raw = await _read_body(request)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ActionError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ActionError(400, "the body must be a JSON object")
    return body


def _sse(event: str, data: Any, event_id: str | None = None) -> str:
    text = json.dumps(data, separators=(",", ":"), default=str)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n"


class _LiveStream(StreamingResponse):
    """A live stream holding one of the :data:`MAX_STREAMS` places of ``app``: taken when it
    is accepted (made), given back when it ends - the client left, the feed closed, the server
    stopped - whether it is waiting for a change, computing or sending."""

    def __init__(self, app: DashboardApp, content: AsyncIterator[str], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._app = app
        app.open_streams += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._app._stream_closed()


class DashboardApp:
    """The routes and their state (see the module header)."""

    def __init__(self, backend: Backend, sessions: Sessions, same_origin: SameOrigin,
                 settings: Settings) -> None:
        self.backend = backend
        self.sessions = sessions
        self.settings = settings
        #: live streams open now, from their acceptance to their end (at most MAX_STREAMS)
        self.open_streams = 0
        self.static = _load_static()
        self.env = Environment(loader=PackageLoader("firmware_sim.dashboard", "templates"),
                               autoescape=select_autoescape(["html"]), trim_blocks=True,
                               lstrip_blocks=True)
        self.env.globals.update(base=settings.base, title=settings.title,
                                cloud=backend.cloud, quote=quote,
                                asset=lambda name: f"{settings.base}/static/{name}?v="
                                f"{self.static[name][1]}")
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/devices/{name}", self.device_page, methods=["GET"]),
            Route("/static/{file}", self.static_file, methods=["GET"]),
            Route("/api/devices", self.api_devices, methods=["GET"]),
            Route("/api/devices/{name}", self.api_device, methods=["GET"]),
            Route("/api/devices/{name}/secret", self.api_secret, methods=["GET"]),
            Route("/api/devices/{name}/{action}", self.api_action, methods=["POST"]),
            Route("/api/stream", self.stream, methods=["GET"]),
        ]
        app = Starlette(routes=routes, exception_handlers={
            HTTPException: self._http_error, Exception: self._internal_error})
        self.asgi: ASGIApp = _Guard(app, same_origin)

    # -- plumbing ------------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.settings.cookie))

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})

    def _login_response(self, status: int = 401, message: str | None = None) -> HTMLResponse:
        return self.render("login.html", status, csrf="", message=message, page="login")

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        if _wants_html(request) and exc.status_code == 404:
            session = self._session(request)
            return self.render("error.html", 404, csrf=session.csrf if session else "",
                               message=f"There is no page at {request.url.path}.")
        return _error(exc.status_code, message)

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        log.exception("dashboard: internal error on %s %s", request.method, request.url.path)
        return _error(500, "internal error of the dashboard; see the server's log")

    async def _guarded(self, request: Request,
                       handler: Callable[[Session], Awaitable[Response]]) -> Response:
        """Run ``handler`` for a logged-in request; a 401 (or the login page) otherwise."""
        session = self._session(request)
        if session is None:
            if _wants_html(request) and request.method == "GET":
                return self._login_response(200)
            return _error(401, "log in first: POST the admin token printed at start-up to "
                          f"{self.settings.base}/login")
        try:
            return await handler(session)
        except ActionError as exc:
            if _wants_html(request) and request.method == "GET":
                return self.render("error.html", exc.status, csrf=session.csrf,
                                   message=exc.message)
            return _error(exc.status, exc.message)

    # -- pages ---------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        async def page(session: Session) -> Response:
            rows = self.backend.rows()
            return self.render("index.html", csrf=session.csrf, rows=rows, page="index",
                               generation=self.backend.feed.generation)

        return await self._guarded(request, page)

    async def device_page(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def page(session: Session) -> Response:
            return self.render("device.html", csrf=session.csrf, page="device",
                               **self.device_context(name))

        return await self._guarded(request, page)

    def device_context(self, name: str) -> dict[str, Any]:
        backend = self.backend
        row = backend.row(name)
        log_lines = backend.log(name)[-LOG_LINES:]
        events = backend.events(name)[-EVENT_ROWS:]
        diagram = backend.diagram(name)
        return {"row": row, "panels": backend.panels(name), "reasons": backend.reasons(name),
                "panic_note": PANIC_NOTE,
                "log": log_lines, "events": events, "diagram_svg": to_svg(diagram),
                "diagram_text": to_mermaid(diagram),
                "log_seq": log_lines[-1]["seq"] if log_lines else 0,
                "event_seq": events[-1].seq if events else 0}

    async def login_page(self, request: Request) -> Response:
        if self._session(request) is not None:
            return RedirectResponse(f"{self.settings.base}/", 303)
        return self._login_response(200)

    async def login(self, request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        form = media == "application/x-www-form-urlencoded"
        try:
            if form:
                fields = parse_qs((await _read_body(request)).decode("utf-8", "replace"))
                token = (fields.get("token") or [""])[0]
            else:
                token = str((await _json_body(request)).get("token") or "")
            # the right token always logs in: only wrong ones are braked (security.py)
            braked = self.sessions.login_blocked()
            session = self.sessions.login(token)
            if session is None:
                if braked:
                    raise ActionError(429, "too many wrong tokens: wait a minute")
                raise ActionError(401, "that is not the admin token printed at start-up")
        except ActionError as exc:
            if form:
                return self._login_response(exc.status, exc.message)
            return _error(exc.status, exc.message)
        cookie = session_cookie(self.settings.cookie, session.id,
                                max_age=int(self.sessions.lifetime_s))
        response: Response
        if form:
            response = RedirectResponse(f"{self.settings.base}/", 303)
        else:
            response = JSONResponse({"ok": True, "next": f"{self.settings.base}/"})
        response.headers.append("set-cookie", cookie)
        response.headers["cache-control"] = "no-store"
        return response

    async def logout(self, request: Request) -> Response:
        async def out(session: Session) -> Response:
            self._check_csrf(request, session)
            self.sessions.logout(session.id)
            response = JSONResponse({"ok": True, "next": f"{self.settings.base}/login"})
            response.headers.append("set-cookie", session_cookie(self.settings.cookie, "",
                                                                 max_age=0))
            return response

        return await self._guarded(request, out)

    async def static_file(self, request: Request) -> Response:
        name = request.path_params["file"]
        found = self.static.get(name)
        if found is None:
            return _error(404, "no such file")
        body, digest = found
        return Response(body, media_type=STATIC_TYPES[name], headers={
            "cache-control": "public, max-age=86400", "etag": f'"{digest}"'})

    # -- the JSON API --------------------------------------------------------------------------

    def _check_csrf(self, request: Request, session: Session) -> None:
        if not self.sessions.csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise ActionError(403, "missing or wrong CSRF token: reload the page")

    async def api_devices(self, request: Request) -> Response:
        async def answer(session: Session) -> Response:
            return JSONResponse({"ok": True, "devices": [row.to_json()
                                                         for row in self.backend.rows()]})

        return await self._guarded(request, answer)

    async def api_device(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def answer(session: Session) -> Response:
            return JSONResponse({"ok": True, **self.device_payload(name, log_after=0,
                                                                   events_after=0)})

        return await self._guarded(request, answer)

    async def api_secret(self, request: Request) -> Response:
        name = request.path_params["name"]

        async def answer(session: Session) -> Response:
            secret = self.backend.secret(name)
            return JSONResponse({"ok": True, "device": name, "secret": secret},
                                headers={"cache-control": "no-store"})

        return await self._guarded(request, answer)

    async def api_action(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]

        async def act(session: Session) -> Response:
            self._check_csrf(request, session)
            params = await _json_body(request)
            result = await self.backend.act(name, action, params)
            return JSONResponse({"ok": True, "action": action, **result})

        return await self._guarded(request, act)

    def device_payload(self, name: str, *, log_after: int, events_after: int,
                       diagram: bool = True) -> dict[str, Any]:
        backend = self.backend
        row = backend.row(name)
        panels = backend.panels(name)
        session_html = self.env.get_template("_session.html").render(panels=panels, row=row)
        why_html = self.env.get_template("_why.html").render(
            reasons=backend.reasons(name), row=row)
        payload: dict[str, Any] = {
            "row": row.to_json(), "session_html": session_html, "why_html": why_html,
            "busy": panels.get("busy"),
            "dct": "\n".join(f"{line.offset}  {line.hex:<47}  {line.ascii}"
                             for line in (panels.get("dct") or {}).get("code", [])),
            "claimed_byte": (panels.get("dct") or {}).get("claimed"),
            "qr": panels.get("qr"), "secret_length": panels.get("secret_length", 0),
            "log": backend.log(name, log_after)[-LOG_LINES:],
            "events": [event.to_json() for event in backend.events(name, events_after)]
            [-EVENT_ROWS:]}
        if diagram:
            rendered = backend.diagram(name)
            payload["diagram"] = to_svg(rendered)
            payload["diagram_text"] = to_mermaid(rendered)
        return payload

    # -- the live stream -----------------------------------------------------------------------

    async def stream(self, request: Request) -> Response:
        device = request.query_params.get("device")

        async def open_stream(session: Session) -> Response:
            if device is not None:
                self.backend.row(device)  # 404 for an unknown device
            if self.open_streams >= MAX_STREAMS:
                raise ActionError(429, f"at most {MAX_STREAMS} live views at once: close one")
            cursor = request.headers.get("last-event-id") or request.query_params.get(
                "after", "0.0")
            log_after, _, events_after = cursor.partition(".")
            try:
                cursors = [int(log_after), int(events_after or 0)]
            except ValueError:
                raise ActionError(400, "after must be LOGSEQ.EVENTSEQ") from None
            return _LiveStream(
                self, self._events(session, device, cursors), media_type="text/event-stream",
                headers={"cache-control": "no-store", "x-accel-buffering": "no"})

        return await self._guarded(request, open_stream)

    def _stream_closed(self) -> None:
        self.open_streams -= 1

    async def _events(self, session: Session, device: str | None,
                      cursors: list[int]) -> AsyncIterator[str]:
        feed = self.backend.feed
        yield "retry: 2000\n\n"
        generation = -1
        last: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        last_diagram = -DIAGRAM_INTERVAL_S
        diagram_seq = -1
        while not feed.closed:
            if self.sessions.get(session.id) is None:
                yield _sse("expired", {"error": "your session ended: log in again"})
                return
            changed = generation == -1 or await feed.wait(generation, KEEPALIVE_S)
            if feed.closed:
                return
            if not changed:
                yield ": keep-alive\n\n"
                continue
            generation = feed.generation
            started = loop.time()
            try:
                if device is None:
                    rows = [row.to_json() for row in self.backend.rows()]
                    if rows != last.get("rows"):
                        last["rows"] = rows
                        yield _sse("rows", rows)
                else:
                    records = feed.records.get(device)
                    newest = records[-1].seq if records else 0
                    now = loop.time()
                    draw = newest != diagram_seq and now - last_diagram >= DIAGRAM_INTERVAL_S
                    payload = self.device_payload(device, log_after=cursors[0],
                                                  events_after=cursors[1], diagram=draw)
                    if draw:
                        last_diagram, diagram_seq = now, newest
                    elif newest != diagram_seq:
                        generation = -2  # come back for the diagram
                    if payload["log"]:
                        cursors[0] = payload["log"][-1]["seq"]
                    if payload["events"]:
                        cursors[1] = payload["events"][-1]["seq"]
                    unchanged = {key for key, value in payload.items()
                                 if key not in ("log", "events") and last.get(key) == value}
                    last.update(payload)
                    for key in unchanged:
                        del payload[key]
                    if any(payload.get(key) for key in ("log", "events")) or \
                            set(payload) - {"log", "events"}:
                        yield _sse("device", payload, f"{cursors[0]}.{cursors[1]}")
            except ActionError as exc:
                yield _sse("gone", {"error": exc.message})
                return
            # the world runs on this loop too: a stream whose update is costly (a fleet's rows)
            # waits longer, so it never takes more than a fifth of the loop
            await asyncio.sleep(max(MIN_INTERVAL_S, (loop.time() - started) * 4))


def build_app(backend: Backend, sessions: Sessions, same_origin: SameOrigin,
              settings: Settings) -> DashboardApp:
    return DashboardApp(backend, sessions, same_origin, settings)


__all__ = ["KEEPALIVE_S", "MAX_STREAMS", "MIN_INTERVAL_S", "DashboardApp", "Settings",
           "build_app"]
