"""Which payloads the device's nanopb decoder accepts, and what the device keeps of them.

How this works: Device OS 6.2 decodes control requests with nanopb 0.4.5 (its generated
``proto_defs`` say so) into C structs sized by the ``(nanopb)`` field options, compiled with
``-fshort-enums``. Google's protobuf runtime is lenient where nanopb is strict (it parses a
65-character claim code that the device's ``char code[65]`` cannot hold, and files a known
field sent with the wrong wire type under unknown fields) and strict where nanopb is lenient
(invalid UTF-8, over-long varints in skipped fields). ``canonicalize()`` therefore walks the
payload against the message descriptor the way ``pb_decode_noinit`` does:

* tags are 32-bit varints (nanopb's ``pb_decode_varint32``: zero-padding and 32-bit sign
  extension allowed, anything wider is "varint overflow"); field number 0 is "zero tag";
* unknown fields are skipped and dropped: varint (any length), 64-bit, length-delimited and
  32-bit wire types; the group wire types 3/4 and the undefined 6/7 are "invalid wire_type";
* static fields: the wrong wire type is "wrong wire type" (a repeated scalar may also arrive
  packed); varints longer than 10 bytes are "varint overflow"; ``bool`` uses the 32-bit
  reader; ``int32`` is cast to 32 bits; ``uint32``/``sint32`` must fit 32 bits and enums must
  fit their C type (the smallest integer type holding the declared values; nanopb decodes an
  enum without negative values as unsigned), else "integer too large";
* a string longer than ``max_length`` (``max_size - 1``) is "string overflow"; bytes longer
  than their ``PB_BYTES_ARRAY_T`` (``max_size`` rounded up to even, the struct's padding with
  nanopb's 16-bit ``pb_size_t``) are "bytes overflow"; a ``fixed_length`` value must be empty
  or exactly ``max_size`` long; more than ``max_count`` elements is "array overflow";
* callback fields (strings and bytes without a size, repeated fields without ``max_count``)
  accept any well-formed wire value: the device only looks inside where a handler installed a
  decode callback. A string or bytes value sent with a scalar wire type becomes its raw bytes,
  as Device OS's ``DecodedString``/``DecodedCString`` callbacks read it. Elements of a callback
  repeated field that do not decode are dropped (no Device OS 6.2 request handler decodes a
  repeated field; nanopb skips them unchecked);
* truncated input is "end-of-stream" / "parent stream too short".

The result is a canonical payload holding only what the device keeps: known fields with
minimally encoded keys, lengths and the integer values the device stores, strings cut at the
first NUL (handlers read them as C strings) and otherwise byte for byte - the device does not
validate UTF-8, so the string fields are parsed into bytes (``codec.device_class``).
Rejections raise ``BadData`` with nanopb's error text (the device itself is built with
``PB_NO_ERRMSG``; only the result code BAD_DATA reaches the wire).

``canonicalize(..., strict=True)`` checks the other direction, for replies the simulation is
about to send: every static limit holds, including inside callback elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from ._pb import nanopb_pb2
from .errors import BadData
from .types import read_option

WIRE_VARINT = 0
WIRE_64BIT = 1
WIRE_LEN = 2
WIRE_32BIT = 5
_SKIPPABLE = (WIRE_VARINT, WIRE_64BIT, WIRE_LEN, WIRE_32BIT)

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_BYTES_ARRAY_ALIGNMENT = 2  # PB_BYTES_ARRAY_T with the default 16-bit pb_size_t
_PB_SIZE_MAX = 0xFFFF


class _Kind(Enum):
    BOOL = auto()
    INT32 = auto()  # cast to 32 bits, never an error
    UINT32 = auto()
    SINT32 = auto()
    ENUM = auto()  # range from the C enum type, see _enum_range
    VARINT64 = auto()  # int64, uint64, sint64
    FIXED32 = auto()  # fixed32, sfixed32, float
    FIXED64 = auto()  # fixed64, sfixed64, double
    STRING = auto()
    BYTES = auto()
    MESSAGE = auto()


_KIND_BY_TYPE: dict[int, _Kind] = {
    FieldDescriptor.TYPE_BOOL: _Kind.BOOL,
    FieldDescriptor.TYPE_INT32: _Kind.INT32,
    FieldDescriptor.TYPE_ENUM: _Kind.ENUM,
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

    @property
    def max_bytes_accepted(self) -> int | None:
        """Longest bytes value the device's decoder accepts, or ``None`` (callback field).

        ``PB_BYTES_ARRAY_T(n)`` is ``{uint16 size; uint8 bytes[n]}``: for an odd ``n`` the
        struct's padding byte is usable, and nanopb checks against the struct size.
        """
        if self.max_size is None:
            return None
        if self.fixed_length:
            return self.max_size
        return self.max_size + (-self.max_size) % _BYTES_ARRAY_ALIGNMENT


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


def _enum_range(enum: EnumDescriptor) -> tuple[int, int]:
    """Values the device's C enum field stores (GCC ``-fshort-enums`` sizing, nanopb casts)."""
    numbers = [value.number for value in enum.values]
    low, high = min(numbers), max(numbers)
    for bits in (8, 16, 32):
        if low >= 0 and high < 1 << bits:
            return 0, (1 << bits) - 1  # UENUM: decoded unsigned
        if low >= -(1 << (bits - 1)) and high < 1 << (bits - 1):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class _FieldRule:
    number: int
    name: str
    kind: _Kind
    repeated: bool
    limits: FieldLimits
    message: Descriptor | None
    enum_range: tuple[int, int] | None

    @property
    def wire_type(self) -> int:
        return _WIRE_BY_KIND.get(self.kind, WIRE_VARINT)

    @property
    def packable(self) -> bool:
        return self.repeated and self.wire_type != WIRE_LEN

    @property
    def callback(self) -> bool:
        """nanopb allocates no storage: the field is handed to a decode callback."""
        if self.repeated:
            return self.limits.max_count is None
        if self.kind is _Kind.STRING:
            return self.limits.max_string_bytes is None
        if self.kind is _Kind.BYTES:
            return self.limits.max_size is None
        return False


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
                enum_range=_enum_range(item.enum_type) if item.enum_type is not None else None,
            )
        _RULES[descriptor] = rule
    return rule


