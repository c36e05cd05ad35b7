"""The ``claimDevices`` cache: in memory, time-to-live after write, bounded size, putIfAbsent.

How this works
--------------
ThingsBoard keeps device-side claim data only in its Caffeine cache ``claimDevices``
(docs/thingsboard.md, B1 and B3): ``expireAfterWrite(timeToLiveInMinutes)``,
``maximumSize(maxSize)``, and 0 for either disables the cache. This class gives the same observable
behaviour on the service's clock:

* ``put_if_absent`` stores only when no live entry exists (the first secret wins, B3);
* an entry older than the TTL is gone (checked lazily on every access, like Caffeine);
* when a write would exceed ``max_size`` the oldest entry is evicted. Caffeine's W-TinyLFU picks
  its victim by frequency, not age (UNVERIFIED which entry a real server drops first; see
  docs/thingsboard.md); with claim data written once and read once, oldest-first is the
  plausible approximation;
* every removal is reported to ``on_removal(key, cause)`` with cause ``explicit`` (evict),
  ``expired`` (TTL) or ``size``, so the service can say *why* claim data vanished.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from .model import ClaimData

RemovalListener = Callable[[str, str], None]


class ClaimCache:
    def __init__(self, ttl_ms: int, max_size: int, now_ms: Callable[[], int],
                 on_removal: RemovalListener | None = None) -> None:
        self.ttl_ms = ttl_ms
        self.max_size = max_size
        self._now_ms = now_ms
        self._on_removal = on_removal
        self._entries: OrderedDict[str, tuple[int, ClaimData]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl_ms > 0 and self.max_size > 0

    def __len__(self) -> int:
        self._expire_all()
        return len(self._entries)

    def _removed(self, key: str, cause: str) -> None:
        if self._on_removal is not None:
            self._on_removal(key, cause)

    def _live(self, key: str) -> ClaimData | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        written_ms, data = entry
        if self._now_ms() - written_ms >= self.ttl_ms:
            del self._entries[key]
            self._removed(key, "expired")
            return None
        return data

    def _expire_all(self) -> None:
        for key in list(self._entries):
            self._live(key)

    def get(self, key: str) -> ClaimData | None:
        return self._live(key)

    def put_if_absent(self, key: str, data: ClaimData) -> bool:
        """Store ``data`` unless a live entry exists; returns whether it was stored."""
        if not self.enabled:
            return False
        if self._live(key) is not None:
            return False
        self._entries[key] = (self._now_ms(), data)
        while len(self._entries) > self.max_size:
            self._expire_all()
            if len(self._entries) <= self.max_size:
                break
            victim, _ = self._entries.popitem(last=False)
            self._removed(victim, "size")
        return True

    def evict(self, key: str) -> bool:
        """Remove the entry for ``key``; returns whether a live one was there."""
        if self._live(key) is None:
            return False
        del self._entries[key]
        self._removed(key, "explicit")
        return True
