"""The feed: records routed per device, history read back, bounded buffers, streams woken."""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim.dashboard import feed as feed_module
from firmware_sim.dashboard.feed import Feed, per_device_for
from firmware_sim.kernel.trace import TraceRecord
from firmware_sim.kernel.world import World


def route(record: TraceRecord) -> tuple[str, bool] | None:
    if record.node.startswith("dev"):
        return record.node, record.kind != "noise"
    return None


def test_records_go_to_their_device_and_history_is_read_back() -> None:
    world = World(1)
    world.trace.emit("dev1", "log", "log", message="before the feed")
    feed = Feed(world.trace, route, per_device=3)
    seen: list[tuple[str, str]] = []
    feed.on_device_record(lambda name, record: seen.append((name, record.kind)))
    start = feed.generation
    world.trace.emit("dev1", "system", "noise")
    world.trace.emit("cloud", "endpoint", "event", device_id="x")
    for index in range(4):
        world.trace.emit("dev2", "log", "log", message=str(index))
    assert [r.fields["message"] for r in feed.device_records("dev1")] == ["before the feed"]
    assert [r.fields["message"] for r in feed.device_records("dev2")] == ["1", "2", "3"]
    assert feed.generation == start + 5, "not kept still counts as a change"
    assert seen[0] == ("dev1", "noise") and len(seen) == 5
    feed.add_extra("dev1", "an event")
    feed.add_extra("dev1", "another")
    assert feed.device_extras("dev1") == [(1, "an event"), (2, "another")]
    assert feed.device_records("nope") == [] and feed.device_extras("nope") == []
    feed.close()
    world.trace.emit("dev1", "log", "log", message="after")
    assert len(feed.device_records("dev1")) == 1, "closed: no longer listening"


def test_buffers_are_bounded_per_device_and_in_number(monkeypatch: pytest.MonkeyPatch) -> None:
    assert per_device_for(1) == 3000 and per_device_for(100) == 2000
    assert per_device_for(10_000) == 200
    world = World(1)
    feed = Feed(world.trace, route, per_device=2)
    monkeypatch.setattr(feed_module, "MAX_DEVICES", 3)
    for index in range(5):
        world.trace.emit(f"dev{index}", "log", "log")
        feed.add_extra(f"dev{index}", index)
    assert sorted(feed.records) == ["dev0", "dev1", "dev2"]
    assert sorted(feed.extras) == ["dev0", "dev1", "dev2"]


def test_waiting_streams_wake_on_a_change_time_out_and_end_on_close() -> None:
    world = World(1)
    feed = Feed(world.trace, route)

    async def main() -> None:
        generation = feed.generation
        assert await feed.wait(generation, 0.01) is False  # nothing happened
        waiting = asyncio.ensure_future(feed.wait(generation, 5))
        await asyncio.sleep(0)
        assert feed.streams == 1
        world.trace.emit("dev1", "log", "log")
        assert await waiting is True and feed.streams == 0
        assert await feed.wait(generation, 5) is True, "already past: at once"
        waiting = asyncio.ensure_future(feed.wait(feed.generation, 5))
        await asyncio.sleep(0)
        feed.close()
        assert await waiting is False
        assert await feed.wait(feed.generation, 5) is False

    asyncio.run(main())
