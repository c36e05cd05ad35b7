"""The Photon's device RSA key: deterministic generation, DCT storage, SoftAP decryption.

How this works
--------------
A Gen2 Photon owns a 1024-bit RSA key pair (the TCP cloud transport's device key). Device OS keeps
the private key as PKCS#1 ``RSAPrivateKey`` DER at DCT ``device_private_key`` (offset 34), written
in a 612-byte zero-padded block (``EXTERNAL_FLASH_CORE_PRIVATE_KEY_LENGTH``), and the public key
as ``SubjectPublicKeyInfo`` DER at ``device_public_key`` (offset 1250), zero-padded to the
field's 384 bytes. ``fetch_device_public_key`` re-derives the public key from the private one and
rewrites the DCT when they differ; :func:`ensure_device_key` does the same, and creates the key
pair first when the DCT has none (first boot). The DCT is reached through a
:class:`~transports.device_surface.DeviceKeyStore` (the two fields, raw).

Generation is deterministic: primes come from a ``random.Random`` stream the caller derives from
the world seed (``world.rng_for``), so the same seed gives the same key and byte-identical
traces. fwsim's own prime search is used on purpose (rather than a library's ``generate``): a
library update cannot change the key a given seed produces. The key is a simulation key, not a
secret.

Decryption (``configure-ap`` ``pwd`` and ``ek``) follows Device OS ``decrypt()`` in
``hal/src/photon/softap.cpp`` and mbedTLS 2.x ``mbedtls_rsa_pkcs1_decrypt``: the hex text is
decoded leniently (:func:`device_hex_decode`, any character is accepted) into a 256-byte buffer,
the first 128 bytes are the ciphertext, and the result is the plaintext or a negative mbedTLS
error code (``-abs(err)``): bad padding -0x4100, a ciphertext not below the modulus -0x4304,
a plaintext longer than the output buffer -0x4400. The RSA operation is done here with integer
arithmetic because those distinct codes are what the device reports (a library only says
"decryption failed"); ``cryptography`` serialises the keys.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..device_surface import DeviceKeyStore

KEY_BITS = 1024
PUBLIC_EXPONENT = 65537
#: ``EXTERNAL_FLASH_CORE_PRIVATE_KEY_LENGTH``: the block the private key is written in.
PRIVATE_KEY_BLOCK = 612
#: ``EXTERNAL_FLASH_SERVER_PUBLIC_KEY_LENGTH``: how many DCT bytes ``public-key`` hex-encodes.
PUBLIC_KEY_REPLY_BYTES = 294
#: Size of the buffer ``decrypt()`` hex-decodes into.
DECRYPT_BUFFER = 256

#: mbedTLS 2.x error codes as ``decrypt_rsa`` returns them (``-abs(err)``).
ERR_RSA_INVALID_PADDING = -0x4100
ERR_RSA_OUTPUT_TOO_LARGE = -0x4400
ERR_RSA_PRIVATE_FAILED_BAD_INPUT = -0x4304  # MBEDTLS_ERR_RSA_PRIVATE_FAILED + MPI_BAD_INPUT_DATA

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


# -- generation --------------------------------------------------------------------------------


def _is_probable_prime(n: int, rng: random.Random, rounds: int = 40) -> bool:
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = rng.randrange(2, n - 1)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime(rng: random.Random, bits: int) -> int:
    while True:
        # top two bits set: the product of two such primes has exactly 2*bits bits
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        if candidate % PUBLIC_EXPONENT == 1:
            continue  # e must be invertible modulo p-1
        if _is_probable_prime(candidate, rng):
            return candidate


def generate_rsa_key(rng: random.Random, bits: int = KEY_BITS) -> rsa.RSAPrivateKey:
    """A deterministic RSA key (e = 65537) from ``rng``: same stream, same key."""
    e = PUBLIC_EXPONENT
    while True:
        p = _random_prime(rng, bits // 2)
        q = _random_prime(rng, bits // 2)
        if p == q:
            continue
        phi = (p - 1) * (q - 1)
        if math.gcd(e, phi) != 1:
            continue
        p, q = max(p, q), min(p, q)
        d = pow(e, -1, phi)
        numbers = rsa.RSAPrivateNumbers(
            p=p, q=q, d=d, dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q), public_numbers=rsa.RSAPublicNumbers(e, p * q))
        return numbers.private_key()


def private_key_der(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#1 ``RSAPrivateKey`` DER (what the Photon stores)."""
    return key.private_bytes(serialization.Encoding.DER,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def public_key_der(key: rsa.RSAPublicKey) -> bytes:
    """``SubjectPublicKeyInfo`` DER (162 bytes for a 1024-bit key)."""
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# -- DER framing helpers ---------------------------------------------------------------------


def der_total_length(data: bytes) -> int | None:
    """Length of the DER element at the start of ``data`` (tag + length + content), or None."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < 2 + count:
        return None
    size = int.from_bytes(data[2:2 + count], "big")
    return 2 + count + size


def load_private_key(raw: bytes) -> rsa.RSAPrivateKey | None:
    """The 1024-bit RSA key in a DCT ``device_private_key`` image, or None if there is none."""
    total = der_total_length(raw)
    if total is None or total > len(raw):
        return None
    try:
        key = serialization.load_der_private_key(raw[:total], password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != KEY_BITS:
        return None
    return key


def load_public_key(raw: bytes) -> rsa.RSAPublicKey | None:
    """Parse a SubjectPublicKeyInfo DER that may be followed by padding (as the device sends)."""
    total = der_total_length(raw)
    if total is None or total > len(raw):
        return None
    try:
        key = serialization.load_der_public_key(raw[:total])
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


# -- the key in the DCT ------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyStatus:
    key: rsa.RSAPrivateKey
    generated: bool
    public_key_rewritten: bool


def ensure_device_key(store: DeviceKeyStore, generate: Callable[[], rsa.RSAPrivateKey]
                      ) -> KeyStatus:
    """Load the device key from the DCT, generating it when absent; keep the public key in sync.

    ``generate`` is only called when the DCT holds no usable 1024-bit RSA key.
    """
    key = load_private_key(store.device_private_key())
    generated = key is None
    if key is None:
        key = generate()
        der = private_key_der(key)
        store.write_device_private_key(der.ljust(max(PRIVATE_KEY_BLOCK, len(der)), b"\x00"))
    stored_public = store.device_public_key()
    public = public_key_der(key.public_key()).ljust(len(stored_public), b"\x00")
    rewritten = stored_public != public
    if rewritten:
        store.write_device_public_key(public)
    return KeyStatus(key, generated, rewritten)


def public_key_reply_hex(store: DeviceKeyStore) -> str:
    """``public-key``'s ``b``: the first 294 DCT public-key bytes, upper-case hex."""
    return store.device_public_key()[:PUBLIC_KEY_REPLY_BYTES].hex().upper()


# -- decryption as the device does it -----------------------------------------------------------


def _hex_nibble(c: int) -> int:
    """``hex_nibble`` of softap.cpp: lenient, never fails (non-hex characters give odd values)."""
    if c < ord("0"):
        return 0
    if c <= ord("9"):
        return c - ord("0")
    if c <= ord("Z"):
        return (c - ord("A") + 10) & 0xFF
    if c <= ord("z"):
        return (c - ord("a") + 10) & 0xFF
    return 0


def device_hex_decode(text: bytes, limit: int) -> bytes:
    """``hex_decode`` of softap.cpp: pairs of characters to bytes, at most ``limit`` bytes.

    A trailing odd character pairs with the terminating NUL (low nibble 0).
    """
    out = bytearray()
    i = 0
    while len(out) < limit and i < len(text):
        high = _hex_nibble(text[i])
        low = _hex_nibble(text[i + 1]) if i + 1 < len(text) else 0
        out.append(((high << 4) | low) & 0xFF)
        i += 2
    return bytes(out)


@dataclass(frozen=True)
class Decrypted:
    """``decrypt()``'s outcome: ``result`` is the plaintext length, or a negative error code."""

    result: int
    plaintext: bytes = b""

    @property
    def ok(self) -> bool:
        return self.result >= 0


def pkcs1_v15_decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes, max_len: int) -> Decrypted:
    """mbedTLS 2.x ``mbedtls_rsa_pkcs1_decrypt`` (private mode) with its error codes."""
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    block = ciphertext[:k].ljust(k, b"\x00")
    c = int.from_bytes(block, "big")
    if c >= n:
        return Decrypted(ERR_RSA_PRIVATE_FAILED_BAD_INPUT)
    em = pow(c, numbers.d, n).to_bytes(k, "big")
    separator = em.find(b"\x00", 2)
    if em[0] != 0 or em[1] != 2 or separator < 0 or separator - 2 < 8:
        return Decrypted(ERR_RSA_INVALID_PADDING)
    message = em[separator + 1:]
    if len(message) > max_len:
        return Decrypted(ERR_RSA_OUTPUT_TOO_LARGE)
    return Decrypted(len(message), message)


def device_decrypt(key: rsa.RSAPrivateKey, hex_text: bytes, max_len: int) -> Decrypted:
    """``decrypt(plaintext, max_len, hex)``: lenient hex into a zeroed 256-byte buffer, then RSA.

    On the device the bytes past the decoded text are whatever the stack held; fwsim zeroes them.
    """
    buffer = device_hex_decode(hex_text, DECRYPT_BUFFER).ljust(DECRYPT_BUFFER, b"\x00")
    return pkcs1_v15_decrypt(key, buffer, max_len)
