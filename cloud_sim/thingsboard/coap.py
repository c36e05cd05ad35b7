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
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from typing import Any

import aiocoap
import aiocoap.resource as resource

from ..runtime import Runtime
from .service import DeviceAck, ThingsBoardService

MAX_PAYLOAD_BYTES = 64 * 1024
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


async def serve_coap(service: ThingsBoardService, runtime: Runtime, host: str,
                     port: int) -> aiocoap.Context:
    context = await aiocoap.Context.create_server_context(ClaimApi(service, runtime),
                                                          bind=(host, port),
                                                          transports=list(COAP_TRANSPORTS))
    quiet_garbage(asyncio.get_running_loop(), context.log)
    return context