class _Reader:
    """Cursor over the payload; every failure raises ``BadData`` with nanopb's wording."""

    def __init__(self, data: bytes, message_name: str, strict: bool) -> None:
        self.data = data
        self.message_name = message_name
        self.strict = strict
        self.path: list[str] = []

    def fail(self, reason: str) -> BadData:
        return BadData(reason, message_name=self.message_name, field=".".join(self.path))

    def byte(self, pos: int, end: int) -> int:
        if pos >= end:
            raise self.fail("end-of-stream")
        return self.data[pos]

    def take(self, pos: int, count: int, end: int) -> int:
        if count > end - pos:
            raise self.fail("end-of-stream")
        return pos + count

    def varint64(self, pos: int, end: int) -> tuple[int, int]:
        """``pb_decode_varint``: at most 10 bytes; bits above 64 are dropped."""
        result = 0
        shift = 0
        while True:
            if shift >= 64:
                raise self.fail("varint overflow")
            byte = self.byte(pos, end)
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result & _MASK64, pos

    def varint32(self, pos: int, end: int) -> tuple[int, int]:
        """``pb_decode_varint32``: 32 bits, tolerating zero-padding or sign extension."""
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
            else:
                result = (result | (byte & 0x7F) << shift) & _MASK32
            shift += 7
            if not byte & 0x80:
                break
        if shift == 35 and byte & 0x70:  # the last byte held bits 28..34
            raise self.fail("varint overflow")
        return result, pos

    def substream(self, pos: int, end: int) -> tuple[int, int]:
        """``pb_make_string_substream``: a length prefix and that many bytes."""
        length, pos = self.varint32(pos, end)
        if length > end - pos:
            raise self.fail("parent stream too short")
        return pos, pos + length

    def skip(self, wire_type: int, pos: int, end: int) -> int:
        """``pb_skip_field`` for an unknown field; returns the position after it."""
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

    def raw_value(self, wire_type: int, pos: int, end: int) -> tuple[int, int]:
        """``read_raw_value`` (callback fields, scalar wire types); returns the value span."""
        if wire_type == WIRE_VARINT:
            stop = pos
            while True:
                if stop - pos >= 10:
                    raise self.fail("varint overflow")
                byte = self.byte(stop, end)
                stop += 1
                if not byte & 0x80:
                    return pos, stop
        if wire_type == WIRE_64BIT:
            return pos, self.take(pos, 8, end)
        if wire_type == WIRE_32BIT:
            return pos, self.take(pos, 4, end)
        raise self.fail("invalid wire_type")


