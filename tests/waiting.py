"""Waiting in real time, inside an asyncio test, for something a server or device does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], timeout: float = 10.0, *,
                poll_s: float = 0.01) -> bool:
    """True once ``predicate()`` holds, False if it did not within ``timeout`` seconds;
    ``poll_s=0`` only yields to the loop between looks (for a busy socket reader)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(poll_s)
    return True
