"""The World: one clock, one scheduler, one chooser, one seeded RNG family and one trace.

Everything simulated (devices, the cloud endpoint, links, transports' device sides) lives in a
World and does all of its timing through ``world.scheduler``. Nothing below the CLI and the
real-socket adapters reads the wall clock, so a run is a pure function of the seed, the inputs
and the chooser: same seed, byte-identical trace.

Choices and randomness: every nondeterministic choice (same-instant order, datagram loss,
jitter, fault points) is asked of ``world.chooser`` by name (``choice.py``); by default a
``SeededChooser`` of the world seed. Random *data* (keys, session ids, claim codes) comes from
``world.rng_for(name)``, an independent stream derived from the seed and the name, so adding a
device does not perturb the random values of another.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from .choice import Chooser, SeededChooser, seeded_stream
from .clock import VirtualClock, to_micros
from .errors import ConfigurationError, UsageError
from .scheduler import Scheduler, TimerHandle
from .trace import TRACE_FORMAT_VERSION, Trace, TraceSink

_SEED_TEXT = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)", re.ASCII)


def parse_seed(value: str | int) -> int:
    """Validate a seed given on a command line or in an option: a non-negative integer below
    2**63, written in ASCII decimal (leading zeros allowed: ``010`` is 10) or hexadecimal with
    ``0x`` (``0x10`` is 16); surrounding blanks are ignored. Nothing else: no sign, ``_``,
    octal/binary prefix or non-ASCII digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    else:
        text = str(value).strip()
        if not _SEED_TEXT.fullmatch(text):
            raise ConfigurationError(
                f"invalid seed {value!r}: expected a non-negative integer (decimal, or hex "
                "with 0x)")
        seed = int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)
    if seed < 0 or seed >= 2**63:
        raise ConfigurationError(f"invalid seed {value!r}: must be between 0 and 2**63-1")
    return seed


def check_node_name(name: str) -> None:
    """Refuse a node name that is empty, holds a blank or a control character, or cannot be
    written as UTF-8 (a lone surrogate): it names the node in traces, files and logs."""
    valid = isinstance(name, str) and bool(name) and name.isprintable() and not any(
        c.isspace() for c in name)
    if valid:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            valid = False
    if not valid:
        raise UsageError(f"invalid node name {name!r}: expected printable text without "
                         "blanks")


class World:
    """Owns virtual time, the scheduler, the chooser, seeded randomness and the trace.

    ``chooser`` answers every nondeterministic choice of the run; ``None`` means a
    ``SeededChooser(seed)``. It is fixed for the world's life (``world.chooser``).
    """

    def __init__(self, seed: int = 0, *, chooser: Chooser | None = None,
                 trace_memory_limit: int | None = None,
                 sinks: Sequence[TraceSink] | None = None) -> None:
        self.seed = parse_seed(seed)
        self._chooser: Chooser = SeededChooser(self.seed) if chooser is None else chooser
        self.clock = VirtualClock()
        self.scheduler = Scheduler(self.clock, self._chooser)
        self.trace = Trace(self.clock, memory_limit=trace_memory_limit)
        for sink in sinks or []:
            self.trace.add_sink(sink)
        self.rng = self.rng_for("world")
        self.nodes: dict[str, Any] = {}
        #: World-wide simulated environments (e.g. the radio environment), keyed by name.
        self.shared: dict[str, Any] = {}
        self.trace.emit("world", "kernel", "world.created", seed=self.seed,
                        trace_format=TRACE_FORMAT_VERSION)

    # -- choices and randomness ----------------------------------------------------------------

    @property
    def chooser(self) -> Chooser:
        """The chooser every nondeterministic choice of this world is asked of."""
        return self._chooser

    def rng_for(self, name: str) -> random.Random:
        """An independent random stream for ``name``, fixed by the world seed."""
        return seeded_stream(self.seed, name)

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(self, name: str, node: Any) -> None:
        check_node_name(name)
        if name in self.nodes:
            raise UsageError(f"a node named {name!r} already exists in this world")
        self.nodes[name] = node

    def remove_node(self, name: str) -> None:
        self.nodes.pop(name, None)

    # -- time ----------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def call_later(self, delay_s: float, callback: Callable[..., Any], *args: Any,
                   label: str = "") -> TimerHandle:
        return self.scheduler.call_later(delay_s, callback, *args, label=label)

    def call_soon(self, callback: Callable[..., Any], *args: Any, label: str = "") -> TimerHandle:
        return self.scheduler.call_soon(callback, *args, label=label)

    def run_for(self, seconds: float) -> None:
        """Run everything due in the next ``seconds`` of virtual time."""
        if seconds < 0:
            raise UsageError("cannot run for a negative duration")
        self.scheduler.run_until_time(self.clock.now_us + to_micros(seconds))

    def run_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Step until ``predicate()`` holds or ``timeout`` virtual seconds pass.

        Returns whether the predicate became true. The predicate is checked before the first
        step and after every step, so the clock stops at the first instant it holds; on timeout
        the clock stands at the deadline.
        """
        deadline = self.clock.now_us + to_micros(timeout)
        if predicate():
            return True
        while True:
            nxt = self.scheduler.next_due_us()
            if nxt is None or nxt > deadline:
                self.clock.advance_to(max(deadline, self.clock.now_us))
                return predicate()
            self.scheduler.step()
            if predicate():
                return True

    def run_until_idle(self, max_seconds: float) -> bool:
        """Run until nothing is scheduled, at most ``max_seconds``. Returns True if idle."""
        deadline = self.clock.now_us + to_micros(max_seconds)
        while True:
            nxt = self.scheduler.next_due_us()
            if nxt is None:
                return True
            if nxt > deadline:
                self.clock.advance_to(deadline)
                return False
            self.scheduler.step()
