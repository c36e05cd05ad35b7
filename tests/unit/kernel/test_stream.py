"""The stream link: ordered bytes on virtual time, chunking, FIN, RST, reset, listener."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel import (
    SeededChooser,
    StreamEnd,
    StreamLink,
    StreamListener,
    UsageError,
    World,
)


class Owner:
    """Records what one end's owner is told, with the virtual time."""

    def __init__(self, world: World, end: StreamEnd) -> None:
        self.world = world
        self.end = end
        self.events: list[tuple[str, object, int]] = []
        end.on_data = lambda data: self.events.append(("data", data, world.clock.now_us))
        end.on_eof = lambda: self.events.append(("eof", None, world.clock.now_us))
        end.on_reset = lambda: self.events.append(("reset", None, world.clock.now_us))

    @property
    def data(self) -> bytes:
        return b"".join(value for kind, value, _ in self.events
                        if kind == "data" and isinstance(value, bytes))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


def _pair(world: World, **kwargs: object) -> tuple[StreamLink, Owner, Owner]:
    link = StreamLink(world, "s", **kwargs)  # type: ignore[arg-type]
    return link, Owner(world, link.a), Owner(world, link.b)


def test_bytes_arrive_in_order_after_the_latency() -> None:
    world = World(0)
    link, a, b = _pair(world, latency_s=0.25)
    link.a.write(b"hello ")
    link.a.write(b"world")
    link.b.write(b"back")
    world.run_for(0.2)
    assert a.events == [] and b.events == []
    world.run_for(0.1)
    assert b.events == [("data", b"hello ", 250_000), ("data", b"world", 250_000)]
    assert a.events == [("data", b"back", 250_000)]


def test_many_same_instant_writes_are_never_reordered_by_the_tiebreak() -> None:
    for seed in range(10):
        world = World(seed)
        link, _, b = _pair(world, latency_s=0.01)
        pieces = [bytes([i]) for i in range(50)]
        for piece in pieces:
            link.a.write(piece)
        world.run_for(1.0)
        assert b.data == b"".join(pieces)


