"""Trace files take strings that UTF-8 cannot encode (lone surrogates) as JSON escapes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.kernel.clock import VirtualClock
from firmware_sim.kernel.trace import JsonlSink, Trace, TraceRecord, escape_surrogates, read_jsonl
from firmware_sim.testbed.testbed import LiveJsonlSink

ODD = TraceRecord(5, 2, "dev", "events", "publish.sent", {"name": "ev\udcff", "data": "é\ud800"})


def _records(sink_factory: type[JsonlSink] | type[LiveJsonlSink], path: Path
             ) -> list[TraceRecord]:
    trace = Trace(VirtualClock())
    sink = sink_factory(path)
    trace.add_sink(sink)
    trace.emit("dev", "events", "publish.sent", name="plain", data="é")
    trace.emit("dev", "events", "publish.sent", name="ev\udcff", data="é\ud800")
    trace.close()
    return read_jsonl(path)


@pytest.mark.parametrize("sink_factory", [JsonlSink, LiveJsonlSink])
def test_a_lone_surrogate_is_written_as_its_json_escape(
        tmp_path: Path, sink_factory: type[JsonlSink] | type[LiveJsonlSink]) -> None:
    path = tmp_path / "t.jsonl"
    records = _records(sink_factory, path)
    assert [r.fields for r in records] == [{"name": "plain", "data": "é"},
                                           {"name": "ev\udcff", "data": "é\ud800"}]
    lines = path.read_bytes().decode("utf-8").splitlines()
    assert lines[0] == ('{"fields":{"data":"é","name":"plain"},"kind":"publish.sent",'
                        '"layer":"events","node":"dev","seq":1,"t_us":0}')  # unchanged: no escape
    assert '"data":"é\\ud800","name":"ev\\udcff"' in lines[1]


def test_a_foreign_strict_stream_gets_the_escape_too() -> None:
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="utf-8")  # errors="strict"
    sink = JsonlSink(stream)
    sink.write(ODD)
    sink.close()
    line = buffer.getvalue().decode("utf-8")
    assert line.count("\n") == 1  # nothing half-written before the escape
    assert TraceRecord.from_json(line) == ODD


@given(st.text())
def test_escaping_keeps_the_json_meaning(text: str) -> None:
    line = TraceRecord(0, 1, "n", "l", "k", {"v": text}).to_json()
    escaped = escape_surrogates(line)
    escaped.encode("utf-8")  # always encodable
    assert json.loads(escaped) == json.loads(line)
    if not any("\ud800" <= c <= "\udfff" for c in text):
        assert escaped == line  # byte-identical when there is nothing to escape
