"""Fleets split into shards: many worlds in separate processes, one cloud, the real UDP link.

``run_fleet(FleetPlan(devices=N, shards=K))`` starts the Particle cloud in its own process
(:mod:`firmware_sim.fleet.cloud_process`), which makes one claim code per device, then runs
``K`` shards - each its own World with ``N/K`` devices, each device on its own UDP socket to the
cloud - through a backend (:class:`ProcessBackend`: ``concurrent.futures`` processes on this
machine; :class:`InlineBackend`: in this process, one after the other; :class:`RayBackend`:
Ray tasks, for many machines). Every device boots, connects with a full handshake, sends its
claim code and clears it when the cloud confirms; the result reports devices per second over
the window in which the shards ran. ``fwsim fleet run`` is the command.
"""

from .backends import BACKENDS, InlineBackend, ProcessBackend, RayBackend, ShardBackend
from .runner import FleetPlan, FleetResult, run_fleet
from .shard import ShardResult, ShardTask, run_shard

__all__ = ["BACKENDS", "FleetPlan", "FleetResult", "InlineBackend", "ProcessBackend",
           "RayBackend", "ShardBackend", "ShardResult", "ShardTask", "run_fleet", "run_shard"]