@pytest.mark.parametrize("chunk_size", range(1, 12))
def test_writes_are_cut_into_chunks_of_at_most_chunk_size(chunk_size: int) -> None:
    world = World(0)
    link, _, b = _pair(world, chunk_size=chunk_size)
    message = b"0123456789"
    link.a.write(message)
    link.a.write(b"ab")
    world.run_for(0.0)
    pieces = [value for _, value, _ in b.events]
    assert b.data == message + b"ab"
    assert all(isinstance(p, bytes) and 0 < len(p) <= chunk_size for p in pieces)
    expected = -(-len(message) // chunk_size) + -(-2 // chunk_size)
    assert len(pieces) == expected


def test_latency_may_change_at_run_time_without_reordering() -> None:
    world = World(0)
    link, _, b = _pair(world, latency_s=1.0)
    link.a.write(b"slow")
    world.run_for(0.2)
    link.latency_s = 0.1
    link.a.write(b"fast")  # due at 0.3 s, but may not overtake "slow" (due at 1.0 s)
    world.run_for(2.0)
    assert b.events == [("data", b"slow", 1_000_000), ("data", b"fast", 1_000_000)]
    link.a.write(b"later")
    world.run_for(0.1)
    assert b.events[-1] == ("data", b"later", world.clock.now_us)


def test_close_delivers_everything_written_first_then_eof() -> None:
    world = World(3)
    link, a, b = _pair(world, latency_s=0.05, chunk_size=2)
    link.a.write(b"abcdef")
    link.a.close()
    link.a.write(b"ignored")
    assert link.a.closed and not link.b.closed
    world.run_for(1.0)
    assert b.data == b"abcdef"
    assert b.kinds == ["data", "data", "data", "eof"]
    # the peer may still write; the closed end discards it without calling its owner
    link.b.write(b"too late")
    link.b.close()
    world.run_for(1.0)
    assert a.events == []
    discarded = world.trace.find("stream.discarded", side="a", why="closed")
    assert sum(r.get("size") for r in discarded) == len(b"too late")


def test_abort_drops_data_in_flight_and_resets_the_peer() -> None:
    world = World(0)
    link, a, b = _pair(world, latency_s=0.5)
    link.a.write(b"never arrives")
    link.b.write(b"neither")
    world.run_for(0.1)
    link.a.abort()
    assert link.a.closed
    world.run_for(1.0)
    assert b.events == [("reset", None, 600_000)]
    assert a.events == []
    assert link.b.closed
    link.b.write(b"after reset")
    world.run_for(1.0)
    assert a.events == [] and world.trace.count("stream.discarded") == 0


def test_reset_breaks_both_sides_now_and_drops_everything() -> None:
    world = World(0)
    link, a, b = _pair(world, latency_s=0.5)
    link.a.write(b"x")
    link.b.write(b"y")
    world.run_for(0.2)
    link.reset()
    assert link.a.closed and link.b.closed
    world.run_for(1.0)
    assert a.events == [("reset", None, 200_000)]
    assert b.events == [("reset", None, 200_000)]


def test_an_end_closed_before_the_reset_is_not_called_back() -> None:
    world = World(0)
    link, a, b = _pair(world)
    link.a.close()
    link.reset()
    world.run_for(1.0)
    assert a.events == []
    assert b.kinds == ["reset"]


def test_writes_after_close_or_abort_are_no_ops_and_repeat_calls_are_harmless() -> None:
    world = World(0)
    link, _, b = _pair(world)
    link.a.close()
    link.a.close()
    link.a.abort()
    link.a.write(b"x")
    world.run_for(1.0)
    assert b.kinds == ["eof"]
    assert world.trace.count("stream.data") == 0
    assert world.trace.count("stream.abort") == 0


def test_every_event_leaves_a_compact_trace_record() -> None:
    world = World(0)
    link, _, _ = _pair(world, latency_s=0.01, chunk_size=4)
    link.a.write(b"0123456789")
    link.b.close()
    link.a.abort()
    link.reset()
    world.run_for(1.0)
    records = [(r.node, r.layer, r.kind, r.fields) for r in world.trace.records[1:]]
    assert records == [
        ("s", "link", "stream.open", {"latency_s": 0.01, "chunk_size": 4}),
        ("s", "link", "stream.data", {"side": "a", "size": 10}),
        ("s", "link", "stream.fin", {"side": "b"}),
        ("s", "link", "stream.abort", {"side": "a"}),
        ("s", "link", "stream.reset", {}),
    ]


def test_data_without_a_reader_is_discarded_and_traced() -> None:
    world = World(0)
    link = StreamLink(world, "s")
    link.a.write(b"abc")
    world.run_for(0.0)
    assert world.trace.count("stream.discarded", side="b", size=3, why="no on_data") == 1


@pytest.mark.parametrize("kwargs", [{"latency_s": -1.0}, {"latency_s": float("nan")},
                                    {"chunk_size": 0}, {"chunk_size": -3},
                                    {"chunk_size": True}])
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        StreamLink(World(0), "s", **kwargs)  # type: ignore[arg-type]
    link = StreamLink(World(0), "ok")
    with pytest.raises(UsageError):
        for key, value in kwargs.items():
            setattr(link, key, value)


def test_a_fault_point_breaks_the_network_at_the_chosen_write() -> None:
    class BreakOnSecondWrite(SeededChooser):
        def __init__(self) -> None:
            super().__init__(0)
            self.writes = 0

        def fault(self, name: str) -> bool:
            if name != "stream:s:reset":
                return False
            self.writes += 1
            return self.writes == 2

    world = World(0, chooser=BreakOnSecondWrite())
    link, a, b = _pair(world, latency_s=0.1)
    link.a.write(b"first")
    link.a.write(b"second")
    world.run_for(1.0)
    assert b.kinds == ["reset"] and a.kinds == ["reset"]
    assert world.trace.count("stream.reset", fault="stream:s:reset") == 1


def _conversation(seed: int) -> list[str]:
    world = World(seed)
    link, a, b = _pair(world, latency_s=0.01, chunk_size=3)
    for i in range(5):
        link.a.write(f"a{i}-".encode())
        link.b.write(f"b{i}+".encode())
        world.call_later(0.01, link.a.write, b"tick")
    link.a.close()
    world.run_for(1.0)
    return [r.to_json() for r in world.trace.records] + [repr(a.events), repr(b.events)]


def test_same_seed_same_run() -> None:
    assert _conversation(4) == _conversation(4)


@settings(max_examples=60, deadline=None)
@given(writes=st.lists(st.binary(min_size=0, max_size=40), max_size=12),
       chunk_size=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
       latencies=st.lists(st.sampled_from([0.0, 0.001, 0.05, 0.3]), min_size=1, max_size=12),
       seed=st.integers(min_value=0, max_value=1000))
def test_any_writes_arrive_as_exactly_their_concatenation(
        writes: list[bytes], chunk_size: int | None, latencies: list[float], seed: int) -> None:
    world = World(seed)
    link, _, b = _pair(world, chunk_size=chunk_size)
    for i, data in enumerate(writes):
        link.latency_s = latencies[i % len(latencies)]
        link.a.write(data)
        world.run_for(latencies[(i + 1) % len(latencies)] / 2)
    link.a.close()
    world.run_for(5.0)
    assert b.data == b"".join(writes)
    assert b.kinds[-1] == "eof" and b.kinds.count("eof") == 1
    if chunk_size is not None:
        assert all(len(v) <= chunk_size for k, v, _ in b.events if isinstance(v, bytes))
    times = [t for _, _, t in b.events]
    assert times == sorted(times)


# -- listener ------------------------------------------------------------------------------------


def test_a_listener_accepts_before_any_client_data_arrives() -> None:
    for seed in range(8):
        world = World(seed)
        servers: list[Owner] = []

        def accept(end: StreamEnd, world: World = world, servers: list[Owner] = servers) -> None:
            servers.append(Owner(world, end))

        listener = StreamListener(world, "broker", accept, latency_s=0.02)
        clients = [listener.connect() for _ in range(3)]
        for i, client in enumerate(clients):
            client.write(f"CONNECT {i}".encode())  # written before the server end exists
        world.run_for(1.0)
        assert sorted(server.data for server in servers) == [b"CONNECT 0", b"CONNECT 1",
                                                            b"CONNECT 2"]
        assert world.trace.count("stream.accepted") == 3
        assert {c.link.name for c in clients} == {"broker-1", "broker-2", "broker-3"}


@pytest.mark.parametrize("seed", range(6))
def test_a_closed_listener_refuses_and_the_client_is_reset(seed: int) -> None:
    world = World(seed)
    accepted: list[StreamEnd] = []
    listener = StreamListener(world, "broker", accepted.append, latency_s=0.1)
    listener.close()
    client = listener.connect()
    owner = Owner(world, client)
    client.write(b"hello?")
    client.write(b"anyone?")
    world.run_for(1.0)
    assert accepted == []
    assert owner.events == [("reset", None, 200_000)]
    assert world.trace.count("stream.refused") == 1
    assert world.trace.count("stream.discarded") == 0
    assert world.run_until_idle(0.0)


# -- any sequence of operations ------------------------------------------------------------------

_OPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.sampled_from("ab"), st.binary(min_size=1, max_size=9)),
    st.tuples(st.just("close"), st.sampled_from("ab"), st.just(b"")),
    st.tuples(st.just("abort"), st.sampled_from("ab"), st.just(b"")),
    st.tuples(st.just("reset"), st.just(""), st.just(b"")),
    st.tuples(st.just("wait"), st.sampled_from(["0", "0.004", "0.01", "0.05"]), st.just(b"")),
    st.tuples(st.just("latency"), st.sampled_from(["0", "0.003", "0.02"]), st.just(b"")),
), max_size=25)