def _encode_varint(value: int) -> bytes:
    value &= _MASK64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _scalar(reader: _Reader, rule: _FieldRule, pos: int, end: int) -> tuple[bytes, int]:
    """Decode one scalar as nanopb does; return the value as the device stores it, encoded."""
    kind = rule.kind
    if kind is _Kind.BOOL:
        value, pos = reader.varint32(pos, end)
        return (b"\x01" if value else b"\x00"), pos
    if kind is _Kind.FIXED32:
        stop = reader.take(pos, 4, end)
        return reader.data[pos:stop], stop
    if kind is _Kind.FIXED64:
        stop = reader.take(pos, 8, end)
        return reader.data[pos:stop], stop
    value, pos = reader.varint64(pos, end)
    if kind is _Kind.INT32:
        return _encode_varint(_signed(value, 32)), pos
    if kind is _Kind.UINT32:
        if value > _MASK32:
            raise reader.fail("integer too large")
    elif kind is _Kind.SINT32:
        decoded = (value >> 1) ^ -(value & 1)
        if _signed(decoded, 32) != decoded:
            raise reader.fail("integer too large")
    elif kind is _Kind.ENUM:
        assert rule.enum_range is not None
        low, high = rule.enum_range
        stored = value if low == 0 else _signed(value, 32)
        if not low <= stored <= high:
            raise reader.fail("integer too large")
        return _encode_varint(stored), pos
    return _encode_varint(value), pos


def _device_string(raw: bytes) -> bytes:
    """What the device's C code sees of a string: its bytes up to the first NUL, unchanged
    (nanopb does not validate UTF-8)."""
    return raw.split(b"\x00", 1)[0]


def _length_prefixed(value: bytes) -> bytes:
    return _encode_varint(len(value)) + value


def _static_string_or_bytes(
    reader: _Reader, item: _FieldRule, pos: int, end: int
) -> tuple[bytes, int]:
    """``pb_dec_string`` / ``pb_dec_bytes`` / ``pb_dec_fixed_length_bytes`` on a static field."""
    limits = item.limits
    length, pos = reader.varint32(pos, end)
    if item.kind is _Kind.STRING:
        capacity = limits.max_string_bytes
        overflow = "string overflow"
    else:
        capacity = limits.max_bytes_accepted
        overflow = "bytes overflow"
    assert capacity is not None
    if item.kind is _Kind.STRING and length == _MASK32:
        raise reader.fail("size too large")
    if item.kind is _Kind.BYTES and length > _PB_SIZE_MAX:
        raise reader.fail("bytes overflow")
    if item.kind is _Kind.BYTES and limits.fixed_length:
        if length not in (0, capacity):
            raise reader.fail("incorrect fixed length bytes size")
    elif length > capacity:
        raise reader.fail(overflow)
    stop = reader.take(pos, length, end)
    value = reader.data[pos:stop]
    return (_device_string(value) if item.kind is _Kind.STRING else value), stop


