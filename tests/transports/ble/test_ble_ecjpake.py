"""EC-JPAKE: mbedTLS's published vectors, round trips, sizes, hostile input, and the point
arithmetic checked against an independent implementation (the pure-Python ``ecdsa`` package)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from ecdsa.curves import NIST256p
from ecdsa.ellipticcurve import INFINITY, Point
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.kernel.errors import PeerProtocolError, UsageError
from transports.ble.ecjpake import (
    CLIENT_ROUND_ONE_SIZE,
    CLIENT_ROUND_TWO_SIZE,
    SERVER_ROUND_ONE_SIZE,
    SERVER_ROUND_TWO_SIZE,
    EcJpake,
    EcJpakeError,
    EcJpakeRole,
    MbedtlsEcpError,
    _add,
    _mul,
    _mul_add,
    _mul_x,
    _Point,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).with_name("mbedtls_ecjpake_vectors.json")).read_text()
)
REF: dict[str, str] = VECTORS["reference_handshake"]
CLIENT, SERVER = EcJpakeRole.CLIENT, EcJpakeRole.SERVER
P = int(NIST256p.curve.p())
N = int(NIST256p.order)


def ref(name: str) -> bytes:
    return bytes.fromhex(REF[name])


def reference_side(role: EcJpakeRole, password: bytes = b"") -> EcJpake:
    """A side with mbedTLS's reference keys (client: x1, x2; server: x3, x4)."""
    keys = (ref("x1"), ref("x2")) if role is CLIENT else (ref("x3"), ref("x4"))
    return EcJpake(role, password, private_keys=keys)


def ready_for_round_two(role: EcJpakeRole, password: bytes = b"") -> EcJpake:
    """Reference keys loaded and the peer's reference round one read (as the vector tests do)."""
    side = reference_side(role, password)
    side.read_round_one(ref("server_round_one" if role is CLIENT else "client_round_one"))
    return side


def handshake(
    client_password: bytes, server_password: bytes, seed: int = 1
) -> tuple[list[bytes], bytes, bytes]:
    client = EcJpake(CLIENT, client_password, random.Random(seed).randbytes)
    server = EcJpake(SERVER, server_password, random.Random(seed + 1).randbytes)
    client_one = client.write_round_one()
    server.read_round_one(client_one)
    server_one, server_two = server.write_round_one(), server.write_round_two()
    client.read_round_one(server_one)
    client.read_round_two(server_two)
    client_two = client.write_round_two()
    server.read_round_two(client_two)
    return (
        [client_one, server_one, server_two, client_two],
        client.derive_secret(),
        server.derive_secret(),
    )


# --- mbedTLS's published vectors -------------------------------------------------------------


def test_reference_handshake_derives_the_published_secret() -> None:
    password = ref("password")
    assert password == b"threadjpaketest"
    client = reference_side(CLIENT, password)
    server = reference_side(SERVER, password)
    server.read_round_one(ref("client_round_one"))
    client.read_round_one(ref("server_round_one"))
    client.read_round_two(ref("server_round_two"))
    server.read_round_two(ref("client_round_two"))
    assert client.derive_secret() == ref("premaster_secret")
    assert server.derive_secret() == ref("premaster_secret")


def test_written_messages_carry_the_published_public_values() -> None:
    """Proof nonces are random, but the public keys (and Xm of round two) are fixed by x1..x4."""
    password = ref("password")
    client = reference_side(CLIENT, password)
    server = reference_side(SERVER, password)
    client_one, server_one = client.write_round_one(), server.write_round_one()
    assert client_one[:66] == bytes([65]) + ref("X1")
    assert client_one[165:231] == bytes([65]) + ref("X2")
    assert server_one[:66] == bytes([65]) + ref("X3")
    assert server_one[165:231] == bytes([65]) + ref("X4")
    server.read_round_one(client_one)
    client.read_round_one(server_one)
    server_two, client_two = server.write_round_two(), client.write_round_two()
    assert server_two[:69] == ref("server_round_two")[:69]  # 03 00 17 + ECPoint Xs
    assert client_two[:66] == ref("client_round_two")[:66]  # ECPoint Xc
    client.read_round_two(server_two)
    server.read_round_two(client_two)
    assert client.derive_secret() == server.derive_secret() == ref("premaster_secret")


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: case["name"])
def test_mbedtls_read_vector(case: dict[str, str]) -> None:
    role = EcJpakeRole(case["role"])
    message = bytes.fromhex(case["message"])
    if case["step"] == "read_round_one":
        side = EcJpake(role, b"")
        step = side.read_round_one
    else:
        side = ready_for_round_two(role)
        step = side.read_round_two
    if case["expected"] == "ok":
        step(message)
        return
    with pytest.raises(EcJpakeError) as caught:
        step(message)
    assert caught.value.mbedtls_code is MbedtlsEcpError[case["expected"]]


