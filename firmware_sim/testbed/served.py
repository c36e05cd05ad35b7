"""A Particle cloud opened as the serving commands open it, for code that runs its own server.

:func:`open_served_cloud` is for benchmarks, fuzzers and tests that start
``cloud_sim.server.CloudServer`` themselves: it still builds the world through the testbed (the
one place that assembles worlds), with no device.
"""

from __future__ import annotations

from cloud_sim import Cloud

from .clouds.particle import SERVED_OFFLINE_AFTER_S, ParticlePlug, ParticleSettings
from .spec import CloudSpec, TestbedSpec
from .testbed import Testbed


def open_served_cloud(db: str, *, seed: int, epoch: int,
                      trace_memory_limit: int = 20_000) -> Cloud:
    """SQLite ``db`` (or ``:memory:``), cloud time anchored at ``epoch``, devices offline after
    75 silent seconds, secrets from the OS CSPRNG."""
    settings = ParticleSettings(db=db, epoch=epoch, offline_after_s=SERVED_OFFLINE_AFTER_S,
                                unpredictable=True)
    plug = Testbed(TestbedSpec(seed=seed, cloud=CloudSpec("particle", settings=settings),
                               access_points=(), trace_memory_limit=trace_memory_limit)).cloud
    assert isinstance(plug, ParticlePlug)
    return plug.cloud


__all__ = ["open_served_cloud"]
