"""Byte-stream framing: any split of the stream gives the same frames; bad sizes are refused."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel.errors import ResultCode, UsageError
from transports.ble.device_channel import InboundPool
from transports.ble.framing import (
    MAX_HANDSHAKE_PAYLOAD_SIZE,
    FramingError,
    frame_handshake,
    handshake_assembler,
    message_assembler,
    split_packets,
)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[last:point])
        last = point
    return pieces


@settings(max_examples=150, deadline=None)
@given(payloads=st.lists(st.binary(min_size=1, max_size=MAX_HANDSHAKE_PAYLOAD_SIZE),
                         min_size=1, max_size=5),
       cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30))
def test_handshake_packets_survive_any_chunking(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_handshake(p) for p in payloads)
    reader = handshake_assembler()
    out: list[bytes] = []
    for piece in _cut(stream, cuts):
        out.extend(reader.feed(piece))
    assert out == payloads
    assert reader.idle


@settings(max_examples=150, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=4),
       cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30))
def test_message_frames_survive_any_chunking(sizes: list[int], cuts: list[int]) -> None:
    frames = [struct.pack("<H", size) + bytes([i]) * (6 + size + 8)
              for i, size in enumerate(sizes)]
    reader = message_assembler()
    out: list[bytes] = []
    for piece in _cut(b"".join(frames), cuts):
        out.extend(reader.feed(piece))
    assert out == frames


@settings(max_examples=100, deadline=None)
@given(packets=st.lists(st.binary(max_size=300), max_size=10),
       reads=st.lists(st.integers(min_value=0, max_value=700), max_size=20))
def test_inbound_pool_is_a_bounded_fifo(packets: list[bytes], reads: list[int]) -> None:
    pool = InboundPool(1024)
    accepted = bytearray()
    for packet in packets:
        if pool.put(packet):
            accepted += packet
        assert pool.used <= 1024
    drained = bytearray()
    for count in reads:
        drained += pool.read(count)
    drained += pool.read(10_000)
    assert bytes(drained) == bytes(accepted) and pool.used == 0


@pytest.mark.parametrize("size", [0, MAX_HANDSHAKE_PAYLOAD_SIZE + 1, 0xFFFF])
def test_handshake_size_zero_or_over_512_is_too_large(size: int) -> None:
    with pytest.raises(FramingError) as info:
        handshake_assembler().feed(struct.pack("<H", size) + b"x")
    assert info.value.result is ResultCode.TOO_LARGE


def test_handshake_size_512_is_accepted_and_frame_handshake_checks_sizes() -> None:
    assert handshake_assembler().feed(frame_handshake(bytes(512))) == [bytes(512)]
    for bad in (b"", bytes(513)):
        with pytest.raises(UsageError):
            frame_handshake(bad)


def test_push_refuses_more_than_wanted_and_split_packets() -> None:
    reader = handshake_assembler()
    assert reader.wants() == 2
    with pytest.raises(UsageError):
        reader.push(b"abc")
    assert split_packets(bytes(50), 20) == [bytes(20), bytes(20), bytes(10)]
    with pytest.raises(UsageError):
        split_packets(b"x", 0)
