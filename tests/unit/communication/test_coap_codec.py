"""The CoAP codec of ``communication/wire.py`` against aiocoap as the reference: the same bytes
for every message the device and the cloud build, and the same accept/refuse verdict (and the
same fields) for any datagram."""

from __future__ import annotations

import pytest
from aiocoap import Message
from aiocoap.error import UnparsableMessage
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.communication.wire import CoapMessage, CoapType
from firmware_sim.kernel.errors import PeerProtocolError

segments = st.text(max_size=300)
messages = st.builds(
    CoapMessage,
    mtype=st.sampled_from(list(CoapType)),
    code=st.sampled_from([0, 1, 2, 3, 4, 0x44, 0x45, 0x80, 0x84, 0xA0]),
    mid=st.integers(0, 0x1FFFF),
    token=st.binary(max_size=8),
    uri_path=st.lists(segments, max_size=4).map(tuple),
    payload=st.binary(max_size=1100),
    max_age=st.none() | st.integers(0, 2**32 - 1),
)


def aiocoap_encode(message: CoapMessage) -> bytes:
    reference = Message(code=Code(message.code), payload=message.payload)
    if message.uri_path:
        reference.opt.uri_path = message.uri_path
    if message.max_age is not None:
        reference.opt.max_age = message.max_age
    reference.mtype = Type(message.mtype)
    reference.mid = message.mid & 0xFFFF
    reference.token = message.token
    return bytes(reference.encode())


@settings(max_examples=300, deadline=None)
@given(messages)
def test_encoding_is_aiocoaps_and_decodes_back(message: CoapMessage) -> None:
    data = message.encode()
    assert data == aiocoap_encode(message)
    back = CoapMessage.decode(data)
    assert back == CoapMessage(message.mtype, message.code, message.mid & 0xFFFF,
                               message.token, message.uri_path, message.payload,
                               message.max_age)


def option(number_delta: int, value: bytes) -> bytes:
    header = bytes([(min(number_delta, 12) << 4) | min(len(value), 12)])
    return header + value


datagrams = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda head, body: head + body,
              st.sampled_from([b"\x40\x02\x00\x01", b"\x41\x01\x12\x34\xaa", b"\x60\x44\x00\x07",
                               b"\x4f\x02\x00\x01"]),
              st.lists(st.one_of(st.binary(max_size=6),
                                 st.builds(option, st.integers(0, 12), st.binary(max_size=5)),
                                 st.just(b"\xff"), st.just(b"\xb1\xff"),
                                 st.just(b"\x3f"), st.just(b"\xd1")),
                       max_size=5).map(b"".join)),
)


@settings(max_examples=500, deadline=None)
@given(datagrams)
def test_decoding_accepts_and_refuses_what_aiocoap_does(data: bytes) -> None:
    try:
        reference = Message.decode(data)
        uri_path = tuple(str(part) for part in reference.opt.uri_path)
        max_age = reference.opt.max_age
    except (UnparsableMessage, ValueError, IndexError, UnicodeDecodeError):
        with pytest.raises(PeerProtocolError):
            CoapMessage.decode(data)
        return
    ours = CoapMessage.decode(data)
    assert (ours.mtype, ours.code, ours.mid, ours.token, ours.uri_path, ours.payload,
            ours.max_age) == (int(reference.mtype), int(reference.code), reference.mid,
                              bytes(reference.token), uri_path, bytes(reference.payload),
                              None if max_age is None else int(max_age))
