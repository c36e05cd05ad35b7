"""Event-stream fan-out whose cost per event does not grow with the number of idle streams.

How this works
--------------
Each open stream (``GET .../events``) follows one or two *keys*: ``("owner", principal)`` (the
caller's devices), ``("device", id)``, ``("product", id)``, ``("product-device", id, device)``
or ``("public",)``. The :class:`StreamHub` subscribes *once* to the cloud's event bus and keeps
streams in an index by key. When the cloud publishes an event, the hub looks the device up once
(ownership and product membership *at publish time*), derives the event's keys (at most six),
and hands the event to the streams indexed under them whose name prefix matches - so a thousand
streams of other users cost nothing per event (before: one filter call and one store lookup per
open stream, ~42 ms per event with 1,000 streams). Each stream has a bounded queue that drops
its oldest event when full; the SSE bytes of an event are encoded once and shared. An event
published through the API (``POST /v1/devices/events``) has no device: its keys are its
publisher's ``("owner", principal)``, its product's, and ``("public",)`` when public.

The hub also caps streams - in all and per access token (429 beyond) - since each holds a
connection. The global cap is shared fairly between *accounts* (the principal a stream is
opened for; sign-up needs no authentication, so a flood of fresh accounts must not be able to
lock an account out): at the global cap, a newcomer whose account holds fewer streams than the
account holding the most takes a place from that account - its oldest stream is closed and ends
cleanly (a ``None`` in its queue) - and only a newcomer whose account already holds as many as
any other gets 429. Among equally large accounts, the one holding the oldest stream gives way.
A stream opened without an account (``account=None``) never evicts one. A publish from another
thread is moved onto the server's loop.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from ..cloud import Cloud
from ..events import CloudEvent
from ..model import Principal
from .render import iso

Key = tuple[object, ...]


def owner_key(principal: Principal) -> Key:
    return ("owner", str(principal))


def device_key(device_id: str) -> Key:
    return ("device", device_id)


def product_key(product_id: int, device_id: str | None = None) -> Key:
    return ("product", product_id) if device_id is None else ("product-device", product_id,
                                                              device_id)


PUBLIC: Key = ("public",)


@lru_cache(maxsize=256)
def encode_event(event: CloudEvent) -> bytes:
    """The SSE bytes of an event (``event:`` / ``data:`` lines), encoded once per event."""
    data = {"data": event.data, "ttl": event.ttl, "published_at": iso(event.published_us),
            "coreid": event.coreid}
    name = event.name.replace("\n", " ").replace("\r", " ")
    return (f"event: {name}\ndata: {jsonlib.dumps(data, separators=(',', ':'))}\n\n"
            ).encode()


@dataclass(eq=False)
class Stream:
    keys: tuple[Key, ...]
    prefix: str | None
    token: str
    queue: asyncio.Queue[CloudEvent | None]
    #: whose stream it is, for the fair share of the global cap (the token when none given)
    account: str = ""
    #: order of opening (the oldest stream of an account is the first to give way)
    serial: int = 0

    def put(self, item: CloudEvent | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest
        self.queue.put_nowait(item)


class StreamLimitError(Exception):
    """Too many open streams (in all, or for one token)."""


@dataclass
class StreamHub:
    cloud: Cloud
    queue_size: int = 1000
    max_streams: int = 256
    max_per_token: int = 32
    _index: dict[Key, set[Stream]] = field(default_factory=dict)
    _streams: set[Stream] = field(default_factory=set)
    _per_token: dict[str, int] = field(default_factory=dict)
    #: the open streams of each account, oldest first (a dict kept in insertion order)
    _per_account: dict[str, dict[Stream, None]] = field(default_factory=dict)
    _opened: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: int | None = None
    _unsubscribe: object = None
    #: events delivered to streams, and stream checks made (the per-event cost)
    delivered: int = 0
    visited: int = 0
    #: streams closed to make room for an account holding fewer (the fair share)
    evicted: int = 0

    def __len__(self) -> int:
        return len(self._streams)

    def held_by(self, account: str) -> int:
        """How many streams ``account`` holds open."""
        return len(self._per_account.get(account, ()))

    def open(self, keys: Iterable[Key], prefix: str | None, token: str,
             account: str | None = None) -> Stream:
        """Open a stream following ``keys`` for ``token`` of ``account`` (the module header's
        caps; StreamLimitError beyond them)."""
        if self._per_token.get(token, 0) >= self.max_per_token:
            raise StreamLimitError(f"at most {self.max_per_token} event streams per token")
        if len(self._streams) >= self.max_streams:
            victim = self._fair_share_victim(account) if account is not None else None
            if victim is None:
                raise StreamLimitError(
                    f"at most {self.max_streams} event streams are open at once, and no other "
                    "account holds more of them than yours")
            self.evict(victim)
        if self._unsubscribe is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.get_ident()
            self._unsubscribe = self.cloud.bus.subscribe(self._on_event)
        self._opened += 1
        stream = Stream(tuple(keys), prefix or None, token, asyncio.Queue(self.queue_size),
                        account if account is not None else token, self._opened)
        self._streams.add(stream)
        self._per_token[token] = self._per_token.get(token, 0) + 1
        self._per_account.setdefault(stream.account, {})[stream] = None
        for key in stream.keys:
            self._index.setdefault(key, set()).add(stream)
        return stream

    def _fair_share_victim(self, account: str) -> Stream | None:
        """The stream a newcomer of ``account`` takes the place of at the global cap: the
        oldest of the account holding the most, when that is more than ``account`` holds (of
        equally large accounts, the one with the oldest stream); None when there is none."""
        held = self.held_by(account)
        victim: Stream | None = None
        most = held
        for streams in self._per_account.values():
            count = len(streams)
            if count < most:
                continue
            oldest = next(iter(streams))
            if count > most or (victim is not None and oldest.serial < victim.serial):
                victim, most = oldest, count
        return victim

    def evict(self, stream: Stream) -> None:
        """Close ``stream`` now and end it cleanly: its body sends what is queued, then ends."""
        if stream not in self._streams:
            return
        self.close(stream)
        self.evicted += 1
        stream.put(None)

    def close(self, stream: Stream) -> None:
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        left = self._per_token.get(stream.token, 1) - 1
        if left:
            self._per_token[stream.token] = left
        else:
            self._per_token.pop(stream.token, None)
        of_account = self._per_account.get(stream.account)
        if of_account is not None:
            of_account.pop(stream, None)
            if not of_account:
                del self._per_account[stream.account]
        for key in stream.keys:
            bucket = self._index.get(key)
            if bucket is not None:
                bucket.discard(stream)
                if not bucket:
                    del self._index[key]

    def close_all(self) -> None:
        """End every stream (server shutdown): each gets ``None``."""
        for stream in list(self._streams):
            stream.put(None)

    # -- publishing ----------------------------------------------------------------------------

    def _on_event(self, event: CloudEvent) -> None:
        if not self._streams:
            return
        if threading.get_ident() == self._thread or self._loop is None:
            self.dispatch(event)
        else:
            self._loop.call_soon_threadsafe(self.dispatch, event)

    def keys_of(self, event: CloudEvent) -> list[Key]:
        keys: list[Key] = []
        products = {event.product_id} - {None}
        if event.device_id is not None:
            keys.append(device_key(event.device_id))
            device = self.cloud.store.get_device(event.device_id)
            if device is not None:
                if device.owner is not None:
                    keys.append(owner_key(device.owner))
                if device.product_id is not None:
                    products.add(device.product_id)
        for product_id in products:
            assert product_id is not None
            keys.append(product_key(product_id))
            if event.device_id is not None:
                keys.append(product_key(product_id, event.device_id))
        if event.publisher is not None:  # published through the API: its publisher's streams
            keys.append(owner_key(event.publisher))
        if event.public:
            keys.append(PUBLIC)
        return keys

    def dispatch(self, event: CloudEvent) -> None:
        matched: set[Stream] = set()
        for key in self.keys_of(event):
            matched.update(self._index.get(key, ()))
        self.visited += len(matched)
        for stream in matched:
            if stream.prefix is None or event.name.startswith(stream.prefix):
                stream.put(event)
                self.delivered += 1
