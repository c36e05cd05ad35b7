"""The device's P-256 key pair in the DCT (Device OS's ``alt_device_*_key`` layout)."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from firmware_sim.hal.dct import FIELDS, Dct, MemoryDctBackend
from firmware_sim.hal.device_keys import DeviceKeys, der_length
from firmware_sim.kernel import World
from firmware_sim.system import Device
from firmware_sim.testbed import LinkSpec, Testbed, TestbedSpec, provisioned


def test_offsets_are_device_os_static_asserts() -> None:
    # platform/MCU/rtl872x/inc/dct.h: STATIC_ASSERT_DCT_OFFSET(alt_device_public_key, 2978)...
    assert (FIELDS["alt_device_public_key"].offset, FIELDS["alt_device_public_key"].size) == (
        2978, 128)
    assert (FIELDS["alt_device_private_key"].offset,
            FIELDS["alt_device_private_key"].size) == (3106, 192)
    assert (FIELDS["alt_server_public_key"].offset,
            FIELDS["alt_server_public_key"].size) == (3298, 192)


def test_a_key_pair_is_generated_once_in_device_os_layout() -> None:
    dct = Dct(MemoryDctBackend())
    keys = DeviceKeys(dct)
    assert keys.erased() and keys.private_key() is None
    assert keys.ensure(random.Random(1).randbytes)
    private_field = dct.read_field("alt_device_private_key")
    size = der_length(private_field)
    assert size == 121 and set(private_field[size:]) == {0xFF}  # SEC1 DER at the start
    public_field = dct.read_field("alt_device_public_key")
    assert public_field[:37] == bytes(37) and public_field[37:39] == b"\x30\x59"  # DER at the end
    key = keys.private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert keys.public_key_der() == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not keys.ensure(random.Random(2).randbytes)  # kept
    assert keys.private_key_der() == private_field[:121]
    # a public key field out of step is rewritten from the private key (fetch_device_public_key)
    dct.write_field("alt_device_public_key", b"\xff" * 128)
    keys.ensure(random.Random(3).randbytes)
    assert dct.read_field("alt_device_public_key") == public_field


def test_in_process_keys_follow_the_seed_socket_keys_do_not() -> None:
    def key_of(seed: int, cloud_url: str | None) -> bytes | None:
        spec = TestbedSpec(seed=seed, devices=provisioned("p2"),
                           link=LinkSpec(cloud_url=cloud_url))
        bed = Testbed(spec)
        try:
            return bed.device.keys.public_key_der()
        finally:
            bed.close()

    assert key_of(4, None) == key_of(4, None) != key_of(5, None)
    assert key_of(4, "coap://127.0.0.1:9") != key_of(4, "coap://127.0.0.1:9")


def test_a_stored_device_keeps_its_key(tmp_path: object) -> None:
    first = Device(World(1), "d", storage_dir=str(tmp_path))
    second = Device(World(2), "d", storage_dir=str(tmp_path))
    assert first.keys.public_key_der() == second.keys.public_key_der() is not None
