"""Wire codecs shared by the device and the emulated cloud.

Two layers travel in each datagram of the device-cloud link:

1. The *stand-in record layer*: records that stand in for DTLS in process (no encryption, no
   key exchange: a seeded run stays replayable); on a socket they travel inside real DTLS 1.2
   (``transports/dtls.py``, ``cloud_sim/dtls.py``). First byte is the record type:

   * ``0x16`` HANDSHAKE: ``0x16 | msg_type | body`` - CLIENT_HELLO (device id, 12 bytes),
     SERVER_HELLO (nothing), CLIENT_FINISHED (nothing), SERVER_FINISHED (session id, 8 bytes).
     A full DTLS handshake therefore costs two round trips.
   * ``0x17`` APPLICATION_DATA: ``0x17 | session id (8) | CoAP message``.
   * ``0x15`` ALERT: ``0x15 | code`` (the cloud refusing a handshake).

2. CoAP (RFC 7252) messages carrying the Particle protocol:
   HELLO (POST ``h``), DESCRIBE (POST ``d``), events (POST ``E/<name>`` private or ``e/<name>``
   public), time (GET ``t``), subscriptions (GET ``e/<prefix>``), pings (empty CON) and their
   ACK/RST answers; from the cloud also key change (PUT ``k``, discarding the session when its
   second option is the byte 1), ServerMoved (POST ``M``), function calls (POST ``f/<name>``,
   the argument in one Uri-Query option) and variable requests (GET ``v/<name>``), as
   ``communication/src/messages.cpp`` classifies them. The device ACKs a call or a request
   (empty) and answers later in a separate confirmable response carrying the request's token:
   2.04 with the function's int32 return value (big-endian, ``Messages::function_return``), or
   2.05 with the variable's value (``communication/src/variables.cpp``: bool one byte, int
   int32 big-endian, double the 8 bytes of the native - little-endian - double, string its
   bytes), or 4.04 for an unknown variable.

The CoAP codec is written here rather than delegated to aiocoap: building aiocoap's ``Message``
and option objects was the largest single cost of a 10,000-device fleet (about 40 us per
message each way, see docs/performance.md). It produces the bytes aiocoap produces and accepts
and refuses what aiocoap's decoder accepts and refuses (``tests/unit/communication/
test_coap_codec.py`` checks both against aiocoap with generated messages).

The HELLO payload layout (big-endian) is Device OS ``Messages::hello``
(``communication/src/messages.cpp``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from ..kernel.errors import PeerProtocolError

SESSION_ID_SIZE = 8
DEVICE_ID_SIZE = 12
MAX_DATAGRAM_SIZE = 1500


class RecordType(IntEnum):
    ALERT = 0x15
    HANDSHAKE = 0x16
    APPLICATION_DATA = 0x17


class HandshakeType(IntEnum):
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    CLIENT_FINISHED = 20
    SERVER_FINISHED = 21


class AlertCode(IntEnum):
    HANDSHAKE_FAILURE = 40
    UNKNOWN_DEVICE = 46


@dataclass(frozen=True, slots=True)
class Record:
    type: RecordType
    #: handshake message type (HANDSHAKE), alert code (ALERT), 0 for APPLICATION_DATA
    subtype: int
    session_id: bytes
    body: bytes


def encode_handshake(msg_type: HandshakeType, body: bytes = b"") -> bytes:
    return bytes([RecordType.HANDSHAKE, msg_type]) + body


def encode_app_data(session_id: bytes, coap: bytes) -> bytes:
    if len(session_id) != SESSION_ID_SIZE:
        raise ValueError("session id must be 8 bytes")
    return bytes([RecordType.APPLICATION_DATA]) + session_id + coap


def encode_alert(code: AlertCode) -> bytes:
    return bytes([RecordType.ALERT, code])


_RECORD_TYPES = {int(t): t for t in RecordType}
_APPLICATION_DATA = RecordType.APPLICATION_DATA


def decode_record(data: bytes) -> Record:
    """Parse one datagram's record layer; raises PeerProtocolError on anything malformed."""
    if not data:
        raise PeerProtocolError("empty datagram")
    if len(data) > MAX_DATAGRAM_SIZE:
        raise PeerProtocolError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM_SIZE}")
    rtype = _RECORD_TYPES.get(data[0])
    if rtype is None:
        raise PeerProtocolError(f"unknown record type 0x{data[0]:02x}") from None
    if rtype is _APPLICATION_DATA:
        if len(data) < 1 + SESSION_ID_SIZE + 4:
            raise PeerProtocolError("application record too short")
        return Record(rtype, 0, bytes(data[1:1 + SESSION_ID_SIZE]),
                      bytes(data[1 + SESSION_ID_SIZE:]))
    if len(data) < 2:
        raise PeerProtocolError("record too short")
    if rtype is RecordType.HANDSHAKE:
        try:
            htype = HandshakeType(data[1])
        except ValueError:
            raise PeerProtocolError(f"unknown handshake message {data[1]}") from None
        body = bytes(data[2:])
        expected = {HandshakeType.CLIENT_HELLO: DEVICE_ID_SIZE,
                    HandshakeType.SERVER_FINISHED: SESSION_ID_SIZE}.get(htype, 0)
        if len(body) != expected:
            raise PeerProtocolError(f"{htype.name} body must be {expected} bytes")
        return Record(rtype, htype, b"", body)
    return Record(rtype, data[1], b"", bytes(data[2:]))


