"""The device's protocol and the cloud's endpoint back to back, with no system layer.

``Pair`` joins a :class:`DeviceProtocol` and a :class:`DeviceEndpoint` over an in-memory datagram
wire that the test owns (h11's ``ConnectionPair`` idea): it can drop any datagram in either
direction by looking at what it carries, so every loss below is chosen, not random.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_sim.device_endpoint import DeviceEndpoint
from cloud_sim.events import EventBus
from cloud_sim.store import MemoryStore
from firmware_sim.communication import wire
from firmware_sim.communication.protocol import (
    DeviceIdentity,
    DeviceProtocol,
    ProtocolOptions,
    ProtocolResult,
)
from firmware_sim.communication.session import SessionPersist
from firmware_sim.communication.wire import CoapMessage, CoapType, RecordType
from firmware_sim.hal.retained import RetainedMemory
from firmware_sim.kernel import World
from firmware_sim.services.log import DeviceLog

DEVICE_ID = bytes.fromhex("e00fce68aabbccddeeff0011")
LATENCY_S = 0.05

DropRule = Callable[[CoapMessage], bool]


def coap_of(datagram: bytes) -> CoapMessage | None:
    record = wire.decode_record(datagram)
    if record.type is not RecordType.APPLICATION_DATA:
        return None
    return CoapMessage.decode(record.body)


def event_named(name: str) -> DropRule:
    return lambda m: m.mtype is CoapType.CON and wire.parse_event_uri(m.uri_path) == (name, True)


def first(rule: DropRule) -> DropRule:
    """Only the first message ``rule`` matches."""
    matched: list[bool] = []

    def once(message: CoapMessage) -> bool:
        if matched or not rule(message):
            return False
        matched.append(True)
        return True

    return once


class Listener:
    """A ProtocolListener that records what the protocol reports."""

    def __init__(self) -> None:
        self.results: list[ProtocolResult] = []
        self.errors: list[ProtocolResult] = []
        self.events: list[tuple[str, bytes]] = []
        self.times: list[int] = []
        self.idle = 0
        self.server_moved: list[bytes] = []

    def protocol_begin_result(self, code: ProtocolResult) -> None:
        self.results.append(code)

    def protocol_error(self, code: ProtocolResult) -> None:
        self.errors.append(code)

    def protocol_event(self, name: str, data: bytes) -> None:
        self.events.append((name, data))

    def protocol_time(self, unix_time: int) -> None:
        self.times.append(unix_time)

    def protocol_idle(self) -> None:
        self.idle += 1

    def protocol_server_moved(self, payload: bytes, respond: Callable[[int], None]) -> None:
        self.server_moved.append(payload)
        respond(-120)


class WireEnd:
    """The device's datagram port: sends through the pair, which may drop."""

    def __init__(self, pair: Pair, address: str) -> None:
        self._pair = pair
        self.address = address
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, data: bytes) -> None:
        if not self._closed:
            self._pair.carry(self, "cloud", data)

    def close(self) -> None:
        self._closed = True


