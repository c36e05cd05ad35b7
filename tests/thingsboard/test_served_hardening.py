"""The QA findings that live on the served sockets of ``fwsim up --cloud thingsboard``: a
CONNECT that is not UTF-8 (it killed the world's driver), ``--speed`` (every JWT was refused),
the Host/Origin guard and ``--allow-host``, CoAP over UDP only, and device tokens and button
secrets from the OS CSPRNG rather than the (default) seed."""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from cloud_sim.thingsboard.claiming import fingerprint
from firmware_sim.claim_button import ButtonConfig
from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec
from firmware_sim.testbed.clouds.thingsboard import TbCloudSettings, ThingsBoardPlug
from tests.processes import ReadyServer

SPEED = 60
ALLOWED = "tb.fwsim.test"
BUTTON = "Claim Button 1"
#: the tenant administrator's password the served fixture printed
TENANT_PASSWORD: list[str] = []


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadyServer]:
    # the default seed (0), as a user starts it
    server = ReadyServer(
        [sys.executable, "-m", "firmware_sim.cli", "up", "--cloud", "thingsboard", "--devices",
         "1", "--no-boot-press", "--http", "0", "--mqtt", "0", "--coap", "0", "--db",
         ":memory:", "--for", "120", "--speed", str(SPEED), "--allow-host", ALLOWED],
        tmp_path_factory.mktemp("tb"), dict(os.environ, PYTHONUNBUFFERED="1"))
    # fresh on every start: the one this start printed
    TENANT_PASSWORD[:] = [server.value(r"tenant@thingsboard\.org / (\S+)$")]
    yield server
    server.stop()


def rest(served: ReadyServer) -> str:
    return served.value(r"REST API\s+(\S+)")


def port_of(served: ReadyServer, label: str) -> int:
    return int(served.value(rf"{label}\s+\w+://[^\s/]+:(\d+)"))


def login(base: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{base}/api/auth/login", json={"username": "tenant@thingsboard.org",
                                                      "password": TENANT_PASSWORD[0]},
                      headers=headers, timeout=10)


def bearer(base: str) -> dict[str, str]:
    response = login(base)
    assert response.status_code == 200, response.text
    return {"X-Authorization": f"Bearer {response.json()['token']}"}


def test_a_fresh_jwt_works_at_speed(served: ReadyServer) -> None:
    base = rest(served)
    response = httpx.get(f"{base}/api/auth/user", headers=bearer(base), timeout=10)
    assert response.status_code == 200, response.text


def _mqtt(port: int, packet: bytes) -> bytes:
    """Send one packet, read until the server closes (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(packet)
        received = b""
        while chunk := sock.recv(256):
            received += chunk
        return received


def _connect(level: int, username: bytes) -> bytes:
    def s16(data: bytes) -> bytes:
        return struct.pack("!H", len(data)) + data

    body = (s16(b"MQTT") + bytes([level, 0x82]) + struct.pack("!H", 60)
            + (b"\x00" if level == 5 else b"") + s16(b"qa") + s16(username))
    return bytes([0x10, len(body)]) + body


def test_a_connect_that_is_not_utf8_is_refused_and_the_service_serves_on(
        served: ReadyServer) -> None:
    port = port_of(served, "MQTT")
    # MQTT 5: CONNACK 0x81 (malformed packet), then the server closes
    assert _mqtt(port, _connect(5, b"\xed\xa0\x80")) == b"\x20\x05\x00\x81\x02\x24\x01"
    assert _mqtt(port, _connect(4, b"\xff")) == b""  # 3.1.1: closed without a word
    token = served.value(rf"'{BUTTON}' token (\S+)")
    assert _mqtt(port, _connect(5, token.encode()) + b"\xe0\x00")[:4] == b"\x20\x05\x00\x00"
    base = rest(served)
    assert httpx.get(f"{base}/api/auth/user", headers=bearer(base), timeout=10
                     ).status_code == 200


def test_a_foreign_host_is_400_and_another_origin_403_on_every_face(
        served: ReadyServer) -> None:
    base = rest(served)
    port = port_of(served, "REST API")
    refused = login(base, Host="evil.example", Origin="http://evil.example")
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == 31 and "token" not in refused.json()
    assert login(base, Origin="http://evil.example").status_code == 403
    assert login(base, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    token = served.value(rf"'{BUTTON}' token (\S+)")
    admin = bearer(base)
    for path in (f"/fwsim/devices/{BUTTON}/press", f"/api/v1/{token}/claim"):
        response = httpx.post(f"{base}{path}", json={}, timeout=10,
                              headers={**admin, "Origin": "http://evil.example"})
        assert response.status_code == 403, path
        assert response.json()["errorCode"] == 20
    # the bound address, its own origin and an --allow-host name are served
    assert login(base, Origin=base).status_code == 200
    assert login(base, Host=f"{ALLOWED}:{port}").status_code == 200
    assert login(base, Host=f"localhost:{port}").status_code == 200


def test_coap_is_udp_only(served: ReadyServer) -> None:
    port = port_of(served, "CoAP")
    for tcp_port in (port, port + 3000):  # aiocoap's CoAP over TCP and over WebSocket
        with pytest.raises(ConnectionRefusedError), socket.create_connection(
                ("127.0.0.1", tcp_port), timeout=5):
            pass


def _seeded_world(seed: int) -> ThingsBoardPlug:
    """The world of ``fwsim up --cloud thingsboard --devices 1`` at ``seed``, built in process
    as scenarios build theirs (seeded)."""
    plug = Testbed(TestbedSpec(seed=seed, access_points=(), cloud=CloudSpec(
        "thingsboard", settings=TbCloudSettings(
            buttons=1, button=ButtonConfig(press_on_boot=False, qr_text=False))))).cloud
    assert isinstance(plug, ThingsBoardPlug)
    return plug


def test_served_tokens_and_secrets_are_not_the_seeds(served: ReadyServer) -> None:
    seeded = _seeded_world(0)
    printed = served.value(rf"'{BUTTON}' token (\S+)")
    assert printed != seeded.token_of(BUTTON) and len(printed) == 20
    base = rest(served)
    admin = bearer(base)
    headers = {**admin, "Content-Type": "application/json"}
    assert httpx.post(f"{base}/fwsim/devices/{BUTTON}/press", json={}, headers=headers,
                      timeout=10).status_code == 200
    seeded.power_on()
    seeded.buttons[BUTTON].press_button()
    seeded_secret = seeded.buttons[BUTTON].secret
    for _ in range(50):
        history = httpx.get(f"{base}/fwsim/devices/{BUTTON}/why", headers=admin,
                            timeout=10).json()["history"]
        if history:
            break
        time.sleep(0.1)
    assert history, "the press reached the service"
    assert history[-1]["details"]["secret"] != fingerprint(seeded_secret)


def test_in_process_worlds_stay_seeded() -> None:
    first, second = _seeded_world(5), _seeded_world(5)
    assert first.token_of(BUTTON) == second.token_of(BUTTON)
    unpredictable = [Testbed(TestbedSpec(seed=5, access_points=(), cloud=CloudSpec(
        "thingsboard", settings=TbCloudSettings(buttons=1, unpredictable=True)))).cloud
        for _ in range(2)]
    tokens = {plug.token_of(BUTTON) for plug in unpredictable  # type: ignore[union-attr]
              } | {first.token_of(BUTTON)}
    assert len(tokens) == 3
