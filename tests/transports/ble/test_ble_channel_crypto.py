"""Key confirmation and the AES-CCM session, checked against independent computations."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel.errors import PeerProtocolError, ResultCode, UsageError
from transports.ble.channel_crypto import (
    ChannelCryptoError,
    ChannelSession,
    HandshakeTranscript,
    client_confirmation,
    confirmation_key,
    device_confirmation,
    frame_size,
    payload_size,
    verify_client_confirmation,
    verify_device_confirmation,
)
from transports.ble.ecjpake import EcJpakeRole

SECRET = bytes(range(0xA0, 0xC0))
TRANSCRIPT = HandshakeTranscript(b"\x01" * 330, b"\x02" * 330, b"\x03" * 168, b"\x04" * 165)


# --- an independent AES-CCM (RFC 3610) built on raw AES, to pin the parameters -------------


def _aes_block(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def reference_ccm(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """CCM with M = 8 (tag bytes) and L = 15 - 12 = 3; returns ciphertext || tag."""
    tag_size, length_size = 8, 15 - len(nonce)
    flags = 0x40 * bool(aad) + 8 * ((tag_size - 2) // 2) + (length_size - 1)
    b0 = bytes([flags]) + nonce + len(plaintext).to_bytes(length_size, "big")
    header = len(aad).to_bytes(2, "big") + aad if aad else b""
    mac_input = b0 + header + bytes(-len(header) % 16) + plaintext + bytes(-len(plaintext) % 16)
    mac = bytes(16)
    for offset in range(0, len(mac_input), 16):
        mac = _aes_block(key, _xor(mac, mac_input[offset : offset + 16]))

    def counter_block(i: int) -> bytes:
        return bytes([length_size - 1]) + nonce + i.to_bytes(length_size, "big")

    stream = b"".join(_aes_block(key, counter_block(i)) for i in range(1, len(plaintext) // 16 + 2))
    ciphertext = _xor(plaintext, stream[: len(plaintext)])
    tag = _xor(mac[:tag_size], _aes_block(key, counter_block(0))[:tag_size])
    return ciphertext + tag


def expected_request(counter: int, request_id: int, request_type: int, payload: bytes) -> bytes:
    aad = struct.pack("<H", len(payload))
    nonce = struct.pack("<I", counter) + SECRET[16:24]
    plaintext = struct.pack("<HHH", request_id, request_type, 0) + payload
    return aad + reference_ccm(SECRET[:16], nonce, plaintext, aad)


def expected_reply(counter: int, request_id: int, result: int, payload: bytes) -> bytes:
    aad = struct.pack("<H", len(payload))
    nonce = struct.pack("<I", counter | 0x80000000) + SECRET[24:32]
    plaintext = struct.pack("<Hi", request_id, result) + payload
    return aad + reference_ccm(SECRET[:16], nonce, plaintext, aad)


def test_reference_ccm_matches_rfc3610_packet_vector_1() -> None:
    """Sanity check of the test's own CCM against RFC 3610 packet vector #1 (M=8, L=2)."""
    key = bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")
    nonce = bytes.fromhex("00000003020100A0A1A2A3A4A5")
    packet = bytes(range(31))  # 8 bytes of header (AAD), then 23 bytes of payload
    expected = bytes.fromhex(
        "0001020304050607588C979A61C663D2F066D0C2C0F989806D5F6B61DAC38417E8D12CFDF926E0"
    )
    assert packet[:8] + reference_ccm(key, nonce, packet[8:], packet[:8]) == expected


# --- key confirmation -----------------------------------------------------------------------