class Pair:
    def __init__(self, seed: int = 0, options: ProtocolOptions | None = None) -> None:
        self.world = World(seed)
        self.bus = EventBus()
        self.endpoint = DeviceEndpoint(self.world, MemoryStore(), self.bus)
        self.session = SessionPersist(RetainedMemory())
        self.listener = Listener()
        self.protocol = DeviceProtocol(
            scheduler=self.world.scheduler, tracer=self.world.trace.bind("dev", "comm"),
            log=DeviceLog(self.world.trace.bind("dev", "log"), lambda: 0),
            session=self.session, identity=DeviceIdentity(DEVICE_ID, 32, 6200),
            options=options or ProtocolOptions(), listener=self.listener,
            system_describe=lambda: b'{"p":32}')
        self.drop_to_cloud: DropRule = lambda _m: False
        self.drop_to_device: DropRule = lambda _m: False
        self.carried: dict[str, list[CoapMessage]] = {"cloud": [], "device": []}
        self.dropped: dict[str, list[CoapMessage]] = {"cloud": [], "device": []}
        self.end: WireEnd | None = None
        self._connections = 0

    @property
    def device_id(self) -> str:
        return DEVICE_ID.hex()

    # -- the wire ------------------------------------------------------------------------------

    def connect(self) -> None:
        self._connections += 1
        self.end = WireEnd(self, f"conn-{self._connections}")
        self.protocol.begin(self.end)

    def disconnect(self) -> None:
        assert self.end is not None
        self.protocol.close()
        self.endpoint.connection_closed(self.end.address)

    def carry(self, end: WireEnd, to: str, data: bytes) -> None:
        message = coap_of(data)
        if message is not None:
            rule = self.drop_to_cloud if to == "cloud" else self.drop_to_device
            if rule(message):
                self.dropped[to].append(message)
                return
            self.carried[to].append(message)
        self.world.scheduler.call_later(LATENCY_S, self._deliver, end, to, data, label="wire")

    def _deliver(self, end: WireEnd, to: str, data: bytes) -> None:
        if end.closed:
            return
        if to == "cloud":
            self.endpoint.datagram_received(end.address, data,
                                            lambda reply: self.carry(end, "device", reply))
        else:
            self.protocol.datagram_received(data)

    # -- helpers -------------------------------------------------------------------------------

    def run(self, seconds: float = 5.0) -> None:
        self.world.run_for(seconds)

    def established(self) -> Pair:
        self.connect()
        self.run()
        assert self.listener.results == [ProtocolResult.NO_ERROR]
        return self

    def sent_to(self, to: str, mtype: CoapType) -> list[CoapMessage]:
        return [m for m in self.carried[to] if m.mtype is mtype]


def test_full_handshake() -> None:
    pair = Pair()
    pair.connect()
    pair.run()
    assert pair.listener.results == [ProtocolResult.NO_ERROR]
    assert pair.protocol.established and not pair.protocol.resumed
    cloud_session = pair.endpoint.session_for_device(pair.device_id)
    assert cloud_session is not None and cloud_session.full_handshakes == 1
    persisted = pair.session.load()
    assert persisted is not None and persisted.session_id == cloud_session.session_id
    assert pair.world.trace.count("handshake.full", node="cloud") == 1
    assert [e.data for e in pair.bus.find("spark/status")] == ["online"]
    # HELLO and the system describe were both ACKed; then the protocol reported idle.
    requests = [m.uri_path for m in pair.sent_to("cloud", CoapType.CON)]
    assert requests == [(wire.URI_HELLO,), (wire.URI_DESCRIBE,)]
    assert len(pair.sent_to("device", CoapType.ACK)) == 2
    assert pair.protocol.pending_count == 0 and pair.listener.idle == 1
    assert persisted.next_coap_id == 3
    # A time request (sent at 5 s) is answered in the ACK with the cloud's Unix time.
    pair.protocol.send_time_request()
    pair.run(1)
    assert pair.listener.times == [pair.endpoint.options.epoch + 5]


def test_resume() -> None:
    pair = Pair().established()
    pair.disconnect()
    pair.connect()
    pair.run()
    assert pair.listener.results == [ProtocolResult.NO_ERROR, ProtocolResult.SESSION_RESUMED]
    assert pair.protocol.resumed
    assert len(pair.endpoint.sessions) == 1
    cloud_session = pair.endpoint.session_for_device(pair.device_id)
    assert cloud_session is not None and cloud_session.resumes == 1
    assert pair.world.trace.count("session.resumed", node="cloud") == 1
    # The resume sends a ping on the restored message ids, not a HELLO.
    ping = pair.carried["cloud"][-1]
    assert ping.mtype is CoapType.CON and ping.is_empty and ping.mid == 3
    assert [m.uri_path for m in pair.sent_to("cloud", CoapType.CON)].count(
        (wire.URI_HELLO,)) == 1
    persisted = pair.session.load()
    assert persisted is not None and persisted.use_counter == 0  # the ACK reset it


