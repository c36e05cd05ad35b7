"""The hook between the emulated cloud's edges (HTTP, UDP) and the driver of its World.

Defined once in the kernel (``firmware_sim.kernel.runtime``); re-exported here for the cloud's
modules.
"""

from __future__ import annotations

from firmware_sim.kernel.runtime import NullRuntime, Runtime

__all__ = ["NullRuntime", "Runtime"]
