"""Bytes no MQTT client should send: the codec answers a packet or ``MalformedPacket``, never
another exception (mqtt5 0.8.0 *panics* on a string that is not UTF-8, a pyo3 ``PanicException``
that derives from ``BaseException``), and the session refuses and closes cleanly."""

from __future__ import annotations

import contextlib
import functools
import struct
from typing import Any

import mqtt5
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.communication.mqtt import codec

from .conftest import Tb, make_tb
from .test_mqtt import Peer, connect_v5


def s16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + codec.encode_remaining_length(len(body)) + body


#: the CONNECT of the QA finding: MQTT 5, user name = the CESU-8 bytes of a lone surrogate
QA_CONNECT_V5 = frame(0x10, s16(b"MQTT") + bytes([5, 0x82]) + struct.pack("!H", 60) + b"\x00"
                      + s16(b"qa") + s16(b"\xed\xa0\x80"))
#: the same at MQTT 3.1.1, user name 0xFF
QA_CONNECT_V311 = frame(0x10, s16(b"MQTT") + bytes([4, 0x82]) + struct.pack("!H", 60)
                        + s16(b"qa") + s16(b"\xff"))


#: strings as a client may put them on the wire: UTF-8, CESU-8 surrogates, any bytes
wire_text = st.one_of(st.text(max_size=12).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.binary(max_size=12))


@st.composite
def properties(draw: Any) -> bytes:
    """A property block with user properties and a content type (string fields)."""
    block = b""
    for _ in range(draw(st.integers(0, 2))):
        block += b"\x26" + s16(draw(wire_text)) + s16(draw(wire_text))
    if draw(st.booleans()):
        block += b"\x03" + s16(draw(wire_text))
    return codec.encode_remaining_length(len(block)) + block


@st.composite
def connect(draw: Any, level: int) -> bytes:
    will, user = draw(st.booleans()), draw(st.booleans())
    flags = 0x02 | (0x04 if will else 0) | (0x80 if user else 0)
    v5 = level == codec.PROTOCOL_V5
    body = s16(b"MQTT") + bytes([level, flags]) + b"\x00\x3c"
    body += draw(properties()) if v5 else b""
    body += s16(draw(wire_text))
    if will:
        body += (draw(properties()) if v5 else b"") + s16(draw(wire_text)) + s16(b"bye")
    if user:
        body += s16(draw(wire_text))
    return frame(0x10, body)


@st.composite
def after_connect(draw: Any, level: int) -> bytes:
    """PUBLISH, SUBSCRIBE or UNSUBSCRIBE with arbitrary topic bytes."""
    v5 = level == codec.PROTOCOL_V5
    props = draw(properties()) if v5 else b""
    kind = draw(st.sampled_from(("publish", "subscribe", "unsubscribe")))
    if kind == "publish":
        return frame(0x32, s16(draw(wire_text)) + b"\x00\x07" + props + b"{}")
    filters = b"".join(s16(draw(wire_text)) + (b"\x01" if kind == "subscribe" else b"")
                       for _ in range(draw(st.integers(1, 3))))
    return frame(0x82 if kind == "subscribe" else 0xA2, b"\x00\x08" + props + filters)


levels = st.sampled_from((codec.PROTOCOL_V311, codec.PROTOCOL_V5))


def test_the_qa_connects_are_malformed_packets() -> None:
    for raw, level in ((QA_CONNECT_V5, codec.PROTOCOL_V5),
                       (QA_CONNECT_V311, codec.PROTOCOL_V311)):
        with pytest.raises(codec.MalformedPacket, match="user name is not valid UTF-8"):
            codec.decode(raw, level)


@settings(max_examples=300, deadline=None)
@given(st.data(), levels)
def test_decode_raises_only_malformed_packet(data: Any, level: int) -> None:
    raw = data.draw(st.one_of(connect(level), after_connect(level),
                              st.binary(min_size=2, max_size=64)))
    with contextlib.suppress(codec.MalformedPacket):
        codec.decode(raw, level)


@settings(max_examples=200, deadline=None)
@given(st.data(), levels)
def test_a_string_that_is_not_utf8_is_refused_before_mqtt5_reads_it(
        data: Any, level: int) -> None:
    """mqtt5 prints a Rust panic and a traceback to stderr for each such packet: the codec
    checks the strings itself, so an attacker cannot fill the server's log."""
    raw = data.draw(st.one_of(connect(level), after_connect(level)))
    first, body = codec._split(codec.v311_to_v5(raw) if level == codec.PROTOCOL_V311 else raw)
    try:
        codec._check_strings(first, body)
    except codec._Stop:
        pass
    except codec.MalformedPacket:
        return  # refused here, mqtt5 never saw it
    # the check let it through: mqtt5 must then read it without panicking
    with contextlib.suppress(ValueError, IndexError, TypeError, OverflowError):
        mqtt5.read(memoryview(codec.v311_to_v5(raw) if level == codec.PROTOCOL_V311 else raw))