def test_every_vector_case_was_carried_over() -> None:
    assert len(VECTORS["cases"]) == 76
    assert {case["expected"] for case in VECTORS["cases"]} == {
        "ok",
        "BAD_INPUT_DATA",
        "FEATURE_UNAVAILABLE",
        "VERIFY_FAILED",
        "INVALID_KEY",
    }


# --- round trips ------------------------------------------------------------------------------


def test_right_password_gives_the_same_secret_and_the_observed_sizes() -> None:
    messages, client_secret, server_secret = handshake(b"ABCDEFGHIJKLMNO", b"ABCDEFGHIJKLMNO")
    assert client_secret == server_secret
    assert len(client_secret) == 32
    assert [len(m) for m in messages] == [
        CLIENT_ROUND_ONE_SIZE,
        SERVER_ROUND_ONE_SIZE,
        SERVER_ROUND_TWO_SIZE,
        CLIENT_ROUND_TWO_SIZE,
    ]
    assert [len(m) for m in messages] == [330, 330, 168, 165]
    assert messages[2][:3] == b"\x03\x00\x17"
    assert messages[3][0] == 65 and messages[3][1] == 0x04  # the client's has no ECParameters


def test_wrong_password_completes_but_gives_different_secrets() -> None:
    _, client_secret, server_secret = handshake(b"ABCDEFGHIJKLMNO", b"ABCDEFGHIJKLMNP")
    assert client_secret != server_secret


def test_secret_is_sha256_of_the_premaster_x_coordinate() -> None:
    """Recompute K = (x2·x4·s)·(X1 + X3) independently from the reference scalars."""
    x = [int.from_bytes(ref(name), "big") for name in ("x1", "x2", "x3", "x4")]
    s = int.from_bytes(ref("password"), "big")
    generator = NIST256p.generator
    base = generator * x[0] + generator * x[2]
    premaster = base * (x[1] * x[3] * s % N)
    expected = hashlib.sha256(int(premaster.x()).to_bytes(32, "big")).digest()
    assert expected == ref("premaster_secret")


def test_same_seed_same_bytes() -> None:
    assert handshake(b"secret", b"secret", seed=7) == handshake(b"secret", b"secret", seed=7)
    assert handshake(b"secret", b"secret", seed=7)[0] != handshake(b"secret", b"secret", seed=8)[0]


def test_reader_accepts_any_length_for_r() -> None:
    """r is opaque<1..255>: a leading zero byte (33-byte r) is still the same scalar."""
    client_one = ref("client_round_one")
    first_r_at = 66 + 66  # X1 and V as ECPoints
    assert client_one[first_r_at] == 32
    padded = client_one[:first_r_at] + b"\x21\x00" + client_one[first_r_at + 1 :]
    server = EcJpake(SERVER, b"")
    server.read_round_one(padded)


def test_empty_password_cannot_write_round_two() -> None:
    side = ready_for_round_two(SERVER, password=b"")
    with pytest.raises(UsageError):
        side.write_round_two()


def test_steps_out_of_order_are_usage_errors() -> None:
    side = EcJpake(CLIENT, b"pw", random.Random(1).randbytes)
    with pytest.raises(UsageError):
        side.write_round_two()
    with pytest.raises(UsageError):
        side.read_round_two(ref("server_round_two"))
    with pytest.raises(UsageError):
        side.derive_secret()
    side.write_round_one()
    with pytest.raises(UsageError):
        side.write_round_one()
    with pytest.raises(UsageError):
        EcJpake(CLIENT, b"pw", private_keys=(b"\x00", b"\x01"))
    with pytest.raises(UsageError):
        EcJpake("client", b"pw")  # type: ignore[arg-type]


