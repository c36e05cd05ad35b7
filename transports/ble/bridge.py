"""Bridges between asyncio host code (bleak, ProvisioningClient) and a World's virtual clock.

How it works
------------
Asyncio code talks to simulated devices through a :class:`WorldBridge`. Before it injects
input into the world it calls :meth:`~WorldBridge.enter`, afterwards :meth:`~WorldBridge.leave`;
world callbacks hand results back by resolving asyncio futures (same thread) and call
:meth:`~WorldBridge.touch`. Timeouts are world timers, so they are in *virtual* seconds.

Two ways to move the world:

* :class:`SteppingBridge` (deterministic; tests, benchmarks): nothing else runs the world, the
  bridge's pump task steps it. Virtual time only moves while the host is engaged: every host
  operation (``enter``) lets the world run up to ``idle_horizon_s`` ahead of the current
  virtual instant, and every :meth:`~WorldBridge.wait` up to its deadline. Inside that horizon
  the pump steps one scheduler entry at a time as fast as it can; after an entry that handed
  something to the host (``touch``) it yields to the event loop a few times, so woken
  coroutines run - and inject their next input - at that same virtual instant. Past the
  horizon the world freezes until the host does something. The run is a function of the host
  code and the seed, not of the wall clock, as long as the host itself does not race real
  timers against the device (waiting on ``asyncio.sleep`` lets at most the horizon pass).
* :class:`RealtimeBridge` (``fwsim serve``): the kernel's
  :class:`~firmware_sim.kernel.realtime.AsyncioDriver` runs the world against the wall clock;
  ``enter`` is ``driver.sync()`` and ``leave`` is ``driver.wake()``. It takes anything with the
  driver's ``world``/``sync``/``wake`` (:class:`RealtimeWorld`): the driver itself, or an edge
  service's ``EdgeContext``.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from typing import Any, Protocol, TypeVar

from firmware_sim.kernel.clock import to_micros
from firmware_sim.kernel.errors import UsageError
from firmware_sim.kernel.world import World

__all__ = ["RealtimeBridge", "RealtimeWorld", "SteppingBridge", "WorldBridge"]

T = TypeVar("T")


class WorldBridge(ABC):
    """How asyncio code reaches a World."""

    world: World

    @abstractmethod
    def enter(self) -> None:
        """Call before injecting input into the world."""

    @abstractmethod
    def leave(self) -> None:
        """Call after injecting input."""

    def touch(self) -> None:  # noqa: B027 - optional hook
        """A world callback handed something to the host (a result, a notification)."""

    def resolve(self, future: asyncio.Future[T], value: T | BaseException) -> None:
        """Complete ``future`` from a world callback (ignored when already done)."""
        if future.done():
            return
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)
        self.touch()

    async def wait(self, future: asyncio.Future[T], timeout_s: float, what: str) -> T:
        """Await ``future``; fail with :class:`TimeoutError` after ``timeout_s`` virtual s."""
        timer = self.world.call_later(
            timeout_s, self.resolve, future,
            TimeoutError(f"{what} timed out after {timeout_s:g} s (virtual time)"),
            label="bridge-timeout")
        self._waiting(future, timeout_s)
        try:
            return await future
        finally:
            timer.cancel()
            self._done_waiting(future)

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass."""
        if seconds < 0:
            raise UsageError("cannot sleep a negative duration")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.enter()
        self.world.call_later(seconds, self.resolve, future, None, label="bridge-sleep")
        self.leave()
        await self.wait(future, seconds + 1.0, "sleep")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the bridge runs (the stepping pump)."""

    def _waiting(self, future: asyncio.Future[Any], timeout_s: float) -> None:  # noqa: B027
        """Hook: ``future`` is being waited on for at most ``timeout_s``."""

    def _done_waiting(self, future: asyncio.Future[Any]) -> None:  # noqa: B027
        """Hook: the wait on ``future`` ended."""


class RealtimeWorld(Protocol):
    """A world that something else runs in real time in this event loop (an ``AsyncioDriver``,
    an ``EdgeContext``)."""

    @property
    def world(self) -> World: ...
    def sync(self) -> None: ...
    def wake(self) -> None: ...


class RealtimeBridge(WorldBridge):
    """The world runs in real time under an ``AsyncioDriver`` (same event loop)."""

    def __init__(self, driver: RealtimeWorld) -> None:
        self.driver = driver
        self.world = driver.world

    def enter(self) -> None:
        self.driver.sync()

    def leave(self) -> None:
        self.driver.wake()


class SteppingBridge(WorldBridge):
    """Steps the world from the event loop while the host waits on it (deterministic)."""

    def __init__(self, world: World, *, idle_horizon_s: float = 30.0,
                 yields_per_delivery: int = 3) -> None:
        if idle_horizon_s <= 0:
            raise UsageError("idle_horizon_s must be positive")
        self.world = world
        self.idle_horizon_s = idle_horizon_s
        self.yields_per_delivery = max(1, yields_per_delivery)
        self._horizon_us = world.clock.now_us
        self._touched = False
        self._futures: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        #: Scheduler entries run by the pump (for benchmarks).
        self.steps = 0

    # -- WorldBridge -------------------------------------------------------------------------

    def enter(self) -> None:
        self._raise_failure()
        self._extend(self.world.clock.now_us + to_micros(self.idle_horizon_s))

    def leave(self) -> None:
        self._kick()

    def touch(self) -> None:
        self._touched = True

    def _waiting(self, future: asyncio.Future[Any], timeout_s: float) -> None:
        self._raise_failure()
        self._futures.add(future)
        self._extend(self.world.clock.now_us + to_micros(timeout_s))
        self._kick()

    def _done_waiting(self, future: asyncio.Future[Any]) -> None:
        self._futures.discard(future)

    async def run_for(self, seconds: float) -> None:
        """Run the world for ``seconds`` of virtual time (alias of :meth:`sleep`)."""
        await self.sleep(seconds)

    async def aclose(self) -> None:
        """Stop the pump task."""
        task, self._pump_task = self._pump_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the pump ----------------------------------------------------------------------------

    def _extend(self, until_us: int) -> None:
        if until_us > self._horizon_us:
            self._horizon_us = until_us

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError("the simulated world failed") from self._failure

    def _kick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._pump_task is None or self._pump_task.done():
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._pump_task = loop.create_task(self._pump(), name="fwsim-world-pump")
        assert self._wakeup is not None
        self._wakeup.set()

    async def _pump(self) -> None:
        scheduler = self.world.scheduler
        wakeup = self._wakeup
        assert wakeup is not None
        idle_steps = 0
        while True:
            due = scheduler.next_due_us()
            if due is None or due > self._horizon_us:
                wakeup.clear()
                await wakeup.wait()
                continue
            try:
                scheduler.step()
            except Exception as exc:  # a bug in simulated code: fail every waiter
                self._failure = exc
                for future in list(self._futures):
                    if not future.done():
                        future.set_exception(RuntimeError(f"the simulated world failed: {exc!r}"))
                return
            self.steps += 1
            if self._touched:
                self._touched = False
                idle_steps = 0
                for _ in range(self.yields_per_delivery):
                    await asyncio.sleep(0)
            else:
                idle_steps += 1
                if idle_steps >= 256:
                    idle_steps = 0
                    await asyncio.sleep(0)
