"""The hook between the emulated cloud's edges (HTTP, UDP) and the driver of its World."""

from __future__ import annotations

from typing import Protocol


class Runtime(Protocol):
    """The real-time driver of the cloud's World (``AsyncioDriver`` satisfies it): ``sync``
    before touching the cloud (input lands at the right virtual instant), ``wake`` after (the
    driver re-reads the schedule)."""

    def sync(self) -> None: ...

    def wake(self) -> None: ...


class NullRuntime:
    """For a World stepped by someone else (tests, in-process scenarios)."""

    def sync(self) -> None:
        pass

    def wake(self) -> None:
        pass
