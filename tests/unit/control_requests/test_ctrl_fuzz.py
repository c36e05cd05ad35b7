"""Property tests: any payload to any request type gives a message or BAD_DATA, nothing else."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_requests import codec
from control_requests.errors import BadData, ReplyEncodingFailed
from control_requests.testing import populate
from control_requests.types import RequestType
from firmware_sim.kernel.errors import ResultCode

TYPES = sorted(codec.message_pairs())
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_bad_data(request_type: RequestType, payload: bytes) -> None:
    try:
        message = codec.decode_request(request_type, payload)
    except BadData as error:
        assert error.code == ResultCode.BAD_DATA
        assert not error.reason.startswith("internal"), error
        return
    assert isinstance(message, codec.device_class(codec.request_class(request_type)))
    # What the device kept re-encodes and decodes to itself.
    assert codec.decode_request(request_type, codec.encode_request(message)) == message


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=300))
def test_arbitrary_bytes(request_type: RequestType, payload: bytes) -> None:
    _decode_or_bad_data(request_type, payload)


@FUZZ
@given(st.sampled_from(TYPES), st.randoms(use_true_random=False), st.data())
def test_mutated_valid_payloads(
    request_type: RequestType, rng: random.Random, data: st.DataObject
) -> None:
    message = populate(codec.request_class(request_type), rng, within_nanopb_limits=False)
    payload = bytearray(codec.encode_request(message))
    for _ in range(data.draw(st.integers(0, 4))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = data.draw(st.integers(0, len(payload)))
        if action == "flip" and position < len(payload):
            payload[position] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            payload[position:position] = data.draw(st.binary(min_size=1, max_size=3))
        elif action == "delete" and position < len(payload):
            del payload[position]
        elif action == "truncate":
            del payload[position:]
    _decode_or_bad_data(request_type, bytes(payload))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TYPES), st.randoms(use_true_random=False))
def test_messages_within_limits_round_trip(request_type: RequestType, rng: random.Random) -> None:
    message = populate(codec.request_class(request_type), rng)
    assert codec.decode_request(request_type, codec.encode_request(message)) == \
        codec.device_view(message)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TYPES), st.randoms(use_true_random=False))
def test_replies_within_limits_encode_and_decode(
    request_type: RequestType, rng: random.Random
) -> None:
    reply = populate(codec.reply_class(request_type), rng)
    assert codec.decode_reply(request_type, codec.encode_reply(reply)) == reply


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TYPES), st.randoms(use_true_random=False))
def test_oversized_replies_fail_cleanly(request_type: RequestType, rng: random.Random) -> None:
    reply = populate(codec.reply_class(request_type), rng, within_nanopb_limits=False)
    try:
        data = codec.encode_reply(reply)
    except ReplyEncodingFailed as error:
        assert error.code == ResultCode.UNKNOWN
    else:
        assert codec.decode_reply(request_type, data) == reply
