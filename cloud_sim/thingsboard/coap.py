"""The CoAP device API of the emulated ThingsBoard: ``POST coap://host/api/v1/{token}/claim``.

Answers (docs/thingsboard.md, B2): **2.01 Created** when the claim request was accepted (even when
the claim rules refuse it: the reason goes to the trace and the claim history), **4.01
Unauthorized** for an unknown token, **4.00 Bad Request** for a payload that cannot be parsed
(ThingsBoard's adaptor error; UNVERIFIED which 4.xx a real server picks, docs/thingsboard.md), 4.04
for any other path, 4.05 for another method. Served by aiocoap over UDP only: aiocoap's default
server transports would also listen for CoAP over TCP on the same port and CoAP over WebSocket
on port + 3000 (and TLS where it can), attack surface ThingsBoard's CoAP transport does not have.

Garbage datagrams are dropped quietly: aiocoap logs a warning for each one it cannot parse, and
one whose option should be text but is not UTF-8 escapes its parser as a ``UnicodeDecodeError``
that asyncio prints with a traceback - 20,000 fuzz datagrams printed 350 tracebacks and 7,304
warnings. :func:`serve_coap` rate-limits aiocoap's warnings (about what it ignores) to one line
a minute, with the count so far, and turns that escaped error into the same count.

aiocoap remembers every request it answered - the response included, about 2 KB - for
EXCHANGE_LIFETIME (247 s), to answer a retransmitted duplicate with the same response; it has
no cap, so 20,243 requests grew the server from 130 to 172 MB. :func:`bound_duplicate_window`
caps that window at :data:`MAX_RECENT_MESSAGES` requests, forgetting the oldest first: a
duplicate of a forgotten request is handled again, which a claim message tolerates (the claim
cache keeps the first secret, B3). The check itself is aiocoap's, on that window, without
aiocoap's timer per request (which alone kept ~0.9 KB a request for 247 s): expired requests
are dropped as new ones arrive.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import aiocoap
import aiocoap.resource as resource
from aiocoap.numbers.types import CON

from ..runtime import Runtime
from .service import DeviceAck, ThingsBoardService

MAX_PAYLOAD_BYTES = 64 * 1024
#: requests (and their responses, ~2 KB each) kept in aiocoap's duplicate-detection window
MAX_RECENT_MESSAGES = 2048
#: aiocoap's UDP server transport: ``udp6`` where aiocoap supports it (Linux), else the simple
#: socket server (its own defaults make the same split)
COAP_TRANSPORTS = ["udp6"] if sys.platform == "linux" else ["simplesocketserver"]


class ClaimApi(resource.Resource, resource.PathCapable):  # type: ignore[misc]
    """The root resource: parses ``uri_path`` itself."""

    def __init__(self, service: ThingsBoardService, runtime: Runtime) -> None:
        super().__init__()
        self.service = service
        self.runtime = runtime

    async def render(self, request: Any) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        if len(path) != 4 or path[:2] != ("api", "v1") or path[3] != "claim":
            return aiocoap.Message(code=aiocoap.NOT_FOUND)
        if request.code != aiocoap.POST:
            return aiocoap.Message(code=aiocoap.METHOD_NOT_ALLOWED)
        payload = bytes(request.payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            return aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE)
        self.runtime.sync()
        try:
            ack = self.service.device_claim(path[2], payload or None, transport="coap")
        finally:
            self.runtime.wake()
        if ack is DeviceAck.UNAUTHORIZED:
            return aiocoap.Message(code=aiocoap.UNAUTHORIZED)
        if ack is DeviceAck.MALFORMED:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST)
        return aiocoap.Message(code=aiocoap.CREATED)


class UnparsableDatagrams(logging.Filter):
    """Lets through one of aiocoap's warnings (what it ignored: unparsable datagrams, messages
    whose code and type do not fit, ...) per ``interval_s``, with the count so far (module
    header); errors pass."""

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.dropped = 0
        self._quiet_until = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "fwsim_counted", False) or record.levelno > logging.WARNING:
            return True
        return self.note(record)

    def note(self, record: logging.LogRecord | None = None) -> bool:
        """Count one dropped datagram; True when a line is due now."""
        self.dropped += 1
        now = time.monotonic()
        if now < self._quiet_until:
            return False
        self._quiet_until = now + self.interval_s
        if record is not None:
            record.msg = f"{record.getMessage()} ({self.dropped} datagrams ignored so far; " \
                         f"at most one such line a minute)"
            record.args = ()
        return True


def _raised_by_aiocoap_decoding(exc: BaseException | None) -> bool:
    if not isinstance(exc, UnicodeDecodeError):
        return False
    return any("aiocoap" in frame.filename and frame.name == "decode"
               for frame in traceback.extract_tb(exc.__traceback__))


def quiet_garbage(loop: asyncio.AbstractEventLoop, log: logging.Logger) -> UnparsableDatagrams:
    """Install the rate limit on ``log`` and the loop's handler for aiocoap's escaped decode
    error (once per logger and loop)."""
    found = next((f for f in log.filters if isinstance(f, UnparsableDatagrams)), None)
    limiter = found or UnparsableDatagrams()
    if found is None:
        log.addFilter(limiter)
    previous = loop.get_exception_handler()
    if getattr(previous, "fwsim_coap", False):
        return limiter

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if _raised_by_aiocoap_decoding(context.get("exception")):
            if limiter.note():
                log.warning("Ignoring a datagram with an option that is not UTF-8 (%d "
                            "datagrams ignored so far; at most one such line a minute)",
                            limiter.dropped, extra={"fwsim_counted": True})
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handler.fwsim_coap = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
    return limiter


class BoundedRecentMessages(OrderedDict[Hashable, Any]):
    """aiocoap's ``MessageManager._recent_messages`` (request key -> its response, None until
    answered) at most ``limit`` long, each key for its lifetime: adding a key first drops the
    expired ones and, at the limit, the oldest (module header). Keys arrive in time order with
    one lifetime, so the oldest are at the front."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit = limit
        self.clock = clock
        #: keys dropped at the limit before their lifetime was over
        self.forgotten = 0
        self._expires: dict[Hashable, float] = {}

    def add(self, key: Hashable, lifetime_s: float) -> None:
        now = self.clock()
        self.expire(now)
        while len(self) >= self.limit:
            oldest, _ = self.popitem(last=False)
            del self._expires[oldest]
            self.forgotten += 1
        super().__setitem__(key, None)
        self._expires[key] = now + lifetime_s

    def expire(self, now: float) -> None:
        while self:
            oldest = next(iter(self))
            if self._expires[oldest] > now:
                return
            del self[oldest]
            del self._expires[oldest]


