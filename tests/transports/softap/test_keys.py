"""The device RSA key: deterministic generation, DCT layout, public-key reply, device decryption."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.hal.dct import Dct, FileDctBackend
from firmware_sim.kernel.world import World
from firmware_sim.system.device import Device
from firmware_sim.testbed.adapters import DctKeyStore
from transports.softap import keys
from transports.softap.keys import (
    ERR_RSA_INVALID_PADDING,
    ERR_RSA_OUTPUT_TOO_LARGE,
    ERR_RSA_PRIVATE_FAILED_BAD_INPUT,
    device_decrypt,
    device_hex_decode,
    ensure_device_key,
    generate_rsa_key,
    public_key_reply_hex,
)
from transports.softap.service import device_rsa_key

from .conftest import make_photon

KEY = generate_rsa_key(random.Random("tests-softap-key"))


def test_generation_is_deterministic_1024_bit_e65537() -> None:
    a = generate_rsa_key(random.Random(7))
    b = generate_rsa_key(random.Random(7))
    c = generate_rsa_key(random.Random(8))
    assert a.private_numbers() == b.private_numbers()
    assert a.private_numbers() != c.private_numbers()
    assert a.key_size == 1024
    assert a.public_key().public_numbers().e == 65537
    numbers = a.private_numbers()
    assert numbers.p * numbers.q == numbers.public_numbers.n


def test_the_world_seed_decides_the_device_key() -> None:
    assert device_rsa_key(World(5), "e00f00").private_numbers() == device_rsa_key(
        World(5), "e00f00").private_numbers()
    assert device_rsa_key(World(5), "e00f00").private_numbers() != device_rsa_key(
        World(6), "e00f00").private_numbers()
    assert device_rsa_key(World(5), "e00f00").private_numbers() != device_rsa_key(
        World(5), "e00f01").private_numbers()


def test_dct_layout_of_the_key_pair() -> None:
    dct = Dct()
    status = ensure_device_key(DctKeyStore(dct), lambda: KEY)
    assert status.generated and status.public_key_rewritten
    private = dct.read_field("device_private_key")
    der = keys.private_key_der(KEY)
    assert dct.read(34, len(der)) == der  # PKCS#1 RSAPrivateKey DER at offset 34
    assert private[len(der):612] == bytes(612 - len(der))  # zero-padded 612-byte block
    assert private[612:] == b"\xff" * (1216 - 612)  # the rest of the field untouched
    spki = keys.public_key_der(KEY.public_key())
    assert len(spki) == 162
    assert dct.read(1250, 384) == spki + bytes(384 - 162)  # SPKI DER at 1250, zero-padded
    again = ensure_device_key(DctKeyStore(dct), lambda: generate_rsa_key(random.Random(1)))
    assert not again.generated and not again.public_key_rewritten
    assert again.key.private_numbers() == KEY.private_numbers()


def test_public_key_is_rederived_when_the_dct_copy_differs() -> None:
    dct = Dct()
    ensure_device_key(DctKeyStore(dct), lambda: KEY)
    dct.write(1250, b"\x00" * 384)
    status = ensure_device_key(DctKeyStore(dct), lambda: KEY)
    assert not status.generated and status.public_key_rewritten
    assert dct.read(1250, 162) == keys.public_key_der(KEY.public_key())


def test_a_corrupt_private_key_is_replaced() -> None:
    dct = Dct()
    dct.write(34, b"\x30\x82\x02\x5d" + b"\x00" * 20)  # a DER header with garbage after it
    status = ensure_device_key(DctKeyStore(dct), lambda: KEY)
    assert status.generated


def test_public_key_reply_is_294_bytes_upper_case_hex() -> None:
    dct = Dct()
    ensure_device_key(DctKeyStore(dct), lambda: KEY)
    text = public_key_reply_hex(DctKeyStore(dct))
    assert len(text) == 2 * 294 and text == text.upper()
    raw = bytes.fromhex(text)
    assert raw[:162] == keys.public_key_der(KEY.public_key()) and raw[162:] == bytes(132)
    # softap-setup drops 22 bytes and reads the rest as a PKCS#1 RSAPublicKey: only a 1024-bit
    # SubjectPublicKeyInfo has its PKCS#1 key exactly 22 bytes in
    pkcs1 = KEY.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.PKCS1)
    assert raw[22:22 + len(pkcs1)] == pkcs1


def test_key_survives_reboots_and_lives_in_the_storage_dir(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    photon = make_photon(storage_dir=tmp_path)
    first = photon.softap.key
    assert first is not None
    photon.device.reset("user")
    photon.world.run_for(2)
    assert photon.softap.key is not None
    assert photon.softap.key.private_numbers() == first.private_numbers()
    reopened = Dct(FileDctBackend(tmp_path / "dct.bin"))
    assert keys.load_private_key(reopened.read_field("device_private_key")) is not None
    # another process (another world, another seed): the stored key wins
    world = World(99)
    device = Device(world, "photon", profile="photon", storage_dir=tmp_path)
    from firmware_sim.testbed.adapters import surface_for
    from transports.softap import softap_for

    softap = softap_for(surface_for(device))
    device.power_on()
    world.run_for(1)
    assert softap.key is not None
    assert softap.key.private_numbers() == first.private_numbers()


def test_device_hex_decode_is_lenient() -> None:
    assert device_hex_decode(b"0aFF", 256) == b"\x0a\xff"
    assert device_hex_decode(b"abc", 256) == b"\xab\xc0"  # the odd digit pairs with the NUL
    assert device_hex_decode(b"zz", 256) == bytes([((ord("z") - 87) << 4 | (ord("z") - 87)) & 0xFF])
    assert device_hex_decode(b"!!", 256) == b"\x00"
    assert device_hex_decode(b"00" * 300, 256) == bytes(256)


def test_decrypt_round_trip_and_error_codes() -> None:
    public = KEY.public_key()
    ciphertext = public.encrypt(b"hunter22", padding.PKCS1v15())
    ok = device_decrypt(KEY, ciphertext.hex().encode(), 256)
    assert ok.ok and ok.plaintext == b"hunter22" and ok.result == 8
    assert device_decrypt(KEY, ciphertext.hex().upper().encode(), 256).plaintext == b"hunter22"
    other = generate_rsa_key(random.Random("another"))
    wrong = other.public_key().encrypt(b"hunter22", padding.PKCS1v15())
    assert device_decrypt(KEY, wrong.hex().encode(), 256).result in (
        ERR_RSA_INVALID_PADDING, ERR_RSA_PRIVATE_FAILED_BAD_INPUT)
    assert device_decrypt(KEY, b"ff" * 128, 256).result == ERR_RSA_PRIVATE_FAILED_BAD_INPUT
    assert device_decrypt(KEY, b"not hex at all", 256).result == ERR_RSA_INVALID_PADDING
    assert device_decrypt(KEY, ciphertext.hex().encode(), 4).result == ERR_RSA_OUTPUT_TOO_LARGE
    assert (ERR_RSA_INVALID_PADDING, ERR_RSA_PRIVATE_FAILED_BAD_INPUT,
            ERR_RSA_OUTPUT_TOO_LARGE) == (-16640, -17156, -17408)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_decrypt_never_raises(data: bytes) -> None:
    result = device_decrypt(KEY, data.hex().encode() if len(data) % 2 else data, 512)
    assert result.ok or result.result in (ERR_RSA_INVALID_PADDING,
                                          ERR_RSA_PRIVATE_FAILED_BAD_INPUT)
    assert isinstance(KEY, rsa.RSAPrivateKey)
