"""The knobs of the simulated SoftAP (:class:`SoftApOptions`); the defaults model the device."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SoftApOptions"]


@dataclass(frozen=True)
class SoftApOptions:
    """Knobs of the simulated SoftAP; the defaults model the device (docs/softap.md)."""

    #: A client that has not sent a complete request by then is disconnected (the device
    #: would wait forever).
    request_timeout_s: float = 10.0
    #: Larger request bodies are not fetched (the device's ``malloc`` of the body fails).
    max_body_bytes: int = 16384
    max_header_bytes: int = 128
    #: How long ``scan-ap`` takes before it answers.
    scan_time_s: float = 1.0
    #: ``mdr`` of every scan entry (kbit/s).
    max_data_rate: int = 54000
    #: From the ``connect-ap`` reply to the end of listening mode.
    complete_delay_s: float = 0.1
    #: Refuse (-1) a ``set`` key over 3 or value over 64 characters instead of truncating.
    strict_set_lengths: bool = False
    #: Make ``connect-ap`` check its ``idx`` (-1 when nothing is configured there).
    connect_requires_configured_index: bool = False