def _static_value(
    reader: _Reader, item: _FieldRule, wire_type: int, pos: int, end: int
) -> tuple[bytes, int, int]:
    """One static field occurrence: (encoded value without key, new position, element count)."""
    if item.packable and wire_type == WIRE_LEN:
        first, stop = reader.substream(pos, end)
        values = bytearray()
        count = 0
        cursor = first
        while cursor < stop:
            value, cursor = _scalar(reader, item, cursor, stop)
            values += value
            count += 1
        return _length_prefixed(bytes(values)), stop, count
    if wire_type != item.wire_type:
        raise reader.fail("wrong wire type")
    if item.kind is _Kind.MESSAGE:
        assert item.message is not None
        first, stop = reader.substream(pos, end)
        inner = _walk(reader, _rule_for(item.message), first, stop)
        return _length_prefixed(inner), stop, 1
    if item.kind in (_Kind.STRING, _Kind.BYTES):
        value, stop = _static_string_or_bytes(reader, item, pos, end)
        return _length_prefixed(value), stop, 1
    value, stop = _scalar(reader, item, pos, end)
    return value, stop, 1


def _callback_value(
    reader: _Reader, item: _FieldRule, wire_type: int, pos: int, end: int
) -> tuple[bytes | None, int]:
    """One callback field occurrence: (encoded value without key or None to drop, position)."""
    if wire_type == WIRE_LEN:
        first, stop = reader.substream(pos, end)
    elif wire_type in _SKIPPABLE:
        first, stop = reader.raw_value(wire_type, pos, end)
    else:
        raise reader.fail("invalid wire_type")
    if not item.repeated:  # string or bytes: whatever the callback reads
        value = reader.data[first:stop]
        if item.kind is _Kind.STRING:
            value = _device_string(value)
        return _length_prefixed(value), stop
    # Repeated: an element the device leaves undecoded; keep it only if it is well-formed.
    inner = _Reader(reader.data, reader.message_name, reader.strict)
    inner.path = list(reader.path)
    try:
        if item.kind in (_Kind.STRING, _Kind.BYTES) and wire_type == WIRE_LEN:
            value = reader.data[first:stop]
            if item.kind is _Kind.STRING:
                value = _device_string(value)
            return _length_prefixed(value), stop
        encoded, value_end, _count = _static_value(inner, item, wire_type, pos, stop)
        if value_end != stop:
            raise inner.fail("end-of-stream")
        return encoded, stop
    except BadData:
        if reader.strict:
            raise
        return None, stop


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
        if item.callback:
            encoded, pos = _callback_value(reader, item, wire_type, pos, end)
            elements = 0 if encoded is None else 1
        else:
            static, pos, elements = _static_value(reader, item, wire_type, pos, end)
            encoded = static
        if item.repeated and item.limits.max_count is not None:
            counts[number] = counts.get(number, 0) + elements
            if counts[number] > item.limits.max_count:
                raise reader.fail("array overflow")
        if encoded is not None:
            # Re-encode the key minimally: nanopb tolerates padded varints there.
            wire = WIRE_LEN if (item.packable and wire_type == WIRE_LEN) else item.wire_type
            out += _encode_varint(number << 3 | wire) + encoded
        reader.path.pop()
    return bytes(out)


def canonicalize(descriptor: Descriptor, payload: bytes, *, strict: bool = False) -> bytes:
    """Apply the device's decode rules to ``payload``; return what the device keeps.

    Raises ``BadData`` (result code -280) where nanopb's ``pb_decode`` would fail. With
    ``strict`` the elements of callback repeated fields must be valid too (reply checks).
    """
    reader = _Reader(bytes(payload), descriptor.full_name, strict)
    return _walk(reader, _rule_for(descriptor), 0, len(reader.data))


__all__ = ["FieldLimits", "canonicalize", "field_limits", "read_option"]
