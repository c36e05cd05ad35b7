"""An accept loop that survives the open-file limit quietly (edge servers' own listeners).

How this works
--------------
asyncio's servers, at the open-file limit, log a traceback for every failed ``accept`` - up to
the backlog's count per wake-up, each scheduling another retry - which filled a log with 53,073
tracebacks (21 MB) in 15 s. :func:`accept_forever` accepts on a non-blocking listening socket
with ``loop.sock_accept`` and hands each connection to ``on_connection``; a failure for lack of
resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) logs one warning line at most every
``log_interval_s`` (with the number of failures since the last line) and retries after
``retry_delay_s``. Connections already open keep being served meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["AcceptLimits", "accept_forever", "listen"]

_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True)
class AcceptLimits:
    #: seconds between retries of ``accept`` at the open-file limit
    retry_delay_s: float = 0.5
    #: at most one log line per this many seconds about failing accepts
    log_interval_s: float = 10.0


def listen(host: str, port: int, backlog: int = 64) -> socket.socket:
    """A non-blocking listening TCP socket (``host`` empty: every interface)."""
    listener = socket.create_server((host, port), backlog=backlog)
    listener.setblocking(False)
    return listener


async def accept_forever(listener: socket.socket,
                         on_connection: Callable[[socket.socket], Awaitable[None] | None], *,
                         name: str, log: logging.Logger, limits: AcceptLimits,
                         on_failure: Callable[[], None] = lambda: None) -> None:
    """Accept until cancelled; ``on_connection`` owns each connected socket."""
    loop = asyncio.get_running_loop()
    unlogged = 0
    last_log = float("-inf")
    while True:
        try:
            connection, _ = await loop.sock_accept(listener)
        except OSError as exc:
            if exc.errno not in _RESOURCE_ERRNOS:
                raise
            on_failure()
            unlogged += 1
            now = time.monotonic()
            if now - last_log >= limits.log_interval_s:
                log.warning("%s: accept failed (%s) %d time(s); retrying every %.1f s", name,
                            exc.strerror or exc, unlogged, limits.retry_delay_s)
                last_log, unlogged = now, 0
            await asyncio.sleep(limits.retry_delay_s)
            continue
        pending = on_connection(connection)
        if pending is not None:
            await pending
