"""Which payloads the device's nanopb decoder accepts, and what the device keeps of them.

How this works: Device OS decodes a control request with nanopb 0.4 into C structs whose
buffer sizes come from the ``(nanopb)`` field options. Google's protobuf runtime is lenient
where nanopb is strict (it parses a 65-character claim code that the device's ``char[65]``
cannot hold, and files a known field sent with the wrong wire type under unknown fields) and
strict where nanopb is lenient (it rejects invalid UTF-8 and over-long varints in unknown
fields). ``canonicalize()`` therefore walks the payload against the message descriptor the
way nanopb's ``pb_decode`` does:

* tags are 32-bit varints; field number 0 is "zero tag";
* unknown fields are skipped and dropped (varint, 64-bit, length-delimited, 32-bit wire
  types); the group wire types 3 and 4 and the undefined 6 and 7 are "invalid wire_type";
* a known field with the wrong wire type is "wrong wire type" (a repeated scalar may also
  arrive packed);
* ``uint32``/``sint32`` values that do not fit 32 bits are "integer too large"; ``int32`` and
  enum values are truncated to 32 bits (nanopb casts them, as protobuf does); ``bool`` uses
  nanopb's 32-bit varint reader;
* a string longer than ``max_length`` (or ``max_size - 1``) is "string overflow", bytes longer
  than ``max_size`` are "bytes overflow", a ``fixed_length`` bytes value must be empty or
  exactly ``max_size`` long, more than ``max_count`` elements is "array overflow";
* truncated input is "end-of-stream" / "parent stream too short".

The result is a canonical payload with only what the device keeps: known fields, strings cut
at the first NUL (the device reads them as C strings) and invalid UTF-8 replaced by U+FFFD
(the device does not validate UTF-8; Python strings must be valid). The protobuf runtime can
always parse it. Rejections raise ``BadData`` carrying nanopb's error text.

Limits: callback fields (strings, bytes and repeated fields without a nanopb size) are
validated as protobuf even where a Device OS handler would skip them undecoded; enums are
assumed to be 32-bit (``-fno-short-enums``). Both are UNVERIFIED; see docs/control-requests.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ._pb import nanopb_pb2
from .errors import BadData

WIRE_VARINT = 0
WIRE_64BIT = 1
WIRE_LEN = 2
WIRE_32BIT = 5

_UINT32_MAX = 0xFFFFFFFF
_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1


class _Kind(Enum):
    BOOL = auto()
    INT32 = auto()  # int32 and enums: cast to 32 bits, never an error
    UINT32 = auto()
    SINT32 = auto()
    VARINT64 = auto()  # int64, uint64, sint64
    FIXED32 = auto()  # fixed32, sfixed32, float
    FIXED64 = auto()  # fixed64, sfixed64, double
    STRING = auto()
    BYTES = auto()
    MESSAGE = auto()


_KIND_BY_TYPE: dict[int, _Kind] = {
    FieldDescriptor.TYPE_BOOL: _Kind.BOOL,
    FieldDescriptor.TYPE_INT32: _Kind.INT32,
    FieldDescriptor.TYPE_ENUM: _Kind.INT32,
    FieldDescriptor.TYPE_UINT32: _Kind.UINT32,
    FieldDescriptor.TYPE_SINT32: _Kind.SINT32,
    FieldDescriptor.TYPE_INT64: _Kind.VARINT64,
    FieldDescriptor.TYPE_UINT64: _Kind.VARINT64,
    FieldDescriptor.TYPE_SINT64: _Kind.VARINT64,
    FieldDescriptor.TYPE_FIXED32: _Kind.FIXED32,
    FieldDescriptor.TYPE_SFIXED32: _Kind.FIXED32,
    FieldDescriptor.TYPE_FLOAT: _Kind.FIXED32,
    FieldDescriptor.TYPE_FIXED64: _Kind.FIXED64,
    FieldDescriptor.TYPE_SFIXED64: _Kind.FIXED64,
    FieldDescriptor.TYPE_DOUBLE: _Kind.FIXED64,
    FieldDescriptor.TYPE_STRING: _Kind.STRING,
    FieldDescriptor.TYPE_BYTES: _Kind.BYTES,
    FieldDescriptor.TYPE_MESSAGE: _Kind.MESSAGE,
}

_WIRE_BY_KIND: dict[_Kind, int] = {
    _Kind.BOOL: WIRE_VARINT,
    _Kind.INT32: WIRE_VARINT,
    _Kind.UINT32: WIRE_VARINT,
    _Kind.SINT32: WIRE_VARINT,
    _Kind.VARINT64: WIRE_VARINT,
    _Kind.FIXED32: WIRE_32BIT,
    _Kind.FIXED64: WIRE_64BIT,
    _Kind.STRING: WIRE_LEN,
    _Kind.BYTES: WIRE_LEN,
    _Kind.MESSAGE: WIRE_LEN,
}


@dataclass(frozen=True)
class FieldLimits:
    """The nanopb sizing options of one field (all ``None``/``False`` for callback fields)."""

    max_length: int | None = None  # string characters, excluding the NUL
    max_size: int | None = None  # bytes; for strings: including the NUL
    max_count: int | None = None  # repeated elements
    fixed_length: bool = False

    @property
    def max_string_bytes(self) -> int | None:
        """Longest string the static ``char[]`` buffer holds, or ``None`` (callback field)."""
        if self.max_length is not None:
            return self.max_length
        if self.max_size is not None:
            return self.max_size - 1
        return None


def read_option(options: Message, extension: FieldDescriptor) -> Any:
    """Value of a custom option (an extension of ``*Options``), or ``None`` if unset.

    grpcio-tools' .pyi stubs type extensions as plain ``FieldDescriptor``s, hence ``Any``.
    """
    untyped: Any = options
    if not untyped.HasExtension(extension):
        return None
    return untyped.Extensions[extension]


def field_limits(descriptor: FieldDescriptor) -> FieldLimits:
    """Read the ``(nanopb)`` options of a field."""
    nanopb = read_option(descriptor.GetOptions(), nanopb_pb2.nanopb)
    if nanopb is None:
        return FieldLimits()
    return FieldLimits(
        max_length=nanopb.max_length if nanopb.HasField("max_length") else None,
        max_size=nanopb.max_size if nanopb.HasField("max_size") else None,
        max_count=nanopb.max_count if nanopb.HasField("max_count") else None,
        fixed_length=nanopb.fixed_length,
    )


@dataclass(frozen=True)
class _FieldRule:
    number: int
    name: str
    kind: _Kind
    repeated: bool
    limits: FieldLimits
    message: Descriptor | None

    @property
    def wire_type(self) -> int:
        return _WIRE_BY_KIND[self.kind]

    @property
    def packable(self) -> bool:
        return self.repeated and self.wire_type != WIRE_LEN


@dataclass(frozen=True)
class _MessageRule:
    full_name: str
    fields: dict[int, _FieldRule] = field(default_factory=dict)


_RULES: dict[Descriptor, _MessageRule] = {}


def _rule_for(descriptor: Descriptor) -> _MessageRule:
    rule = _RULES.get(descriptor)
    if rule is None:
        rule = _MessageRule(descriptor.full_name)
        for item in descriptor.fields:
            kind = _KIND_BY_TYPE.get(item.type)
            if kind is None:  # groups: not used by any control-request message
                raise TypeError(f"{item.full_name}: unsupported field type {item.type}")
            rule.fields[item.number] = _FieldRule(
                number=item.number,
                name=item.name,
                kind=kind,
                repeated=item.is_repeated,
                limits=field_limits(item),
                message=item.message_type if kind is _Kind.MESSAGE else None,
            )
        _RULES[descriptor] = rule
    return rule


class _Reader:
    """Cursor over the payload; every failure raises ``BadData`` with nanopb's wording."""

    def __init__(self, data: bytes, message_name: str) -> None:
        self.data = data
        self.message_name = message_name
        self.path: list[str] = []

    def fail(self, reason: str) -> BadData:
        return BadData(reason, message_name=self.message_name, field=".".join(self.path))

    def byte(self, pos: int, end: int) -> int:
        if pos >= end:
            raise self.fail("end-of-stream")
        return self.data[pos]

    def varint64(self, pos: int, end: int) -> tuple[int, int]:
        """nanopb ``pb_decode_varint``: at most 64 bits, a 10th byte may only be 0 or 1."""
        result = 0
        shift = 0
        while True:
            byte = self.byte(pos, end)
            pos += 1
            if shift >= 63 and byte & 0xFE:
                raise self.fail("varint overflow")
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, pos

    def varint32(self, pos: int, end: int) -> tuple[int, int]:
        """nanopb ``pb_decode_varint32``: 32 bits, tolerating zero or sign-extension bytes."""
        byte = self.byte(pos, end)
        pos += 1
        if not byte & 0x80:
            return byte, pos
        result = byte & 0x7F
        shift = 7
        while True:
            byte = self.byte(pos, end)
            pos += 1
            if shift >= 32:
                sign_extension = 0xFF if shift < 63 else 0x01
                valid = (byte & 0x7F) == 0 or (result >> 31 != 0 and byte == sign_extension)
                if shift >= 64 or not valid:
                    raise self.fail("varint overflow")
            elif shift == 28:
                if (byte & 0x70) != 0 and (byte & 0x78) != 0x78:
                    raise self.fail("varint overflow")
                result |= (byte & 0x0F) << 28
            else:
                result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, pos

    def skip(self, wire_type: int, pos: int, end: int) -> int:
        """nanopb ``pb_skip_field`` for an unknown field; returns the position after it."""
        if wire_type == WIRE_VARINT:
            while self.byte(pos, end) & 0x80:  # no length limit, as in pb_skip_varint
                pos += 1
            return pos + 1
        if wire_type == WIRE_64BIT:
            return self.take(pos, 8, end)
        if wire_type == WIRE_32BIT:
            return self.take(pos, 4, end)
        if wire_type == WIRE_LEN:
            length, pos = self.varint32(pos, end)
            return self.take(pos, length, end)
        raise self.fail("invalid wire_type")

    def take(self, pos: int, count: int, end: int) -> int:
        if count > end - pos:
            raise self.fail("end-of-stream")
        return pos + count

    def substream(self, pos: int, end: int) -> tuple[int, int]:
        """``pb_make_string_substream``: a length prefix and that many bytes."""
        length, pos = self.varint32(pos, end)
        if length > end - pos:
            raise self.fail("parent stream too short")
        return pos, pos + length


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _scalar(reader: _Reader, rule: _FieldRule, pos: int, end: int) -> int:
    """Validate one scalar value the way nanopb decodes it; return the position after it."""
    kind = rule.kind
    if kind is _Kind.BOOL:
        return reader.varint32(pos, end)[1]
    if kind is _Kind.FIXED32:
        return reader.take(pos, 4, end)
    if kind is _Kind.FIXED64:
        return reader.take(pos, 8, end)
    value, pos = reader.varint64(pos, end)
    if kind is _Kind.UINT32 and value > _UINT32_MAX:
        raise reader.fail("integer too large")
    if kind is _Kind.SINT32:
        decoded = (value >> 1) ^ -(value & 1)
        if not _INT32_MIN <= decoded <= _INT32_MAX:
            raise reader.fail("integer too large")
    return pos