def test_rst_on_an_unknown_session_discards_it_and_the_next_attempt_is_full() -> None:
    pair = Pair().established()
    pair.disconnect()
    old = pair.endpoint.session_for_device(pair.device_id)
    assert old is not None and pair.endpoint.forget_session(pair.device_id)
    pair.connect()
    pair.run()
    assert pair.listener.results[-1] is ProtocolResult.SESSION_RESUMED
    assert pair.listener.errors == [ProtocolResult.IO_ERROR_DISCARD_SESSION]
    rst = pair.carried["device"][-1]
    assert rst.mtype is CoapType.RST and rst.mid == 3
    assert pair.world.trace.count("session.unknown", node="cloud", reply="rst") == 1
    assert pair.session.load() is None and not pair.protocol.established
    pair.connect()
    pair.run()
    assert pair.listener.results == [ProtocolResult.NO_ERROR, ProtocolResult.SESSION_RESUMED,
                                     ProtocolResult.NO_ERROR]
    new = pair.endpoint.session_for_device(pair.device_id)
    assert new is not None and new.session_id != old.session_id


def test_events_both_ways_with_acks() -> None:
    pair = Pair().established()
    acked: list[CoapMessage] = []
    mid = pair.protocol.publish("temp", b"21.5", private=True, on_ack=acked.append)
    assert pair.endpoint.send_event(pair.device_id, "hello/device", b"hi")
    pair.run(2)
    assert [(e.name, e.data) for e in pair.bus.find("temp")] == [("temp", "21.5")]
    assert [m.mid for m in acked] == [mid]
    assert pair.listener.events == [("hello/device", b"hi")]
    assert pair.world.trace.count("coap.acked_by_device", node="cloud", known=True) == 1
    assert pair.protocol.pending_count == 0
    cloud_session = pair.endpoint.session_for_device(pair.device_id)
    assert cloud_session is not None and cloud_session.exchange.idle


def test_device_event_is_retransmitted_when_lost() -> None:
    pair = Pair().established()
    pair.drop_to_cloud = first(event_named("temp"))
    acked: list[CoapMessage] = []
    pair.protocol.publish("temp", b"1", private=True, on_ack=acked.append)
    pair.run(3)
    assert not pair.bus.find("temp") and pair.protocol.pending_count == 1
    pair.run(3)  # ACK timeout 4 s
    assert len(pair.bus.find("temp")) == 1 and len(acked) == 1
    assert pair.world.trace.count("coap.retransmit", node="dev", attempt=1) == 1


def test_cloud_event_is_retransmitted_when_lost() -> None:
    pair = Pair().established()
    pair.drop_to_device = first(event_named("to/device"))
    assert pair.endpoint.send_event(pair.device_id, "to/device", b"x")
    pair.run(3)
    assert pair.listener.events == []
    pair.run(3)
    assert pair.listener.events == [("to/device", b"x")]
    assert len(pair.dropped["device"]) == 1
    assert pair.world.trace.count("coap.acked_by_device", node="cloud", known=True) == 1


def test_cloud_gives_up_on_an_event_after_four_transmissions() -> None:
    pair = Pair().established()
    pair.drop_to_device = event_named("to/device")
    pair.endpoint.send_event(pair.device_id, "to/device", b"x")
    pair.run(100)
    assert len(pair.dropped["device"]) == 4
    assert pair.world.trace.count("event.to_device_timeout", node="cloud") == 1
    assert pair.listener.events == []


def test_a_lost_ack_makes_the_cloud_see_a_duplicate_it_handles_once() -> None:
    pair = Pair().established()
    pair.drop_to_device = first(lambda m: m.mtype is CoapType.ACK)
    acked: list[CoapMessage] = []
    mid = pair.protocol.publish("once", b"1", private=True, on_ack=acked.append)
    pair.run(10)
    twice = [m for m in pair.carried["cloud"] if m.mid == mid]
    assert len(twice) == 2  # sent again after the lost ACK
    assert len(pair.bus.find("once")) == 1  # but published on the bus once
    acks = [m for m in pair.sent_to("device", CoapType.ACK) if m.mid == mid]
    assert len(acks) == 1 and len(pair.dropped["device"]) == 1  # ACKed both times
    assert len(acked) == 1


