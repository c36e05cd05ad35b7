"""Error root of fwsim and the Device OS result-code table.

``ResultCode`` mirrors ``system_error_t`` from Device OS ``services/inc/system_error.h`` (the
values are exact) for the codes fwsim uses; further ranges are named by ``RESULT_CODE_RANGES``.
Every fwsim exception derives from ``FwSimError``; ``DeviceOsError`` carries the device result
code, so a transport can put it on the wire without a lookup table of its own.

Local vs remote: ``UsageError`` means "the caller misused fwsim" (bad argument, wrong state);
``PeerProtocolError`` means "the peer sent something malformed". ``UsageError`` is also a
``ValueError`` and the transport errors are ``ConnectionError``s, so callers may catch either
family.
"""

from __future__ import annotations

from enum import IntEnum


class ResultCode(IntEnum):
    """Device OS ``system_error_t`` values modelled one by one (generic codes and -1801..-1803)."""

    NONE = 0
    UNKNOWN = -100
    BUSY = -110
    NOT_SUPPORTED = -120
    NOT_ALLOWED = -130
    CANCELLED = -140
    ABORTED = -150
    TIMEOUT = -160
    NOT_FOUND = -170
    ALREADY_EXISTS = -180
    TOO_LARGE = -190
    NOT_ENOUGH_DATA = -191
    LIMIT_EXCEEDED = -200
    END_OF_STREAM = -201
    INVALID_STATE = -210
    FLASH_IO = -219
    IO = -220
    WOULD_BLOCK = -221
    NETWORK = -230
    PROTOCOL = -240
    INTERNAL = -250
    NO_MEMORY = -260
    INVALID_ARGUMENT = -270
    BAD_DATA = -280
    ENCODING_FAILED = -281
    OUT_OF_RANGE = -290
    DEPRECATED = -300
    PROTECTED = -1801
    KEY_MISMATCH = -1802
    INVALID_SIGNATURE = -1803


#: Ranges of further codes that exist in Device OS but are not individually modelled.
RESULT_CODE_RANGES: dict[str, tuple[int, int]] = {
    "COAP": (-1199, -1000),
    "OTA": (-1399, -1300),
    "FILESYSTEM": (-1912, -1900),
    "LEDGER": (-2011, -2000),
}


def result_name(code: int) -> str:
    """Return the Device OS name of ``code`` (``"BAD_DATA"``), or a range name, or the number."""
    try:
        return ResultCode(code).name
    except ValueError:
        for name, (low, high) in RESULT_CODE_RANGES.items():
            if low <= code <= high:
                return f"{name}({code})"
        return str(code)


class FwSimError(Exception):
    """Root of every exception raised by fwsim."""


class UsageError(FwSimError, ValueError):
    """The caller misused fwsim: a bad argument, an unknown name, an impossible state."""


class ConfigurationError(UsageError):
    """A configuration value (seed, profile, path, option) is invalid."""


class PeerProtocolError(FwSimError):
    """A peer sent bytes that violate the protocol (malformed, oversize, out of order)."""


class TransportClosed(FwSimError, ConnectionError):
    """The local side closed the transport and it was used afterwards."""


class TransportLost(FwSimError, ConnectionError):
    """The transport died under us (peer vanished, link torn down)."""


class DeviceOsError(FwSimError):
    """An operation failed with a Device OS result code."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = int(code)
        self.message = message or result_name(code)
        super().__init__(f"{self.message} [{result_name(code)} {self.code}]")


class PowerCut(FwSimError):
    """Raised by a fault hook to simulate power being lost in the middle of an operation."""
