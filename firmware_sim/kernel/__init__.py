"""The kernel: virtual clock, scheduler, trace, world and the error table.

This is the only part of ``firmware_sim`` that ``control_requests``, ``transports`` and
``cloud_sim`` import. It depends on the standard library only.
"""

from .clock import MICROS_PER_SECOND, Clock, VirtualClock, to_micros, to_seconds
from .errors import (
    ConfigurationError,
    DeviceOsError,
    FwSimError,
    PeerProtocolError,
    PowerCut,
    ResultCode,
    TransportClosed,
    TransportLost,
    UsageError,
    result_name,
)
from .realtime import AsyncioDriver, RealtimeDriver
from .scheduler import NORMAL, URGENT, Scheduler, TimerHandle
from .trace import JsonlSink, MemorySink, Trace, Tracer, TraceRecord, TraceSink, read_jsonl
from .world import World, parse_seed

__all__ = [
    "MICROS_PER_SECOND",
    "NORMAL",
    "URGENT",
    "AsyncioDriver",
    "Clock",
    "ConfigurationError",
    "DeviceOsError",
    "FwSimError",
    "JsonlSink",
    "MemorySink",
    "PeerProtocolError",
    "PowerCut",
    "RealtimeDriver",
    "ResultCode",
    "Scheduler",
    "TimerHandle",
    "Trace",
    "TraceRecord",
    "TraceSink",
    "Tracer",
    "TransportClosed",
    "TransportLost",
    "UsageError",
    "VirtualClock",
    "World",
    "parse_seed",
    "read_jsonl",
    "result_name",
    "to_micros",
    "to_seconds",
]
