"""ThingsBoard's device claiming API as bytes on the wire, shared by device and cloud.

Pure (no I/O, no World): the claim-button device (``firmware_sim.claim_button``) writes these
messages and the emulated ThingsBoard (``cloud_sim.thingsboard``) reads them, like
``communication.event_names`` is shared by the Particle device and cloud.

* MQTT topics: ``v1/devices/me/claim`` (a device's own claim info) and ``v1/gateway/claim``
  (a gateway's claim info for several devices), per ThingsBoard's device API reference
  ("Claiming devices" in the MQTT, HTTP and CoAP device API pages);
* the JSON claim info ``{"secretKey": ..., "durationMs": ...}``;
* the protobuf messages of a device profile with protobuf payloads: ``ClaimDevice``
  (``secretKey`` = 1, ``durationMs`` = 2), ``ClaimDeviceMsg`` (``deviceName`` = 1,
  ``claimRequest`` = 2) and ``GatewayClaimMsg`` (repeated ``msg`` = 1), the field numbers of
  ThingsBoard's ``transport.proto``. They are built at import time from a descriptor, so no
  generated code is checked in.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

CLAIM_TOPIC = "v1/devices/me/claim"
GATEWAY_CLAIM_TOPIC = "v1/gateway/claim"
#: the device HTTP and CoAP claim path, after the base URL: ``api/v1/{token}/claim``
CLAIM_PATH = "api/v1/{token}/claim"


def encode_claim_json(secret_key: str, duration_ms: int) -> bytes:
    """The JSON claim info a device sends (compact, ``secretKey`` first)."""
    return json.dumps({"secretKey": secret_key, "durationMs": duration_ms},
                      separators=(",", ":")).encode()


def _build_messages() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name="fwsim_tb_claim.proto",
                                              package="fwsim.tb", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    claim = file.message_type.add(name="ClaimDevice")
    claim.field.add(name="secretKey", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    claim.field.add(name="durationMs", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    msg = file.message_type.add(name="ClaimDeviceMsg")
    msg.field.add(name="deviceName", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    msg.field.add(name="claimRequest", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".fwsim.tb.ClaimDevice")
    gateway = file.message_type.add(name="GatewayClaimMsg")
    gateway.field.add(name="msg", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".fwsim.tb.ClaimDeviceMsg")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"fwsim.tb.{name}"))
        for name in ("ClaimDevice", "ClaimDeviceMsg", "GatewayClaimMsg")}


_MESSAGES = _build_messages()
ClaimDeviceProto = _MESSAGES["ClaimDevice"]
ClaimDeviceMsgProto = _MESSAGES["ClaimDeviceMsg"]
GatewayClaimMsgProto = _MESSAGES["GatewayClaimMsg"]


def encode_claim_proto(secret_key: str, duration_ms: int) -> bytes:
    """The protobuf ``ClaimDevice`` claim info."""
    message: Any = ClaimDeviceProto()
    message.secretKey = secret_key
    message.durationMs = duration_ms
    data: bytes = message.SerializeToString()
    return data


__all__ = ["CLAIM_PATH", "CLAIM_TOPIC", "GATEWAY_CLAIM_TOPIC", "ClaimDeviceMsgProto",
           "ClaimDeviceProto", "GatewayClaimMsgProto", "encode_claim_json",
           "encode_claim_proto"]