def test_key_confirmation_matches_hmac_and_hashlib() -> None:
    kc = hashlib.sha256(SECRET + b"JPAKE_KC").digest()
    payloads = [
        TRANSCRIPT.client_round_one,
        TRANSCRIPT.server_round_one,
        TRANSCRIPT.server_round_two,
        TRANSCRIPT.client_round_two,
    ]
    h1 = hashlib.sha256(b"".join(payloads)).digest()
    client = hmac.new(kc, b"KC_1_U" + b"client" + b"server" + h1, hashlib.sha256).digest()
    h2 = hashlib.sha256(b"".join(payloads) + client).digest()
    device = hmac.new(kc, b"KC_1_U" + b"server" + b"client" + h2, hashlib.sha256).digest()

    assert confirmation_key(SECRET) == kc
    assert TRANSCRIPT.h1() == h1 and TRANSCRIPT.h2(client) == h2
    assert client_confirmation(SECRET, TRANSCRIPT) == client
    assert device_confirmation(SECRET, TRANSCRIPT, client) == device
    verify_client_confirmation(SECRET, TRANSCRIPT, client)
    verify_device_confirmation(SECRET, TRANSCRIPT, client, device)


@pytest.mark.parametrize(
    "received",
    [b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 32],
    ids=["empty", "short", "long", "wrong"],
)
def test_bad_client_confirmation_is_bad_data(received: bytes) -> None:
    with pytest.raises(ChannelCryptoError) as caught:
        verify_client_confirmation(SECRET, TRANSCRIPT, received)
    assert caught.value.result is ResultCode.BAD_DATA


def test_confirmation_under_another_secret_fails() -> None:
    other = bytes(32)
    forged = client_confirmation(other, TRANSCRIPT)
    with pytest.raises(ChannelCryptoError):
        verify_client_confirmation(SECRET, TRANSCRIPT, forged)
    client = client_confirmation(SECRET, TRANSCRIPT)
    with pytest.raises(ChannelCryptoError):
        verify_device_confirmation(
            SECRET, TRANSCRIPT, client, device_confirmation(other, TRANSCRIPT, client)
        )


def test_confirmation_binds_the_transcript() -> None:
    changed = HandshakeTranscript(b"\x01" * 330, b"\x02" * 330, b"\x03" * 168, b"\x05" * 165)
    with pytest.raises(ChannelCryptoError):
        verify_client_confirmation(SECRET, changed, client_confirmation(SECRET, TRANSCRIPT))


def test_secret_must_be_32_bytes() -> None:
    with pytest.raises(UsageError):
        confirmation_key(b"short")
    with pytest.raises(UsageError):
        ChannelSession(b"short", EcJpakeRole.CLIENT)


# --- AES-CCM session --------------------------------------------------------------------------


def pair() -> tuple[ChannelSession, ChannelSession]:
    return ChannelSession(SECRET, EcJpakeRole.CLIENT), ChannelSession(SECRET, EcJpakeRole.SERVER)


def test_sealed_frames_match_the_independent_ccm() -> None:
    client, device = pair()
    assert client.seal_request(0x1234, 0x0210, b"hello") == expected_request(
        1, 0x1234, 0x0210, b"hello"
    )
    assert client.seal_request(2, 7) == expected_request(2, 2, 7, b"")
    assert device.seal_reply(0x1234, -280, b"bye") == expected_reply(1, 0x1234, -280, b"bye")
    assert device.seal_reply(2, 0) == expected_reply(2, 2, 0, b"")


def test_frame_layout() -> None:
    client, _ = pair()
    frame = client.seal_request(1, 2, b"x" * 10)
    assert frame[:2] == b"\x0a\x00"  # size counts the payload only
    assert len(frame) == 2 + 6 + 10 + 8 == frame_size(10)
    assert payload_size(frame) == 10


def test_round_trip_in_order() -> None:
    client, device = pair()
    for index in range(1, 6):
        payload = bytes([index]) * index
        request = device.open_request(client.seal_request(index, 100 + index, payload))
        assert (request.request_id, request.request_type, request.payload) == (
            index,
            100 + index,
            payload,
        )
        reply = client.open_reply(device.seal_reply(index, -index, payload[::-1]))
        assert (reply.request_id, reply.result, reply.payload) == (index, -index, payload[::-1])
    assert client.request_count == device.request_count == 5
    assert client.reply_count == device.reply_count == 5


def test_replayed_request_fails() -> None:
    client, device = pair()
    frame = client.seal_request(1, 1, b"join")
    device.open_request(frame)
    with pytest.raises(ChannelCryptoError, match="authentication"):
        device.open_request(frame)