def test_a_lost_ack_makes_the_device_see_a_duplicate_it_hands_on_once() -> None:
    pair = Pair().established()
    pair.drop_to_cloud = first(lambda m: m.mtype is CoapType.ACK)
    pair.endpoint.send_event(pair.device_id, "dup/check", b"1")
    pair.run(10)
    deliveries = [m for m in pair.carried["device"] if m.mtype is CoapType.CON]
    assert len(deliveries) == 2 and deliveries[0].mid == deliveries[1].mid
    assert pair.listener.events == [("dup/check", b"1")]
    assert len(pair.sent_to("cloud", CoapType.ACK)) == 1 and len(pair.dropped["cloud"]) == 1
    assert pair.world.trace.count("coap.acked_by_device", node="cloud", known=True) == 1


@settings(max_examples=30, deadline=None)
@given(drops=st.lists(st.booleans(), max_size=40))
def test_random_loss_after_establishing_never_delivers_twice(drops: list[bool]) -> None:
    pair = Pair().established()
    pattern = iter(drops)
    pair.drop_to_cloud = pair.drop_to_device = lambda _m: next(pattern, False)
    for index in range(3):
        pair.protocol.publish(f"up/{index}", b"", private=True)
        pair.endpoint.send_event(pair.device_id, f"down/{index}", b"")
        pair.run(1)
    pair.run(120)
    down = [name for name, _ in pair.listener.events]
    assert len(down) == len(set(down)) and set(down) <= {f"down/{i}" for i in range(3)}
    up = [e.name for e in pair.bus.history if e.name.startswith("up/")]
    assert len(up) == len(set(up))
    if pair.protocol.established:
        # nothing stays pending once the link is healthy again (at any one instant a keepalive
        # ping may be awaiting its ACK, or retransmitting while the pattern still drops)
        pair.drop_to_cloud = pair.drop_to_device = lambda _m: False
        assert pair.world.run_until(lambda: pair.protocol.pending_count == 0, 70)
    else:  # a message timed out and failed the connection: nothing is left scheduled for it
        assert pair.listener.errors
        pair.disconnect()


def test_thread_profile_crypto_time_and_resume_gap() -> None:
    """The ``thread`` timing knobs: the device's DTLS crypto time delays its answer to the
    server's flight; on a resume ``begin()`` reports SESSION_RESUMED ``resume_send_s`` after
    ``Skipping HELLO message``, and the ping's ACK arriving meanwhile is read only after."""
    options = ProtocolOptions(dtls_crypto_s=4.485, resume_send_s=0.183)
    pair = Pair(options=options)
    reported: list[float] = []
    pair.listener.protocol_begin_result = (  # type: ignore[method-assign]
        lambda code: (reported.append(pair.world.now), pair.listener.results.append(code)))
    pair.connect()
    pair.run(10)
    assert pair.listener.results == [ProtocolResult.NO_ERROR]
    # two DTLS round trips, the crypto, then the HELLO's round trip (``send_synchronous``)
    assert reported[0] == pytest.approx(6 * LATENCY_S + 4.485)
    pair.disconnect()
    pair.listener.results.clear()
    start = pair.world.now
    idle_before = pair.listener.idle
    pair.connect()
    pair.run(0.183 - 1e-6)
    assert pair.listener.results == [] and pair.listener.idle == idle_before
    assert pair.world.trace.count("coap.acked", node="dev") == 2  # HELLO, describe only
    pair.run(1)
    assert pair.listener.results == [ProtocolResult.SESSION_RESUMED]
    assert reported[1] - start == pytest.approx(0.183)
    acked = [r.get("what") for r in pair.world.trace.find("coap.acked", node="dev")]
    assert acked[-1] == "resume ping"  # processed after the begin result


# -- the HELLO is sent synchronously (``Protocol::hello``: ``set_confirm_received(true)``) ----


def log_messages(pair: Pair) -> list[str]:
    return [str(r.get("message")) for r in pair.world.trace.find("log", node="dev")]


