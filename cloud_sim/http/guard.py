"""The guard in front of the REST API: Host and Origin checks and the admin namespace's locks.

How this works
--------------
:class:`Guard` is the outermost ASGI layer. Before a request reaches a route it checks, in order:

1. **Host** (only when the app is served, :class:`HostPolicy`): the ``Host`` header must name the
   address the server is bound to - its IP literal (any IP literal for a wildcard bind),
   ``localhost`` for a loopback bind, or a name the operator allowed - with the bound port. A
   web page that rebinds its own DNS name to 127.0.0.1 sends its own name and is refused (400).
2. **Origin**: a browser's cross-origin request carries ``Origin`` (and ``Sec-Fetch-Site``); an
   origin that is not the server itself, or ``null``, is refused (403). The API serves no CORS,
   so no page of another origin has a reason to call it.
3. **The ``/fwsim`` admin namespace** (:class:`AdminAccess`): absent unless enabled (404); when
   it has a token, every admin request carries it (``X-Fwsim-Admin-Token: <token>`` or
   ``Authorization: Bearer <token>``; 401 otherwise); and anything but GET/HEAD must be
   ``Content-Type: application/json`` (415), so an HTML form or a ``no-cors`` fetch - which can
   only send form, multipart or ``text/plain`` bodies without a CORS preflight - cannot drive it.

Every refusal is a JSON error of the API's one shape (``{"ok": false, "error",
"error_description"}``) and a ``http.refused`` trace record. In process (``create_app`` without a
host policy, reached through :class:`~cloud_sim.http.client.AsgiApiClient`) there is no socket,
so the Host and Origin checks are off; the admin rules still apply as configured.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from firmware_sim.kernel.trace import Tracer

ADMIN_PREFIX = "/fwsim"
ADMIN_TOKEN_HEADER = "x-fwsim-admin-token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class AdminAccess:
    """Who may use ``/fwsim``: nobody (``enabled=False``), the holder of ``token``, or - in
    process only, where there is no socket - anyone (``token=None``)."""

    enabled: bool = True
    token: str | None = None


def _host_name(text: str) -> str:
    return text.strip().lower().rstrip(".")


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class HostPolicy:
    """The names a served API answers to: ``names`` (lowercase host names and IP literals) on
    ``port``; with ``any_ip_literal`` (a wildcard bind) every IP literal too."""

    port: int
    names: frozenset[str] = field(default_factory=frozenset)
    any_ip_literal: bool = False
    #: ``allows_host`` answers by header text (clients repeat theirs on every request)
    _host_verdicts: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_bound(cls, host: str, port: int, extra: tuple[str, ...] = ()) -> HostPolicy:
        """The policy of a server bound to ``host:port`` (plus ``extra`` allowed names)."""
        bound = _host_name(host).strip("[]")
        names = {_host_name(name) for name in extra}
        wildcard = bound in ("", "0.0.0.0", "::")
        if wildcard or bound == "localhost":
            names |= {"localhost", "127.0.0.1", "::1"}
        else:
            names.add(bound)
            try:
                if ipaddress.ip_address(bound).is_loopback:
                    names |= {"localhost", "127.0.0.1", "::1"}
            except ValueError:
                pass
        return cls(port, frozenset(names), any_ip_literal=wildcard)

    def _allows(self, name: str | None, port: int | None) -> bool:
        if not name or port != self.port:
            return False
        name = _host_name(name)
        return name in self.names or (self.any_ip_literal and _is_ip_literal(name))

    def allows_host(self, header: str) -> bool:
        """Does a ``Host`` header name this server?"""
        verdicts = self._host_verdicts
        verdict = verdicts.get(header)
        if verdict is None:
            if len(verdicts) >= 64:  # bounded: varied headers only cost the parse again
                verdicts.clear()
            verdict = verdicts[header] = self._parse_allows_host(header)
        return verdict

    def _parse_allows_host(self, header: str) -> bool:
        try:
            parts = urlsplit("//" + header.strip())
            port = parts.port
        except ValueError:
            return False
        if parts.username is not None or parts.path or parts.query:
            return False
        return self._allows(parts.hostname, 80 if port is None else port)

    def allows_origin(self, origin: str) -> bool:
        """Is an ``Origin`` header this server itself?"""
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
            return False
        default = 80 if parts.scheme == "http" else 443
        return self._allows(parts.hostname, default if port is None else port)


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class GuardConfig(Protocol):
    """Where the guard reads its rules, per request (``ApiConfig``: a server sets ``hosts``
    once it knows its bound port)."""

    admin: AdminAccess
    hosts: HostPolicy | None


class Guard:
    """ASGI middleware applying :class:`HostPolicy` and :class:`AdminAccess` (module header)."""

    def __init__(self, app: ASGIApp, *, config: GuardConfig, tracer: Tracer) -> None:
        self.app = app
        self.config = config
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._check(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, error, description, extra = refusal
        self.tracer.emit("http.refused", method=scope.get("method", ""),
                         path=str(scope.get("path", ""))[:200], status=status, reason=error)
        body = json.dumps({"ok": False, "error": error, "error_description": description},
                          separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *extra]})
        await send({"type": "http.response.body", "body": body})

    def _check(self, scope: Scope, headers: dict[str, str]
               ) -> tuple[int, str, str, list[tuple[bytes, bytes]]] | None:
        hosts = self.config.hosts
        if hosts is not None:
            if not hosts.allows_host(headers.get("host", "")):
                return 400, "Invalid Host header", (
                    "this server answers to the address it is bound to only (DNS rebinding "
                    "protection); see docs/security.md"), []
            origin = headers.get("origin")
            if origin is not None and not hosts.allows_origin(origin):
                return 403, "Cross-origin request refused", (
                    "requests from other web origins are refused"), []
            if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
                return 403, "Cross-origin request refused", (
                    "requests from other web sites are refused"), []
        if not is_admin_path(str(scope.get("path", ""))):
            return None
        admin = self.config.admin
        if not admin.enabled:
            return 404, "Not Found", "the /fwsim admin namespace is disabled (see --admin)", []
        if admin.token is not None and not _has_token(headers, admin.token):
            return 401, "Admin token required", (
                "the /fwsim namespace needs the admin token printed at start-up, in "
                "X-Fwsim-Admin-Token or Authorization: Bearer"), [
                (b"www-authenticate", b'Bearer realm="fwsim-admin"')]
        if scope.get("method", "GET") not in _SAFE_METHODS:
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "application/json":
                return 415, "Unsupported Media Type", (
                    "the /fwsim namespace takes application/json bodies only"), []
        return None


#: the headers the guard reads (lowercase)
_READ = frozenset({b"host", b"origin", b"sec-fetch-site", b"content-type", b"authorization",
                   ADMIN_TOKEN_HEADER.encode()})


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers the guard reads, by lowercase name (the first of repeated ones),
    latin-1 decoded. (Lowercasing the bytes is lowercasing the latin-1 text for these ASCII
    names: no other latin-1 letter lowercases to an ASCII one.)"""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = bytes(raw_name).lower()
        if name in _READ:
            key = name.decode("latin-1")
            if key not in found:
                found[key] = bytes(raw_value).decode("latin-1")
    return found


def _has_token(headers: dict[str, str], token: str) -> bool:
    expected = token.encode()
    offered = headers.get(ADMIN_TOKEN_HEADER, "").strip()
    if not offered:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        offered = value.strip() if scheme.lower() == "bearer" else ""
    return bool(offered) and hmac.compare_digest(offered.encode("latin-1"), expected)
