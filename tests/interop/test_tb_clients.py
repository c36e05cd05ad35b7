"""The emulated ThingsBoard driven by real, unmodified clients over real sockets.

tb-mqtt-client 1.13.14 (MQTT 5 only) and its gateway client, paho-mqtt 2.x at MQTT 3.1.1 and 5
(installed apart, because tb-mqtt-client's own paho fork owns the ``paho`` package in the venv),
tb-rest-client 4.4, httpx for the device HTTP API, aiocoap for CoAP, and a script of the shape of
ThingsBoard's documented ``basic_claiming_example.py`` fed through standard input.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tb.served import REPO, ServedTb

pytestmark = pytest.mark.interop
#: the demo tenant administrator; every demo password is fresh on each start (printed)
TENANT = "tenant@thingsboard.org"
HERE = Path(__file__).resolve().parent / "tb"
PAHO_VERSION = "2.2.0"


@pytest.fixture(scope="module")
def served() -> Iterator[ServedTb]:
    server = ServedTb("--http", "0", "--mqtt", "0", "--coap", "0", "--devices", "4",
                      "--no-boot-press")
    try:
        yield server
    finally:
        server.stop()


def login(served: ServedTb, email: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{served.http_url}/api/auth/login",
                          json={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"X-Authorization": f"Bearer {response.json()['token']}"}


def customer_claim(served: ServedTb, device: str, secret: str,
                   customer: str = "customerA@thingsboard.org") -> httpx.Response:
    return httpx.post(f"{served.http_url}/api/customer/device/{device}/claim",
                      json={"secretKey": secret},
                      headers=login(served, customer, served.password(customer)))


def why(served: ServedTb, device: str) -> dict[str, Any]:
    response = httpx.get(f"{served.http_url}/fwsim/devices/{device}/why",
                         headers=login(served, TENANT, served.password(TENANT)))
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def test_tb_mqtt_client_claims_then_customer_claims(served: ServedTb) -> None:
    from tb_device_mqtt import TBDeviceMqttClient

    client = TBDeviceMqttClient("127.0.0.1", served.mqtt_port, served.token("Claim Button 1"))
    client.connect()
    try:
        assert client.claim(secret_key="s3cr3t", duration=60000).get() == 0
        deadline = time.monotonic() + 10
        while not client.rate_limits_received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.rate_limits_received, "getSessionLimits was not answered"
    finally:
        client.disconnect()
    response = customer_claim(served, "Claim Button 1", "s3cr3t")
    assert response.status_code == 200 and response.json()["response"] == "SUCCESS"


def test_tb_gateway_client_claims_two_devices(served: ServedTb) -> None:
    from tb_gateway_mqtt import TBGatewayMqttClient

    tenant = login(served, TENANT, served.password(TENANT))
    gateway = httpx.post(f"{served.http_url}/api/device?accessToken=GW-TOKEN-1", headers=tenant,
                         json={"name": "Gateway 1", "additionalInfo": {"gateway": True}})
    assert gateway.status_code == 200, gateway.text
    client = TBGatewayMqttClient("127.0.0.1", served.mqtt_port, "GW-TOKEN-1")
    client.connect()
    try:
        request = {"Gw Child 1": {"secretKey": "c1", "durationMs": 60000},
                   "Gw Child 2": {"secretKey": "c2", "durationMs": 60000}}
        info = client.gw_claim("Gw Child 1", "c1", 60000, claiming_request=request)
        assert info.get() == 0
    finally:
        client.disconnect()
    for name, secret in (("Gw Child 1", "c1"), ("Gw Child 2", "c2")):
        response = customer_claim(served, name, secret, "customerB@thingsboard.org")
        assert response.status_code == 200, (name, response.text)


@pytest.fixture(scope="module")
def paho_path() -> Path:
    target = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
        f"fwsim-interop/paho-mqtt-{PAHO_VERSION}")
    if not (target / "paho" / "mqtt" / "client.py").exists():
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                                 "--target", str(target), f"paho-mqtt=={PAHO_VERSION}"],
                                capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot install paho-mqtt {PAHO_VERSION} apart: {result.stderr[-300:]}")
    return target


@pytest.mark.parametrize("level", ["3.1.1", "5"])
def test_paho_mqtt_claims_at_both_protocol_levels(served: ServedTb, paho_path: Path,
                                                  level: str) -> None:
    device = "Claim Button 2" if level == "5" else "Claim Button 3"
    secret = f"paho-{level}"
    result = subprocess.run(
        [sys.executable, str(HERE / "paho_claim.py"), "127.0.0.1", str(served.mqtt_port),
         served.token(device), "5" if level == "5" else "4", secret],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, PYTHONPATH=str(paho_path)), cwd=paho_path)
    assert result.stdout.startswith("OK 0 True"), result.stdout + result.stderr
    last = why(served, device)["history"][-1]
    assert last["reason"] == "registered" and last["details"]["transport"] == "mqtt"
    assert customer_claim(served, device, secret).json()["response"] == "SUCCESS"


def test_tb_rest_client_sets_up_claims_and_reclaims(served: ServedTb) -> None:
    from tb_rest_client.rest import ApiException
    from tb_rest_client.rest_client import ClaimRequest, Customer, Device, RestClient

    with RestClient(base_url=served.http_url) as tenant:
        tenant.login(username=TENANT, password=served.password(TENANT))
        customer = tenant.save_customer(Customer(title="Interop Customer"))
        device = tenant.save_device(Device(name="REST Device", type="default"))
        credentials = tenant.get_device_credentials_by_device_id(device.id)
        assert credentials.credentials_id
        tenant.save_device_attributes(device.id, "SERVER_SCOPE", {
            "claimingData": {"secretKey": "from-box", "expirationTime": 4_102_444_800_000}})
        assert customer.id.id
    with RestClient(base_url=served.http_url) as user:
        user.login(username="customerC@thingsboard.org",
                   password=served.password("customerC@thingsboard.org"))
        with pytest.raises(ApiException) as failed:
            user.claim_device_by_name("REST Device", ClaimRequest(secret_key="wrong"))
        assert failed.value.status == 400
        result = user.claim_device_by_name("REST Device", ClaimRequest(secret_key="from-box"))
        assert result["response"] == "SUCCESS"
        user.re_claim_device("REST Device")
    with RestClient(base_url=served.http_url) as tenant:
        tenant.login(username=TENANT, password=served.password(TENANT))
        assert tenant.get_tenant_device("REST Device").customer_id.id == (
            "13814000-1dd2-11b2-8080-808080808080")


def test_tb_rest_client_pages_devices_and_logs_out(served: ServedTb) -> None:
    from tb_rest_client.rest import ApiException
    from tb_rest_client.rest_client import RestClient

    with RestClient(base_url=served.http_url) as tenant:
        tenant.login(username=TENANT, password=served.password(TENANT))
        page = tenant.get_tenant_devices(page_size=2, page=0, text_search="claim button")
        assert len(page.data) == 2 and page.has_next is True
        assert page.total_elements == 4 and page.total_pages == 2
        assert all(device.name.startswith("Claim Button") for device in page.data)
        assert tenant.get_user().email == "tenant@thingsboard.org"
        tenant.logout()
        with pytest.raises(ApiException) as refused:  # the session's token is outdated
            tenant.get_user()
        assert refused.value.status == 401


def test_device_http_api_with_httpx(served: ServedTb) -> None:
    token = served.token("Claim Button 4")
    ok = httpx.post(f"{served.http_url}/api/v1/{token}/claim", json={"secretKey": "h"})
    assert ok.status_code == 200 and ok.content == b""
    bad = httpx.post(f"{served.http_url}/api/v1/not-a-token/claim", json={})
    assert bad.status_code == 401 and bad.content == b""


def test_coap_api_with_aiocoap(served: ServedTb) -> None:
    import aiocoap

    async def post(token: str) -> Any:
        context = await aiocoap.Context.create_client_context()
        try:
            request = aiocoap.Message(
                code=aiocoap.POST, payload=b'{"secretKey":"c","durationMs":1000}',
                uri=f"coap://127.0.0.1:{served.coap_port}/api/v1/{token}/claim")
            return (await asyncio.wait_for(context.request(request).response, 10)).code
        finally:
            await context.shutdown()

    assert asyncio.run(post(served.token("Claim Button 4"))) == aiocoap.CREATED
    assert asyncio.run(post("nope")) == aiocoap.UNAUTHORIZED


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_documented_example_script_with_piped_input() -> None:
    """Run as documented (``token=``) the script is refused - tb-mqtt-client 1.13.14 ignores that
    keyword; with ``username=`` it sends the claim and the device is claimable."""
    if not _port_free(1883):
        pytest.skip("the example script uses MQTT's default port 1883, which is taken here")
    server = ServedTb("--http", "0", "--mqtt", "1883", "--coap", "0", "--devices", "1",
                      "--no-boot-press")
    script = str(HERE / "basic_claiming_example.py")
    answers = f"127.0.0.1\n{server.token('Claim Button 1')}\nbox-secret\n60000\n"
    try:
        documented = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, cwd=REPO)
        try:
            output, _ = documented.communicate(answers, timeout=4)
        except subprocess.TimeoutExpired:
            documented.kill()
            output, _ = documented.communicate()
        assert "Not authorized" in output, output
        fixed = subprocess.run([sys.executable, script, "username"], input=answers,
                               capture_output=True, text=True, timeout=60, check=False,
                               cwd=REPO)
        assert "claiming request was sent" in fixed.stdout, fixed.stdout + fixed.stderr
        history = why(server, "Claim Button 1")["history"]
        assert history[-1]["details"]["transport"] == "mqtt"
        assert history[-1]["reason"] == "registered"
    finally:
        server.stop()