def test_begin_waits_for_the_hello_ack_before_handshake_completed() -> None:
    pair = Pair()
    pair.connect()
    pair.world.run_until(lambda: "Sending HELLO message" in log_messages(pair), 5)
    hello_sent = pair.world.now
    pair.run(2 * LATENCY_S - 1e-6)
    assert "Handshake completed" not in log_messages(pair) and pair.listener.results == []
    assert pair.session.load() is None  # nothing persisted before the ACK
    assert [m.uri_path for m in pair.sent_to("cloud", CoapType.CON)] == [(wire.URI_HELLO,)]
    pair.run(1e-3)
    assert log_messages(pair)[-1] == "Handshake completed"
    assert pair.world.now - hello_sent == pytest.approx(2 * LATENCY_S, abs=2e-3)
    pair.run(1)
    assert pair.listener.results == [ProtocolResult.NO_ERROR]
    # the system describe goes out only after the HELLO's ACK
    assert [m.uri_path for m in pair.sent_to("cloud", CoapType.CON)] == [
        (wire.URI_HELLO,), (wire.URI_DESCRIBE,)]


def test_a_hello_never_acknowledged_fails_begin_with_message_timeout() -> None:
    pair = Pair()
    pair.drop_to_cloud = lambda m: m.uri_path == (wire.URI_HELLO,)
    pair.connect()
    pair.run(70)  # 4 s, doubling, 3 retransmissions
    assert pair.listener.results == [ProtocolResult.MESSAGE_TIMEOUT]
    assert len(pair.dropped["cloud"]) == 4  # the HELLO and its 3 retransmissions
    logs = log_messages(pair)
    assert "Could not send HELLO message: 10" in logs and "Handshake completed" not in logs
    assert pair.session.load() is None and not pair.protocol.established


def test_an_rst_for_the_hello_fails_begin_with_message_reset_and_discards_the_session() -> None:
    pair = Pair()
    pair.drop_to_cloud = lambda m: m.uri_path == (wire.URI_HELLO,)
    pair.connect()
    pair.world.run_until(lambda: bool(pair.dropped["cloud"]), 5)
    cloud_session = pair.endpoint.session_for_device(pair.device_id)
    assert cloud_session is not None
    hello = pair.dropped["cloud"][0]
    rst = CoapMessage(CoapType.RST, wire.EMPTY, hello.mid)
    pair.protocol.datagram_received(wire.encode_app_data(cloud_session.session_id, rst.encode()))
    pair.run(1)
    assert pair.listener.results == [ProtocolResult.MESSAGE_RESET]
    assert log_messages(pair)[-2:] == ["Received RST message; discarding session",
                                       "Could not send HELLO message: 12"]
    assert pair.session.load() is None


def test_requests_from_the_cloud_are_dropped_while_the_hello_awaits_its_ack() -> None:
    pair = Pair()
    pair.drop_to_cloud = first(lambda m: m.uri_path == (wire.URI_HELLO,))
    pair.connect()
    pair.world.run_until(lambda: bool(pair.dropped["cloud"]), 5)
    cloud_session = pair.endpoint.session_for_device(pair.device_id)
    assert cloud_session is not None
    request = CoapMessage(CoapType.CON, wire.POST, 0x8000, b"", wire.event_uri("x", True))
    pair.protocol.datagram_received(
        wire.encode_app_data(cloud_session.session_id, request.encode()))
    assert pair.world.trace.count("coap.dropped", node="dev") == 1
    pair.run(10)  # the HELLO's retransmission is acknowledged
    assert pair.listener.results == [ProtocolResult.NO_ERROR]
    assert pair.listener.events == [] and not any(m.mid == 0x8000 for m in pair.carried["cloud"])


def test_hello_flags_follow_the_platform() -> None:
    from firmware_sim.hal.modules import BOOTLOADER_VERSION

    p2 = DeviceIdentity(DEVICE_ID, 32, 6200)
    assert p2.bootloader_version == BOOTLOADER_VERSION
    assert p2.flags == 0xF6  # + COMPRESSED_OTA, OTA_PROTOCOL_V3
    assert DeviceIdentity(DEVICE_ID, 12, 6200).flags == 0xF6  # Argon (nRF52840)
    assert DeviceIdentity(DEVICE_ID, 6, 2302).flags == 0x36  # Photon, Device OS 2.3.1
    assert DeviceIdentity(DEVICE_ID, 32, 6200, hello_flags=0x37).flags == 0x37
    pair = Pair().established()
    hello = wire.Hello.decode(pair.carried["cloud"][0].payload)
    assert hello.flags == 0xF6
