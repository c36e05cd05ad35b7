from __future__ import annotations

import io
from enum import Enum
from pathlib import Path

import pytest

from firmware_sim.kernel import JsonlSink, World, read_jsonl
from firmware_sim.kernel.errors import ConfigurationError


class Color(Enum):
    RED = 1


def test_records_carry_time_node_layer_kind_fields() -> None:
    world = World(5)
    world.run_for(1.5)
    record = world.trace.bind("dev", "comm").emit("x.y", a=1, raw=b"\x01\xff", c=Color.RED)
    assert (record.t_us, record.node, record.layer, record.kind) == (1_500_000, "dev", "comm",
                                                                      "x.y")
    assert record.to_json() == (
        '{"fields":{"a":1,"c":"RED","raw":"01ff"},"kind":"x.y","layer":"comm","node":"dev",'
        f'"seq":{record.seq},"t_us":1500000}}')


def test_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    world = World(2, sinks=[JsonlSink(path)])
    world.trace.emit("n", "l", "k", v="ü")
    world.trace.close()
    records = read_jsonl(path)
    assert [r.kind for r in records] == ["world.created", "k"]
    assert records[1].fields == {"v": "ü"}


def test_find_and_tail() -> None:
    world = World()
    tracer = world.trace.bind("d", "sys")
    for i in range(5):
        tracer.emit("tick", i=i)
    assert [r.get("i") for r in world.trace.find("tick", node="d")] == [0, 1, 2, 3, 4]
    assert world.trace.count("tick", i=3) == 1
    assert [r.get("i") for r in world.trace.tail(2)] == [3, 4]
    assert world.trace.tail(0) == [] and world.trace.tail(-1) == []
    assert len(world.trace.tail(100)) == 6  # world.created + 5 ticks


def test_unreadable_or_invalid_trace_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read trace file"):
        read_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n")
    with pytest.raises(ConfigurationError, match=r"bad\.jsonl:1"):
        read_jsonl(bad)
    with pytest.raises(ConfigurationError, match="cannot write trace file"):
        JsonlSink(tmp_path / "no" / "such" / "dir" / "t.jsonl")


def test_jsonl_sink_on_a_stream_does_not_close_it() -> None:
    stream = io.StringIO()
    sink = JsonlSink(stream)
    world = World(sinks=[sink])
    world.trace.close()
    assert stream.getvalue().count("\n") == 1