# -- CoAP ----------------------------------------------------------------------------------------


class CoapType(IntEnum):
    CON = 0
    NON = 1
    ACK = 2
    RST = 3


@dataclass(frozen=True, slots=True)
class CoapMessage:
    """A CoAP message as a plain value (RFC 7252 §3 encoding)."""

    mtype: CoapType
    code: int
    mid: int
    token: bytes = b""
    uri_path: tuple[str, ...] = ()
    payload: bytes = b""
    max_age: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: Uri-Query options (a function call's argument)
    uri_query: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.code == 0

    @property
    def code_text(self) -> str:
        return f"{self.code >> 5}.{self.code & 0x1F:02d}"

    def encode(self) -> bytes:
        token = self.token
        mid = self.mid & 0xFFFF
        head = bytes((0x40 | (self.mtype & 0x03) << 4 | (len(token) & 0x0F), self.code,
                      mid >> 8, mid & 0xFF))
        parts = [head, token]
        number = 0
        for segment in self.uri_path:
            value = segment.encode("utf-8")
            parts.append(_option_header(OPTION_URI_PATH - number, len(value)))
            parts.append(value)
            number = OPTION_URI_PATH
        if self.max_age is not None:
            age = int(self.max_age)
            value = age.to_bytes((age.bit_length() + 7) // 8, "big")
            parts.append(_option_header(OPTION_MAX_AGE - number, len(value)))
            parts.append(value)
            number = OPTION_MAX_AGE
        for segment in self.uri_query:
            value = segment.encode("utf-8")
            parts.append(_option_header(OPTION_URI_QUERY - number, len(value)))
            parts.append(value)
            number = OPTION_URI_QUERY
        if self.payload:
            parts.append(b"\xff")
            parts.append(self.payload)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> CoapMessage:
        """Parse one CoAP message; PeerProtocolError on anything aiocoap refuses."""
        size = len(data)
        if size < 4:
            raise PeerProtocolError("malformed CoAP message: Incoming message too short for CoAP")
        first = data[0]
        if first >> 6 != 1:
            raise PeerProtocolError("malformed CoAP message: Fatal Error: Protocol Version must "
                                    "be 1")
        position = 4 + (first & 0x0F)
        token = bytes(data[4:position])
        uri_path: list[str] = []
        uri_query: list[str] | None = None
        max_age: int | None = None
        payload = b""
        number = 0
        while position < size:
            byte = data[position]
            if byte == 0xFF:
                payload = bytes(data[position + 1:])
                break
            position += 1
            delta, position = _extended(byte >> 4, data, position)
            length, position = _extended(byte & 0x0F, data, position)
            number += delta
            end = position + length
            if end > size:
                raise PeerProtocolError("malformed CoAP message: Option announced but absent")
            value = data[position:end]
            position = end
            if number == OPTION_URI_PATH:
                uri_path.append(_utf8(value))
            elif number == OPTION_MAX_AGE:
                if max_age is None:
                    max_age = int.from_bytes(value, "big")
            elif number == OPTION_URI_QUERY:
                if uri_query is None:
                    uri_query = []
                uri_query.append(_utf8(value))
            elif number in _STRING_OPTIONS:
                _utf8(value)
        if uri_query is not None:
            return cls(_COAP_TYPES[(first >> 4) & 0x03], data[1], (data[2] << 8) | data[3],
                       token, tuple(uri_path), payload, max_age, uri_query=tuple(uri_query))
        return cls(_COAP_TYPES[(first >> 4) & 0x03], data[1], (data[2] << 8) | data[3], token,
                   tuple(uri_path), payload, max_age)


OPTION_URI_PATH = 11
OPTION_MAX_AGE = 14
OPTION_URI_QUERY = 15
#: options aiocoap decodes as UTF-8 text (a message with invalid UTF-8 in one is refused)
_STRING_OPTIONS = frozenset((3, 8, 15, 20, 35, 39))


def _option_header(delta: int, length: int) -> bytes:
    if delta < 13 and length < 13:
        return bytes(((delta << 4) | length,))
    delta_nibble, delta_ext = _extension(delta)
    length_nibble, length_ext = _extension(length)
    return bytes(((delta_nibble << 4) | length_nibble,)) + delta_ext + length_ext


def _extension(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    if value < 65804:
        return 14, (value - 269).to_bytes(2, "big")
    raise ValueError("CoAP option value out of range")


def _extended(nibble: int, data: bytes, position: int) -> tuple[int, int]:
    if nibble < 13:
        return nibble, position
    if nibble == 13:
        if position >= len(data):
            raise PeerProtocolError("malformed CoAP message: Option ended prematurely")
        return data[position] + 13, position + 1
    if nibble == 14:
        if position + 2 > len(data):
            raise PeerProtocolError("malformed CoAP message: Option ended prematurely")
        return ((data[position] << 8) | data[position + 1]) + 269, position + 2
    raise PeerProtocolError("malformed CoAP message: Option contained partial payload marker.")


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PeerProtocolError(f"malformed CoAP message: {exc}") from None


_COAP_TYPES = (CoapType.CON, CoapType.NON, CoapType.ACK, CoapType.RST)


# CoAP codes used by the Particle protocol.
EMPTY = 0
GET = 0x01  # 0.01
POST = 0x02  # 0.02
PUT = 0x03  # 0.03
CHANGED = 0x44  # 2.04
CONTENT = 0x45  # 2.05
BAD_REQUEST = 0x80  # 4.00
NOT_FOUND = 0x84  # 4.04
INTERNAL_SERVER_ERROR = 0xA0  # 5.00

URI_HELLO = "h"
URI_DESCRIBE = "d"
URI_TIME = "t"
URI_KEY_CHANGE = "k"  # PUT; a second option byte 1 asks the device to discard its session
URI_SERVER_MOVED = "M"  # POST, protobuf ServerMovedPermanentlyRequest
URI_PRIVATE_EVENT = "E"  # 0x45
URI_PUBLIC_EVENT = "e"  # 0x65
URI_SIGNAL = "s"  # PUT s/<byte>: a second option whose first byte is not 0 starts the signal
URI_FUNCTION = "f"  # POST f/<name>?<argument>
URI_VARIABLE = "v"  # GET v/<name>
MAX_EVENT_NAME_LENGTH = 64
MAX_EVENT_DATA_LENGTH = 1024
#: Device OS 6 ``communication/inc/protocol_defs.h`` (names in bytes of UTF-8)
MAX_FUNCTION_KEY_LENGTH = 64
MAX_VARIABLE_KEY_LENGTH = 64
MAX_FUNCTION_ARG_LENGTH = 1024
MAX_VARIABLE_VALUE_LENGTH = 1024


def event_uri(name: str, private: bool) -> tuple[str, ...]:
    return (URI_PRIVATE_EVENT if private else URI_PUBLIC_EVENT, name)


def parse_event_uri(uri_path: tuple[str, ...]) -> tuple[str, bool] | None:
    """``("E", name)`` -> ``(name, True)``; ``("e", name)`` -> ``(name, False)``; else None."""
    if len(uri_path) >= 2 and uri_path[0] in (URI_PRIVATE_EVENT, URI_PUBLIC_EVENT):
        return "/".join(uri_path[1:]), uri_path[0] == URI_PRIVATE_EVENT
    return None


# -- functions and variables ---------------------------------------------------------------------


class VariableType(IntEnum):
    """``Spark_Data_TypeDef`` (``system/inc/system_cloud.h``): the type codes of the
    application describe's ``"v"`` object."""

    BOOLEAN = 1
    INT = 2
    STRING = 4
    DOUBLE = 9


VariableValue = bool | int | float | str


def encode_variable(kind: VariableType, value: VariableValue) -> bytes:
    """A variable's value as the device sends it (a string truncated to
    ``MAX_VARIABLE_VALUE_LENGTH`` bytes; an int wrapped to int32)."""
    if kind is VariableType.BOOLEAN:
        return b"\x01" if value else b"\x00"
    if kind is VariableType.INT:
        return struct.pack(">i", (int(value) + 2**31) % 2**32 - 2**31)
    if kind is VariableType.DOUBLE:
        return struct.pack("<d", float(value))
    return str(value).encode("utf-8", "surrogatepass")[:MAX_VARIABLE_VALUE_LENGTH]


def decode_variable(kind: VariableType, payload: bytes) -> VariableValue:
    """The value of a variable response; PeerProtocolError when its size does not fit."""
    if kind is VariableType.STRING:
        return payload.decode("utf-8", "replace")
    size = {VariableType.BOOLEAN: 1, VariableType.INT: 4, VariableType.DOUBLE: 8}[kind]
    if len(payload) != size:
        raise PeerProtocolError(f"a {kind.name.lower()} variable of {len(payload)} bytes")
    if kind is VariableType.BOOLEAN:
        return payload != b"\x00"
    if kind is VariableType.INT:
        return int(struct.unpack(">i", payload)[0])
    return float(struct.unpack("<d", payload)[0])


def encode_function_return(value: int) -> bytes:
    """``Messages::function_return``: the int32 return value, big-endian."""
    return struct.pack(">i", (int(value) + 2**31) % 2**32 - 2**31)


# -- HELLO ---------------------------------------------------------------------------------------


class HelloFlag(IntFlag):
    OTA_UPGRADE_SUCCESSFUL = 0x01
    DIAGNOSTICS_SUPPORT = 0x02
    IMMEDIATE_UPDATES_SUPPORT = 0x04
    HANDSHAKE_COMPLETE = 0x08
    GOODBYE_SUPPORT = 0x10
    DEVICE_INITIATED_DESCRIBE = 0x20
    COMPRESSED_OTA = 0x40
    OTA_PROTOCOL_V3 = 0x80


#: Device OS always sets these (``Protocol::hello``, ``communication/src/protocol.cpp``;
#: DEVICE_INITIATED_DESCRIBE because ``system_cloud_internal.cpp`` enables it on every platform).
DEFAULT_HELLO_FLAGS = (HelloFlag.DIAGNOSTICS_SUPPORT | HelloFlag.IMMEDIATE_UPDATES_SUPPORT
                       | HelloFlag.GOODBYE_SUPPORT | HelloFlag.DEVICE_INITIATED_DESCRIBE)

#: Platforms whose HAL sets ``HAL_PLATFORM_OTA_PROTOCOL_V3`` and ``HAL_PLATFORM_COMPRESSED_OTA``
#: in Device OS 6.2.0: 32 (P2, Photon 2: ``hal/src/rtl872x/hal_platform_rtl8721x_config.h``) and
#: 12 (Argon: ``hal/src/nRF52840/hal_platform_nrf52840_config.h``). The Photon (6) of Device OS
#: 2.3.1 sets neither (``hal/inc/hal_platform.h`` defaults both to 0).
OTA_V3_PLATFORM_IDS = frozenset({12, 32})

#: ``COMPRESSED_OTA_MIN_BOOTLOADER_VERSION`` (``system/src/system_cloud_internal.cpp``): 2.0.0
COMPRESSED_OTA_MIN_BOOTLOADER_VERSION = 1000


def hello_flags_for(platform_id: int, bootloader_version: int) -> HelloFlag:
    """The flags a device of ``platform_id`` sets in its HELLO: DEFAULT_HELLO_FLAGS, plus
    OTA_PROTOCOL_V3 where the HAL sets ``HAL_PLATFORM_OTA_PROTOCOL_V3`` (``Protocol::hello``),
    plus COMPRESSED_OTA where it sets ``HAL_PLATFORM_COMPRESSED_OTA`` and the bootloader is at
    least 1000 (the system enables ``Connection::COMPRESSED_OTA`` then). OTA_UPGRADE_SUCCESSFUL
    (after a successful OTA) is not modelled."""
    flags = DEFAULT_HELLO_FLAGS
    if platform_id in OTA_V3_PLATFORM_IDS:
        flags |= HelloFlag.OTA_PROTOCOL_V3
        if bootloader_version >= COMPRESSED_OTA_MIN_BOOTLOADER_VERSION:
            flags |= HelloFlag.COMPRESSED_OTA
    return flags

_HELLO = struct.Struct(">HHHHBB12sHHIH")


@dataclass(frozen=True, slots=True)
class Hello:
    product_id: int
    product_version: int
    flags: int
    platform_id: int
    device_id: bytes
    system_version: int
    max_message_size: int = 1100
    max_binary_size: int = 0x180000
    ota_chunk_size: int = 512

    def encode(self) -> bytes:
        return _HELLO.pack(self.product_id, self.product_version, self.flags, self.platform_id,
                           0, len(self.device_id), self.device_id, self.system_version,
                           self.max_message_size, self.max_binary_size, self.ota_chunk_size)

    @classmethod
    def decode(cls, data: bytes) -> Hello:
        if len(data) != _HELLO.size:
            raise PeerProtocolError(f"HELLO payload must be {_HELLO.size} bytes, got {len(data)}")
        (product_id, product_version, flags, platform_id, _reserved, id_len, device_id,
         system_version, max_msg, max_bin, chunk) = _HELLO.unpack(data)
        if id_len != DEVICE_ID_SIZE:
            raise PeerProtocolError(f"HELLO device id length {id_len} != 12")
        return cls(product_id, product_version, flags, platform_id, device_id, system_version,
                   max_msg, max_bin, chunk)
