"""The kernel: virtual clock, scheduler, chooser, trace, world, links and the error table.

The deterministic core every other package builds on (``control_requests`` imports no other
part of ``firmware_sim``). It depends on the standard library only.

* ``clock``: virtual time in integer microseconds;
* ``choice``: the Chooser, the one seam for every nondeterministic choice (seeded, recorded,
  scripted);
* ``scheduler``: the heap of timers, same-instant order from the chooser's tie-breaks;
* ``trace``: one structured trace per world;
* ``world``: owns the clock, scheduler, chooser and trace;
* ``link`` / ``stream``: in-process datagram and byte-stream links on virtual time;
* ``runtime`` / ``realtime``: the hook edge code uses, and the drivers that run a world on the
  wall clock;
* ``errors``: the exception root and the Device OS result codes.
"""

from .choice import (
    Choice,
    ChoiceKind,
    Chooser,
    RecordingChooser,
    ReplayDivergence,
    ScriptedChooser,
    SeededChooser,
)
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
from .link import DatagramLink, DatagramPort, LinkEnd
from .realtime import AsyncioDriver, RealtimeDriver
from .runtime import NullRuntime, Runtime
from .scheduler import NORMAL, URGENT, Scheduler, StepAborted, TimerHandle
from .stream import StreamEnd, StreamLink, StreamListener
from .trace import JsonlSink, MemorySink, Trace, Tracer, TraceRecord, TraceSink, read_jsonl
from .world import World, parse_seed

__all__ = [
    "MICROS_PER_SECOND",
    "NORMAL",
    "URGENT",
    "AsyncioDriver",
    "Choice",
    "ChoiceKind",
    "Chooser",
    "Clock",
    "ConfigurationError",
    "DatagramLink",
    "DatagramPort",
    "DeviceOsError",
    "FwSimError",
    "JsonlSink",
    "LinkEnd",
    "MemorySink",
    "NullRuntime",
    "PeerProtocolError",
    "PowerCut",
    "RealtimeDriver",
    "RecordingChooser",
    "ReplayDivergence",
    "ResultCode",
    "Runtime",
    "Scheduler",
    "ScriptedChooser",
    "SeededChooser",
    "StepAborted",
    "StreamEnd",
    "StreamLink",
    "StreamListener",
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