def bound_duplicate_window(context: aiocoap.Context, limit: int | None = None) -> int:
    """Give each of ``context``'s message managers a :class:`BoundedRecentMessages` of
    ``limit`` requests (default :data:`MAX_RECENT_MESSAGES`) and a duplicate check that uses it
    without aiocoap's timer per request; returns how many managers it changed (0 would mean
    aiocoap's internals moved: the test pins aiocoap's)."""
    limit = MAX_RECENT_MESSAGES if limit is None else limit
    changed = 0
    for interface in context.request_interfaces:
        manager = getattr(interface, "token_interface", None)
        if manager is None or not isinstance(getattr(manager, "_recent_messages", None), dict):
            continue
        window = BoundedRecentMessages(limit)
        manager._recent_messages = window
        manager._deduplicate_message = _duplicate_check(manager, window)
        changed += 1
    return changed


def _duplicate_check(manager: Any, window: BoundedRecentMessages) -> Callable[[Any], bool]:
    """aiocoap's ``MessageManager._deduplicate_message`` on ``window``: True for a message
    seen within its exchange lifetime (a CON is answered again with the stored response, if
    any); else the message is remembered. aiocoap stores the response itself
    (``_store_response_for_duplicates``: ``window[key] = response`` for a key it holds)."""

    def is_duplicate(message: Any) -> bool:
        key = (message.remote, message.mid)
        window.expire(window.clock())
        if key in window:
            if message.mtype is CON and window[key] is not None:
                manager._send_initially(window[key])
            return True
        window.add(key, message.transport_tuning.EXCHANGE_LIFETIME)
        return False

    return is_duplicate


async def serve_coap(service: ThingsBoardService, runtime: Runtime, host: str,
                     port: int) -> aiocoap.Context:
    context = await aiocoap.Context.create_server_context(ClaimApi(service, runtime),
                                                          bind=(host, port),
                                                          transports=list(COAP_TRANSPORTS))
    quiet_garbage(asyncio.get_running_loop(), context.log)
    if not bound_duplicate_window(context):
        context.log.warning("aiocoap's duplicate-detection window could not be capped")
    return context
