"""EC-JPAKE on secp256r1 with SHA-256, byte-compatible with mbedTLS (what Device OS runs).

How it works (Thread 1.0 spec §7.4, as mbedTLS 2.28 ``library/ecjpake.c`` implements it):

* Both sides know a low-entropy password; ``s`` is the password read as a big-endian integer.
  Ids are ``"client"`` and ``"server"``; each side proves knowledge with its own id and checks
  the peer's proofs with the peer id.
* Round one (both sides, 330 bytes): two key pairs ``x1, X1 = x1·G`` and ``x2, X2 = x2·G``, each
  sent as ``ECPoint X`` + Schnorr proof (``ECPoint V`` + ``opaque r<1..255>``) over the base
  point ``G``.
* Round two: ``xm = x2·s``; the generator is ``G' = Xm1 + Xp1 + Xp2`` (own first key plus both
  peer keys); send ``ECPoint Xm = xm·G'`` + its Schnorr proof over ``G'``. The server puts the
  TLS ``ECParameters`` ``03 00 17`` (named curve secp256r1) in front (168 bytes); the client does
  not (165 bytes). The reader checks the peer's proof over ``Xp1' = Xm1 + Xm2 + Xp1``.
* Secret: ``K = (Xp - Xp2·(x2·s))·x2``; the 32-byte result is SHA-256 of ``K.x`` (32 bytes,
  big-endian). A wrong password gives a different ``K``, caught later by key confirmation.

Wire details: an ``ECPoint`` is one length byte + the uncompressed SEC1 encoding (``04 || x ||
y``, 65 bytes; a lone ``00`` is the point at infinity). The proof challenge is
``h = SHA-256(len32(G) G || len32(V) V || len32(X) X || len32(id) id) mod n`` (4-byte big-endian
lengths), ``r = v - x·h mod n`` written with its minimal big-endian length, and a proof is valid
when ``r·G + h·X == V``. Readers reject trailing bytes.

Every defect in peer input raises :class:`EcJpakeError` whose ``mbedtls_code`` is the error
mbedTLS returns for the same bytes (checked against mbedTLS's own test-vector file). Misuse by
the caller (calling steps out of order) raises :class:`~firmware_sim.kernel.errors.UsageError`.
OpenSSL (through ``cryptography``) does the scalar multiplications; this module encodes, decodes,
validates, adds points and recovers the y coordinate OpenSSL's ECDH leaves out (see "Point
arithmetic" below).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from firmware_sim.kernel.errors import PeerProtocolError, UsageError

__all__ = [
    "CLIENT_ROUND_ONE_SIZE",
    "CLIENT_ROUND_TWO_SIZE",
    "EC_PARAMETERS_SECP256R1",
    "SECRET_SIZE",
    "SERVER_ROUND_ONE_SIZE",
    "SERVER_ROUND_TWO_SIZE",
    "EcJpake",
    "EcJpakeError",
    "EcJpakeRole",
    "MbedtlsEcpError",
]

#: Usual sizes of the four handshake messages (``r`` is written with its minimal length, so a
#: proof is one byte shorter about once in 256 runs).
CLIENT_ROUND_ONE_SIZE: Final = 330
SERVER_ROUND_ONE_SIZE: Final = 330
SERVER_ROUND_TWO_SIZE: Final = 168
CLIENT_ROUND_TWO_SIZE: Final = 165
#: Size of the derived secret (SHA-256 output).
SECRET_SIZE: Final = 32
#: TLS ``ECParameters``: curve_type named_curve (3), NamedCurve secp256r1 (23).
EC_PARAMETERS_SECP256R1: Final = b"\x03\x00\x17"

# secp256r1 (SEC 2 §2.4.2): y² = x³ − 3x + b over GF(p), prime order n, base point (GX, GY).
_P: Final = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_B: Final = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_GX: Final = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY: Final = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
_COORD_SIZE: Final = 32
_UNCOMPRESSED_SIZE: Final = 1 + 2 * _COORD_SIZE
_MAX_KEYGEN_TRIES: Final = 64


class MbedtlsEcpError(IntEnum):
    """The mbedTLS ``MBEDTLS_ERR_ECP_*`` code that mbedTLS returns for the same defect."""

    BAD_INPUT_DATA = -0x4F80
    FEATURE_UNAVAILABLE = -0x4E80
    VERIFY_FAILED = -0x4E00
    INVALID_KEY = -0x4C80


class EcJpakeError(PeerProtocolError):
    """The peer's EC-JPAKE message is malformed, uses another curve, or fails its proof."""

    def __init__(self, code: MbedtlsEcpError, message: str) -> None:
        self.mbedtls_code = code
        super().__init__(f"EC-JPAKE: {message} [MBEDTLS_ERR_ECP_{code.name}]")


