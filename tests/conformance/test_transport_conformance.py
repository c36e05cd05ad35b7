"""Transport conformance: every byte-level framer/session keeps the same promises.

For each transport (``harnesses.HARNESSES``: the USB control-request service, the serial
console, the SoftAP TCP and HTTP sessions, the BLE frame assembler and the BLE control channel):

* the same input fed whole, one byte at a time, or cut at random boundaries gives the same
  outcome (hypothesis picks the boundaries);
* malformed or oversize input gets the documented answer (a STALL, a refusal text, a close
  without reply, a 400, a ``TOO_LARGE`` / ``NO_MEMORY`` channel error), never a Python
  exception; arbitrary bytes raise nothing but the transport's documented error type;
* closing works, twice, even in the middle of a request, and leaves no timer running.

Example counts are bounded so the suite stays fast (a few seconds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harnesses import HARNESSES, Chunker, Harness, split

NAMES = sorted(HARNESSES)
SIZES = st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8)
#: Hypothesis examples per harness; the BLE channel runs an EC-JPAKE handshake per example.
EXAMPLES = 6


def whole(harness: Harness) -> Chunker:
    return lambda data: split(data, [harness.max_chunk], harness.max_chunk)


def bytewise(harness: Harness) -> Chunker:
    return lambda data: split(data, [1], harness.max_chunk)


def cut(harness: Harness, sizes: list[int]) -> Chunker:
    return lambda data: split(data, sizes, harness.max_chunk)


def play(name: str, chunker: Callable[[Harness], Chunker]) -> list[object]:
    harness = HARNESSES[name]()
    chunks = chunker(harness)
    outcomes = [harness.exchange(message, chunks) for message in harness.script]
    harness.close()
    assert harness.timers_left == 0
    return outcomes


_WHOLE: dict[str, list[object]] = {}


def whole_outcomes(name: str) -> list[object]:
    if name not in _WHOLE:
        _WHOLE[name] = play(name, whole)
    return _WHOLE[name]


def _check_usb(outcomes: list[object]) -> None:
    # every request went through, and its reply came back whole
    for payload, outcome in zip(HARNESSES["usb-service"]().script, outcomes, strict=True):
        assert isinstance(outcome, tuple)
        assert outcome[:3] == (True, 0, b"re:" + payload)
        assert outcome[3][1] == payload


def _check_console(outcomes: list[object]) -> None:
    assert outcomes[1] == b"system firmware version: 6.2.0\n\r\n"
    assert outcomes[8] == b"Device claimed: yes\r\n"
    assert isinstance(outcomes[11], bytes) and outcomes[11].endswith(b"Particle <3 you!\r\n\r\n")
    assert isinstance(outcomes[16], bytes) and outcomes[16].endswith(b"Particle <3 you!\r\n\r\n")


def _check_tcp(outcomes: list[object]) -> None:
    assert outcomes[0] == (b'\n\n{"v":2}', True)
    assert outcomes[4] == (b'\n\n{"r":0}', True)
    assert outcomes[5] == (b'\n\n{"r":0}', True)  # configure-ap stored HomeNet
    assert outcomes[7] == (b"", True)  # ant-internal: no reply


def _check_http(outcomes: list[object]) -> None:
    statuses = [bytes(o[0]).split(b" ", 2)[1] for o in outcomes if isinstance(o, tuple)]
    assert statuses == [b"200"] * 5 + [b"301", b"301", b"404", b"200", b"200"]
    assert isinstance(outcomes[1], tuple) and outcomes[1][0].endswith(b'{"v":2}\r\n0\r\n\r\n')


def _check_framing(outcomes: list[object]) -> None:
    assert outcomes[0] == [b"a"]
    assert outcomes[2] == [bytes(512), b"two in a row"]
    assert isinstance(outcomes[3], list) and len(outcomes[3]) == 2


def _check_ble_channel(outcomes: list[object]) -> None:
    script = HARNESSES["ble-channel"]().script
    assert outcomes == [[(i + 1, 0, b"re:" + p)] for i, p in enumerate(script)]


CHECKS: dict[str, Callable[[list[object]], None]] = {
    "usb-service": _check_usb, "serial-console": _check_console, "softap-tcp": _check_tcp,
    "softap-http": _check_http, "ble-framing": _check_framing, "ble-channel": _check_ble_channel,
}


def test_every_harness_has_a_check() -> None:
    assert set(CHECKS) == set(HARNESSES)


@pytest.mark.parametrize("name", NAMES)
def test_whole_and_byte_at_a_time_give_the_same_outcome(name: str) -> None:
    outcomes = whole_outcomes(name)
    CHECKS[name](outcomes)
    assert play(name, bytewise) == outcomes


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=SIZES)
def test_random_chunks_give_the_same_outcome(name: str, sizes: list[int]) -> None:
    assert play(name, lambda harness: cut(harness, sizes)) == whole_outcomes(name)


MALFORMED = [(name, index) for name in NAMES
             for index in range(len(HARNESSES[name]().malformed))]


@pytest.mark.parametrize(("name", "index"), MALFORMED,
                         ids=[f"{name}-{index}" for name, index in MALFORMED])
def test_malformed_input_gets_the_documented_answer(name: str, index: int) -> None:
    harness = HARNESSES[name]()
    case = harness.malformed[index]
    chunks = whole(harness)
    outcomes = [harness.exchange(message, chunks) for message in case.messages]
    assert case.expect(outcomes), (case.label, outcomes)
    harness.close()
    harness.close()
    assert harness.timers_left == 0


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=4 * EXAMPLES, deadline=None)
@given(data=st.binary(max_size=600), sizes=SIZES)
def test_arbitrary_bytes_raise_only_the_documented_error(name: str, data: bytes,
                                                          sizes: list[int]) -> None:
    harness = HARNESSES[name]()
    with contextlib.suppress(harness.allowed):
        harness.feed_raw(data, cut(harness, sizes))
    harness.close()
    harness.close()
    assert harness.timers_left == 0


@pytest.mark.parametrize("name", NAMES)
def test_closing_mid_request_twice_leaves_no_timer(name: str) -> None:
    harness = HARNESSES[name]()
    harness.open_partial()
    harness.close()
    harness.close()
    assert harness.timers_left == 0
