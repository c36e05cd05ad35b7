"""MQTT packets on the wire: the ``mqtt5`` codec, plus MQTT 3.1.1 as a dialect of it.

Pure (no I/O, no World): shared by the claim-button device (``firmware_sim.claim_button``) and
the emulated ThingsBoard (``cloud_sim.thingsboard``), like ``communication.wire`` is for the
Particle device and cloud.

How this works
--------------
Packets are encoded and decoded by ``mqtt5`` (a maintained, strict, sans-IO MQTT 5 codec;
docs/thingsboard.md says why it was chosen over amqtt and moat-lib-mqtt). None of the candidate
libraries speaks both protocol levels, and tb-mqtt-client speaks only 5 while many devices speak
3.1.1, so 3.1.1 is handled as a *dialect* of 5: the 3.1.1 packets a server receives (CONNECT,
PUBLISH, SUBSCRIBE, UNSUBSCRIBE) are the 5 packets without their property blocks, so
:func:`v311_to_v5` inserts empty property blocks (and the protocol level) and ``mqtt5`` does all
the parsing and validation; on the way out, the few server packets that differ are written in
their 3.1.1 form (CONNACK return codes, PUBACK/UNSUBACK without reason codes, PUBLISH and SUBACK
without properties).

:class:`FrameReader` splits the byte stream into whole packets (fixed header + remaining length)
and refuses a packet above the size limit as soon as its header says so, before buffering it.

:func:`decode` answers a packet or :class:`MalformedPacket`, whatever the bytes: mqtt5 0.8.0
*panics* on a string field that is not UTF-8 (a pyo3 ``PanicException``, which derives from
``BaseException``, plus a Rust panic message and a traceback on stderr), so the string fields of
the packets a server reads are checked here first, and a panic that still happens is caught -
by its type, never as a bare ``BaseException`` (:func:`is_library_panic`).
"""

from __future__ import annotations

import contextlib

import mqtt5

PROTOCOL_V311 = 4
PROTOCOL_V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
PUBREC, PUBREL, PUBCOMP = 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

#: MQTT 3.1.1 CONNACK return codes
V311_ACCEPTED = 0
V311_UNACCEPTABLE_PROTOCOL = 1
V311_IDENTIFIER_REJECTED = 2
V311_SERVER_UNAVAILABLE = 3
V311_BAD_CREDENTIALS = 4
V311_NOT_AUTHORIZED = 5

# keyed by the MQTT 5 reason code's value (mqtt5's enum members are not hashable)
_V5_TO_V311_CONNACK = {
    0x00: V311_ACCEPTED,
    0x84: V311_UNACCEPTABLE_PROTOCOL,  # unsupported protocol version
    0x85: V311_IDENTIFIER_REJECTED,  # client identifier not valid
    0x88: V311_SERVER_UNAVAILABLE,  # server unavailable
    0x89: V311_SERVER_UNAVAILABLE,  # server busy
    0x86: V311_BAD_CREDENTIALS,  # bad user name or password
    0x87: V311_NOT_AUTHORIZED,  # not authorized
}


class MalformedPacket(ValueError):
    """The bytes are not a valid MQTT packet."""


class PacketTooLarge(MalformedPacket):
    """A packet's remaining length is above the limit."""


def encode_remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


class FrameReader:
    """Splits a byte stream into whole MQTT packets (fixed header included)."""

    def __init__(self, max_packet_bytes: int) -> None:
        self.max_packet_bytes = max_packet_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets: list[bytes] = []
        while True:
            header = self._header()
            if header is None:
                return packets
            header_len, remaining = header
            end = header_len + remaining
            if len(self._buffer) < end:
                return packets
            packets.append(bytes(self._buffer[:end]))
            del self._buffer[:end]

    def _header(self) -> tuple[int, int] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length = 0
        for index in range(1, 5):
            if index >= len(buffer):
                return None
            byte = buffer[index]
            length |= (byte & 0x7F) << (7 * (index - 1))
            if not byte & 0x80:
                if length > self.max_packet_bytes:
                    raise PacketTooLarge(f"packet of {length} bytes exceeds the limit of "
                                         f"{self.max_packet_bytes}")
                return index + 1, length
        raise MalformedPacket("remaining length longer than 4 bytes")


def _split(raw: bytes) -> tuple[int, bytes]:
    """``(first byte, body)`` of a whole packet."""
    for index in range(1, min(5, len(raw))):
        if not raw[index] & 0x80:
            return raw[0], raw[index + 1:]
    raise MalformedPacket("truncated fixed header" if len(raw) < 5
                          else "remaining length longer than 4 bytes")


