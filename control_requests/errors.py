"""Exceptions of the control-request layer; each carries the Device OS result code it maps to."""

from __future__ import annotations

from firmware_sim.kernel.errors import DeviceOsError, PeerProtocolError, ResultCode

from .types import RequestType


class BadData(DeviceOsError, PeerProtocolError):
    """A payload the device's protobuf decoder rejects (``SYSTEM_ERROR_BAD_DATA``, -280).

    ``reason`` is nanopb's own error text where the device would produce one ("string
    overflow", "wrong wire type", ...); ``message_name`` is the full protobuf name of the
    message being decoded and ``field`` the dotted field path, when known.
    """

    def __init__(self, reason: str, *, message_name: str = "", field: str = "") -> None:
        self.reason = reason
        self.message_name = message_name
        self.field = field
        where = message_name + (f".{field}" if field else "")
        text = f"cannot decode {where}: {reason}" if where else f"cannot decode: {reason}"
        super().__init__(ResultCode.BAD_DATA, text)


class ReplyEncodingFailed(DeviceOsError):
    """A reply the device could not have encoded (``SYSTEM_ERROR_UNKNOWN``, -100).

    Raised when a simulated handler produced a value that exceeds a nanopb buffer (a string
    longer than ``max_length``, too many bytes): the device's fixed-size structs cannot hold
    it. Device OS's ``encodeReplyMessage`` turns every encoder failure into UNKNOWN.
    """

    def __init__(self, reason: str, *, message_name: str = "", field: str = "") -> None:
        self.reason = reason
        self.message_name = message_name
        self.field = field
        where = message_name + (f".{field}" if field else "")
        super().__init__(ResultCode.UNKNOWN, f"cannot encode {where}: {reason}")


#: Former name of ``ReplyEncodingFailed`` (kept for existing imports).
EncodingFailed = ReplyEncodingFailed


class ControlRequestFailed(DeviceOsError):
    """The device answered a control request with a non-zero result code."""

    def __init__(self, code: int, request_type: int) -> None:
        self.request_type = int(request_type)
        super().__init__(code, f"control request {_type_name(request_type)} failed")


def _type_name(request_type: int) -> str:
    try:
        return f"{RequestType(request_type).name} ({int(request_type)})"
    except ValueError:
        return str(int(request_type))


__all__ = ["BadData", "ControlRequestFailed", "EncodingFailed", "ReplyEncodingFailed"]
