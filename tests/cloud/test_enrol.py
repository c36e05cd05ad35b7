"""Enrolling a device's key with the cloud (``POST /fwsim/devices/<id>/key``) and the key
registry behind it (its SQLite tables survive a restart of the cloud)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cloud_sim.device_keys import DeviceKeyRegistry, KeyRegistryError
from cloud_sim.http.client import AsgiApiClient

DEVICE = "e00f0123456789abcdef0123"


def _public(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def test_enrol_registers_the_key_and_answers_the_server_key(api: AsgiApiClient) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    status, body = api.request("POST", f"/fwsim/devices/{DEVICE.upper()}/key",
                               json={"public_key": _public(key).hex()})
    assert status == 200, body
    assert body["device_id"] == DEVICE and body["public_key"] == _public(key).hex()
    status, server = api.request("GET", "/fwsim/server_key")
    assert status == 200 and server["server_public_key"] == body["server_public_key"]
    # PEM works too, and replaces the key
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    status, body = api.request("POST", f"/fwsim/devices/{DEVICE}/key",
                               json={"public_key": pem.decode()})
    assert status == 200 and body["public_key"] == _public(other).hex()


@pytest.mark.parametrize("device_id,public_key", [
    (DEVICE, "zz"), (DEVICE, "3059"), (DEVICE, ""), ("not-an-id", None),
    (DEVICE, "\u00b2\u00b2"), (DEVICE, "rsa")])
def test_enrol_refuses_what_it_cannot_keep(api: AsgiApiClient, device_id: str,
                                           public_key: str | None) -> None:
    if public_key is None:
        public_key = _public(ec.generate_private_key(ec.SECP256R1())).hex()
    elif public_key == "rsa":
        public_key = _public(rsa.generate_private_key(65537, 1024)).hex()
    status, body = api.request("POST", f"/fwsim/devices/{device_id}/key",
                               json={"public_key": public_key})
    assert status == 400, body


def test_the_registry_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "cloud.db")
    first = DeviceKeyRegistry(db)
    key = _public(ec.generate_private_key(ec.SECP256R1()))
    first.register(DEVICE, key)
    server = first.server_key()
    first.close()
    second = DeviceKeyRegistry(db)
    assert second.public_key(DEVICE) == key and DEVICE in second
    assert second.server_key() == server
    second.close()
    memory = DeviceKeyRegistry(":memory:")
    assert memory.server_key() != server  # a fresh key from the CSPRNG
    with pytest.raises(KeyRegistryError):
        memory.register("e00f", key)


def test_batch_enrolment_is_all_or_nothing(api: AsgiApiClient, cloud: object) -> None:
    keys = [_public(ec.generate_private_key(ec.SECP256R1())) for _ in range(3)]
    ids = [f"e00f{n:020x}" for n in range(3)]
    bad = [{"id": i, "public_key": k.hex()} for i, k in zip(ids, keys, strict=True)] + [
        {"id": "e00f" + "ff" * 10, "public_key": "00"}]
    status, body = api.request("POST", "/fwsim/device_keys", json={"devices": bad})
    assert status == 400 and "e00f" + "ff" * 10 in body["error_description"] + str(body)
    registry = cloud.device_keys  # type: ignore[attr-defined]
    assert not any(i in registry for i in ids)
    status, body = api.request("POST", "/fwsim/device_keys", json={"devices": bad[:3]})
    assert status == 200 and body["enrolled"] == 3
    assert [registry.public_key(i) for i in ids] == keys