def test_out_of_order_requests_fail() -> None:
    client, device = pair()
    first = client.seal_request(1, 1)
    second = client.seal_request(2, 1)
    with pytest.raises(ChannelCryptoError):
        device.open_request(second)  # consumes counter 1 and fails
    with pytest.raises(ChannelCryptoError):
        device.open_request(first)  # counter 2 now: fails too (the device has disconnected)


def test_replayed_reply_fails() -> None:
    client, device = pair()
    reply = device.seal_reply(1, 0)
    client.open_reply(reply)
    with pytest.raises(ChannelCryptoError):
        client.open_reply(reply)


def test_request_and_reply_nonces_differ() -> None:
    """A request frame cannot be passed off as a reply (different fixed nonce and counter)."""
    client, device = pair()
    request = client.seal_request(1, 1)
    with pytest.raises(ChannelCryptoError):
        ChannelSession(SECRET, EcJpakeRole.CLIENT).open_reply(request)
    device.open_request(request)


def test_wrong_secret_fails() -> None:
    client = ChannelSession(SECRET, EcJpakeRole.CLIENT)
    device = ChannelSession(bytes(32), EcJpakeRole.SERVER)
    with pytest.raises(ChannelCryptoError):
        device.open_request(client.seal_request(1, 1))


@pytest.mark.parametrize(
    "frame", [b"", b"\x00", b"\x00\x00", b"\x05\x00" + bytes(14)], ids=["0", "1", "2", "short"]
)
def test_malformed_frames_fail_without_consuming_a_counter(frame: bytes) -> None:
    client, device = pair()
    with pytest.raises(ChannelCryptoError):
        device.open_request(frame)
    assert device.request_count == 0
    device.open_request(client.seal_request(1, 1))


def test_roles_and_ranges_are_enforced() -> None:
    client, device = pair()
    with pytest.raises(UsageError):
        client.seal_reply(1, 0)
    with pytest.raises(UsageError):
        device.seal_request(1, 1)
    with pytest.raises(UsageError):
        client.open_request(b"")
    with pytest.raises(UsageError):
        device.open_reply(b"")
    with pytest.raises(UsageError):
        client.seal_request(0x10000, 1)
    with pytest.raises(UsageError):
        device.seal_reply(1, 2**31)
    with pytest.raises(UsageError):
        client.seal_request(1, 1, bytes(0x10000))


def test_error_is_a_peer_protocol_error() -> None:
    assert issubclass(ChannelCryptoError, PeerProtocolError)


@st.composite
def _tampering(draw: st.DrawFn) -> tuple[bytes, bytes, str]:
    payload = draw(st.binary(max_size=64))
    direction = draw(st.sampled_from(["request", "reply"]))
    client, device = pair()
    frame = (
        client.seal_request(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), payload)
        if direction == "request"
        else device.seal_reply(
            draw(st.integers(0, 0xFFFF)), draw(st.integers(-1000, 1000)), payload
        )
    )
    tampered = bytearray(frame)
    kind = draw(st.sampled_from(["flip", "truncate", "extend"]))
    if kind == "flip":
        for index in draw(st.sets(st.integers(0, len(frame) - 1), min_size=1, max_size=4)):
            tampered[index] ^= draw(st.integers(1, 255))
    elif kind == "truncate":
        del tampered[draw(st.integers(0, len(frame) - 1)) :]
    else:
        tampered += draw(st.binary(min_size=1, max_size=8))
    return frame, bytes(tampered), direction


@settings(max_examples=300, deadline=None)
@given(_tampering())
def test_any_tampering_fails_authentication(case: tuple[bytes, bytes, str]) -> None:
    original, tampered, direction = case
    assert original != tampered
    client, device = pair()
    with pytest.raises(ChannelCryptoError):
        if direction == "request":
            device.open_request(tampered)
        else:
            client.open_reply(tampered)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=100), direction=st.sampled_from(["request", "reply"]))
def test_arbitrary_bytes_only_raise_channel_crypto_error(data: bytes, direction: str) -> None:
    client, device = pair()
    with pytest.raises(ChannelCryptoError):
        if direction == "request":
            device.open_request(data)
        else:
            client.open_reply(data)
