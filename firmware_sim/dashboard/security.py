"""Who may use the dashboard, and how a browser proves it: the admin token exchanged once for a
session cookie, same-origin checks, CSRF tokens.

How this works
--------------
The dashboard is guarded like the ``/fwsim`` admin namespace - the holder of the admin token
printed at start-up, same-origin only - but a browser cannot send a header on a page load, and
the token must not travel in a URL that a log, a proxy or a ``Referer`` could keep. So:

1. ``POST /ui/login`` with the token (a JSON body ``{"token": ...}`` sent by the login page's
   script, which reads it from the URL *fragment* ``/ui/#token=...`` - fragments are never sent
   to a server - or the login form's password field) is checked with a constant-time compare and
   answered with a **session cookie**: a fresh random id (``secrets``), ``HttpOnly`` (no script
   reads it), ``SameSite=Strict`` (no other site's page sends it), ``Path=/ui``, named after the
   port (two servers on one host do not overwrite each other's cookie). The right token always
   logs in, however many wrong ones came before: it is compared first (constant time), and
   only *wrong* tokens are braked - beyond :data:`MAX_FAILED_LOGINS_PER_MINUTE` in a minute
   they get 429 instead of 401. The brake is no lockout and not what keeps the token safe: the
   token printed at start-up is 160 bits from the CSPRNG (an operator's own is 20 characters
   or more), out of reach of online guessing at any rate - the same token opens ``/fwsim``,
   which has no brake. It only slows a script hammering the login.
2. Every session has its own **CSRF token**, written into the pages it renders (``<meta
   name="csrf-token">``); every state-changing request (POST) must carry it in
   ``X-CSRF-Token`` and be ``application/json`` - which a cross-site form cannot send.
3. :class:`SameOrigin` checks every request first, as the cloud's guard does: the ``Host``
   header must name the bound address (DNS rebinding), an ``Origin`` header must be this server,
   and ``Sec-Fetch-Site`` must not say ``cross-site``/``same-site``.

Sessions live in memory (at most :data:`MAX_SESSIONS`, the oldest dropped first) for
:data:`SESSION_LIFETIME_S`; restarting the server logs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from cloud_sim.http.guard import HostPolicy

#: sessions kept at once (the oldest is dropped beyond)
MAX_SESSIONS = 32
#: seconds a session lasts from login
SESSION_LIFETIME_S = 12 * 3600.0
#: wrong tokens answered 401 per minute (then 429 until the minute has passed; the right token
#: always logs in)
MAX_FAILED_LOGINS_PER_MINUTE = 10
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    expires: float


class Sessions:
    """The dashboard's logged-in browsers (see the module header)."""

    def __init__(self, token: str, *, clock: Callable[[], float] = time.monotonic,
                 max_sessions: int = MAX_SESSIONS,
                 lifetime_s: float = SESSION_LIFETIME_S) -> None:
        if not token:
            raise ValueError("the dashboard needs a token")
        self._token = token.encode()
        self._clock = clock
        self._max = max_sessions
        self.lifetime_s = lifetime_s
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._failures: deque[float] = deque()

    def _now(self) -> float:
        return self._clock()

    def token_matches(self, offered: str) -> bool:
        try:
            raw = offered.strip().encode("latin-1")
        except UnicodeEncodeError:
            return False
        return bool(raw) and hmac.compare_digest(raw, self._token)

    def login_blocked(self) -> bool:
        """Too many wrong tokens in the last minute (a wrong one now gets 429, not 401)?"""
        now = self._now()
        while self._failures and now - self._failures[0] > 60.0:
            self._failures.popleft()
        return len(self._failures) >= MAX_FAILED_LOGINS_PER_MINUTE

    def login(self, offered: str) -> Session | None:
        """A new session for the right token - always, however many wrong ones came before;
        None for a wrong one (counted unless the brake is on already: at most
        :data:`MAX_FAILED_LOGINS_PER_MINUTE` are kept)."""
        if not self.token_matches(offered):
            if not self.login_blocked():
                self._failures.append(self._now())
            return None
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(24),
                          self._now() + self.lifetime_s)
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > 128:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._now() > session.expires:
            del self._sessions[session_id]
            return None
        return session

    def logout(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    @staticmethod
    def csrf_ok(session: Session, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(
            (offered or "").encode("latin-1", "replace"), session.csrf.encode())

    def __len__(self) -> int:
        return len(self._sessions)


def cookie_name(port: int) -> str:
    """The session cookie of the dashboard on ``port`` (cookies are per host, not per port)."""
    return f"fwsim_ui_{port}"


def session_cookie(name: str, value: str, *, max_age: int | None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/ui (``max_age`` 0 deletes)."""
    parts = [f"{name}={value}", "Path=/ui", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


class SameOrigin:
    """The Host/Origin/Sec-Fetch-Site rules of the cloud's guard, for the dashboard's
    requests (the ThingsBoard face has no guard of its own)."""

    def __init__(self, hosts: HostPolicy) -> None:
        self.hosts = hosts

    def refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        """``(status, message)`` when a request must be refused, else None."""
        if not self.hosts.allows_host(headers.get("host", "")):
            return 400, ("invalid Host header: this server answers to the address it is bound "
                         "to only (DNS rebinding protection)")
        origin = headers.get("origin")
        if origin is not None and not self.hosts.allows_origin(origin):
            return 403, "cross-origin request refused: the dashboard is same-origin only"
        if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
            return 403, "cross-site request refused: the dashboard is same-origin only"
        return None


__all__ = ["CSRF_HEADER", "MAX_FAILED_LOGINS_PER_MINUTE", "MAX_SESSIONS", "SESSION_LIFETIME_S",
           "SameOrigin", "Session", "Sessions", "cookie_name", "session_cookie"]