def _device_string(raw: bytes) -> bytes:
    """What the device's C code sees of a string: up to the first NUL, as UTF-8 for Python."""
    cut = raw.split(b"\x00", 1)[0]
    return cut.decode("utf-8", errors="replace").encode("utf-8")


def _walk(reader: _Reader, rule: _MessageRule, pos: int, end: int) -> bytes:
    out = bytearray()
    counts: dict[int, int] = {}
    while pos < end:
        key, pos = reader.varint32(pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise reader.fail("zero tag")
        item = rule.fields.get(number)
        if item is None:
            pos = reader.skip(wire_type, pos, end)
            continue
        reader.path.append(item.name)
        # Keys and lengths are re-encoded minimally: nanopb tolerates padded varints there,
        # the protobuf runtime does not have to.
        out += _encode_varint(key)
        if item.packable and wire_type == WIRE_LEN:
            first, pos = reader.substream(pos, end)
            elements = 0
            cursor = first
            while cursor < pos:
                cursor = _scalar(reader, item, cursor, pos)
                elements += 1
            _count(reader, item, counts, elements)
            out += _encode_varint(pos - first) + reader.data[first:pos]
        elif wire_type != item.wire_type:
            raise reader.fail("wrong wire type")
        elif item.kind is _Kind.MESSAGE:
            assert item.message is not None
            first, stop = reader.substream(pos, end)
            _count(reader, item, counts, 1)
            inner = _walk(reader, _rule_for(item.message), first, stop)
            pos = stop
            out += _encode_varint(len(inner)) + inner
        elif item.kind in (_Kind.STRING, _Kind.BYTES):
            pos, value = _length_delimited(reader, item, pos, end)
            _count(reader, item, counts, 1)
            if item.kind is _Kind.STRING:
                value = _device_string(value)
            out += _encode_varint(len(value)) + value
        else:
            first = pos
            pos = _scalar(reader, item, pos, end)
            _count(reader, item, counts, 1)
            out += reader.data[first:pos]
        reader.path.pop()
    return bytes(out)


def _length_delimited(reader: _Reader, item: _FieldRule, pos: int, end: int) -> tuple[int, bytes]:
    """Read a string or bytes value and apply its nanopb buffer limit."""
    limits = item.limits
    if item.kind is _Kind.STRING:
        capacity = limits.max_string_bytes
        overflow = "string overflow"
    else:
        capacity = limits.max_size
        overflow = "bytes overflow"
    if capacity is None:  # callback field: a plain substream
        first, stop = reader.substream(pos, end)
        return stop, reader.data[first:stop]
    length, pos = reader.varint32(pos, end)
    if item.kind is _Kind.BYTES and limits.fixed_length:
        if length not in (0, capacity):
            raise reader.fail("incorrect fixed length bytes size")
    elif length > capacity:
        raise reader.fail(overflow)
    stop = reader.take(pos, length, end)
    return stop, reader.data[pos:stop]


def _count(reader: _Reader, item: _FieldRule, counts: dict[int, int], added: int) -> None:
    if not item.repeated:
        return
    total = counts.get(item.number, 0) + added
    counts[item.number] = total
    if item.limits.max_count is not None and total > item.limits.max_count:
        raise reader.fail("array overflow")


def canonicalize(descriptor: Descriptor, payload: bytes) -> bytes:
    """Apply the device's decode rules to ``payload``; return what the device keeps.

    Raises ``BadData`` (result code -280) where nanopb's ``pb_decode`` would fail.
    """
    reader = _Reader(bytes(payload), descriptor.full_name)
    return _walk(reader, _rule_for(descriptor), 0, len(reader.data))


__all__ = ["FieldLimits", "canonicalize", "field_limits", "read_option"]
