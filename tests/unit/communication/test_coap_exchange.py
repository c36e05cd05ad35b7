"""The CoAP message layer on its own: ids, retransmission, ACK/RST matching, duplicates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.communication.coap_exchange import (
    CoapExchange,
    Confirmable,
    MessageIds,
    RetransmitPolicy,
)
from firmware_sim.communication.wire import CONTENT, EMPTY, GET, POST, CoapMessage, CoapType
from firmware_sim.kernel import World


class Sender:
    """One exchange whose transmissions are recorded with their virtual time."""

    def __init__(self, world: World, policy: RetransmitPolicy | None = None) -> None:
        self.world = world
        self.sent: list[tuple[float, CoapMessage]] = []
        self.timeouts: list[int] = []
        self.retransmits: list[tuple[int, int]] = []
        self.exchange = CoapExchange(
            world.scheduler, self._transmit, ids=MessageIds(1, 0xFFFF),
            policy=policy or RetransmitPolicy(), on_timeout=self._timeout,
            on_retransmit=lambda c: self.retransmits.append((c.mid, c.transmissions)))

    def _transmit(self, data: bytes) -> None:
        self.sent.append((self.world.now, CoapMessage.decode(data)))

    def _timeout(self, confirmable: Confirmable) -> None:
        self.timeouts.append(confirmable.mid)

    def con(self, payload: bytes = b"x") -> Confirmable:
        mid = self.exchange.allocate_mid()
        return self.exchange.send_confirmable(
            CoapMessage(CoapType.CON, POST, mid, b"", ("E", "test"), payload), what="test")


def test_message_ids_wrap_within_their_range() -> None:
    device = MessageIds(1, 0xFFFF, first=0xFFFE)
    assert [device.allocate() for _ in range(3)] == [0xFFFE, 0xFFFF, 1]
    cloud = MessageIds(0x8000, 0xFFFF, first=0xFFFF)
    assert [cloud.allocate() for _ in range(2)] == [0xFFFF, 0x8000]
    assert cloud.next == 0x8001
    with pytest.raises(ValueError):
        device.restart(0)
    with pytest.raises(ValueError):
        MessageIds(5, 0x10000)


def test_unanswered_confirmable_is_sent_four_times_with_doubling_timeouts_then_times_out() -> None:
    world = World(0)
    sender = Sender(world)
    first = sender.con()
    world.run_for(200)
    assert [t for t, _ in sender.sent] == [0.0, 4.0, 12.0, 28.0]
    assert {m.mid for _, m in sender.sent} == {first.mid}
    assert sender.retransmits == [(first.mid, 1), (first.mid, 2), (first.mid, 3)]
    assert sender.timeouts == [first.mid]
    assert world.now == 200 and sender.exchange.idle
    assert len(world.scheduler) == 0


def test_timeout_comes_one_doubled_timeout_after_the_last_retransmission() -> None:
    world = World(0)
    sender = Sender(world, RetransmitPolicy(ack_timeout_s=1.0, max_retransmit=1))
    sender.con()
    assert not world.run_until(lambda: bool(sender.timeouts), timeout=2.9)
    assert world.run_until(lambda: bool(sender.timeouts), timeout=0.2)
    assert world.now == pytest.approx(3.0)
    assert len(sender.sent) == 2


@pytest.mark.parametrize("answer", [CoapType.ACK, CoapType.RST])
def test_an_ack_or_rst_stops_the_retransmissions_of_its_message_only(answer: CoapType) -> None:
    world = World(0)
    sender = Sender(world)
    first, second = sender.con(), sender.con()
    world.run_for(1)
    matched = sender.exchange.acknowledge(CoapMessage(answer, EMPTY, first.mid))
    assert matched is first
    assert sender.exchange.pending_count == 1 and sender.exchange.pending(second.mid) is second
    world.run_for(100)
    assert {m.mid for _, m in sender.sent[2:]} == {second.mid}
    assert sender.timeouts == [second.mid]


def test_a_stray_or_repeated_ack_matches_nothing() -> None:
    world = World(0)
    sender = Sender(world)
    first = sender.con()
    assert sender.exchange.acknowledge(CoapMessage(CoapType.ACK, EMPTY, first.mid + 1)) is None
    assert sender.exchange.acknowledge(CoapMessage(CoapType.ACK, EMPTY, first.mid)) is first
    assert sender.exchange.acknowledge(CoapMessage(CoapType.ACK, EMPTY, first.mid)) is None
    assert sender.exchange.idle and len(world.scheduler) == 0


def test_misuse_is_refused() -> None:
    sender = Sender(World(0))
    with pytest.raises(ValueError, match="CON"):
        sender.exchange.send_confirmable(CoapMessage(CoapType.NON, POST, 1), what="non")
    with pytest.raises(ValueError, match="ACK or RST"):
        sender.exchange.acknowledge(CoapMessage(CoapType.CON, POST, 1))
    pending = sender.con()
    with pytest.raises(ValueError, match="already awaiting"):
        sender.exchange.send_confirmable(CoapMessage(CoapType.CON, POST, pending.mid), what="x")
    with pytest.raises(ValueError):
        RetransmitPolicy(ack_timeout_s=0)
    with pytest.raises(ValueError):
        RetransmitPolicy(max_retransmit=-1)


def test_an_id_still_awaiting_its_ack_is_not_reused_after_wrapping() -> None:
    world = World(0)
    exchange = CoapExchange(world.scheduler, lambda _d: None, ids=MessageIds(1, 3),
                            policy=RetransmitPolicy(), on_timeout=lambda _c: None)
    mids = []
    for _ in range(3):
        mid = exchange.allocate_mid()
        exchange.send_confirmable(CoapMessage(CoapType.CON, POST, mid), what="m")
        mids.append(mid)
    assert mids == [1, 2, 3]
    with pytest.raises(RuntimeError):
        exchange.allocate_mid()
    exchange.acknowledge(CoapMessage(CoapType.ACK, EMPTY, 2))
    assert exchange.allocate_mid() == 2


def test_duplicates_are_recognised_within_the_window() -> None:
    exchange = CoapExchange(World(0).scheduler, lambda _d: None, ids=MessageIds(1, 0xFFFF),
                            policy=RetransmitPolicy(), on_timeout=lambda _c: None,
                            dedup_window=4)
    assert [exchange.is_duplicate(m) for m in (7, 8, 7, 8)] == [False, False, True, True]
    for mid in (9, 10, 11):  # pushes 7 out of a window of 4
        assert not exchange.is_duplicate(mid)
    assert not exchange.is_duplicate(7)
    assert exchange.is_duplicate(11)
    exchange.close()
    assert not exchange.is_duplicate(11)


def test_acks_echo_the_request_and_may_carry_a_response() -> None:
    world = World(0)
    sender = Sender(world)
    sender.exchange.send_ack(CoapMessage(CoapType.CON, GET, 42, b"\x07", ("t",)), CONTENT,
                             b"\x00\x00\x00\x01")
    sender.exchange.send_ack(CoapMessage(CoapType.CON, EMPTY, 43))
    (_, timed), (_, ping) = sender.sent
    assert (timed.mtype, timed.code, timed.mid, timed.token, timed.payload) == (
        CoapType.ACK, CONTENT, 42, b"\x07", b"\x00\x00\x00\x01")
    assert (ping.mtype, ping.code, ping.mid, ping.token) == (CoapType.ACK, EMPTY, 43, b"")
    assert len(world.scheduler) == 0  # nothing tracked


def test_close_cancels_every_retransmission() -> None:
    world = World(0)
    sender = Sender(world)
    for _ in range(5):
        sender.con()
    assert len(world.scheduler) == 5
    sender.exchange.close()
    assert len(world.scheduler) == 0 and sender.exchange.idle
    world.run_for(100)
    assert len(sender.sent) == 5 and sender.timeouts == []


# -- two exchanges over a lossy in-memory channel -----------------------------------------------


class LossyPeers:
    """Two exchanges, a and b, joined by a channel that drops the transmissions ``drops`` says
    (by their order on the channel); each side hands requests to its application once. After
    ``close`` a side ignores what still arrives, as a closed connection does."""

    LATENCY_S = 0.05

    def __init__(self, drops: list[bool]) -> None:
        self.world = World(0)
        self.drops = list(drops)
        self.delivered: dict[str, list[bytes]] = {"a": [], "b": []}
        self.acked: dict[str, list[int]] = {"a": [], "b": []}
        self.timed_out: dict[str, list[int]] = {"a": [], "b": []}
        self.a = self._exchange("a", "b", MessageIds(1, 0xFFFF))
        self.b = self._exchange("b", "a", MessageIds(0x8000, 0xFFFF))
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.a.close()
        self.b.close()

    def _exchange(self, name: str, peer: str, ids: MessageIds) -> CoapExchange:
        return CoapExchange(self.world.scheduler, lambda data: self._carry(peer, data), ids=ids,
                            policy=RetransmitPolicy(ack_timeout_s=1.0, max_retransmit=3),
                            on_timeout=lambda c: self.timed_out[name].append(c.mid))

    def side(self, name: str) -> CoapExchange:
        return self.a if name == "a" else self.b

    def _carry(self, to: str, data: bytes) -> None:
        if self.drops and self.drops.pop(0):
            return
        self.world.scheduler.call_later(self.LATENCY_S, self._receive, to, data, label="carry")

    def _receive(self, name: str, data: bytes) -> None:
        if self.closed:
            return
        exchange = self.side(name)
        message = CoapMessage.decode(data)
        if message.mtype in (CoapType.ACK, CoapType.RST):
            confirmable = exchange.acknowledge(message)
            if confirmable is not None:
                self.acked[name].append(confirmable.mid)
            return
        duplicate = exchange.is_duplicate(message.mid)
        exchange.send_ack(message)
        if not duplicate:
            self.delivered[name].append(message.payload)

    def send(self, name: str, payload: bytes) -> int:
        exchange = self.side(name)
        mid = exchange.allocate_mid()
        exchange.send_confirmable(CoapMessage(CoapType.CON, POST, mid, payload=payload),
                                  what=payload.decode())
        return mid


@settings(max_examples=150, deadline=None)
@given(drops=st.lists(st.booleans(), max_size=60),
       sends=st.lists(st.tuples(st.sampled_from("ab"), st.floats(0, 3)), min_size=1,
                      max_size=12),
       close_after=st.one_of(st.none(), st.floats(0, 40)))
def test_loss_never_delivers_twice_and_close_leaks_no_timer(
        drops: list[bool], sends: list[tuple[str, float]], close_after: float | None) -> None:
    peers = LossyPeers(drops)
    sent: dict[str, list[bytes]] = {"a": [], "b": []}
    for index, (name, gap) in enumerate(sends):
        payload = f"{name}{index}".encode()
        peers.send(name, payload)
        sent[name].append(payload)
        peers.world.run_for(gap)
    if close_after is not None:
        peers.world.run_for(close_after)
        peers.close()
        peers.world.run_for(0.2)  # what was in flight lands; nothing new may be scheduled
        assert peers.a.idle and peers.b.idle
        assert len(peers.world.scheduler) == 0
    else:
        peers.world.run_for(100)
    for receiver, sender in (("a", "b"), ("b", "a")):
        got = peers.delivered[receiver]
        assert len(got) == len(set(got)), "a message reached the application twice"
        assert set(got) <= set(sent[sender])
        # Every message is either acknowledged or timed out, never both, never neither.
        acked, lost = peers.acked[sender], peers.timed_out[sender]
        assert not set(acked) & set(lost)
        if close_after is None:
            assert len(acked) + len(lost) == len(sent[sender])
            assert len(peers.world.scheduler) == 0
    if close_after is None and not any(drops):
        assert sorted(peers.delivered["b"]) == sorted(sent["a"])
        assert sorted(peers.delivered["a"]) == sorted(sent["b"])


def test_a_framing_exchange_sends_every_message_framed_and_a_confirmable_keeps_its_datagram(
        ) -> None:
    world = World(0)
    datagrams: list[bytes] = []
    exchange = CoapExchange(
        world.scheduler, datagrams.append, ids=MessageIds(1, 0xFFFF),
        policy=RetransmitPolicy(ack_timeout_s=1.0, max_retransmit=2),
        on_timeout=lambda c: None, frame=lambda coap: b"F" + coap)
    message = CoapMessage(CoapType.CON, POST, exchange.allocate_mid(), b"", ("E", "x"), b"1")
    pending = exchange.send_confirmable(message, what="x")
    world.run_for(1.5)  # sent, then retransmitted once: the same datagram object both times
    assert datagrams == [b"F" + message.encode()] * 2 and datagrams[0] is datagrams[1]
    exchange.send_ack(CoapMessage(CoapType.CON, GET, 7, b"t"))
    assert datagrams[2] == b"F" + CoapMessage(CoapType.ACK, EMPTY, 7, b"t").encode()
    assert exchange.acknowledge(CoapMessage(CoapType.ACK, EMPTY, pending.mid)) is pending
    world.run_for(60)
    assert len(datagrams) == 3 and len(world.scheduler) == 0