def test_failed_read_leaves_the_side_usable() -> None:
    server = EcJpake(SERVER, b"")
    with pytest.raises(EcJpakeError):
        server.read_round_one(ref("client_round_one")[:-1])
    server.read_round_one(ref("client_round_one"))


def test_error_is_a_peer_protocol_error() -> None:
    assert issubclass(EcJpakeError, PeerProtocolError)


# --- point arithmetic (OpenSSL scalar multiplications, y recovery, affine additions) ----------

GENERATOR = NIST256p.generator
_EDGE_SCALARS = [0, 1, 2, N - 2, N - 1, N, N + 1, 2 * N - 1]
_scalars = st.one_of(st.sampled_from(_EDGE_SCALARS), st.integers(0, 2 * N))
_discrete_logs = st.one_of(st.sampled_from([1, 2, N - 1]), st.integers(1, N - 1))


def _reference(t: int) -> Point:
    return GENERATOR * t


def _ours(point: Any) -> _Point | None:
    return None if point == INFINITY else _Point(int(point.x()), int(point.y()))


def test_curve_constants_are_secp256r1() -> None:
    import transports.ble.ecjpake as module

    curve = NIST256p.curve
    assert (curve.p(), curve.b(), N) == (module._P, module._B, module._N)
    assert _ours(GENERATOR) == module._BASE
    assert curve.a() % P == P - 3  # the y-recovery and doubling formulas assume a = -3


@settings(max_examples=60, deadline=None)
@given(k=_scalars, t=_discrete_logs)
def test_scalar_multiplication_matches_the_reference(k: int, t: int) -> None:
    """``k·P`` for a point ``P = t·G`` of unknown (to the code) discrete log, and for ``G``."""
    point = _ours(_reference(t))
    assert point is not None
    expected = _ours(_reference(t) * k)
    assert _mul(k, point) == expected
    assert _mul(k, _ours(GENERATOR)) == _ours(GENERATOR * k)  # type: ignore[arg-type]
    if 0 < k < N:
        assert expected is not None
        assert _mul_x(k, point) == expected.x
    if expected is not None:
        assert expected.is_valid()


@settings(max_examples=60, deadline=None)
@given(a=_discrete_logs, b=_discrete_logs, same=st.sampled_from(["no", "equal", "negated"]))
def test_addition_matches_the_reference(a: int, b: int, same: str) -> None:
    """Generic sums, doubling (equal points) and a point plus its negation (infinity)."""
    if same == "equal":
        b = a
    elif same == "negated":
        b = N - a
    left, right = _ours(_reference(a)), _ours(_reference(b))
    expected = _ours(_reference(a) + _reference(b))
    assert _add(left, right) == expected
    assert _add(None, right) == right and _add(left, None) == left
    if same == "negated":
        assert expected is None


@settings(max_examples=30, deadline=None)
@given(a=_scalars, t=_discrete_logs, b=_scalars, u=_discrete_logs)
def test_mul_add_matches_the_reference(a: int, t: int, b: int, u: int) -> None:
    p, q = _ours(_reference(t)), _ours(_reference(u))
    assert p is not None and q is not None
    assert _mul_add(a, p, b, q) == _ours(_reference(t) * a + _reference(u) * b)


# --- hostile input beyond the vectors --------------------------------------------------------


def _point_with_small_x() -> tuple[int, int]:
    """A curve point whose x is below 2^256 - p, so x + p still fits in 32 bytes."""
    b = NIST256p.curve.b()
    for x in range(1, 1000):
        rhs = (x**3 - 3 * x + b) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x, y
    raise AssertionError("no small-x point found")


def _with_first_key(message: bytes, x: int, y: int) -> bytes:
    return bytes([65, 4]) + x.to_bytes(32, "big") + y.to_bytes(32, "big") + message[66:]


def test_coordinate_not_reduced_mod_p_is_an_invalid_key() -> None:
    """x + p is the same field element, but mbedTLS's check_pubkey rejects it: so do we."""
    x, y = _point_with_small_x()
    message = _with_first_key(ref("client_round_one"), x + P, y)
    with pytest.raises(EcJpakeError) as caught:
        EcJpake(SERVER, b"").read_round_one(message)
    assert caught.value.mbedtls_code is MbedtlsEcpError.INVALID_KEY


