"""Random, fully populated protobuf messages for tests (property tests, interop checks).

How this works: ``populate()`` walks a message descriptor and fills every field from a
``random.Random``: scalars across their whole range, enums from their declared values,
strings from a mixed ASCII/non-ASCII alphabet, bytes, repeated fields, submessages down to a
depth limit, one member (or none) of each oneof, and proto3 ``optional`` fields sometimes left
unset. With ``within_nanopb_limits`` (the default) every value fits the device's nanopb
buffers and strings contain no NUL, so ``codec.decode_request`` returns the message unchanged.
Works for message classes from any descriptor pool (Particle's own, in the interop test).
"""

from __future__ import annotations

import random
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .nanopb_rules import field_limits

M = TypeVar("M", bound=Message)

_ALPHABET = "abcXYZ019 -_.:/é漢字😀"
_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _pick_int(rng: random.Random, low: int, high: int) -> int:
    choice = rng.random()
    if choice < 0.2:
        return rng.choice([low, high, 0, 1])
    if choice < 0.6:
        return rng.randint(max(low, -300), min(high, 300))
    return rng.randint(low, high)


def _text(rng: random.Random, max_bytes: int | None) -> str:
    limit = 40 if max_bytes is None else max_bytes
    length = rng.choice([0, 1, limit, rng.randint(0, limit)])
    text = "".join(rng.choice(_ALPHABET) for _ in range(length))
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


def _scalar(rng: random.Random, field: FieldDescriptor, within_limits: bool) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5
    if kind in _INT_RANGES:
        return _pick_int(rng, *_INT_RANGES[kind])
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return float(rng.randint(-1000, 1000)) / 4
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return rng.choice([value.number for value in field.enum_type.values])
    limits = field_limits(field)
    if kind == FieldDescriptor.TYPE_STRING:
        return _text(rng, limits.max_string_bytes if within_limits else None)
    if kind == FieldDescriptor.TYPE_BYTES:
        size = limits.max_size if within_limits else None
        if limits.fixed_length and size is not None:
            return rng.randbytes(rng.choice([0, size]))
        return rng.randbytes(rng.randint(0, 12 if size is None else size))
    raise TypeError(f"{field.full_name}: unsupported field type {kind}")


def _is_synthetic(oneof: Any) -> bool:
    """The hidden oneof protoc wraps around a proto3 ``optional`` field."""
    return len(oneof.fields) == 1 and bool(oneof.name == "_" + oneof.fields[0].name)


def _fill(
    message: Message, rng: random.Random, depth: int, max_repeated: int, within_limits: bool
) -> None:
    descriptor = cast(Descriptor, message.DESCRIPTOR)
    chosen = {
        oneof.name: rng.choice([None, *oneof.fields])
        for oneof in descriptor.oneofs
        if not _is_synthetic(oneof)
    }
    untyped: Any = message
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and oneof.name in chosen:
            if chosen[oneof.name] is not field:
                continue
        elif field.has_presence and not field.is_repeated and rng.random() < 0.3:
            continue  # leave an optional field unset now and then
        is_message = field.type == FieldDescriptor.TYPE_MESSAGE
        if is_message and depth <= 0:
            continue
        if field.is_repeated:
            limit = field_limits(field).max_count if within_limits else None
            count = rng.randint(0, max_repeated if limit is None else min(limit, max_repeated))
            container = getattr(untyped, field.name)
            for _ in range(count):
                if is_message:
                    _fill(container.add(), rng, depth - 1, max_repeated, within_limits)
                else:
                    container.append(_scalar(rng, field, within_limits))
        elif is_message:
            child = getattr(untyped, field.name)
            child.SetInParent()
            _fill(child, rng, depth - 1, max_repeated, within_limits)
        else:
            setattr(untyped, field.name, _scalar(rng, field, within_limits))


def populate(
    message_class: type[M],
    rng: random.Random,
    *,
    within_nanopb_limits: bool = True,
    max_depth: int = 4,
    max_repeated: int = 3,
) -> M:
    """A new ``message_class`` instance with (nearly) every field set from ``rng``."""
    message = message_class()
    _fill(message, rng, max_depth, max_repeated, within_nanopb_limits)
    return message


__all__ = ["populate"]
