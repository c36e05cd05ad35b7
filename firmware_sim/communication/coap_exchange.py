"""The CoAP message layer (RFC 7252 §4) that the device protocol and the emulated cloud share.

How this works
--------------
One :class:`CoapExchange` per peer: the device keeps one for its cloud connection, the cloud one
per session. It is sans-IO: it owns no socket and reads no clock. ``transmit(coap_bytes)`` is
given at construction (the owner wraps the bytes in its record layer and sends them), and every
timer is a world-scheduler entry.

* **Message ids.** :class:`MessageIds` hands out ids from a range and wraps around (the device
  counts 1..0xFFFF and resumes where its persisted session stopped; the cloud counts
  0x8000..0xFFFF). An id still awaiting its ACK is skipped.
* **Confirmable messages.** ``send_confirmable`` transmits a CON at once and tracks it until an
  ACK or RST with its id arrives (``acknowledge`` pops it and stops its timer). Without an answer
  it is transmitted again after ``ack_timeout_s``, then after a doubled timeout each time (4, 8,
  16, 32 s by default). After ``max_retransmit`` retransmissions and one more (doubled) timeout it
  is dropped and ``on_timeout`` gets it. RFC 7252 also draws a random factor for the first
  timeout; fwsim does not, so timing stays a pure function of the inputs.
* **Other messages** (ACK, RST, NON) are sent once and not tracked (``send``, ``send_ack``).
* **Duplicates.** ``is_duplicate(mid)`` remembers the last ``dedup_window`` ids received from the
  peer. The owner ACKs a repeated CON again (its first ACK may have been lost) but does not hand
  it to the application a second time.
* ``close()`` cancels every retransmission timer and forgets tracked and received ids; the
  exchange can be used again afterwards (the device's next connection).

The owner keeps what belongs to its side: what it traces, what an ACK means, keepalives.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

from ..kernel.scheduler import Scheduler, TimerHandle
from .wire import EMPTY, CoapMessage, CoapType

Transmit = Callable[[bytes], None]
Frame = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class RetransmitPolicy:
    """RFC 7252 ACK_TIMEOUT and MAX_RETRANSMIT (without ACK_RANDOM_FACTOR)."""

    ack_timeout_s: float = 4.0
    max_retransmit: int = 3

    def __post_init__(self) -> None:
        if not self.ack_timeout_s > 0:
            raise ValueError("ack_timeout_s must be positive")
        if self.max_retransmit < 0:
            raise ValueError("max_retransmit must not be negative")

    def timeout_s(self, transmissions: int) -> float:
        """How long to wait for the ACK after the transmission number ``transmissions + 1``."""
        doubling: int = 2 ** transmissions
        return self.ack_timeout_s * doubling


class MessageIds:
    """Message ids ``low..high`` (inclusive), handed out in order and wrapping around."""

    __slots__ = ("_next", "high", "low")

    def __init__(self, low: int, high: int, first: int | None = None) -> None:
        if not 0 <= low <= high <= 0xFFFF:
            raise ValueError("message id range must lie within 0..0xFFFF")
        self.low = low
        self.high = high
        self._next = low
        if first is not None:
            self.restart(first)

    @property
    def next(self) -> int:
        """The id the next allocation returns (what the device persists with its session)."""
        return self._next

    def restart(self, first: int) -> None:
        if not self.low <= first <= self.high:
            raise ValueError(f"message id {first} outside {self.low}..{self.high}")
        self._next = first

    def allocate(self) -> int:
        mid = self._next
        self._next = self.low + (mid - self.low + 1) % (self.high - self.low + 1)
        return mid


def _retransmission_due(confirmable: Confirmable) -> None:
    exchange = confirmable.exchange
    if exchange is not None:
        exchange._timer_due(confirmable)


class Confirmable(TimerHandle):
    """A CON message awaiting its ACK. ``what`` and ``on_ack`` are the owner's: the exchange
    never calls ``on_ack``, the owner does once its own bookkeeping of the ACK is done.

    It is its own retransmission timer (a :class:`TimerHandle` the exchange schedules with
    ``Scheduler.schedule``) and keeps the message's id and the bytes a (re)transmission sends -
    the finished datagram when the exchange frames them, so the datagram in flight is this same
    object - not the :class:`CoapMessage`: a fleet has about ten of these per device in flight
    at once."""

    __slots__ = ("_encoded", "exchange", "mid", "on_ack", "transmissions", "what")

    def __init__(self, message: CoapMessage, what: str,
                 on_ack: Callable[[CoapMessage], None] | None,
                 exchange: CoapExchange | None = None, encoded: bytes | None = None,
                 label: str = "coap-retransmit") -> None:
        super().__init__(_retransmission_due, None, label)
        self.mid = message.mid
        self.what = what
        self.on_ack = on_ack
        #: how many times it has been sent so far
        self.transmissions = 0
        self._encoded = message.encode() if encoded is None else encoded
        #: whose timer it is (None: a retransmission timer that comes due does nothing)
        self.exchange = exchange

    def __repr__(self) -> str:
        return f"<Confirmable mid={self.mid} {self.what!r} sent {self.transmissions}x>"


class CoapExchange:
    """Confirmable tracking, retransmission, ACK/RST matching and duplicate detection for one
    peer."""

    __slots__ = ("_dedup_window", "_frame", "_on_retransmit", "_on_timeout", "_pending",
                 "_received", "_received_next", "_scheduler", "_timer_label", "_transmit_bytes",
                 "ids", "policy")

    def __init__(self, scheduler: Scheduler, transmit: Transmit, *, ids: MessageIds,
                 policy: RetransmitPolicy, on_timeout: Callable[[Confirmable], None],
                 on_retransmit: Callable[[Confirmable], None] | None = None,
                 timer_label: str = "coap-retransmit", dedup_window: int = 32,
                 frame: Frame | None = None) -> None:
        if dedup_window < 1:
            raise ValueError("dedup_window must be at least 1")
        self._scheduler = scheduler
        self._transmit_bytes = transmit
        #: wraps CoAP bytes into the datagram ``transmit`` takes (None: ``transmit`` takes the
        #: CoAP bytes and wraps them itself); a confirmable keeps its framed datagram
        self._frame = frame
        self.ids = ids
        self.policy = policy
        self._on_timeout = on_timeout
        self._on_retransmit = on_retransmit
        self._timer_label = timer_label
        self._pending: dict[int, Confirmable] = {}
        #: the last ``dedup_window`` ids received, as a ring of 16-bit ids (an array: an idle
        #: exchange holds a few bytes, not a deque's 600 or a list of int objects)
        self._received = array("H")
        self._received_next = 0
        self._dedup_window = dedup_window

    # -- state ---------------------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def idle(self) -> bool:
        """No confirmable message is awaiting its ACK."""
        return not self._pending

    def pending(self, mid: int) -> Confirmable | None:
        return self._pending.get(mid)

    # -- sending -------------------------------------------------------------------------------

    def allocate_mid(self) -> int:
        """The next free message id (one still awaiting its ACK is never reused)."""
        for _ in range(self.ids.high - self.ids.low + 1):
            mid = self.ids.allocate()
            if mid not in self._pending:
                return mid
        raise RuntimeError("every message id is awaiting an ACK")

    def send_confirmable(self, message: CoapMessage, *, what: str,
                         on_ack: Callable[[CoapMessage], None] | None = None) -> Confirmable:
        """Transmit ``message`` (a CON with an id from :meth:`allocate_mid`) and track it."""
        if message.mtype is not CoapType.CON:
            raise ValueError(f"send_confirmable needs a CON message, got {message.mtype.name}")
        if message.mid in self._pending:
            raise ValueError(f"message id {message.mid} is already awaiting an ACK")
        frame = self._frame
        confirmable = Confirmable(message, what, on_ack, self,
                                  None if frame is None else frame(message.encode()),
                                  self._timer_label)
        self._pending[message.mid] = confirmable
        self._transmit(confirmable)
        return confirmable

    def send(self, message: CoapMessage) -> None:
        """Transmit a message once, untracked (ACK, RST, NON)."""
        frame = self._frame
        self._transmit_bytes(message.encode() if frame is None else frame(message.encode()))

    def send_ack(self, request: CoapMessage, code: int = EMPTY, payload: bytes = b"") -> None:
        """ACK ``request`` (a piggybacked response when ``code`` is not EMPTY)."""
        token = b"" if request.is_empty else request.token
        self.send(CoapMessage(CoapType.ACK, code, request.mid, token, payload=payload))

    def _transmit(self, confirmable: Confirmable) -> None:
        timeout = self.policy.timeout_s(confirmable.transmissions)
        confirmable.transmissions += 1
        self._transmit_bytes(confirmable._encoded)
        # the confirmable is its own timer: one object per message awaiting its ACK (a fleet
        # has tens of thousands at once), not a handle and an arguments tuple besides
        self._scheduler.schedule(confirmable, timeout)

    def _timer_due(self, confirmable: Confirmable) -> None:
        if self._pending.get(confirmable.mid) is not confirmable:
            return
        if confirmable.transmissions > self.policy.max_retransmit:
            del self._pending[confirmable.mid]
            self._release_pending()
            self._on_timeout(confirmable)
            return
        if self._on_retransmit is not None:
            self._on_retransmit(confirmable)
        self._transmit(confirmable)

    # -- receiving -----------------------------------------------------------------------------

    def acknowledge(self, answer: CoapMessage) -> Confirmable | None:
        """Match an ACK or RST to the confirmable it answers: stop tracking it and return it
        (None when nothing with that id is awaited: a late or stray answer)."""
        if answer.mtype not in (CoapType.ACK, CoapType.RST):
            raise ValueError(f"acknowledge needs an ACK or RST, got {answer.mtype.name}")
        confirmable = self._pending.pop(answer.mid, None)
        if confirmable is not None:
            confirmable.cancel()
            self._release_pending()
        return confirmable

    def _release_pending(self) -> None:
        """A dict keeps its grown table when emptied by ``pop``: once nothing is awaited, start
        a fresh (tableless) one, so an idle exchange holds 64 bytes here, not 300."""
        if not self._pending:
            self._pending = {}

    def is_duplicate(self, mid: int) -> bool:
        """Record ``mid`` as received from the peer; True if it was within the window already."""
        received = self._received
        if mid in received:
            return True
        if len(received) < self._dedup_window:
            received.append(mid)
        else:
            received[self._received_next] = mid
            self._received_next = (self._received_next + 1) % self._dedup_window
        return False

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        """Cancel every retransmission and forget tracked and received ids."""
        for confirmable in self._pending.values():
            confirmable.cancel()
        self._pending.clear()
        self._received = array("H")
        self._received_next = 0
