"""Where shards run: processes on this machine, this process, or Ray.

A backend maps :func:`~firmware_sim.fleet.shard.run_shard` over the shard tasks and returns the
results in task order. ``barrier(parties)`` gives an object with ``wait()`` that every shard
passes once its devices are built (None: no common start).

* :class:`ProcessBackend` - a ``concurrent.futures.ProcessPoolExecutor`` of one process per
  shard (``spawn``: each shard starts clean), with a ``multiprocessing`` manager's barrier.
* :class:`InlineBackend` - runs the shards one after the other in this process (tests,
  debugging); no barrier.
* :class:`RayBackend` - each shard a Ray task (``ray.remote(run_shard)``), for a cluster of
  machines: ``RayBackend(address="ray://head:10001")`` or a local ``ray.init()``. Needs the
  ``ray`` extra (``pip install 'fwsim[ray]'``); every machine must reach the cloud's UDP port,
  so serve the cloud on an address they can reach (``FleetPlan.host``). No barrier: shards
  start when Ray schedules them.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from ..kernel.errors import ConfigurationError
from .shard import ShardResult, ShardTask, run_shard


class ShardBackend(Protocol):
    name: str

    def barrier(self, parties: int) -> AbstractContextManager[Any]: ...

    def run(self, tasks: Sequence[ShardTask]) -> list[ShardResult]: ...


class InlineBackend:
    name = "inline"

    def barrier(self, parties: int) -> AbstractContextManager[Any]:
        return nullcontext(None)

    def run(self, tasks: Sequence[ShardTask]) -> list[ShardResult]:
        return [run_shard(task) for task in tasks]


class _ManagedBarrier(AbstractContextManager[Any]):
    def __init__(self, parties: int) -> None:
        self._manager = multiprocessing.get_context("spawn").Manager()
        self.barrier = self._manager.Barrier(parties)

    def __enter__(self) -> Any:
        return self.barrier

    def __exit__(self, *exc: object) -> None:
        self._manager.shutdown()


class ProcessBackend:
    name = "process"

    def barrier(self, parties: int) -> AbstractContextManager[Any]:
        return _ManagedBarrier(parties)

    def run(self, tasks: Sequence[ShardTask]) -> list[ShardResult]:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=len(tasks), mp_context=context) as pool:
            return list(pool.map(run_shard, tasks))


class RayBackend:
    name = "ray"

    def __init__(self, address: str | None = None, **init: Any) -> None:
        self.address = address
        self.init = init

    def barrier(self, parties: int) -> AbstractContextManager[Any]:
        return nullcontext(None)

    def run(self, tasks: Sequence[ShardTask]) -> list[ShardResult]:
        try:
            import ray
        except ModuleNotFoundError:
            raise ConfigurationError("the Ray backend needs Ray: pip install 'fwsim[ray]'"
                                     ) from None
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, **self.init)
        try:
            remote = ray.remote(run_shard)
            return list(ray.get([remote.remote(task) for task in tasks]))
        finally:
            if started_here:
                ray.shutdown()


BACKENDS: dict[str, type[ShardBackend]] = {
    "process": ProcessBackend, "inline": InlineBackend, "ray": RayBackend}

__all__ = ["BACKENDS", "InlineBackend", "ProcessBackend", "RayBackend", "ShardBackend"]
