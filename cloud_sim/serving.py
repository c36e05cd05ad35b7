"""What both served clouds (Particle, ThingsBoard) do alike on sockets: bind the HTTP socket,
run uvicorn on it without its signal handlers, and write their addresses into URLs.

How this works
--------------
:func:`bind_tcp` binds (it does not listen; uvicorn does) an ``IPPROTO_TCP`` socket, so asyncio
turns Nagle off on it and on every connection it accepts - without that, a small JSON response
waited for the client's delayed ACK (40 ms). :func:`start_uvicorn` serves an ASGI app on such a
socket in a task of the running loop and returns once uvicorn listens (or raises the error it
stopped with). Signals belong to the caller (``fwsim cloud serve``, ``fwsim up``, tests): the
server is stopped by setting ``should_exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from firmware_sim.kernel.errors import ConfigurationError


class QuietUvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the caller owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def url_host(host: str) -> str:
    """``host`` as it goes into a URL (a wildcard address as loopback, IPv6 in brackets)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def bind_tcp(host: str, port: int, what: str = "HTTP") -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port); a one-line error if not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"cannot listen for {what} on {host}:{port}: {exc}") from None
    family, kind, proto = infos[0][:3]
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets (and on the
    # connections they accept); without it Nagle + delayed ACKs cost 40 ms per response
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen for {what} on {host}:{port}: "
                                 f"{exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


async def start_uvicorn(app: Any, sock: socket.socket, *, name: str, log_level: str,
                        **options: Any) -> tuple[QuietUvicorn, asyncio.Task[None]]:
    """Serve ``app`` on ``sock`` (``options``: further ``uvicorn.Config`` arguments); returns
    the server and its task once it listens."""
    # proxy_headers off: uvicorn would otherwise take the client address from any loopback
    # client's X-Forwarded-For (its default trusts 127.0.0.1), and the emulator sits behind
    # no proxy
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", access_log=False,
                            timeout_graceful_shutdown=2, proxy_headers=False, **options)
    logging.getLogger("uvicorn.error").setLevel(log_level.upper())
    server = QuietUvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    while not server.started:
        if task.done():
            task.result()
            raise ConfigurationError("the HTTP server did not start")
        await asyncio.sleep(0.01)
    return server, task


__all__ = ["QuietUvicorn", "bind_tcp", "start_uvicorn", "url_host"]
