"""One structured trace for a whole world.

Every layer of every node writes records ``(t_us, seq, node, layer, kind, fields)`` to the same
:class:`Trace`. ``seq`` is a global counter, so the trace is a total order that replays exactly
for a given seed. Sinks receive each record as it is emitted:

* :class:`MemorySink` keeps records (optionally only the last N) for queries and failure reports;
* :class:`JsonlSink` writes one canonical JSON object per line (sorted keys, no spaces), so two
  runs with the same seed produce byte-identical files.

Layers write through a :class:`Tracer` bound to their ``(node, layer)``. Field values must be
JSON-friendly; ``bytes`` are written as hex, enums by name, sets sorted, other objects by
``str()``. Queries (``find``, ``first``, ``count``, ``tail``) see the records kept in memory:
all of them, or the last ``memory_limit``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from .clock import Clock
from .errors import ConfigurationError
from .output_paths import check_output_file
from .private_files import open_private_text

TRACE_FORMAT_VERSION = 1


class TraceRecord(NamedTuple):
    """One record (an immutable tuple: the cheapest object to build by the million)."""

    t_us: int
    seq: int
    node: str
    layer: str
    kind: str
    fields: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {"t_us": self.t_us, "seq": self.seq, "node": self.node, "layer": self.layer,
             "kind": self.kind, "fields": self.fields},
            sort_keys=True, separators=(",", ":"), default=_jsonable, ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, line: str) -> TraceRecord:
        obj = json.loads(line)
        return cls(int(obj["t_us"]), int(obj["seq"]), str(obj["node"]), str(obj["layer"]),
                   str(obj["kind"]), dict(obj.get("fields") or {}))

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def summary(self) -> str:
        """One human-readable line: ``[  12.345678] dev1 comm session.resumed k=v``."""
        extras = " ".join(f"{k}={_short(v)}" for k, v in self.fields.items())
        return f"[{self.t_us / 1e6:12.6f}] {self.node} {self.layer} {self.kind} {extras}".rstrip()


def escape_surrogates(line: str) -> str:
    """``line`` (a JSON text) with each lone surrogate written as its JSON escape ``\\udcff``:
    surrogates occur only inside JSON strings, where the escape means the same character."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _short(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class TraceSink(Protocol):
    def write(self, record: TraceRecord) -> None: ...

    def close(self) -> None: ...


class MemorySink:
    """Keeps records in memory; ``maxlen`` bounds it to the last N records."""

    def __init__(self, maxlen: int | None = None) -> None:
        self.records: deque[TraceRecord] = deque(maxlen=maxlen)

    def write(self, record: TraceRecord) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


class JsonlSink:
    """Writes one canonical JSON line per record to a path or an open text stream."""

    def __init__(self, target: str | Path | IO[str]) -> None:
        if isinstance(target, str | Path):
            path = Path(target)
            check_output_file(path, "trace file")  # "not a directory", not "File exists"
            try:
                # a trace holds the claim codes and tokens it saw
                self._stream: IO[str] = open_private_text(path)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot write trace file {path}: {exc.strerror or exc}") from exc
            self._owned = True
        else:
            self._stream = target
            self._owned = False

    def write(self, record: TraceRecord) -> None:
        line = record.to_json()
        try:
            self._stream.write(line + "\n")
        except UnicodeEncodeError:
            # a lone surrogate in a string, on a stream that cannot encode it: its JSON escape
            # (a text stream encodes the whole string before writing, so nothing was written)
            self._stream.write(escape_surrogates(line) + "\n")

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()


class Trace:
    """The append-only trace of one world."""

    def __init__(self, clock: Clock, *, memory_limit: int | None = None) -> None:
        self._clock = clock
        self._seq = 0
        self.memory = MemorySink(memory_limit)
        self._sinks: list[TraceSink] = [self.memory]
        self._listeners: list[Callable[[TraceRecord], None]] = []

    def add_sink(self, sink: TraceSink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: TraceSink) -> None:
        self._sinks.remove(sink)

    def subscribe(self, listener: Callable[[TraceRecord], None]) -> Callable[[], None]:
        """Call ``listener`` for each new record; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, node: str, layer: str, kind: str, **fields: Any) -> TraceRecord:
        return self.record(node, layer, kind, fields)

    def record(self, node: str, layer: str, kind: str, fields: dict[str, Any]) -> TraceRecord:
        """:meth:`emit` with the fields as a dict (taken over: do not change it afterwards)."""
        self._seq = seq = self._seq + 1
        record = TraceRecord(self._clock.now_us, seq, node, layer, kind, fields)
        sinks = self._sinks
        memory = self.memory
        if len(sinks) == 1 and sinks[0] is memory and not self._listeners:
            memory.records.append(record)  # the usual case: only the memory sink
            return record
        for sink in sinks:
            sink.write(record)
        for listener in self._listeners:
            listener(record)
        return record

    def bind(self, node: str, layer: str) -> Tracer:
        return Tracer(self, node, layer)

    def close(self) -> None:
        for sink in self._sinks:
            sink.close()

    # -- queries -------------------------------------------------------------------------------

    @property
    def records(self) -> list[TraceRecord]:
        return list(self.memory.records)

    def find(self, kind: str | None = None, *, node: str | None = None,
             layer: str | None = None, **fields: Any) -> list[TraceRecord]:
        """Records matching every given criterion (fields compared by equality)."""
        return list(_filter(self.memory.records, kind, node, layer, fields))

    def first(self, kind: str | None = None, **criteria: Any) -> TraceRecord | None:
        found = self.find(kind, **criteria)
        return found[0] if found else None

    def count(self, kind: str | None = None, **criteria: Any) -> int:
        return len(self.find(kind, **criteria))

    def tail(self, n: int) -> list[TraceRecord]:
        """The last ``n`` records kept in memory (fewer if there are fewer; none if ``n <= 0``)."""
        if n <= 0:
            return []
        return list(self.memory.records)[-n:]


def _filter(records: Iterable[TraceRecord], kind: str | None, node: str | None,
            layer: str | None, fields: dict[str, Any]) -> Iterator[TraceRecord]:
    for record in records:
        if kind is not None and record.kind != kind:
            continue
        if node is not None and record.node != node:
            continue
        if layer is not None and record.layer != layer:
            continue
        if any(record.fields.get(k) != v for k, v in fields.items()):
            continue
        yield record


class Tracer:
    """A trace handle bound to one ``(node, layer)``."""

    __slots__ = ("layer", "node", "trace")

    def __init__(self, trace: Trace, node: str, layer: str) -> None:
        self.trace = trace
        self.node = node
        self.layer = layer

    def emit(self, kind: str, **fields: Any) -> TraceRecord:
        return self.trace.record(self.node, self.layer, kind, fields)

    def child(self, layer: str) -> Tracer:
        return Tracer(self.trace, self.node, layer)


def read_jsonl(path: str | Path) -> list[TraceRecord]:
    """Load a JSON-lines trace written by :class:`JsonlSink`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read trace file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path} is not a fwsim trace (not UTF-8 text at byte "
                                 f"{exc.start})") from None
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(TraceRecord.from_json(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path}:{lineno}: not a fwsim trace record ({exc})") from exc
    return records