class EcJpakeRole(Enum):
    """Handshake role; the value is the id mixed into the proofs."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> EcJpakeRole:
        return EcJpakeRole.SERVER if self is EcJpakeRole.CLIENT else EcJpakeRole.CLIENT


@dataclass(frozen=True, slots=True)
class _Point:
    """An affine point as received or computed (``None`` is used for the point at infinity)."""

    x: int
    y: int

    def is_valid(self) -> bool:
        """mbedTLS ``check_pubkey``: coordinates below p and on the curve."""
        x, y = self.x, self.y
        return x < _P and y < _P and (y * y - (x * x - 3) * x - _B) % _P == 0

    def encode(self) -> bytes:
        return b"\x04" + self.x.to_bytes(_COORD_SIZE, "big") + self.y.to_bytes(_COORD_SIZE, "big")


_BASE = _Point(_GX, _GY)

# ---------------------------------------------------------------------------------------------
# Point arithmetic. Inputs are valid points (never infinity); ``None`` stands for infinity.
#
# OpenSSL, through ``cryptography``, does every scalar multiplication. It gives ``k·G`` with
# both coordinates (the public key of private key ``k``), but for any other point only the x
# coordinate of ``k·P`` (ECDH). The y coordinate comes from a second ECDH: ``R = k·P`` and
# ``x((k+1)·P) = x(R + P)``. The chord through R and P has slope ``λ = (y_R − y_P)/(x_R − x_P)``
# and ``λ² = x(R + P) + x_R + x_P``; expanding ``λ²·(x_R − x_P)²`` with ``y_R² = x_R³ − 3x_R + b``
# leaves y_R as the only unknown:
#
#     y_R = (y_R² + y_P² − (x(R + P) + x_R + x_P)·(x_R − x_P)²) / (2·y_P)
#
# (defined because k ∉ {1, n−1} makes R ≠ ±P, and y_P ≠ 0 on a curve of odd order). Additions
# are affine, in Python, one inversion each. docs/ble-crypto.md compares the other backends.

_OPENSSL_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()


def _mul_x(k: int, point: _Point) -> int:
    """x coordinate of ``k·point`` for ``k`` in [1, n), by one OpenSSL ECDH."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(_OPENSSL_CURVE, point.encode())
    shared = ec.derive_private_key(k, _OPENSSL_CURVE).exchange(_ECDH, peer)
    return int.from_bytes(shared, "big")


def _mul(k: int, point: _Point) -> _Point | None:
    """``k·point``."""
    k %= _N
    if k == 0:
        return None
    if point == _BASE:
        numbers = ec.derive_private_key(k, _OPENSSL_CURVE).public_key().public_numbers()
        return _Point(numbers.x, numbers.y)
    if k == 1:
        return point
    if k == _N - 1:
        return _Point(point.x, _P - point.y)
    x, x_next = _mul_x(k, point), _mul_x(k + 1, point)
    dx = x - point.x
    y_squared = (x * x - 3) * x + _B
    numerator = y_squared + point.y * point.y - (x_next + x + point.x) * dx * dx
    return _Point(x, numerator * pow(2 * point.y, -1, _P) % _P)