def test_valid_point_with_a_proof_for_another_key_fails_verification() -> None:
    x, y = _point_with_small_x()
    message = _with_first_key(ref("client_round_one"), x, y)
    with pytest.raises(EcJpakeError) as caught:
        EcJpake(SERVER, b"").read_round_one(message)
    assert caught.value.mbedtls_code is MbedtlsEcpError.VERIFY_FAILED


def test_r_not_below_n_is_an_invalid_key() -> None:
    client_one = ref("client_round_one")
    too_big = N.to_bytes(32, "big")
    message = client_one[:133] + too_big + client_one[165:]
    with pytest.raises(EcJpakeError) as caught:
        EcJpake(SERVER, b"").read_round_one(message)
    assert caught.value.mbedtls_code is MbedtlsEcpError.INVALID_KEY


@pytest.mark.parametrize("curve", ["030018", "030019", "03001d", "020017", "ffffff"])
def test_round_two_with_other_curve_parameters_is_rejected(curve: str) -> None:
    message = bytes.fromhex(curve) + ref("server_round_two")[3:]
    with pytest.raises(EcJpakeError):
        ready_for_round_two(CLIENT).read_round_two(message)


def test_server_round_two_sent_to_a_server_is_rejected() -> None:
    with pytest.raises(EcJpakeError):
        ready_for_round_two(SERVER).read_round_two(ref("server_round_two"))


def test_proof_over_the_wrong_generator_fails() -> None:
    """A client round two replayed in a session with other keys does not verify."""
    server = EcJpake(SERVER, b"pw", random.Random(3).randbytes)
    server.write_round_one()
    server.read_round_one(ref("client_round_one"))
    with pytest.raises(EcJpakeError) as caught:
        server.read_round_two(ref("client_round_two"))
    assert caught.value.mbedtls_code is MbedtlsEcpError.VERIFY_FAILED


_ROUND_ONE_TEMPLATES = {role: EcJpake(role, b"") for role in EcJpakeRole}
_ROUND_TWO_TEMPLATES = {role: ready_for_round_two(role) for role in EcJpakeRole}
_VALID = {
    ("one", CLIENT): ref("server_round_one"),
    ("one", SERVER): ref("client_round_one"),
    ("two", CLIENT): ref("server_round_two"),
    ("two", SERVER): ref("client_round_two"),
}


def _feed(step: str, role: EcJpakeRole, data: bytes) -> None:
    """Feed ``data`` to a fresh side; anything but success or EcJpakeError fails the test."""
    if step == "one":
        copy.copy(_ROUND_ONE_TEMPLATES[role]).read_round_one(data)
    else:
        copy.copy(_ROUND_TWO_TEMPLATES[role]).read_round_two(data)


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, EcJpakeRole, bytes]:
    step = draw(st.sampled_from(["one", "two"]))
    role = draw(st.sampled_from(list(EcJpakeRole)))
    data = bytearray(_VALID[(step, role)])
    kind = draw(st.sampled_from(["truncate", "extend", "flip", "length", "splice"]))
    if kind == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=8))
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= draw(st.integers(1, 255))
    elif kind == "length":
        # the length prefixes of points and scalars sit at these offsets in round one
        offsets = [0, 66, 132, 165, 231, 297] if step == "one" else [0, 66, 132]
        base = 3 if (step, role) == ("two", CLIENT) else 0
        data[base + draw(st.sampled_from(offsets))] = draw(st.integers(0, 255))
    else:
        start = draw(st.integers(0, len(data)))
        data[start:start] = draw(st.binary(min_size=1, max_size=70))
    return step, role, bytes(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    step=st.sampled_from(["one", "two"]),
    role=st.sampled_from(list(EcJpakeRole)),
    data=st.binary(max_size=400),
)
def test_arbitrary_bytes_only_raise_ecjpake_error(
    step: str, role: EcJpakeRole, data: bytes
) -> None:
    with contextlib.suppress(EcJpakeError):
        _feed(step, role, data)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_valid_messages_only_raise_ecjpake_error(
    mutation: tuple[str, EcJpakeRole, bytes],
) -> None:
    step, role, data = mutation
    with contextlib.suppress(EcJpakeError):
        _feed(step, role, data)
