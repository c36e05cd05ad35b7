"""Real-time drivers: run a World against the wall clock for interactive use.

The World never reads the wall clock itself. A driver maps wall time onto virtual time
(``virtual = start_virtual + (wall - start_wall) * speed``), sleeps until the next scheduled
entry is due and runs it. Code at the edge (sockets, serial ptys) that injects input into the
world calls :meth:`AsyncioDriver.sync` first, so the input lands at the right virtual instant,
then :meth:`AsyncioDriver.wake` so the driver re-reads the schedule.

A served world contains a failing step (``contain_errors``): the exception becomes a
``callback.failed`` trace record and a logged error, and the world runs on, so a bug in one
callback (or one malformed packet that trips a library) does not stop the other devices and
clients. Contained are ``Exception`` and the other ``BaseException`` subclasses a library may
raise for its own bug (pyo3's ``PanicException``); never those that stop a program or a task on
purpose (``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``, ``asyncio.CancelledError``).

A step that blocks or loops would freeze every device and every socket of a served world, so
the :class:`AsyncioDriver` also keeps a *step watchdog* while it runs (in the main thread, where
POSIX has ``SIGALRM``): each step bumps a counter and raises a flag (two attribute writes), and
a watchdog thread looks every quarter of ``step_watchdog_s``; when the same step has been
running for ``step_watchdog_s`` wall seconds it sends ``SIGALRM`` to the main thread, whose
handler raises :class:`~.scheduler.WatchdogExpired` in the step. Raised in user firmware, the
device resets with the reason ``watchdog`` (``Device.firmware_failed``); anywhere else the step
is contained as above. A ``time.sleep`` is interrupted too; a C call that does not return to
Python is not.

A served world that falls behind the wall clock (a large ``--speed``, a firmware that hangs on
every boot) must not hold the loop: one ``sync`` runs entries for at most ``SYNC_BUDGET_S`` wall
seconds, then returns with virtual time at the last entry run, so sockets, Ctrl-C and ``--for``
are served between batches; the world catches up as fast as it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from types import FrameType

from .clock import to_micros
from .errors import UsageError
from .scheduler import WatchdogExpired
from .world import World

# A driver never sleeps longer than this, so ``stop`` and ``wake`` stay responsive.
_MAX_SLEEP_S = 0.25
#: contained failures kept in ``driver.failures`` (the trace has every one)
MAX_KEPT_FAILURES = 100
#: what a served world never contains (module header)
_NEVER_CONTAINED = (KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError)
#: wall seconds a served world's step may run before the watchdog interrupts it
DEFAULT_STEP_WATCHDOG_S = 5.0
#: wall seconds one ``sync`` of a served world runs entries before it gives the loop back
SYNC_BUDGET_S = 0.1

log = logging.getLogger("fwsim.realtime")


class _WallMapping:
    def __init__(self, world: World, speed: float, wall: Callable[[], float], *,
                 contain_errors: bool = False) -> None:
        if speed <= 0:
            raise UsageError("real-time speed must be positive")
        self.world = world
        self.speed = speed
        self._wall = wall
        self._start_wall = wall()
        self._start_virtual_us = world.clock.now_us
        self.contain_errors = contain_errors
        #: the exceptions contained so far (the most recent ``MAX_KEPT_FAILURES``)
        self.failures: list[BaseException] = []
        self.failure_count = 0
        #: ``sync`` calls that gave the loop back before catching up (the world fell behind)
        self.behind = 0
        #: the step watchdog's limit while it is installed (``AsyncioDriver.run``), else None
        self._watchdog_s: float | None = None
        self._in_step = False
        #: steps run under the watchdog (the watchdog thread tells one step from the next)
        self._step_serial = 0

    def target_us(self) -> int:
        elapsed = (self._wall() - self._start_wall) * self.speed
        return self._start_virtual_us + to_micros(elapsed)

    def sync(self) -> None:
        """Advance virtual time to the wall-equivalent instant, running what falls due."""
        until_us = max(self.target_us(), self.world.clock.now_us)
        if not self.contain_errors:
            self.world.scheduler.run_until_time(until_us)
            return
        scheduler = self.world.scheduler
        deadline = self._wall() + SYNC_BUDGET_S
        while True:
            due = scheduler.next_due_us()
            if due is None or due > until_us:
                break
            if self._wall() > deadline:
                # behind: give the loop back (sockets, signals, --for) and go on next time;
                # virtual time stays at the last entry run, never jumps past one
                self.behind += 1
                return
            try:
                if self._watchdog_s is not None:
                    self._step_serial += 1
                    self._in_step = True
                scheduler.step()
            except _NEVER_CONTAINED:
                raise
            except BaseException as exc:  # contained: see the module header
                self._contain(exc)
            finally:
                self._in_step = False
        if until_us > self.world.clock.now_us:
            self.world.clock.advance_to(until_us)

    def _watchdog_fired(self, signum: int, frame: FrameType | None) -> None:
        if self._in_step:  # late signals (the step just ended) are ignored
            self._in_step = False
            raise WatchdogExpired(f"a step ran longer than {self._watchdog_s:g} s")

    @contextlib.contextmanager
    def _step_watchdog(self, limit_s: float | None) -> Iterator[None]:
        """Install the step watchdog (module header) while the block runs, where it can be."""
        usable = (limit_s is not None and limit_s > 0 and self.contain_errors
                  and hasattr(signal, "pthread_kill")
                  and threading.current_thread() is threading.main_thread())
        if not usable or limit_s is None:
            yield
            return
        previous = signal.signal(signal.SIGALRM, self._watchdog_fired)
        self._watchdog_s = limit_s
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(limit_s, threading.main_thread(),
                                                             done),
                                   name="fwsim-step-watchdog", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            self._watchdog_s = None
            signal.signal(signal.SIGALRM, previous)

    def _watch(self, limit_s: float, main: threading.Thread, done: threading.Event) -> None:
        """The watchdog thread: SIGALRM to ``main`` when one step has run ``limit_s``."""
        seen, since = -1, 0.0
        while not done.wait(limit_s / 4):
            serial, running, now = self._step_serial, self._in_step, time.monotonic()
            if not running or serial != seen:
                seen, since = serial, now
                continue
            if now - since >= limit_s and main.ident is not None:
                signal.pthread_kill(main.ident, signal.SIGALRM)
                since = now  # again a full limit later if the step goes on

    def _contain(self, exc: BaseException) -> None:
        self.failure_count += 1
        self.failures = [*self.failures[-(MAX_KEPT_FAILURES - 1):], exc]
        frames = traceback.extract_tb(exc.__traceback__)
        inner = [f for f in frames if not f.filename.endswith(("realtime.py", "scheduler.py"))]
        where = inner[0] if inner else (frames[-1] if frames else None)
        text = "".join(traceback.format_exception(exc))
        self.world.trace.emit(
            "world", "kernel", "callback.failed", error=f"{type(exc).__name__}: {exc}"[:500],
            where=f"{where.filename}:{where.lineno} {where.name}" if where else "",
            traceback=text[-4000:], count=self.failure_count)
        log.error("a scheduled callback failed; the world keeps running (%s)",
                  f"{type(exc).__name__}: {exc}"[:200], exc_info=exc)

    def seconds_until_next(self) -> float:
        nxt = self.world.scheduler.next_due_us()
        if nxt is None:
            return _MAX_SLEEP_S
        wait = (nxt - self.target_us()) / 1e6 / self.speed
        return max(0.0, min(wait, _MAX_SLEEP_S))


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class RealtimeDriver(_WallMapping):
    """Blocking driver: ``run(seconds)`` runs the world for that many wall seconds (failing
    callbacks propagate unless ``contain_errors``)."""

    def __init__(self, world: World, speed: float = 1.0,
                 wall: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, *,
                 contain_errors: bool = False) -> None:
        super().__init__(world, speed, wall, contain_errors=contain_errors)
        self._sleep = sleep

    def run(self, wall_seconds: float) -> None:
        end = self._wall() + wall_seconds
        while self._wall() < end:
            self.sync()
            self._sleep(min(self.seconds_until_next(), max(0.0, end - self._wall())))
        self.sync()


class AsyncioDriver(_WallMapping):
    """Drives a World from inside an asyncio loop, alongside real sockets; a failing callback
    is contained (module header) unless ``contain_errors=False``."""

    def __init__(self, world: World, speed: float = 1.0,
                 wall: Callable[[], float] = time.monotonic, *,
                 contain_errors: bool = True,
                 step_watchdog_s: float | None = DEFAULT_STEP_WATCHDOG_S) -> None:
        super().__init__(world, speed, wall, contain_errors=contain_errors)
        self._wakeup = asyncio.Event()
        self._stopped = False
        #: wall seconds a step may run while :meth:`run` runs (None or 0: no watchdog)
        self.step_watchdog_s = step_watchdog_s

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopped = True
        self._wakeup.set()

    async def run(self) -> None:
        with self._step_watchdog(self.step_watchdog_s):
            while not self._stopped:
                self.sync()
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(),
                                           timeout=self.seconds_until_next())
