"""The byte-stream interface the sans-IO MQTT objects talk through.

It has the shape of one end of the kernel's stream link (``firmware_sim.kernel.stream``
``StreamEnd``): callbacks for data, end of stream and reset, and ``write``/``close``/``abort``.
An in-world link end, an asyncio socket adapter (:mod:`.asyncio_io`) or a test pair all fit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ByteStream(Protocol):
    on_data: Callable[[bytes], None] | None
    on_eof: Callable[[], None] | None
    on_reset: Callable[[], None] | None

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    @property
    def closed(self) -> bool: ...
