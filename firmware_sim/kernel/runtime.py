"""The hook between a World's real-world edges (sockets, HTTP, ptys) and whoever drives it.

Edge code that injects input into a World calls ``runtime.sync()`` first, so the input lands at
the right virtual instant, and ``runtime.wake()`` after, so the driver re-reads the schedule.
``AsyncioDriver`` (``realtime.py``) satisfies :class:`Runtime`; :class:`NullRuntime` is for a
World stepped by someone else (tests, in-process scenarios), where both are no-ops.
"""

from __future__ import annotations

from typing import Protocol


class Runtime(Protocol):
    """What edge code needs of a World's driver."""

    def sync(self) -> None:
        """Bring the World up to the current (wall-equivalent) instant."""
        ...

    def wake(self) -> None:
        """Tell the driver the schedule may have changed."""
        ...


class NullRuntime:
    """A :class:`Runtime` that does nothing: the World is stepped by its owner."""

    def sync(self) -> None:
        pass

    def wake(self) -> None:
        pass


__all__ = ["NullRuntime", "Runtime"]
