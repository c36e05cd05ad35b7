"""What a SoftAP client session is, and what it needs from the SoftAP it belongs to.

The sessions (:class:`~.tcp.TcpSession`, :class:`~.http.HttpSession`) and the service
(:class:`~.service.SoftAp`) meet here, so neither imports the other: a session runs against a
:class:`SessionHost` (the SoftAP's options, tracer, world, commands, and where to report that it
closed), and the service keeps its open sessions as :class:`Session` objects.
"""

from __future__ import annotations

from typing import Protocol

from firmware_sim.kernel.trace import Tracer
from firmware_sim.kernel.world import World

from .commands import SoftApCommands
from .options import SoftApOptions

__all__ = ["Session", "SessionHost"]


class Session(Protocol):
    """One client connection (TCP or HTTP), sans-IO: bytes in, ``send``/``close`` out."""

    conn: int
    protocol: str

    @property
    def closed(self) -> bool: ...

    @property
    def busy(self) -> bool:
        """A request is executing (its reply is on its way)."""

    def data_received(self, data: bytes) -> None: ...

    def eof_received(self) -> None: ...

    def connection_lost(self) -> None: ...

    def close(self, reason: str) -> None: ...


class SessionHost(Protocol):
    """What a session uses of its SoftAP."""

    @property
    def options(self) -> SoftApOptions: ...
    @property
    def tracer(self) -> Tracer: ...
    @property
    def world(self) -> World: ...
    @property
    def commands(self) -> SoftApCommands: ...

    def session_closed(self, session: Session, reason: str) -> None:
        """The session ended (its transport closed or is closing)."""
