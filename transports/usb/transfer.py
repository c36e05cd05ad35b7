"""The outcome of one control transfer, as a host controller reports it.

``COMPLETED`` carries the IN data (empty for OUT); the failures are the libusb transfer
statuses a host sees: ``STALL`` (the device refused the request), ``NO_DEVICE`` (it is not
attached, or re-enumerated since it was opened), ``TIMED_OUT`` and ``ERROR`` (the device went
away during the transfer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["TransferResult", "TransferStatus"]


class TransferStatus(Enum):
    COMPLETED = "completed"
    STALL = "stall"
    NO_DEVICE = "no_device"
    TIMED_OUT = "timed_out"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class TransferResult:
    status: TransferStatus
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is TransferStatus.COMPLETED

    @classmethod
    def completed(cls, data: bytes = b"") -> TransferResult:
        return cls(TransferStatus.COMPLETED, bytes(data))

    @classmethod
    def stall(cls) -> TransferResult:
        return _STALL


_STALL = TransferResult(TransferStatus.STALL)
