"""Protobuf codec of control requests: which messages a request type uses, and their bytes.

How this works: the request message of every type is found through the ``(type_id)`` option
that the generated ``_pb`` modules carry (no hand-written table), except where Particle's
.proto files disagree with Device OS (``TYPE_ID_CORRECTIONS``). The reply message is the
request's name with ``Request`` replaced by ``Reply`` (exceptions in ``REPLY_NAME_EXCEPTIONS``).
Types without protobuf messages (ECHO, DIAGNOSTIC_INFO, the reset family, ...) have raw or
empty payloads and no entry.

Device side: ``decode_request`` applies the nanopb decoder's rules (``nanopb_rules``) before
parsing, so a payload the device could not decode raises ``BadData`` (BAD_DATA, -280) and the
handler sees what the device's structs hold: unknown fields dropped, strings cut at a NUL. A
string field on the device is a ``char[]``: nanopb passes its bytes unchanged, valid UTF-8 or
not. The device view therefore parses into a *bytes twin* of each message class - the same
message with every ``string`` field declared ``bytes`` (``device_class``), built once in a
private descriptor pool - so a claim code starting with 0xFF reaches the DCT as 0xFF, as on
the device. ``device_view`` gives the twin of a host message (what the device decodes from it).
``encode_reply`` serializes deterministically (field-number order, defaults omitted: the same
bytes nanopb writes) and refuses replies that overflow a nanopb buffer
(``ReplyEncodingFailed``, UNKNOWN -100 as Device OS's ``encodeReplyMessage`` reports it).

Host side: ``encode_request`` and ``decode_reply`` are plain protobuf, as Particle's JS
clients are; they do not apply nanopb limits, so tests can send what a real client could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from firmware_sim.kernel.errors import UsageError

from ._pb import (
    cellular_pb2,
    cloud_pb2,
    config_pb2,
    extensions_pb2,
    logging_pb2,
    mesh_pb2,
    network_legacy_pb2,
    network_pb2,
    storage_pb2,
    wifi_legacy_pb2,
    wifi_pb2,
)
from .errors import BadData, ReplyEncodingFailed
from .nanopb_rules import canonicalize, read_option
from .types import RequestType

#: Generated modules that hold request messages.
REQUEST_MODULES: tuple[ModuleType, ...] = (
    config_pb2,
    cloud_pb2,
    wifi_pb2,
    network_pb2,
    network_legacy_pb2,
    storage_pb2,
    cellular_pb2,
    logging_pb2,
    mesh_pb2,
    wifi_legacy_pb2,
)

#: Request messages whose ``(type_id)`` in Particle's .proto files is not the number Device OS
#: (``system_control.h``) and particle-usb (``src/request.js``) use. Device OS wins.
TYPE_ID_CORRECTIONS: Mapping[str, RequestType] = MappingProxyType(
    {
        # Particle's network_old.proto says 120 (GET) and 121 (SET): swapped.
        "particle.ctrl.NetworkSetConfigurationRequest": RequestType.NETWORK_SET_CONFIGURATION,
        "particle.ctrl.NetworkGetConfigurationRequest": RequestType.NETWORK_GET_CONFIGURATION,
    }
)

#: Request messages whose reply is not named ``<name without Request>Reply``. Every message
#: in device-os-protobuf 2.9.0 follows the convention, so this is empty; add entries here.
REPLY_NAME_EXCEPTIONS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class MessagePair:
    """The protobuf request and reply message classes of one request type."""

    request_type: RequestType
    request: type[Message]
    reply: type[Message]

    @property
    def request_is_empty(self) -> bool:
        """True when the request message has no fields (Device OS does not decode it)."""
        return not self.request.DESCRIPTOR.fields


def type_id_of(message_class: type[Message]) -> int | None:
    """The raw ``(type_id)`` option of a message class, or ``None``."""
    value = read_option(message_class.DESCRIPTOR.GetOptions(), extensions_pb2.type_id)
    return None if value is None else int(value)


def _build_registry() -> dict[RequestType, MessagePair]:
    registry: dict[RequestType, MessagePair] = {}
    for module in REQUEST_MODULES:
        for name in module.DESCRIPTOR.message_types_by_name:
            request = getattr(module, name)
            raw = type_id_of(request)
            if raw is None:
                continue
            full_name = request.DESCRIPTOR.full_name
            request_type = TYPE_ID_CORRECTIONS.get(full_name) or RequestType(raw)
            reply_name = REPLY_NAME_EXCEPTIONS.get(full_name) or (
                name.removesuffix("Request") + "Reply"
            )
            reply = getattr(module, reply_name)
            if request_type in registry:
                raise RuntimeError(
                    f"{full_name} and {registry[request_type].request.DESCRIPTOR.full_name} "
                    f"both claim request type {request_type.name}"
                )
            registry[request_type] = MessagePair(request_type, request, reply)
    return registry


_REGISTRY: Mapping[RequestType, MessagePair] = MappingProxyType(
    dict(sorted(_build_registry().items()))
)


def message_pairs() -> Mapping[RequestType, MessagePair]:
    """Every request type that has protobuf messages, in numeric order."""
    return _REGISTRY


def message_pair(request_type: int) -> MessagePair | None:
    """The messages of ``request_type``, or ``None`` if its payload is not protobuf."""
    try:
        return _REGISTRY.get(RequestType(request_type))
    except ValueError:
        return None


def _pair_or_fail(request_type: int) -> MessagePair:
    pair = message_pair(request_type)
    if pair is None:
        raise UsageError(f"control request type {request_type} has no protobuf messages")
    return pair


def request_class(request_type: int) -> type[Message]:
    """Request message class of ``request_type`` (``UsageError`` if it has none)."""
    return _pair_or_fail(request_type).request


def reply_class(request_type: int) -> type[Message]:
    """Reply message class of ``request_type`` (``UsageError`` if it has none)."""
    return _pair_or_fail(request_type).reply


# -- the device view: string fields as bytes ----------------------------------------------------

#: one twin pool per source pool (the legacy Wi-Fi file lives in a pool of its own, see
#: ``_pb/_isolated_pool.py``)
_TWIN_POOLS: dict[int, descriptor_pool.DescriptorPool] = {}
_TWINS: dict[tuple[int, str], type[Message]] = {}


def _strings_as_bytes(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
    for nested in message.nested_type:
        _strings_as_bytes(nested)


def _add_twin_file(pool: descriptor_pool.DescriptorPool, file: Any) -> None:
    """Add ``file`` (a ``FileDescriptor``) and its dependencies to ``pool``, strings as bytes."""
    try:
        pool.FindFileByName(file.name)
        return
    except KeyError:
        pass
    for dependency in file.dependencies:
        _add_twin_file(pool, dependency)
    proto = descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)
    if proto.package.startswith("particle."):
        for message in proto.message_type:
            _strings_as_bytes(message)
    pool.Add(proto)


def device_class(message_class: type[Message]) -> type[Message]:
    """The bytes twin of ``message_class``: the same fields, ``string`` ones as ``bytes``."""
    descriptor = message_class.DESCRIPTOR
    source = id(descriptor.file.pool)
    key = (source, descriptor.full_name)
    twin = _TWINS.get(key)
    if twin is None:
        pool = _TWIN_POOLS.setdefault(source, descriptor_pool.DescriptorPool())
        _add_twin_file(pool, descriptor.file)
        twin = _TWINS[key] = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(descriptor.full_name))
    return twin


def device_view(message: Message) -> Message:
    """What the device decodes from ``message`` (its bytes twin, strings cut at a NUL)."""
    return decode_as(type(message), message.SerializeToString(deterministic=True))


def decode_as(message_class: type[Message], payload: bytes) -> Message:
    """Decode ``payload`` as the device would, into the bytes twin of ``message_class``
    (``device_class``); ``BadData`` where nanopb would fail."""
    canonical = canonicalize(cast(Descriptor, message_class.DESCRIPTOR), payload)
    message = device_class(message_class)()
    try:
        message.ParseFromString(canonical)
    except DecodeError as error:  # pragma: no cover - canonicalize() guarantees parseability
        raise BadData(
            f"internal: canonical payload rejected ({error})",
            message_name=message_class.DESCRIPTOR.full_name,
        ) from error
    return message


def decode_request(request_type: int, payload: bytes) -> Message:
    """Decode a request payload as the device would (string fields as bytes); ``BadData``
    (-280) if it cannot."""
    return decode_as(request_class(request_type), payload)


def encode_reply(message: Message) -> bytes:
    """Serialize a reply as the device would; ``ReplyEncodingFailed`` if it overflows nanopb."""
    data = message.SerializeToString(deterministic=True)
    try:
        canonicalize(cast(Descriptor, message.DESCRIPTOR), data, strict=True)
    except BadData as error:
        raise ReplyEncodingFailed(
            error.reason, message_name=error.message_name, field=error.field
        ) from None
    return data


def encode_request(message: Message) -> bytes:
    """Serialize a request as a host client does (no nanopb limits applied)."""
    return message.SerializeToString(deterministic=True)


def decode_reply(request_type: int, data: bytes) -> Message:
    """Parse a reply as a host client does; an empty reply is the default message."""
    message_class = reply_class(request_type)
    message = message_class()
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as error:
        raise BadData(str(error), message_name=message_class.DESCRIPTOR.full_name) from None
    message.DiscardUnknownFields()
    return message


__all__ = [
    "REPLY_NAME_EXCEPTIONS",
    "REQUEST_MODULES",
    "TYPE_ID_CORRECTIONS",
    "MessagePair",
    "decode_as",
    "decode_reply",
    "decode_request",
    "device_class",
    "device_view",
    "encode_reply",
    "encode_request",
    "message_pair",
    "message_pairs",
    "reply_class",
    "request_class",
    "type_id_of",
]