# the panic also hands the lost UnicodeDecodeError to sys.unraisablehook (the traceback a
# served world printed for each such packet before the UTF-8 check)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_panic_of_the_library_is_a_malformed_packet(monkeypatch: pytest.MonkeyPatch) -> None:
    # the real panic, as mqtt5 0.8.0 raises it for the QA bytes
    with pytest.raises(BaseException) as panic:  # a PanicException, which is no Exception
        mqtt5.read(memoryview(QA_CONNECT_V5))
    assert codec.is_library_panic(panic.value)
    assert not isinstance(panic.value, Exception)
    # with the UTF-8 check out of the way the panic reaches decode, which refuses the packet
    monkeypatch.setattr(codec, "_check_strings", lambda first, body: None)
    with pytest.raises(codec.MalformedPacket):
        codec.decode(QA_CONNECT_V5, codec.PROTOCOL_V5)


def test_other_base_exceptions_still_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(data: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(codec.mqtt5, "read", interrupted)
    with pytest.raises(KeyboardInterrupt):
        codec.decode(connect_v5("token"), codec.PROTOCOL_V5)


def test_qa_connects_are_refused_and_the_service_serves_on() -> None:
    tb = make_tb()
    device = tb.device()
    v5 = Peer(tb)
    v5.send(QA_CONNECT_V5)
    (connack,) = v5.packets()
    assert isinstance(connack, mqtt5.ConnAckPacket)
    assert connack.reason_code == mqtt5.ConnAckReasonCode.MALFORMED_PACKET
    assert v5.eof and v5.session.close_reason == "malformed_packet"
    v311 = Peer(tb, level=4)
    v311.send(QA_CONNECT_V311)
    assert v311.packets() == [] and v311.eof  # 3.1.1 has no return code for it: close
    good = Peer(tb)
    good.send(connect_v5(tb.service.access_token_of(device)))
    (ok,) = good.packets()
    assert isinstance(ok, mqtt5.ConnAckPacket)
    assert ok.reason_code == mqtt5.ConnAckReasonCode.SUCCESS


@functools.cache
def _shared_world() -> tuple[Tb, str]:
    """One world for every example (a session's bytes touch no other session)."""
    tb = make_tb()
    return tb, tb.service.access_token_of(tb.device())


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data(), levels)
def test_any_bytes_to_a_session_end_in_a_clean_refusal_or_a_wait(data: Any, level: int) -> None:
    """Whatever a client sends - before or after a good CONNECT - nothing escapes the session
    (on virtual time an exception would fail the run), and the connection is either closed
    or still waiting for the rest of a packet; the service keeps serving other clients."""
    tb, token = _shared_world()
    peer = Peer(tb, level=level)
    if data.draw(st.booleans(), label="connect first"):
        good = connect_v5(token) if level == codec.PROTOCOL_V5 else frame(
            0x10, s16(b"MQTT") + b"\x04\x82\x00\x3c" + s16(b"c") + s16(token.encode()))
        peer.send(good)
        chunks = data.draw(st.lists(st.one_of(after_connect(level), st.binary(max_size=40)),
                                    min_size=1, max_size=3))
    else:
        chunks = data.draw(st.lists(st.one_of(connect(level), st.binary(max_size=40)),
                                    min_size=1, max_size=3))
    for chunk in chunks:
        peer.send(chunk)
    tb.world.run_for(1)
    session = peer.session
    assert peer.eof == session.closed
    if session.closed:
        assert session.close_reason in {
            "malformed_packet", "protocol_error", "packet_too_large", "not_authorized",
            "unsupported_protocol", "invalid_claim_payload", "client_disconnect"}, (
            session.close_reason)
    other = Peer(tb)
    other.send(connect_v5(token))
    (connack,) = other.packets()
    assert isinstance(connack, mqtt5.ConnAckPacket)
    assert connack.reason_code == mqtt5.ConnAckReasonCode.SUCCESS


def test_an_answer_topic_above_the_limit_is_not_sent() -> None:
    """``.../attributes/request/<id>`` is answered on ``.../attributes/response/<id>``, one
    byte longer: a request topic at the 65,535-byte limit gets its PUBACK and no answer."""
    tb = make_tb()
    device = tb.device()
    peer = Peer(tb)
    peer.send(connect_v5(tb.service.access_token_of(device)))
    peer.packets()
    prefix = "v1/devices/me/attributes/request/"
    topic = prefix + "1" * (codec_max := 65_535 - len(prefix))
    assert len(topic) == 65_535 and codec_max > 0
    peer.send(mqtt5.PublishPacket(topic, b"{}", qos=mqtt5.QoS.AT_LEAST_ONCE,
                                  packet_id=5).write())
    packets = peer.packets()
    assert [type(p) for p in packets] == [mqtt5.PubAckPacket]
    assert not peer.session.closed