@settings(max_examples=80, deadline=None)
@given(ops=_OPS, seed=st.integers(min_value=0, max_value=50),
       chunk_size=st.one_of(st.none(), st.integers(min_value=1, max_value=4)))
def test_any_operations_keep_the_stream_invariants(
        ops: list[tuple[str, str, bytes]], seed: int, chunk_size: int | None) -> None:
    world = World(seed)
    link, a, b = _pair(world, latency_s=0.01, chunk_size=chunk_size)
    owners = {"a": a, "b": b}
    written = {"a": b"", "b": b""}
    for op, arg, data in ops:
        if op == "write":
            end = owners[arg].end
            if not end.closed:
                written[arg] += data
            end.write(data)
        elif op == "close":
            owners[arg].end.close()
        elif op == "abort":
            owners[arg].end.abort()
        elif op == "reset":
            link.reset()
        elif op == "wait":
            world.run_for(float(arg))
        else:
            link.latency_s = float(arg)
    world.run_for(1.0)
    assert world.run_until_idle(0.0), "nothing may stay scheduled once all has arrived"
    for side, peer in (("a", "b"), ("b", "a")):
        owner = owners[side]
        kinds = owner.kinds
        assert written[peer].startswith(owner.data), "a receiver gets a prefix, in order"
        assert kinds.count("eof") <= 1 and kinds.count("reset") <= 1
        if "reset" in kinds:
            assert kinds[-1] == "reset", "nothing arrives after a reset"
        if "eof" in kinds:
            assert "data" not in kinds[kinds.index("eof"):], "no data after eof"
            assert owner.data == written[peer], "eof comes after all the peer wrote"
