"""Control requests: Device OS request types, their protobuf messages, codec and client helpers.

Layers (each module has a "how this works" header):

* ``types``: ``RequestType`` numbers (with their Device OS 6.2 status) and reply enums;
* ``codec``: request/reply message classes per type and the device-side decoder that applies
  nanopb's limits (``nanopb_rules``); the generated protobuf modules live in ``_pb``;
* ``requests``: pure host-side builders (bytes to send + reply parser) per request;
* ``client``: ``ControlClient``, the transport-agnostic async client over those builders.

The device-side dispatcher and handlers build on this package (see the marked spot below).
"""

from __future__ import annotations

from . import requests
from .client import ControlClient
from .codec import (
    MessagePair,
    decode_as,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    message_pair,
    message_pairs,
    reply_class,
    request_class,
)
from .dispatcher import (
    AppHandler,
    AppRequest,
    ControlDispatcher,
    FilterAction,
    Handler,
    HandlerContext,
    RequestFilter,
    RequestHandle,
)
from .errors import BadData, ControlRequestFailed, ReplyEncodingFailed
from .handlers import HANDLERS, SUPPORTED, supported_types
from .requests import Call, ControlReply, EncodedRequest
from .services import (
    DeviceServices,
    Done,
    FirmwareModuleInfo,
    KnownNetwork,
    NetworkInterface,
    VisibleNetwork,
)
from .types import (
    DOS_6_2_UNIMPLEMENTED,
    CloudConnectionStatus,
    DeviceMode,
    DosStatus,
    FirmwareModuleType,
    InterfaceType,
    RequestType,
    ResultCode,
    WifiCredentialsType,
    WifiSecurity,
    dos_status,
    parse_request_type,
)

__all__ = [
    "DOS_6_2_UNIMPLEMENTED",
    "HANDLERS",
    "SUPPORTED",
    "AppHandler",
    "AppRequest",
    "BadData",
    "Call",
    "CloudConnectionStatus",
    "ControlClient",
    "ControlDispatcher",
    "ControlReply",
    "ControlRequestFailed",
    "DeviceMode",
    "DeviceServices",
    "Done",
    "DosStatus",
    "EncodedRequest",
    "FilterAction",
    "FirmwareModuleInfo",
    "FirmwareModuleType",
    "Handler",
    "HandlerContext",
    "InterfaceType",
    "KnownNetwork",
    "MessagePair",
    "NetworkInterface",
    "ReplyEncodingFailed",
    "RequestFilter",
    "RequestHandle",
    "RequestType",
    "ResultCode",
    "VisibleNetwork",
    "WifiCredentialsType",
    "WifiSecurity",
    "decode_as",
    "decode_reply",
    "decode_request",
    "dos_status",
    "encode_reply",
    "encode_request",
    "message_pair",
    "message_pairs",
    "parse_request_type",
    "reply_class",
    "request_class",
    "requests",
    "supported_types",
]
