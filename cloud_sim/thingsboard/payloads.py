"""Claim payloads as the service reads them: JSON and protobuf, device and gateway forms.

Parsing follows ThingsBoard's ``JsonConverter.convertToClaimDeviceProto`` (docs/thingsboard.md,
B2):

* a missing or empty body gives ``secretKey=""``, ``durationMs=0``;
* a JSON object reads ``secretKey`` as a string and ``durationMs`` as a Java ``long`` when
  present (numbers are truncated and wrap to 64 bits like ``Number.longValue()``; a numeric
  string is parsed);
* anything else - not JSON, a non-object (``JsonSyntaxException``), a ``secretKey`` or
  ``durationMs`` that Gson cannot convert - is a :class:`MalformedPayload`.

The protobuf messages (``ClaimDevice``, ``ClaimDeviceMsg``, ``GatewayClaimMsg``) and the
topics are the wire format the device writes: they live in
``firmware_sim.communication.tb_device_api``, shared with the claim-button device.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from firmware_sim.communication.tb_device_api import ClaimDeviceProto, GatewayClaimMsgProto

from .model import PayloadType

JAVA_LONG_MIN = -(2**63)
JAVA_LONG_MAX = 2**63 - 1


class MalformedPayload(ValueError):
    """The payload cannot be converted (ThingsBoard's ``AdaptorException`` path)."""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    secret_key: str
    duration_ms: int


def java_long(value: int) -> int:
    """Wrap an integer to a signed 64-bit value, as Java's ``long`` arithmetic does."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - 2**64 if value >= 2**63 else value


def _as_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise MalformedPayload(f"secretKey must be a JSON primitive, got {type(value).__name__}")


def _as_long(value: Any) -> int:
    if isinstance(value, bool) or value is None:
        raise MalformedPayload("durationMs must be a number")
    if isinstance(value, int):
        return java_long(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedPayload("durationMs must be a finite number")
        return java_long(int(value))
    if isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 10)
        except ValueError:
            raise MalformedPayload(f"durationMs {value[:40]!r} is not a number") from None
        if not JAVA_LONG_MIN <= number <= JAVA_LONG_MAX:
            raise MalformedPayload(f"durationMs {value[:40]!r} is out of range")
        return number
    raise MalformedPayload("durationMs must be a number")


def _loads(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(f"not valid JSON: {exc}") from None


def claim_from_json_value(value: Any) -> ClaimRequest:
    if not isinstance(value, dict):
        raise MalformedPayload(f"expected a JSON object, got {type(value).__name__}")
    secret = _as_string(value["secretKey"]) if "secretKey" in value else ""
    duration = _as_long(value["durationMs"]) if "durationMs" in value else 0
    return ClaimRequest(secret, duration)


def parse_claim_json(payload: bytes | None) -> ClaimRequest:
    if payload is None or not payload.strip():
        return ClaimRequest("", 0)
    return claim_from_json_value(_loads(payload))


def _parse_proto(cls: type[Message], payload: bytes) -> Any:
    message = cls()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise MalformedPayload(f"not a valid {cls.DESCRIPTOR.name} protobuf: {exc}") from None
    return message


def parse_claim_proto(payload: bytes | None) -> ClaimRequest:
    message = _parse_proto(ClaimDeviceProto, payload or b"")
    return ClaimRequest(message.secretKey, message.durationMs)


def parse_claim(payload: bytes | None, payload_type: PayloadType) -> ClaimRequest:
    if payload_type is PayloadType.PROTOBUF:
        return parse_claim_proto(payload)
    return parse_claim_json(payload)


@dataclass(frozen=True, slots=True)
class GatewayClaims:
    claims: dict[str, ClaimRequest]
    #: device names whose value was not a JSON object (skipped with a warning, B2)
    skipped: tuple[str, ...]


def parse_gateway_claim(payload: bytes, payload_type: PayloadType) -> GatewayClaims:
    """``{"Device A": {"secretKey", "durationMs"}, ...}`` or a ``GatewayClaimMsg``."""
    claims: dict[str, ClaimRequest] = {}
    skipped: list[str] = []
    if payload_type is PayloadType.PROTOBUF:
        message = _parse_proto(GatewayClaimMsgProto, payload)
        for entry in message.msg:
            claims[entry.deviceName] = ClaimRequest(entry.claimRequest.secretKey,
                                                    entry.claimRequest.durationMs)
    else:
        value = _loads(payload)
        if not isinstance(value, dict):
            raise MalformedPayload(f"expected a JSON object, got {type(value).__name__}")
        for name, entry in value.items():
            if isinstance(entry, dict):
                claims[name] = claim_from_json_value(entry)
            else:
                skipped.append(name)
    if not claims:
        raise MalformedPayload("Devices claim message is empty")
    return GatewayClaims(claims, tuple(skipped))
