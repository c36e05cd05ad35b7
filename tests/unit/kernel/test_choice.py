"""The Chooser seam: seeded draws equal the pre-chooser streams; recorded runs replay exactly."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel import (
    Choice,
    ChoiceKind,
    Chooser,
    ConfigurationError,
    DatagramLink,
    RecordingChooser,
    ReplayDivergence,
    ScriptedChooser,
    SeededChooser,
    UsageError,
    World,
)


def _lossy_world(seed: int, chooser: Chooser | None = None) -> tuple[World, list[str]]:
    """A scenario-like world: ping-pong over a lossy link plus timers that tie at each instant."""
    world = World(seed, chooser=chooser)
    link = DatagramLink(world, "lnk", latency_s=0.05, loss=0.3)
    seen: list[str] = []

    def echo(data: bytes) -> None:
        seen.append(f"b:{data!r}@{world.clock.now_us}")
        link.b.send(data + b"!")

    link.b.receiver = echo
    link.a.receiver = lambda data: seen.append(f"a:{data!r}@{world.clock.now_us}")

    def tick(who: str, n: int) -> None:
        seen.append(f"{who}{n}@{world.clock.now_us}")
        world.trace.emit(who, "test", "tick", n=n)
        link.a.send(f"{who}{n}".encode())
        if n < 8:
            world.call_later(0.1, tick, who, n + 1, label=f"tick-{who}")

    for who in "xyz":  # three chains due at the same instants: a tie-break at every step
        world.call_later(0.1, tick, who, 0, label=f"tick-{who}")
    world.run_for(2.0)
    return world, seen


def _trace_lines(world: World) -> list[str]:
    return [record.to_json() for record in world.trace.records]


def test_seeded_tiebreaks_are_the_pre_chooser_scheduler_stream() -> None:
    chooser = SeededChooser(11)
    legacy = random.Random("fwsim-scheduler:11")
    assert [chooser.tiebreak(f"l{i}") for i in range(50)] == [legacy.random() for _ in range(50)]


def test_seeded_link_loss_draws_from_the_links_old_stream() -> None:
    world = World(5)
    legacy = world.rng_for("link:cloud-link-1")
    chooser = SeededChooser(5)
    draws = [chooser.chance("link:cloud-link-1:loss", 0.4) for _ in range(200)]
    assert draws == [legacy.random() < 0.4 for _ in range(200)]


def test_seeded_names_have_independent_streams() -> None:
    alone = SeededChooser(3)
    mixed = SeededChooser(3)
    first = [alone.uniform("jitter:a", 0.0, 1.0) for _ in range(20)]
    interleaved = []
    for _ in range(20):
        mixed.pick("other", [1, 2, 3])
        interleaved.append(mixed.uniform("jitter:a", 0.0, 1.0))
    assert first == interleaved
    assert all(0.0 <= value <= 1.0 for value in first)


def test_seeded_chooser_never_fires_faults_and_zero_chance_draws_nothing() -> None:
    chooser = SeededChooser(0)
    assert not any(chooser.fault("link:x:drop") for _ in range(100))
    assert not any(chooser.chance("c", 0.0) for _ in range(100))
    assert chooser.chance("c", 0.5) == (random.Random("fwsim:0:c").random() < 0.5)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_a_probability_outside_0_1_is_refused(p: float) -> None:
    with pytest.raises(UsageError, match="probability"):
        SeededChooser(0).chance("c", p)


def test_picking_from_nothing_is_refused() -> None:
    with pytest.raises(UsageError, match="no options"):
        SeededChooser(0).pick("p", [])


def test_the_world_asks_its_chooser_for_tiebreaks() -> None:
    asked: list[str] = []

    class Counting(SeededChooser):
        def tiebreak(self, label: str) -> float:
            asked.append(label)
            return super().tiebreak(label)

    world = World(0, chooser=Counting(0))
    world.call_later(1.0, lambda: None, label="one")
    world.call_soon(lambda: None, label="two")
    assert asked == ["one", "two"]
    assert isinstance(World(0).chooser, SeededChooser)


def test_an_explorer_chooser_steers_same_instant_order() -> None:
    class LastFirst(SeededChooser):
        """Runs same-instant entries in reverse creation order."""

        def __init__(self) -> None:
            super().__init__(0)
            self.next = 1.0

        def tiebreak(self, label: str) -> float:
            self.next -= 1e-6
            return self.next

    world = World(0, chooser=LastFirst())
    out: list[int] = []
    for i in range(6):
        world.call_later(1.0, out.append, i)
    world.run_for(1.0)
    assert out == [5, 4, 3, 2, 1, 0]


def test_equal_tiebreaks_run_in_creation_order() -> None:
    script = [Choice(ChoiceKind.TIEBREAK, "", 0.5)] * 5
    world_chooser = ScriptedChooser(script, then=SeededChooser(0))
    world = World(0, chooser=world_chooser)
    out: list[int] = []
    for i in range(5):
        world.call_later(1.0, out.append, i)
    world.run_for(1.0)
    assert out == [0, 1, 2, 3, 4]


def test_a_fault_point_drops_exactly_the_datagram_it_was_asked_for() -> None:
    class DropSecond(SeededChooser):
        def __init__(self) -> None:
            super().__init__(0)
            self.asked = 0

        def fault(self, name: str) -> bool:
            if name != "link:l:drop":
                return False
            self.asked += 1
            return self.asked == 2

    world = World(0, chooser=DropSecond())
    link = DatagramLink(world, "l", latency_s=0.01)
    got: list[bytes] = []
    link.b.receiver = got.append
    for data in (b"1", b"2", b"3"):
        link.a.send(data)
    world.run_for(1.0)
    assert got == [b"1", b"3"]
    assert link.dropped == 1
    lost = world.trace.find("datagram.lost")
    assert [(r.get("size"), r.get("fault")) for r in lost] == [(1, "link:l:drop")]


def test_a_recorded_run_replays_byte_identically() -> None:
    recorder = RecordingChooser(SeededChooser(4))
    world, seen = _lossy_world(4, recorder)
    kinds = {choice.kind for choice in recorder.choices}
    assert {ChoiceKind.TIEBREAK, ChoiceKind.CHANCE, ChoiceKind.FAULT} <= kinds
    assert any(choice.kind is ChoiceKind.CHANCE and choice.value for choice in recorder.choices)

    script = [Choice.from_json(choice.to_json()) for choice in recorder.choices]
    assert script == recorder.choices
    replay = ScriptedChooser(script)
    again, seen_again = _lossy_world(4, replay)
    assert _trace_lines(again) == _trace_lines(world)
    assert seen_again == seen
    replay.check_finished()
    assert replay.remaining == 0 and replay.position == len(script)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_recording_does_not_change_a_seeded_run_and_replays_for_any_seed(seed: int) -> None:
    plain, _ = _lossy_world(seed)
    recorder = RecordingChooser(SeededChooser(seed))
    recorded, _ = _lossy_world(seed, recorder)
    replayed, _ = _lossy_world(seed, ScriptedChooser(recorder.choices))
    assert _trace_lines(plain) == _trace_lines(recorded) == _trace_lines(replayed)


def test_a_script_can_steer_the_loss_of_one_datagram() -> None:
    recorder = RecordingChooser(SeededChooser(2))
    _, seen = _lossy_world(2, recorder)
    flip = next(i for i, c in enumerate(recorder.choices) if c.kind is ChoiceKind.CHANCE)
    first = recorder.choices[flip]
    steered = [*recorder.choices[:flip], Choice(first.kind, first.name, not first.value)]
    _, seen_steered = _lossy_world(2, ScriptedChooser(steered, then=SeededChooser(2)))

    first_sent = seen[0].split("@")[0]  # the first tick sends the first datagram
    assert seen_steered[0].split("@")[0] == first_sent

    def arrived(log: list[str]) -> bool:
        return any(entry.startswith(f"b:b'{first_sent}'") for entry in log)

    assert arrived(seen) is (not first.value)
    assert arrived(seen_steered) is bool(first.value)


def _ask(chooser: Chooser, kind: ChoiceKind, name: str) -> Any:
    questions: dict[ChoiceKind, Callable[[], Any]] = {
        ChoiceKind.TIEBREAK: lambda: chooser.tiebreak(name),
        ChoiceKind.CHANCE: lambda: chooser.chance(name, 0.5),
        ChoiceKind.UNIFORM: lambda: chooser.uniform(name, 1.0, 2.0),
        ChoiceKind.PICK: lambda: chooser.pick(name, "abc"),
        ChoiceKind.FAULT: lambda: chooser.fault(name),
    }
    return questions[kind]()


SCRIPT: Sequence[Choice] = (
    Choice(ChoiceKind.TIEBREAK, "t", 0.25),
    Choice(ChoiceKind.CHANCE, "c", True),
    Choice(ChoiceKind.UNIFORM, "u", 1.5),
    Choice(ChoiceKind.PICK, "p", 2),
    Choice(ChoiceKind.FAULT, "f", True),
)


def test_a_script_answers_exactly_what_it_recorded() -> None:
    chooser = ScriptedChooser(SCRIPT)
    answers = [_ask(chooser, choice.kind, choice.name) for choice in SCRIPT]
    assert answers == [0.25, True, 1.5, 2, True]
    chooser.check_finished()


def test_asking_a_different_question_is_a_replay_divergence() -> None:
    chooser = ScriptedChooser(SCRIPT)
    chooser.tiebreak("t")
    with pytest.raises(ReplayDivergence, match=r"choice #1: the run asked for fault 'c'"):
        chooser.fault("c")
    with pytest.raises(ReplayDivergence, match=r"asked for chance 'other'.*recorded chance 'c'"):
        chooser.chance("other", 0.5)


def test_running_past_the_script_is_a_divergence_unless_a_fallback_is_given() -> None:
    short = ScriptedChooser(SCRIPT[:1])
    short.tiebreak("t")
    with pytest.raises(ReplayDivergence, match="after all 1 scripted choices"):
        short.tiebreak("t")
    fallback = ScriptedChooser(SCRIPT[:1], then=SeededChooser(9))
    fallback.tiebreak("t")
    assert fallback.tiebreak("x") == random.Random("fwsim-scheduler:9").random()


def test_ending_before_the_script_does_is_reported() -> None:
    chooser = ScriptedChooser(SCRIPT)
    chooser.tiebreak("t")
    with pytest.raises(ReplayDivergence, match=r"ended after 1 of 5.*next was chance 'c'"):
        chooser.check_finished()


def test_a_recorded_pick_out_of_range_is_a_divergence() -> None:
    chooser = ScriptedChooser([Choice(ChoiceKind.PICK, "p", 5)])
    with pytest.raises(ReplayDivergence, match="option 5 of only 3"):
        chooser.pick("p", "abc")


@pytest.mark.parametrize("line", [
    "", "[]", "{}", '{"kind":"nope","name":"x","value":1}',
    '{"kind":"chance","name":"x","value":1}', '{"kind":"pick","name":"x","value":true}',
    '{"kind":"tiebreak","name":3,"value":0.5}', '{"kind":"uniform","name":"x","value":"1"}',
])
def test_a_line_that_is_not_a_recorded_choice_is_refused(line: str) -> None:
    with pytest.raises(ConfigurationError, match="not a recorded choice"):
        Choice.from_json(line)


def _device_world(chooser: Chooser) -> World:
    """Two devices connecting to the cloud over a lossy in-process link."""
    from cloud_sim import Cloud
    from firmware_sim.system import AccessPoint, Device, WifiCredentials, radio_environment

    world = World(6, chooser=chooser)
    radio_environment(world).add(AccessPoint("HomeNet", "home-pass-1"))
    cloud = Cloud(world)
    for i in range(2):
        device = Device(world, f"d{i}", wifi=[WifiCredentials("HomeNet", "home-pass-1")])
        device.attach_cloud(cloud.connector(loss=0.2))
        device.power_on()
    world.run_for(30.0)
    return world


def test_a_recorded_device_and_cloud_run_replays_byte_identically() -> None:
    recorder = RecordingChooser(SeededChooser(6))
    recorded = _device_world(recorder)
    assert recorded.trace.count("datagram.lost") > 0
    assert recorded.trace.count("coap.retransmit") > 0
    replay = ScriptedChooser(recorder.choices)
    assert _trace_lines(_device_world(replay)) == _trace_lines(recorded)
    replay.check_finished()