def _frame(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_remaining_length(len(body)) + body


def _string_end(body: bytes, offset: int) -> int:
    if offset + 2 > len(body):
        raise MalformedPacket("truncated string")
    end = offset + 2 + int.from_bytes(body[offset:offset + 2], "big")
    if end > len(body):
        raise MalformedPacket("truncated string")
    return end


def connect_protocol(raw: bytes) -> tuple[str, int]:
    """Protocol name and level of a CONNECT packet."""
    first, body = _split(raw)
    if first >> 4 != CONNECT:
        raise MalformedPacket("the first packet must be CONNECT")
    end = _string_end(body, 0)
    if end >= len(body):
        raise MalformedPacket("truncated CONNECT")
    try:
        name = body[2:end].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket("protocol name is not UTF-8") from None
    return name, body[end]


def v311_to_v5(raw: bytes) -> bytes:
    """An MQTT 3.1.1 packet sent by a client, rewritten as the equivalent MQTT 5 packet."""
    first, body = _split(raw)
    kind = first >> 4
    if kind == CONNECT:
        if len(body) < 10:
            raise MalformedPacket("truncated CONNECT")
        flags = body[7]
        head = body[:6] + bytes([PROTOCOL_V5]) + body[7:10] + b"\x00"
        payload = body[10:]
        if flags & 0x04:  # will flag: a will-properties block precedes the will topic
            client_id_end = _string_end(payload, 0)
            payload = payload[:client_id_end] + b"\x00" + payload[client_id_end:]
        return _frame(first, head + payload)
    if kind == PUBLISH:
        offset = _string_end(body, 0)
        if (first >> 1) & 0x03:
            offset += 2
        if offset > len(body):
            raise MalformedPacket("truncated PUBLISH")
        return _frame(first, body[:offset] + b"\x00" + body[offset:])
    if kind in (SUBSCRIBE, UNSUBSCRIBE):
        if len(body) < 2:
            raise MalformedPacket("truncated packet identifier")
        return _frame(first, body[:2] + b"\x00" + body[2:])
    return raw


# -- UTF-8 strings, checked before mqtt5 sees them ----------------------------------------------
#
# mqtt5 0.8.0 panics (a pyo3 PanicException, and a Rust panic message plus a traceback on
# stderr) on a string field that is not UTF-8, instead of raising. The string fields of the
# packets a server reads are checked here first, so such a packet is refused quietly; the panic
# is still caught in :func:`decode` should anything else trigger one.

#: MQTT 5 property identifiers by the size of their value (MQTT 5.0, 2.2.2.2)
_FIXED_PROPERTIES = {
    **dict.fromkeys((0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A), 1),
    **dict.fromkeys((0x13, 0x21, 0x22, 0x23), 2),
    **dict.fromkeys((0x02, 0x11, 0x18, 0x27), 4),
}
_STRING_PROPERTIES = frozenset((0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F))
_BINARY_PROPERTIES = frozenset((0x09, 0x16))
_STRING_PAIR_PROPERTY = 0x26
_VARINT_PROPERTY = 0x0B


class _Stop(Exception):
    """The structure ends or is unknown here: leave the rest to mqtt5."""


def _varint(body: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for index in range(4):
        if offset + index >= len(body):
            raise _Stop
        byte = body[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, offset + index + 1
    raise _Stop


def _field(body: bytes, offset: int) -> tuple[bytes, int]:
    """A two-byte-length field (string or binary data) at ``offset``: (its bytes, end)."""
    if offset + 2 > len(body):
        raise _Stop
    end = offset + 2 + int.from_bytes(body[offset:offset + 2], "big")
    if end > len(body):
        raise _Stop
    return body[offset + 2:end], end


def _utf8(body: bytes, offset: int, what: str) -> int:
    text, end = _field(body, offset)
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPacket(f"{what} is not valid UTF-8") from None
    return end


def _properties(body: bytes, offset: int) -> int:
    length, start = _varint(body, offset)
    end = start + length
    if end > len(body):
        raise _Stop
    block, offset = body[:end], start
    while offset < end:
        prop, offset = _varint(block, offset)
        if prop in _FIXED_PROPERTIES:
            offset += _FIXED_PROPERTIES[prop]
        elif prop == _VARINT_PROPERTY:
            offset = _varint(block, offset)[1]
        elif prop in _STRING_PROPERTIES:
            offset = _utf8(block, offset, "a property")
        elif prop == _STRING_PAIR_PROPERTY:
            offset = _utf8(block, _utf8(block, offset, "a user property"), "a user property")
        elif prop in _BINARY_PROPERTIES:
            offset = _field(block, offset)[1]
        else:
            raise _Stop
    return end


def _check_strings(first: int, body: bytes) -> None:
    """Raise :class:`MalformedPacket` if a UTF-8 string field of this MQTT 5 packet is not
    UTF-8 (anything else wrong is left to mqtt5)."""
    kind = first >> 4
    if kind == CONNECT:
        offset = _field(body, 0)[1] + 4  # protocol name, level, flags, keep-alive
        if offset > len(body):
            raise _Stop
        flags = body[offset - 3]
        offset = _utf8(body, _properties(body, offset), "the client identifier")
        if flags & 0x04:
            offset = _utf8(body, _properties(body, offset), "the will topic")
            offset = _field(body, offset)[1]
        if flags & 0x80:
            _utf8(body, offset, "the user name")
    elif kind == PUBLISH:
        offset = _utf8(body, 0, "the topic") + (2 if (first >> 1) & 0x03 else 0)
        _properties(body, offset)
    elif kind in (SUBSCRIBE, UNSUBSCRIBE):
        offset = _properties(body, 2)
        while offset < len(body):
            offset = _utf8(body, offset, "a topic filter") + (kind == SUBSCRIBE)
    elif kind in (PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH):
        offset = 3 if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP) else 1
        if len(body) > offset:
            _properties(body, offset)


def is_library_panic(exc: BaseException) -> bool:
    """Is ``exc`` a Rust panic surfacing through pyo3 (``pyo3_runtime.PanicException``)?

    pyo3 derives it from ``BaseException``, so ``except Exception`` lets it through; mqtt5
    0.8.0 panics, for example, on a string field that is not UTF-8 (the ``UnicodeDecodeError``
    it meant to raise is lost on the way out). Matched by type name and module, never as a bare
    ``BaseException`` that would also swallow ``KeyboardInterrupt`` or ``CancelledError``."""
    kind = type(exc)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def decode(raw: bytes, level: int) -> mqtt5.Packet:
    """Decode one whole packet of a client speaking protocol ``level``: the packet, or
    :class:`MalformedPacket` whatever is wrong with the bytes (never another exception)."""
    data = v311_to_v5(raw) if level == PROTOCOL_V311 else raw
    first, body = _split(data)
    with contextlib.suppress(_Stop):
        _check_strings(first, body)
    try:
        packet, used = mqtt5.read(memoryview(data))
    except (ValueError, IndexError, TypeError, OverflowError) as exc:
        # UnicodeDecodeError (a string field that is not UTF-8) is a ValueError
        raise MalformedPacket(str(exc) or type(exc).__name__) from None
    except BaseException as exc:
        if not is_library_panic(exc):
            raise
        raise MalformedPacket("the MQTT codec refused the packet (a field is not valid, "
                              "e.g. a string that is not UTF-8)") from None
    if used != len(data):
        raise MalformedPacket("trailing bytes after the packet")
    return packet


# -- server -> client ---------------------------------------------------------------------------


def _strip_properties(raw: bytes, offset: int) -> bytes:
    """Remove the (empty) property block at ``offset`` of the body of a v5 packet."""
    first, body = _split(raw)
    if body[offset] != 0:
        raise ValueError("only empty property blocks can be dropped for MQTT 3.1.1")
    return _frame(first, body[:offset] + body[offset + 1:])


def connack(level: int, code: mqtt5.ConnAckReasonCode, *,
            assigned_client_id: str | None = None, receive_max: int = 65535,
            max_packet_size: int | None = None) -> bytes:
    if level == PROTOCOL_V5:
        return mqtt5.ConnAckPacket(reason_code=code, assigned_client_id=assigned_client_id,
                                   receive_max=receive_max, max_packet_size=max_packet_size,
                                   max_qos=mqtt5.QoS.AT_LEAST_ONCE).write()
    return bytes([CONNACK << 4, 2, 0, _V5_TO_V311_CONNACK.get(int(code), V311_NOT_AUTHORIZED)])


def puback(level: int, packet_id: int,
           code: mqtt5.PubAckReasonCode = mqtt5.PubAckReasonCode.SUCCESS) -> bytes:
    if level == PROTOCOL_V5:
        return mqtt5.PubAckPacket(packet_id, reason_code=code).write()
    return bytes([PUBACK << 4, 2]) + packet_id.to_bytes(2, "big")


def pubrec(level: int, packet_id: int) -> bytes:
    return bytes([PUBREC << 4, 2]) + packet_id.to_bytes(2, "big")


def pubcomp(level: int, packet_id: int) -> bytes:
    return bytes([PUBCOMP << 4, 2]) + packet_id.to_bytes(2, "big")


def suback(level: int, packet_id: int, codes: list[mqtt5.SubAckReasonCode]) -> bytes:
    raw = mqtt5.SubAckPacket(packet_id, codes).write()
    return raw if level == PROTOCOL_V5 else _strip_properties(raw, 2)


def unsuback(level: int, packet_id: int, count: int) -> bytes:
    if level == PROTOCOL_V5:
        return mqtt5.UnsubAckPacket(packet_id,
                                    [mqtt5.UnsubAckReasonCode.SUCCESS] * count).write()
    return bytes([UNSUBACK << 4, 2]) + packet_id.to_bytes(2, "big")


def publish(level: int, topic: str, payload: bytes, *, qos: int = 0,
            packet_id: int | None = None) -> bytes:
    raw = mqtt5.PublishPacket(topic, payload, qos=mqtt5.QoS(qos), packet_id=packet_id).write()
    if level == PROTOCOL_V5:
        return raw
    offset = 2 + len(topic.encode("utf-8")) + (2 if qos else 0)
    return _strip_properties(raw, offset)


def pingresp() -> bytes:
    return mqtt5.PingRespPacket().write()


def disconnect(level: int, code: mqtt5.DisconnectReasonCode) -> bytes | None:
    """A server DISCONNECT (MQTT 5 only; a 3.1.1 server just closes)."""
    if level != PROTOCOL_V5:
        return None
    return mqtt5.DisconnectPacket(reason_code=code).write()
