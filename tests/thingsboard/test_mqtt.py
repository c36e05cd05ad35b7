"""The MQTT face on a kernel stream link: both protocol levels, claim topics, limits, bad input."""

from __future__ import annotations

import mqtt5
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim.thingsboard.claiming import Reason
from cloud_sim.thingsboard.mqtt_session import MqttServerSession
from cloud_sim.thingsboard.settings import MqttLimits
from firmware_sim.communication.mqtt import codec
from firmware_sim.kernel.stream import StreamLink

from .conftest import Tb, make_tb


class Peer:
    """A test client end: raw bytes in, decoded packets out."""

    def __init__(self, tb: Tb, level: int = 5) -> None:
        self.tb = tb
        link = StreamLink(tb.world, "test", latency_s=0.001)
        self.session = MqttServerSession(tb.service, link.b, peer="test")
        self.end = link.a
        self.level = level
        self.received = bytearray()
        self.eof = False
        self.end.on_data = self.received.extend
        self.end.on_eof = self._eof
        self.end.on_reset = self._eof

    def _eof(self) -> None:
        self.eof = True

    def send(self, data: bytes) -> None:
        self.end.write(data)
        self.tb.world.run_for(0.01)

    def packets(self) -> list[mqtt5.Packet]:
        reader = codec.FrameReader(1 << 20)
        out = []
        for raw in reader.feed(bytes(self.received)):
            if self.level == 5:
                out.append(mqtt5.read(memoryview(raw))[0])
            else:
                out.append(raw)  # type: ignore[arg-type]
        self.received.clear()
        return out


def connect_v5(token: str, keepalive: int = 30) -> bytes:
    return mqtt5.ConnectPacket("c1", username=token, keep_alive=keepalive).write()


def connect_v311(token: str, keepalive: int = 30, client_id: bytes = b"c1") -> bytes:
    body = (b"\x00\x04MQTT\x04\x82" + keepalive.to_bytes(2, "big")
            + len(client_id).to_bytes(2, "big") + client_id
            + len(token).to_bytes(2, "big") + token.encode())
    return bytes([0x10]) + codec.encode_remaining_length(len(body)) + body


def publish_v311(topic: str, payload: bytes, packet_id: int = 1) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode() + packet_id.to_bytes(2, "big") + payload
    return bytes([0x32]) + codec.encode_remaining_length(len(body)) + body


def claim_v5(payload: bytes, packet_id: int = 1) -> bytes:
    return mqtt5.PublishPacket("v1/devices/me/claim", payload, qos=mqtt5.QoS.AT_LEAST_ONCE,
                               packet_id=packet_id).write()


def test_v5_connect_claim_puback(tb: Tb) -> None:
    device = tb.device()
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(device)))
    (connack,) = peer.packets()
    assert isinstance(connack, mqtt5.ConnAckPacket)
    assert connack.reason_code == mqtt5.ConnAckReasonCode.SUCCESS
    peer.send(claim_v5(b'{"secretKey":"k","durationMs":60000}', 9))
    (puback,) = peer.packets()
    assert isinstance(puback, mqtt5.PubAckPacket) and puback.packet_id == 9
    assert tb.last_reason(device) == Reason.REGISTERED.value


def test_puback_success_even_when_registration_is_refused(tb: Tb) -> None:
    device = tb.device(customer_id=tb.a.customer_id)
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(device)))
    peer.packets()
    peer.send(claim_v5(b'{"secretKey":"k"}'))
    (puback,) = peer.packets()
    assert isinstance(puback, mqtt5.PubAckPacket)
    assert puback.reason_code == mqtt5.PubAckReasonCode.SUCCESS
    assert tb.last_reason(device) == Reason.ALREADY_CLAIMED.value


def test_v311_connect_claim_puback(tb: Tb) -> None:
    device = tb.device()
    peer = Peer(tb, level=4)
    peer.send(connect_v311(tb.service.access_token_of(device)))
    assert peer.packets() == [b"\x20\x02\x00\x00"]
    peer.send(publish_v311("v1/devices/me/claim", b'{"secretKey":"k"}', 7))
    assert peer.packets() == [b"\x40\x02\x00\x07"]
    assert tb.last_reason(device) == Reason.REGISTERED.value


