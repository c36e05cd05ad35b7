"""``fwsim tb button`` across processes: a simulated claim button, in its own process, sends
claim info to a served ThingsBoard over MQTT, HTTP and CoAP; the secret it prints claims the
device over REST; a wrong token or an unreachable server is exit status 1 with the reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import ReadyServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadyServer]:
    server = ReadyServer(
        [sys.executable, "-m", "firmware_sim.cli", "up", "--cloud", "thingsboard", "--devices",
         "3", "--no-boot-press", "--http", "0", "--mqtt", "0", "--coap", "0", "--db", ":memory:",
         "--for", "120"],
        tmp_path_factory.mktemp("tb"), dict(os.environ, PYTHONUNBUFFERED="1"))
    yield server
    server.stop()


def button(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware_sim.cli", "tb", "button", "--no-qr",
                           "--timeout", "10", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def token(served: ReadyServer, device: str) -> str:
    return served.value(rf"'{re.escape(device)}' token (\S+)")


def customer_claim(served: ReadyServer, device: str, secret: str) -> httpx.Response:
    rest = served.value(r"REST API\s+(\S+)")
    login = httpx.post(f"{rest}/api/auth/login", json={
        "username": "customerA@thingsboard.org",
        "password": served.value(r"customerA@thingsboard\.org / (\S+)$")}, timeout=10)
    return httpx.post(f"{rest}/api/customer/device/{device}/claim",
                      json={"secretKey": secret}, timeout=10,
                      headers={"X-Authorization": f"Bearer {login.json()['token']}"})


def test_over_mqtt_the_printed_secret_claims_the_device(served: ReadyServer) -> None:
    mqtt = served.value(r"MQTT\s+mqtt://(\S+)")
    done = button("--token", token(served, "Claim Button 2"), "--name", "Claim Button 2",
                  "--mqtt", mqtt)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"claim info accepted by mqtt://{mqtt} (PUBACK reason 0)" in done.stdout
    secret = re.search(r"secret (\S+)\s+valid 60 s", done.stdout)
    assert secret is not None, done.stdout
    claimed = customer_claim(served, "Claim Button 2", secret.group(1))
    assert claimed.status_code == 200 and claimed.json()["response"] == "SUCCESS", claimed.text


def test_over_http_and_coap(served: ReadyServer, tmp_path: Path) -> None:
    rest = served.value(r"REST API\s+(\S+)")
    done = button("--token", token(served, "Claim Button 3"), "--http", rest,
                  "--secret", "fixed:s3cr3t-value", "--qr-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "secret s3cr3t-value" in done.stdout and "(HTTP 200)" in done.stdout
    assert (tmp_path / "Claim_Button.png").exists() and (tmp_path / "Claim_Button.svg").exists()
    assert customer_claim(served, "Claim Button 3", "s3cr3t-value").status_code == 200
    coap = served.value(r"CoAP\s+coap://([^/]+)/")
    done = button("--token", token(served, "Claim Button 1"), "--coap", coap,
                  "--secret", "empty")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(CoAP 2.01 Created)" in done.stdout


def test_refusals_are_exit_status_1_with_the_reason(served: ReadyServer) -> None:
    mqtt = served.value(r"MQTT\s+mqtt://(\S+)")
    done = button("--token", "not-a-token", "--mqtt", mqtt)
    assert done.returncode == 1 and "NOT accepted" in done.stdout
    assert "CONNACK NOT_AUTHORIZED" in done.stdout
    done = button("--token", "x", "--mqtt", "127.0.0.1:1", "--timeout", "3")
    assert done.returncode == 1 and "(cannot connect)" in done.stdout
    done = button("--token", "x", "--mqtt", "no-port")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith(
        "fwsim tb button: error: argument --mqtt: expected HOST:PORT")
    assert "Traceback" not in done.stderr
