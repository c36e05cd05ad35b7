"""An independent QA run of the emulated cloud with particle-cli 3.43.1 and particle-api-js:
what it found, each proved here on the REST API in process (the real clients' side is in
``tests/interop/test_particle_cli_cloud.py`` and ``tests/interop/test_particle_api_js.py``).

1. particle-cli's ``token create`` logs in with the OAuth client ``user``/``client_secret_here``;
2. ``DELETE /v1/access_tokens/:token`` without authorization (particle-api-js 11+) revokes it;
3. a device the cloud shows offline is not signaled, called or read through the session the
   cloud keeps for resumption;
4. the product device list filters by ``groups`` and sorts by ``sortAttr``/``sortDir``;
5. renaming a device to ``""`` is a 400, not a silent no-op;
6. a device name is ASCII letters, digits, ``_`` and ``-`` only;
7. a bad ``page``/``per_page`` says what it must be.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceRecord, Principal
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.particle import ParticlePlug, ParticleSettings
from firmware_sim.testbed.spec import CloudSpec

from .conftest import DEVICE, OTHER_DEVICE, PRODUCT_ID, Lamp, Tokens

SUPPRESS = list(HealthCheck)


# -- 1: particle-cli's token create ---------------------------------------------------------------

TOKEN_CREATE = {"grant_type": "password", "username": "dev@acme.io", "password": "dev-pw",
                "client_id": "user", "client_secret": "client_secret_here"}


@pytest.mark.parametrize(("expires_in", "lifetime"), [(None, 7_776_000), ("0", 0),
                                                      ("3600", 3600)])
def test_token_create_logs_in_with_the_user_client(api: AsgiApiClient, tokens: Tokens,
                                                   expires_in: str | None,
                                                   lifetime: int) -> None:
    form = TOKEN_CREATE if expires_in is None else {**TOKEN_CREATE, "expires_in": expires_in}
    status, body = api.request("POST", "/oauth/token", form=form)
    assert status == 200, body
    assert body["expires_in"] == lifetime and len(body["access_token"]) == 40
    assert api.request("GET", "/v1/user", token=body["access_token"])[1]["username"] \
        == "dev@acme.io"
    # the client's secret is still checked
    status, body = api.request("POST", "/oauth/token",
                               form={**TOKEN_CREATE, "client_secret": "wrong"})
    assert (status, body["error"]) == (401, "invalid_client")


# -- 2: revoking a token without authorization ----------------------------------------------------

def _fresh_token(api: AsgiApiClient) -> dict[str, str]:
    form = {**TOKEN_CREATE, "client_id": "particle", "client_secret": "particle"}
    status, body = api.request("POST", "/oauth/token", form=form)
    assert status == 200, body
    return body


def test_a_token_is_revoked_by_whoever_knows_it(api: AsgiApiClient, tokens: Tokens) -> None:
    token = _fresh_token(api)["access_token"]
    assert api.request("DELETE", f"/v1/access_tokens/{token}") == (200, {"ok": True})
    assert api.request("GET", "/v1/user", token=token)[0] == 401
    # once more, or an unknown token: the answer of a request without a token
    for unknown in (token, "0" * 40, "x"):
        assert api.request("DELETE", f"/v1/access_tokens/{unknown}") == (400, {
            "error": "invalid_request", "error_description": "The access token was not found"})
    # older clients sent Basic: it is ignored, the path's token is still the credential
    token = _fresh_token(api)["access_token"]
    basic = "Basic " + base64.b64encode(b"dev@acme.io:wrong-password").decode()
    assert api.request("DELETE", f"/v1/access_tokens/{token}",
                       headers={"Authorization": basic})[0] == 200
    assert api.request("GET", "/v1/user", token=token)[0] == 401
    # the other tokens of the account live on
    assert api.request("GET", "/v1/user", token=tokens.dev)[0] == 200


def test_a_refresh_token_is_not_revoked_without_authorization(api: AsgiApiClient,
                                                              tokens: Tokens) -> None:
    issued = _fresh_token(api)
    assert api.request("DELETE", f"/v1/access_tokens/{issued['refresh_token']}")[0] == 400
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"],
               "client_id": "particle", "client_secret": "particle"}
    assert api.request("POST", "/oauth/token", form=refresh)[0] == 200  # still valid


def test_bearer_revocation_is_unchanged(api: AsgiApiClient, tokens: Tokens) -> None:
    token = _fresh_token(api)["access_token"]
    # another account's token, or a bad bearer: refused, the token lives on
    assert api.request("DELETE", f"/v1/access_tokens/{token}", token=tokens.other) == (
        404, {"ok": False, "error": "Token not found"})
    assert api.request("DELETE", f"/v1/access_tokens/{token}", token="f" * 40)[0] == 401
    assert api.request("GET", "/v1/user", token=token)[0] == 200
    assert api.request("DELETE", f"/v1/access_tokens/{token}", token=tokens.dev)[0] == 200
    assert api.request("GET", "/v1/user", token=token)[0] == 401


@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESS)
@given(text=st.text(min_size=1, max_size=300))
def test_no_path_token_makes_a_server_error(api: AsgiApiClient, tokens: Tokens,
                                            text: str) -> None:
    path = "/v1/access_tokens/" + quote(text.encode("utf-8", "surrogatepass"), safe="")
    status, body = api.request("DELETE", path)
    if status == 307:  # an encoded "/" at the end: the router's trailing-slash redirect
        return
    # 404/405: a path that is another route ("%2F" is a slash to the router)
    assert status in (400, 404, 405) and isinstance(body, dict), (status, body)
    assert api.request("GET", "/v1/user", token=tokens.dev)[0] == 200


# -- 3: an offline device whose session the cloud keeps -------------------------------------------

@dataclass
class Quiet:
    bed: Testbed
    plug: ParticlePlug
    api: AsgiApiClient
    device_id: str
    token: str


@pytest.fixture(scope="module")
def quiet() -> Iterator[Quiet]:
    """A device that connected, then lost power: after 75 silent seconds the cloud shows it
    offline (as ``fwsim up`` does) and still keeps its session for resumption."""
    spec = TestbedSpec(seed=43, devices=provisioned("lamp", firmware=Lamp), timing="fast",
                       cloud=CloudSpec(settings=ParticleSettings(offline_after_s=75.0)))
    with Testbed(spec) as bed:
        plug = bed.cloud
        assert isinstance(plug, ParticlePlug)
        cloud = plug.cloud
        owner = cloud.create_user("o@x.io", "pw")
        device_id = bed.devices["lamp"].device_id
        cloud.store.put_device(DeviceRecord(device_id, 32, None, Principal.user(owner.id)))
        bed.power_on()
        assert bed.run_until(lambda: cloud.endpoint.interface_of(device_id) is not None, 30)
        token = cloud.issue_tokens(Principal.user(owner.id), "particle").access.token
        with plug.api() as api:
            yield Quiet(bed, plug, api, device_id, token)


def _records(quiet: Quiet, kind: str) -> int:
    return sum(1 for r in quiet.bed.world.trace.records if r.kind == kind)


def test_an_offline_device_is_not_signaled_called_or_read(quiet: Quiet) -> None:
    api, device_id, token = quiet.api, quiet.device_id, quiet.token
    # online: the three work
    assert api.request("PUT", f"/v1/devices/{device_id}", token=token,
                       json={"signal": "1"})[0] == 200
    assert api.request("POST", f"/v1/devices/{device_id}/brightness", token=token,
                       json={"arg": "abc"})[1]["return_value"] == 3
    quiet.bed.devices["lamp"].power_off()
    quiet.bed.run_for(80)
    assert api.request("GET", f"/v1/devices/{device_id}", token=token)[1]["online"] is False
    assert quiet.plug.cloud.endpoint.session_for_device(device_id) is not None  # kept
    signals, calls = _records(quiet, "signal.to_device"), _records(quiet, "function.to_device")
    reads, started_us = _records(quiet, "variable.to_device"), quiet.bed.world.clock.now_us

    assert api.request("PUT", f"/v1/devices/{device_id}", token=token,
                       form={"signal": "1"}) == (404, {
                           "ok": False, "error": "Device is not connected",
                           "error_description": f"{device_id} is offline"})
    assert api.request("POST", f"/v1/devices/{device_id}/brightness", token=token,
                       json={"arg": "abc"}) == (408, {"ok": False, "error": "Timed out."})
    assert api.request("GET", f"/v1/devices/{device_id}/label", token=token) == (
        408, {"ok": False, "error": "Timed out."})
    # answered at once: nothing sent into the kept session, no call timeout waited out
    assert (_records(quiet, "signal.to_device"), _records(quiet, "function.to_device"),
            _records(quiet, "variable.to_device")) == (signals, calls, reads)
    assert quiet.bed.world.clock.now_us == started_us
    # a bad signal value is still a 400 first
    assert api.request("PUT", f"/v1/devices/{device_id}", token=token,
                       json={"signal": "2"})[0] == 400


# -- 4: the product device list's groups, sortAttr and sortDir ------------------------------------

PRODUCT_DEVICES = [("e00fce68aabbccddeeff0101", "bravo", 3),
                   ("e00fce68aabbccddeeff0102", "alpha", None),
                   ("e00fce68aabbccddeeff0103", "charlie", 1)]


@pytest.fixture
def fleet(cloud: Cloud, tokens: Tokens) -> list[str]:
    """Three more devices in the product, with names and last handshakes (alpha never
    connected; neither did the seeded DEVICE, shown as ``fwsim_ff0011``)."""
    for device_id, name, handshake_s in PRODUCT_DEVICES:
        cloud.store.put_device(DeviceRecord(device_id, 32, PRODUCT_ID, None, name=name,
                                            last_handshake_us=None if handshake_s is None
                                            else handshake_s * 1_000_000))
    return [d for d, _, _ in PRODUCT_DEVICES]


def _listed(api: AsgiApiClient, token: str, query: str) -> list[str]:
    status, body = api.request("GET", f"/v1/products/{PRODUCT_ID}/devices?{query}", token=token)
    assert status == 200, body
    return [d["id"] for d in body["devices"]]


def test_product_devices_sort(api: AsgiApiClient, tokens: Tokens, fleet: list[str]) -> None:
    bravo, alpha, charlie = fleet
    # by default as with lastConnection desc: the latest first, the never connected last (in
    # id order, as every tie)
    newest_first = [bravo, charlie, DEVICE, alpha]
    assert _listed(api, tokens.dev, "") == newest_first
    assert _listed(api, tokens.dev, "sortAttr=lastConnection") == newest_first
    assert _listed(api, tokens.dev, "sortAttr=lastConnection&sortDir=asc") == [
        DEVICE, alpha, charlie, bravo]
    assert _listed(api, tokens.dev, "sortDir=asc&sortAttr=deviceName") == [
        alpha, bravo, charlie, DEVICE]
    assert _listed(api, tokens.dev, "sortAttr=deviceName&sortDir=desc") == [
        DEVICE, charlie, bravo, alpha]
    every = sorted([DEVICE, *fleet])
    assert _listed(api, tokens.dev, "sortAttr=deviceId&sortDir=asc") == every
    assert _listed(api, tokens.dev, "sortAttr=deviceId") == every[::-1]
    # firmwareVersion is accepted; fwsim keeps no product firmware version: all tie
    assert _listed(api, tokens.dev, "sortAttr=firmwareVersion&sortDir=asc") == every
    # pages follow the order
    assert _listed(api, tokens.dev, "sortAttr=deviceId&sortDir=asc&per_page=3&page=2") == [
        every[3]]


def test_product_devices_groups(api: AsgiApiClient, tokens: Tokens, fleet: list[str]) -> None:
    """fwsim has no device groups yet: every device is in none, so naming groups lists no
    device (it listed every one before); an empty list is no filter."""
    assert _listed(api, tokens.dev, "groups=foo,bar") == []
    assert _listed(api, tokens.dev, "groups=foo") == []
    assert len(_listed(api, tokens.dev, "groups=")) == 4
    assert len(_listed(api, tokens.dev, "groups=,%20,")) == 4


@pytest.mark.parametrize(("query", "error"), [
    ("sortAttr=name", "sortAttr must be one of deviceId, deviceName, firmwareVersion, "
                      "lastConnection"),
    ("sortAttr=DEVICEID", "sortAttr must be one of deviceId, deviceName, firmwareVersion, "
                          "lastConnection"),
    ("sortDir=up", "sortDir must be asc or desc"),
    ("sortDir=ASC", "sortDir must be asc or desc"),
])
def test_an_unknown_sort_is_a_400(api: AsgiApiClient, tokens: Tokens, query: str,
                                  error: str) -> None:
    status, body = api.request("GET", f"/v1/products/{PRODUCT_ID}/devices?{query}",
                               token=tokens.dev)
    assert (status, body) == (400, {"ok": False, "error": error, "error_description": error})


@settings(max_examples=60, deadline=None, suppress_health_check=SUPPRESS)
@given(key=st.sampled_from(["groups", "sortAttr", "sortDir", "page", "per_page"]),
       value=st.text(max_size=40))
def test_no_list_parameter_makes_a_server_error(api: AsgiApiClient, tokens: Tokens, key: str,
                                                value: str) -> None:
    path = (f"/v1/products/{PRODUCT_ID}/devices?{key}="
            + quote(value.encode("utf-8", "surrogatepass"), safe=""))
    status, body = api.request("GET", path, token=tokens.dev)
    assert status in (200, 400) and isinstance(body, dict), (status, body)


# -- 5 and 6: device names ------------------------------------------------------------------------

def test_renaming_to_nothing_is_a_400(api: AsgiApiClient, tokens: Tokens) -> None:
    path = f"/v1/devices/{OTHER_DEVICE}"
    assert api.request("PUT", path, token=tokens.other, json={"name": "porch"})[0] == 200
    for status, answer in (api.request("PUT", path, token=tokens.other, json={"name": ""}),
                           api.request("PUT", path, token=tokens.other, form={"name": ""})):
        assert status == 400 and answer["error"].startswith("name must not be empty"), answer
    assert api.request("GET", path, token=tokens.other)[1]["name"] == "porch"


def test_an_empty_note_clears_the_notes(api: AsgiApiClient, tokens: Tokens) -> None:
    path = f"/v1/devices/{OTHER_DEVICE}"
    assert api.request("PUT", path, token=tokens.other, json={"notes": "by the door"})[1][
        "notes"] == "by the door"
    assert api.request("PUT", path, token=tokens.other, json={"name": "porch"})[1][
        "notes"] == "by the door"  # a rename keeps them
    assert api.request("PUT", path, token=tokens.other, json={"notes": ""})[1]["notes"] is None


@pytest.mark.parametrize("name", ["x\u00b2", "h\u00e9llo", "\u0661\u0662", "a b", "a.b",
                                  "\uff41", "a\u200bb"])
def test_a_name_is_ascii_letters_digits_underscore_and_dash(api: AsgiApiClient, tokens: Tokens,
                                                            name: str) -> None:
    status, body = api.request("PUT", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other,
                               json={"name": name})
    assert status == 400 and body["error"] == (
        "name may only contain the ASCII letters A-Z a-z, digits 0-9, '_' and '-'")


@settings(max_examples=80, deadline=None, suppress_health_check=SUPPRESS)
@given(name=st.text(min_size=1, max_size=64))
def test_a_name_is_taken_exactly_when_it_is_ascii(api: AsgiApiClient, tokens: Tokens,
                                                  name: str) -> None:
    status, body = api.request("PUT", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other,
                               json={"name": name})
    fits = all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    assert status == (200 if fits else 400), (name, status, body)
    if fits:
        assert body["name"] == name


# -- 7: page and per_page -------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "error"), [
    ("per_page=-1", "per_page must be an integer between 1 and 1000"),
    ("per_page=0", "per_page must be an integer between 1 and 1000"),
    ("per_page=1001", "per_page must be an integer between 1 and 1000"),
    ("per_page=2.5", "per_page must be an integer between 1 and 1000"),
    ("per_page=ten", "per_page must be an integer between 1 and 1000"),
    ("per_page=%C2%B2", "per_page must be an integer between 1 and 1000"),
    ("page=99999999999999999999999", "page must be an integer between 1 and 1000000"),
    ("page=0", "page must be an integer between 1 and 1000000"),
    ("page=-3", "page must be an integer between 1 and 1000000"),
])
def test_a_bad_page_says_what_it_must_be(api: AsgiApiClient, tokens: Tokens, query: str,
                                         error: str) -> None:
    status, body = api.request("GET", f"/v1/products/{PRODUCT_ID}/devices?{query}",
                               token=tokens.dev)
    assert (status, body) == (400, {"ok": False, "error": error, "error_description": error})


def test_a_page_with_leading_zeros_is_read(api: AsgiApiClient, tokens: Tokens) -> None:
    assert _listed(api, tokens.dev, "per_page=0000000000000000000001&page=001") == [DEVICE]
