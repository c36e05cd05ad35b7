"""The World: one clock, one scheduler, one seeded RNG family and one trace.

Everything simulated (devices, the cloud endpoint, links, transports' device sides) registers
with a World and does all of its timing through ``world.scheduler``. Nothing below the CLI and
the real-socket adapters reads the wall clock, so a run is a pure function of the seed and the
inputs: same seed, byte-identical trace.

Randomness: components ask for ``world.rng_for(name)``, an independent stream derived from the
seed and the name, so adding a device does not perturb the random choices of another.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from .clock import VirtualClock, to_micros
from .errors import ConfigurationError, UsageError
from .scheduler import Scheduler, TimerHandle
from .trace import Trace, TraceSink


def parse_seed(value: str | int) -> int:
    """Validate a seed given on a command line or in an option: a non-negative integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        seed = value
    else:
        text = str(value).strip()
        try:
            seed = int(text, 0)
        except ValueError:
            raise ConfigurationError(
                f"invalid seed {value!r}: expected a non-negative integer") from None
    if seed < 0 or seed >= 2**63:
        raise ConfigurationError(f"invalid seed {value!r}: must be between 0 and 2**63-1")
    return seed


class World:
    """Owns virtual time, the scheduler, seeded randomness and the trace."""

    def __init__(self, seed: int = 0, *, trace_memory_limit: int | None = None,
                 sinks: Sequence[TraceSink] | None = None) -> None:
        self.seed = parse_seed(seed)
        self.clock = VirtualClock()
        self.scheduler = Scheduler(self.clock, self.seed)
        self.trace = Trace(self.clock, memory_limit=trace_memory_limit)
        for sink in sinks or []:
            self.trace.add_sink(sink)
        self.rng = self.rng_for("world")
        self.nodes: dict[str, Any] = {}
        #: World-wide simulated environments (e.g. the radio environment), keyed by name.
        self.shared: dict[str, Any] = {}
        self.trace.emit("world", "kernel", "world.created", seed=self.seed,
                        trace_format=1)

    # -- randomness ----------------------------------------------------------------------------

    def rng_for(self, name: str) -> random.Random:
        """An independent random stream for ``name``, fixed by the world seed."""
        return random.Random(f"fwsim:{self.seed}:{name}")

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(self, name: str, node: Any) -> None:
        if not name or any(c.isspace() for c in name):
            raise UsageError(f"invalid node name {name!r}")
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

    def run_until(self, predicate: Callable[[], bool], timeout: float,
                  poll: float | None = None) -> bool:
        """Step until ``predicate()`` holds or ``timeout`` virtual seconds pass.

        Returns whether the predicate became true. The predicate is checked after every step
        (or every ``poll`` seconds when given), so the clock stops at the first instant it holds.
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