def _add(a: _Point | None, b: _Point | None) -> _Point | None:
    """``a + b`` (affine; doubling when ``a == b``)."""
    if a is None:
        return b
    if b is None:
        return a
    if a.x == b.x:
        if (a.y + b.y) % _P == 0:
            return None
        slope = (3 * a.x * a.x - 3) * pow(2 * a.y, -1, _P) % _P
    else:
        slope = (b.y - a.y) * pow(b.x - a.x, -1, _P) % _P
    x = (slope * slope - a.x - b.x) % _P
    return _Point(x, (slope * (a.x - x) - a.y) % _P)


def _mul_add(a: int, p: _Point, b: int, q: _Point) -> _Point | None:
    """``a·p + b·q``."""
    return _add(_mul(a, p), _mul(b, q))


def _sum3(a: _Point, b: _Point, c: _Point) -> _Point | None:
    """``a + b + c``; like mbedTLS, a partial sum at infinity is an invalid key."""
    partial = _add(a, b)
    if partial is None:
        raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, "generator sum is the point at infinity")
    return _add(partial, c)


# ---------------------------------------------------------------------------------------------
# Encoding.


def _encode_point(point: _Point | None) -> bytes:
    return b"\x00" if point is None else point.encode()


def _tls_point(point: _Point) -> bytes:
    encoded = point.encode()
    return bytes([len(encoded)]) + encoded


def _scalar_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _challenge(generator: _Point | None, v: _Point | None, x: _Point, prover_id: str) -> int:
    """Schnorr challenge ``h`` (mbedTLS ``ecjpake_hash``)."""
    digest = hashlib.sha256()
    for part in (_encode_point(generator), _encode_point(v), x.encode(), prover_id.encode()):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    return int.from_bytes(digest.digest(), "big") % _N


