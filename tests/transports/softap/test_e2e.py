"""End to end on virtual time: a phone sets the claim code and Wi-Fi over SoftAP; the Photon
joins, does a full handshake, sends the code, the cloud confirms, the device clears it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud_sim import Principal
from transports.softap import (
    HttpSession,
    TcpSession,
    encode_request,
    encrypt_password,
    load_public_key,
)

from .conftest import Photon, Probe, make_photon

OWNER = Principal.user("new-owner@example.com")


class VirtualPhone:
    """The softap-setup steps, over sans-IO sessions on the world's clock."""

    def __init__(self, photon: Photon, protocol: str) -> None:
        self.photon = photon
        self.protocol = protocol

    def send(self, name: str, body: dict[str, object] | None = None) -> dict[str, Any]:
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        probe = Probe()
        session: TcpSession | HttpSession | None
        if self.protocol == "tcp":
            session = self.photon.softap.open_tcp(probe.send, probe.close)
            data = encode_request(name, payload)
        else:
            session = self.photon.softap.open_http(probe.send, probe.close)
            data = (f"{'POST' if payload else 'GET'} /{name} HTTP/1.1\r\nHost: 192.168.0.1\r\n"
                    "Connection: close\r\n").encode()
            if payload:
                data += (b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: %d\r\n" % len(payload))
            data += b"\r\n" + (payload or b"")
        assert session is not None, "SoftAP is down"
        session.data_received(data)
        self.photon.world.run_for(1.5)  # covers the scan time
        assert probe.closed
        raw = bytes(probe.output)
        text = raw[2:] if self.protocol == "tcp" else raw.split(b"\r\n\r\n", 1)[1]
        if self.protocol == "http":  # de-chunk the single chunk
            text = text.split(b"\r\n", 2)[1]
        return json.loads(text)  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", ["tcp", "http"])
def test_claim_code_over_softap_reaches_the_cloud(protocol: str) -> None:
    photon = make_photon(seed=21)
    world, device, cloud = photon.world, photon.device, photon.cloud
    code = cloud.create_claim_code(OWNER, ttl_s=3600).code
    phone = VirtualPhone(photon, protocol)

    info = phone.send("device-id")
    assert info == {"id": device.device_id.upper(), "c": "0"}
    key = load_public_key(bytes.fromhex(str(phone.send("public-key")["b"])))
    assert key is not None
    assert "HomeNet" in [s["ssid"] for s in phone.send("scan-ap")["scans"]]
    assert phone.send("set", {"k": "cc", "v": code}) == {"r": 0}
    assert phone.send("configure-ap", {"idx": 0, "ssid": "HomeNet", "sec": 0x00400004, "ch": 6,
                                       "pwd": encrypt_password(key, "home-pass-1")}) == {"r": 0}
    assert phone.send("connect-ap", {"idx": 0}) == {"r": 0}

    assert world.run_until(lambda: device.claim.is_device_claimed(), 60)
    assert not device.listening.active and not photon.softap.active
    lines = device.log_lines()
    assert any("Starting handshake: presense_announce=1" in line for line in lines)
    assert not any("Skipping HELLO" in line for line in lines)  # a Photon never resumes
    assert any(f"Send spark/device/claim/code event for code {code}" in line for line in lines)
    assert any("Claim code received by the cloud and cleared locally." in line for line in lines)
    assert device.claim.pending_code() is None and device.claim.stored_code()[0] == 0
    assert cloud.owner_of(device.device_id) == OWNER
    redeem = world.trace.first("claim.redeem")
    assert redeem is not None and redeem.fields["outcome"] == "claimed"
    order = [r.kind for r in world.trace.records if r.kind in (
        "softap.claim_code_set", "softap.credentials_stored", "softap.complete", "softap.stop",
        "listening.exit", "claim.redeem")]
    assert order == ["softap.claim_code_set", "softap.credentials_stored", "softap.complete",
                     "listening.exit", "softap.stop", "claim.redeem"]


def test_the_whole_flow_is_deterministic() -> None:
    # PKCS#1 v1.5 padding is random: both runs send the same ciphertext
    key = load_public_key(bytes.fromhex(make_photon(seed=4).reply("public-key")["b"]))
    assert key is not None
    pwd = encrypt_password(key, "home-pass-1")

    def run() -> list[str]:
        photon = make_photon(seed=4)
        code = photon.cloud.create_claim_code(OWNER).code
        phone = VirtualPhone(photon, "tcp")
        phone.send("public-key")
        phone.send("set", {"k": "cc", "v": code})
        phone.send("configure-ap", {"idx": 0, "ssid": "HomeNet", "sec": 0x00400004,
                                    "pwd": pwd})
        phone.send("connect-ap", {"idx": 0})
        photon.world.run_for(30)
        return [r.to_json() for r in photon.world.trace.records]

    first, second = run(), run()
    assert first == second
    assert any('"claim.redeem"' in line and '"claimed"' in line for line in first)