def test_unknown_token_is_not_authorized_on_both_levels(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5("nope"))
    (connack,) = peer.packets()
    assert isinstance(connack, mqtt5.ConnAckPacket)
    assert connack.reason_code == mqtt5.ConnAckReasonCode.NOT_AUTHORIZED
    assert peer.eof
    old = Peer(tb, level=4)
    old.send(connect_v311("nope"))
    assert old.packets() == [b"\x20\x02\x00\x05"] and old.eof


@pytest.mark.parametrize("level", [3, 6, 0])
def test_wrong_protocol_level_is_refused(tb: Tb, level: int) -> None:
    peer = Peer(tb, level=4)
    raw = bytearray(connect_v311(tb.service.access_token_of(tb.device())))
    raw[8] = level
    peer.send(bytes(raw))
    assert peer.packets() == [b"\x20\x02\x00\x01"] and peer.eof


def test_get_session_limits_rpc_is_answered(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.send(mqtt5.PublishPacket("v1/devices/me/rpc/request/1",
                                  b'{"method":"getSessionLimits","params":{"timeout":5000}}',
                                  qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=3).write())
    response, puback = peer.packets()
    assert isinstance(response, mqtt5.PublishPacket)
    assert response.topic == "v1/devices/me/rpc/response/1"
    assert b'"rateLimits"' in response.payload and b'"maxPayloadSize"' in response.payload
    assert isinstance(puback, mqtt5.PubAckPacket)


def test_subscribe_ping_unsubscribe_and_telemetry(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.send(mqtt5.SubscribePacket(4, [mqtt5.TopicFilter("v1/devices/me/rpc/request/+")])
              .write())
    peer.send(mqtt5.PingReqPacket().write())
    peer.send(mqtt5.UnsubscribePacket(5, ["v1/devices/me/rpc/request/+"]).write())
    peer.send(mqtt5.PublishPacket("v1/devices/me/telemetry", b'{"t":1}',
                                  qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=6).write())
    kinds = [type(p).__name__ for p in peer.packets()]
    assert kinds == ["SubAckPacket", "PingRespPacket", "UnsubAckPacket", "PubAckPacket"]


def test_malformed_claim_payload_closes_with_payload_format_invalid(tb: Tb) -> None:
    peer = Peer(tb)
    device = tb.device()
    peer.send(connect_v5(tb.service.access_token_of(device)))
    peer.packets()
    peer.send(claim_v5(b"[1,2]"))
    (disconnect,) = peer.packets()
    assert isinstance(disconnect, mqtt5.DisconnectPacket)
    assert disconnect.reason_code == mqtt5.DisconnectReasonCode.PAYLOAD_FORMAT_INVALID
    assert peer.eof and tb.last_reason(device) == "malformed_payload"


def test_send_ack_on_validation_exception_acknowledges_instead() -> None:
    tb = make_tb(send_ack_on_validation_exception=True)
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.send(claim_v5(b'{"durationMs":"soon"}'))
    (puback,) = peer.packets()
    assert isinstance(puback, mqtt5.PubAckPacket)
    assert puback.reason_code == mqtt5.PubAckReasonCode.PAYLOAD_FORMAT_INVALID
    assert not peer.eof


def test_oversize_packet_is_refused_before_it_is_buffered(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.send(b"\x32\xff\xff\xff\x7f")  # announces 268 MB
    (disconnect,) = peer.packets()
    assert isinstance(disconnect, mqtt5.DisconnectPacket)
    assert disconnect.reason_code == mqtt5.DisconnectReasonCode.PACKET_TOO_LARGE
    assert peer.eof


def test_connect_timeout_and_keepalive_timeout(tb: Tb) -> None:
    silent = Peer(tb)
    tb.world.run_for(MqttLimits().connect_timeout_s + 0.1)
    assert silent.eof and silent.session.close_reason == "connect_timeout"
    idle = Peer(tb)
    idle.send(connect_v5(tb.service.access_token_of(tb.device()), keepalive=10))
    tb.world.run_for(14.9)
    assert not idle.eof
    tb.world.run_for(0.2)
    assert idle.eof and idle.session.close_reason == "keepalive_timeout"


def test_the_clients_fin_closes_the_session_and_its_end(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.end.close()
    tb.world.run_for(0.01)
    assert peer.session.closed and peer.session.close_reason == "peer_eof"
    assert peer.session.stream.closed  # the server's FIN went back: nothing left half-open
    assert tb.world.trace.first("stream.fin", node="test", side="b") is not None


def test_a_second_connect_is_a_protocol_error(tb: Tb) -> None:
    peer = Peer(tb)
    token = tb.service.access_token_of(tb.device())
    peer.send(connect_v5(token))
    peer.packets()
    peer.send(connect_v5(token))
    assert peer.eof


def test_gateway_claim_needs_a_gateway(tb: Tb) -> None:
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(tb.device())))
    peer.packets()
    peer.send(mqtt5.PublishPacket("v1/gateway/claim", b'{"X": {"secretKey": "s"}}',
                                  qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=2).write())
    (puback,) = peer.packets()
    assert isinstance(puback, mqtt5.PubAckPacket)
    assert puback.reason_code == mqtt5.PubAckReasonCode.TOPIC_NAME_INVALID


def test_v311_subscribe_and_publish_answers_have_no_properties(tb: Tb) -> None:
    peer = Peer(tb, level=4)
    peer.send(connect_v311(tb.service.access_token_of(tb.device())))
    peer.packets()
    topic = b"v1/devices/me/rpc/request/+"
    body = b"\x00\x05" + len(topic).to_bytes(2, "big") + topic + b"\x01"
    peer.send(bytes([0x82, len(body)]) + body)
    assert peer.packets() == [b"\x90\x03\x00\x05\x01"]
    payload = b'{"method":"getSessionLimits","params":{}}'
    peer.send(publish_v311("v1/devices/me/rpc/request/4", payload, 8))
    response, puback = peer.packets()
    decoded = codec.decode(response, 4)  # a 3.1.1 PUBLISH: no property block
    assert isinstance(decoded, mqtt5.PublishPacket)
    assert decoded.topic == "v1/devices/me/rpc/response/4" and b"rateLimits" in decoded.payload
    assert puback == b"\x40\x02\x00\x08"


_SHARED: list[tuple[Tb, str]] = []


def shared() -> tuple[Tb, str]:
    """One service for every hypothesis example (seeding the demo accounts costs PBKDF2)."""
    if not _SHARED:
        tb = make_tb()
        _SHARED.append((tb, tb.service.access_token_of(tb.device("Fuzzed"))))
    return _SHARED[0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.binary(max_size=300), level=st.sampled_from([4, 5]),
       after_connect=st.booleans())
def test_random_bytes_never_crash_or_hang(junk: bytes, level: int, after_connect: bool) -> None:
    tb, token = shared()
    peer = Peer(tb, level=level)
    if after_connect:
        peer.send(connect_v5(token) if level == 5 else connect_v311(token))
    peer.send(junk)
    tb.world.run_for(400)  # every timer fires: the session is closed or still well-formed
    assert peer.session.closed or peer.session.device is not None


@settings(max_examples=100, deadline=None)
@given(payload=st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["secretKey", "durationMs", "x"]), inner,
                                   max_size=3), max_leaves=8).map(
        lambda value: __import__("json").dumps(value).encode())))
def test_any_claim_payload_is_acknowledged_or_closes_cleanly(payload: bytes) -> None:
    tb, token = shared()
    peer = Peer(tb)
    peer.send(connect_v5(token))
    peer.packets()
    peer.send(claim_v5(payload))
    answers = peer.packets()
    assert len(answers) == 1
    assert isinstance(answers[0], mqtt5.PubAckPacket | mqtt5.DisconnectPacket)