class _Reader:
    """Cursor over a peer message; each method raises the error mbedTLS gives at that spot."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def ec_parameters(self) -> None:
        if self.remaining < 3:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, "ECParameters truncated")
        curve_type, named_curve = self._data[self._pos], self._data[self._pos + 1 : self._pos + 3]
        self._pos += 3
        if curve_type != EC_PARAMETERS_SECP256R1[0]:
            raise EcJpakeError(
                MbedtlsEcpError.BAD_INPUT_DATA, f"ECParameters curve_type {curve_type} unsupported"
            )
        if named_curve != EC_PARAMETERS_SECP256R1[1:]:
            raise EcJpakeError(
                MbedtlsEcpError.FEATURE_UNAVAILABLE,
                f"ECParameters named curve 0x{named_curve.hex()} is not secp256r1 (0x0017)",
            )

    def point(self, what: str) -> _Point | None:
        """A TLS ``ECPoint``; ``None`` for the encoded point at infinity. Not yet validated."""
        if self.remaining < 2:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: truncated")
        size = self._data[self._pos]
        if size < 1 or size > self.remaining - 1:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: bad length {size}")
        body = self._data[self._pos + 1 : self._pos + 1 + size]
        self._pos += 1 + size
        if body[0] == 0x00:
            if size == 1:
                return None
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: bad zero-point encoding")
        if body[0] != 0x04:
            raise EcJpakeError(
                MbedtlsEcpError.FEATURE_UNAVAILABLE, f"{what}: point format 0x{body[0]:02x}"
            )
        if size != _UNCOMPRESSED_SIZE:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: point length {size}")
        x = int.from_bytes(body[1 : 1 + _COORD_SIZE], "big")
        y = int.from_bytes(body[1 + _COORD_SIZE :], "big")
        return _Point(x, y)

    def scalar(self, what: str) -> int:
        """``opaque r<1..2^8-1>``."""
        if self.remaining < 1:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: missing")
        size = self._data[self._pos]
        self._pos += 1
        if size == 0 or size > self.remaining:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{what}: bad length {size}")
        value = int.from_bytes(self._data[self._pos : self._pos + size], "big")
        self._pos += size
        return value

    def end(self) -> None:
        if self.remaining:
            raise EcJpakeError(MbedtlsEcpError.BAD_INPUT_DATA, f"{self.remaining} trailing byte(s)")


def _check_public(point: _Point | None, what: str) -> _Point:
    if point is None or not point.is_valid():
        raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, f"{what} is not a valid curve point")
    return point


def _read_key_with_proof(
    reader: _Reader, generator: _Point | None, prover_id: str, what: str
) -> _Point:
    """Parse ``ECJPAKEKeyKP`` and verify its proof (mbedTLS ``ecjpake_kkp_read``)."""
    key = reader.point(f"{what} key")
    if key is None:
        raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, f"{what} key is the point at infinity")
    v = reader.point(f"{what} proof V")
    r = reader.scalar(f"{what} proof r")
    h = _challenge(generator, v, key, prover_id)
    key = _check_public(key, f"{what} key")
    generator = _check_public(generator, f"{what} generator")
    if r >= _N:
        raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, f"{what} proof r is not below n")
    if _mul_add(h, key, r, generator) != v:
        raise EcJpakeError(MbedtlsEcpError.VERIFY_FAILED, f"{what} proof does not verify")
    return key


# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyPair:
    private: int
    public: _Point


class EcJpake:
    """One side of an EC-JPAKE exchange (sans-IO: bytes in, bytes out).

    ``randbytes`` supplies all randomness (key pairs and proof nonces), so a seeded
    ``random.Random(...).randbytes`` makes a run reproducible. ``private_keys`` fixes the two
    round-one private keys (big-endian bytes), as mbedTLS's reference vectors do.
    """

    def __init__(
        self,
        role: EcJpakeRole,
        password: bytes,
        randbytes: Callable[[int], bytes] = os.urandom,
        *,
        private_keys: tuple[bytes, bytes] | None = None,
    ) -> None:
        if not isinstance(role, EcJpakeRole):
            raise UsageError(f"role must be an EcJpakeRole, not {role!r}")
        self.role = role
        self._secret = int.from_bytes(password, "big")
        self._randbytes = randbytes
        self._mine: tuple[_KeyPair, _KeyPair] | None = None
        if private_keys is not None:
            self._mine = (self._fixed_key(private_keys[0]), self._fixed_key(private_keys[1]))
        self._round_one_written = False
        self._round_two_written = False
        self._peer_keys: tuple[_Point, _Point] | None = None
        self._peer_round_two: _Point | None = None

    # -- round one ------------------------------------------------------------------------

    def write_round_one(self) -> bytes:
        """Our two public keys with their proofs (``ECJPAKEKeyKPPairList``)."""
        if self._round_one_written:
            raise UsageError("EC-JPAKE round one already written")
        if self._mine is None:
            self._mine = (self._random_key(_BASE), self._random_key(_BASE))
        self._round_one_written = True
        return b"".join(self._key_with_proof(pair, _BASE) for pair in self._mine)

    def read_round_one(self, data: bytes) -> None:
        """Check the peer's two keys and proofs; store the keys."""
        if self._peer_keys is not None:
            raise UsageError("EC-JPAKE round one already read")
        reader = _Reader(bytes(data))
        peer_id = self.role.peer.value
        first = _read_key_with_proof(reader, _BASE, peer_id, "round one first")
        second = _read_key_with_proof(reader, _BASE, peer_id, "round one second")
        reader.end()
        self._peer_keys = (first, second)

    # -- round two ------------------------------------------------------------------------

    def write_round_two(self) -> bytes:
        """``Xm = (x2·s)·(Xm1 + Xp1 + Xp2)`` with its proof; the server prefixes ECParameters."""
        if self._round_two_written:
            raise UsageError("EC-JPAKE round two already written")
        mine, peer = self._require_keys("write round two")
        generator = _sum3(peer[0], peer[1], mine[0].public)
        if generator is None:
            raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, "round two generator is infinity")
        private = mine[1].private * self._secret % _N
        if private == 0:
            raise UsageError("EC-JPAKE password is zero modulo the group order")
        public = _mul(private, generator)
        assert public is not None  # private is in [1, n) and generator has order n
        self._round_two_written = True
        prefix = EC_PARAMETERS_SECP256R1 if self.role is EcJpakeRole.SERVER else b""
        return prefix + self._key_with_proof(_KeyPair(private, public), generator)

    def read_round_two(self, data: bytes) -> None:
        """Check the peer's round two against ``Xm1 + Xm2 + Xp1``; store its key."""
        if self._peer_round_two is not None:
            raise UsageError("EC-JPAKE round two already read")
        mine, peer = self._require_keys("read round two")
        generator = _sum3(mine[0].public, mine[1].public, peer[0])
        reader = _Reader(bytes(data))
        if self.role is EcJpakeRole.CLIENT:
            reader.ec_parameters()
        key = _read_key_with_proof(reader, generator, self.role.peer.value, "round two")
        reader.end()
        self._peer_round_two = key

    # -- result ---------------------------------------------------------------------------

    def derive_secret(self) -> bytes:
        """SHA-256 of the x coordinate of ``K = (Xp - Xp2·(x2·s))·x2`` (32 bytes)."""
        mine, peer = self._require_keys("derive the secret")
        if self._peer_round_two is None:
            raise UsageError("EC-JPAKE: cannot derive the secret before reading round two")
        x2 = mine[1].private
        blinded = _mul_add(1, self._peer_round_two, -x2 * self._secret % _N, peer[1])
        if blinded is None:
            raise EcJpakeError(MbedtlsEcpError.INVALID_KEY, "premaster point is infinity")
        premaster_x = _mul_x(x2, blinded)  # x2 is in [1, n); only K.x is needed
        return hashlib.sha256(premaster_x.to_bytes(_COORD_SIZE, "big")).digest()

    # -- helpers --------------------------------------------------------------------------

    def _require_keys(self, step: str) -> tuple[tuple[_KeyPair, _KeyPair], tuple[_Point, _Point]]:
        if self._mine is None:
            raise UsageError(f"EC-JPAKE: cannot {step} before writing round one")
        if self._peer_keys is None:
            raise UsageError(f"EC-JPAKE: cannot {step} before reading round one")
        return self._mine, self._peer_keys

    @staticmethod
    def _fixed_key(private: bytes) -> _KeyPair:
        value = int.from_bytes(private, "big")
        if not 1 <= value < _N:
            raise UsageError("EC-JPAKE private key must be in [1, n)")
        public = _mul(value, _BASE)
        assert public is not None
        return _KeyPair(value, public)

    def _random_scalar(self) -> int:
        for _ in range(_MAX_KEYGEN_TRIES):
            candidate = int.from_bytes(self._randbytes(_COORD_SIZE), "big")
            if 1 <= candidate < _N:
                return candidate
        raise UsageError("EC-JPAKE: the random source keeps returning out-of-range scalars")

    def _random_key(self, generator: _Point) -> _KeyPair:
        private = self._random_scalar()
        public = _mul(private, generator)
        assert public is not None
        return _KeyPair(private, public)

    def _key_with_proof(self, pair: _KeyPair, generator: _Point) -> bytes:
        """``ECPoint X`` + ``ECSchnorrZKP`` (mbedTLS ``ecjpake_kkp_write``/``zkp_write``)."""
        prover_id = self.role.value
        while True:
            nonce = self._random_key(generator)
            h = _challenge(generator, nonce.public, pair.public, prover_id)
            r = (nonce.private - pair.private * h) % _N
            if r:  # r = 0 would encode as an empty scalar, which readers reject
                break
        r_bytes = _scalar_bytes(r)
        return _tls_point(pair.public) + _tls_point(nonce.public) + bytes([len(r_bytes)]) + r_bytes
