"""Tokens and the guarded admin namespace (issue 14, findings 2 and 3; docs/security.md).

Finding 2: tokens of a served cloud came from the seeded Mersenne Twister - ``fwsim up`` printed
the same never-expiring token everywhere, and 63 logins rebuilt the generator and predicted a
victim's next token. Finding 3: ``/fwsim`` was open and on by default, ``/fwsim/seed`` handed out
an existing user's token for a wrong password, the requester approved its own transfer, and a
``text/plain`` body from a foreign origin drove it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloud_sim import Cloud, Principal
from cloud_sim.http import AdminAccess, ApiConfig, HostPolicy, create_app
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.security import start_token
from cloud_sim.server import CloudServer, ServerConfig
from firmware_sim.kernel import World
from firmware_sim.kernel.errors import ConfigurationError

from .conftest import SEED, Tokens, open_cloud

LOGIN = {"grant_type": "password", "client_id": "particle", "client_secret": "particle"}


# -- finding 2: unpredictable tokens ---------------------------------------------------------------


def _untemper(value: int) -> int:
    """Invert the Mersenne Twister's output tempering (one 32-bit word of its state)."""
    value ^= value >> 18
    value ^= (value << 15) & 0xEFC60000
    result = value
    for _ in range(5):
        result = value ^ ((result << 7) & 0x9D2C5680)
    value = result & 0xFFFFFFFF
    result = value
    for _ in range(3):
        result = value ^ (result >> 11)
    return result & 0xFFFFFFFF


def _words(token: str) -> list[int]:
    """The 32-bit outputs behind ``randbytes(20).hex()`` (getrandbits: little-endian words)."""
    raw = bytes.fromhex(token)
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]


def predict_next_token(observed_tokens: list[str]) -> str | None:
    """The attack of finding 2: rebuild the generator from 624 observed outputs and return the
    next 20-byte token it will draw (None when the observed outputs are not one MT stream)."""
    words = [w for token in observed_tokens for w in _words(token)]
    if len(words) < 624:
        return None
    clone = random.Random()
    clone.setstate((3, (*(_untemper(w) for w in words[:624]), 624), None))
    for expected in words[624:]:  # the outputs after the first 624 must match
        if clone.getrandbits(32) != expected:
            return None
    return clone.randbytes(20).hex()


def _login_attack(cloud: Cloud) -> tuple[str | None, str]:
    """A self-registered attacker logs in 63 times, then the victim logs in."""
    with AsgiApiClient(create_app(cloud)) as api:
        for name in ("attacker@x.io", "victim@x.io"):
            assert api.request("POST", "/v1/users", json={"username": name,
                                                          "password": "pw"})[0] == 200
        seen: list[str] = []
        for _ in range(63):
            status, body = api.request("POST", "/oauth/token", form={
                **LOGIN, "username": "attacker@x.io", "password": "pw"})
            assert status == 200
            seen += [body["access_token"], body["refresh_token"]]
        guess = predict_next_token(seen)
        status, body = api.request("POST", "/oauth/token", form={
            **LOGIN, "username": "victim@x.io", "password": "pw"})
        return guess, body["access_token"]


def test_the_token_prediction_attack_works_on_a_seeded_in_process_cloud() -> None:
    """Mutation check of the attack itself: on a seeded stream it predicts the victim's token,
    so its failure against a served cloud below means something."""
    guess, victim = _login_attack(Cloud(World(0)))
    assert guess == victim


def test_a_served_cloud_cannot_be_predicted_from_63_logins() -> None:
    cloud = open_cloud(":memory:", seed=0, epoch=1_767_225_600)
    guess, victim = _login_attack(cloud)
    assert guess is None and victim != guess
    cloud.store.close()


def test_served_clouds_with_the_same_seed_hand_out_different_secrets() -> None:
    clouds = [open_cloud(":memory:", seed=0, epoch=1_767_225_600) for _ in range(2)]
    tokens = [c.issue_tokens(Principal.user("u"), "particle").access.token for c in clouds]
    codes = [c.create_claim_code(Principal.user("u")).code for c in clouds]
    assert tokens[0] != tokens[1] and codes[0] != codes[1]
    assert all(isinstance(c.rng, random.SystemRandom) for c in clouds)
    assert all(isinstance(c.endpoint._rng, random.SystemRandom) for c in clouds)
    for cloud in clouds:
        cloud.store.close()


def test_an_in_process_cloud_keeps_its_seeded_replayable_values() -> None:
    tokens = [Cloud(World(4)).issue_tokens(Principal.user("u"), "particle").access.token
              for _ in range(2)]
    assert tokens[0] == tokens[1]


def test_the_start_token_is_fresh_per_start_revokes_the_last_and_expires() -> None:
    cloud = open_cloud(":memory:", seed=0, epoch=1_767_225_600)
    me = Principal.user("me")
    first = start_token(cloud, me, "fwsim-up")
    second = start_token(cloud, me, "fwsim-up")
    assert first != second and len(second) == 40
    assert cloud.store.get_token(first) is None  # the previous start's token is revoked
    token = cloud.store.get_token(second)
    assert token is not None and token.expires_us == cloud.unix_us + 7_776_000 * 1_000_000
    fixed = start_token(cloud, me, "fwsim-up", "my-own-token-0123456789")
    assert fixed == "my-own-token-0123456789" and cloud.store.get_token(second) is None
    with pytest.raises(ConfigurationError, match="20 to 256"):
        start_token(cloud, me, "fwsim-up", "short")
    with pytest.raises(ConfigurationError, match="another account"):
        start_token(cloud, Principal.user("other"), "fwsim-up", fixed)
    cloud.store.close()


def test_fwsim_up_prints_a_fresh_token_per_start_unless_given(
        capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    def printed(*extra: str) -> dict[str, str]:
        assert main(["up", "--http", "0", "--coap", "0", "--db", ":memory:", "--for", "0.2",
                     *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        return {label: line.split(label, 1)[1].split()[0] for line in lines
                for label in ("access token", "X-Fwsim-Admin-Token:") if label in line}

    one, two = printed(), printed()
    assert one["access token"] != two["access token"]
    assert one["X-Fwsim-Admin-Token:"] != two["X-Fwsim-Admin-Token:"]
    fixed = printed("--token", "fixed-token-for-my-scripts", "--admin-token",
                    "fixed-admin-token-abcdefgh")
    assert fixed["access token"] == "fixed-token-for-my-scripts"
    assert fixed["X-Fwsim-Admin-Token:"].rstrip(")") == "fixed-admin-token-abcdefgh"


def test_refresh_tokens_rotate_and_access_tokens_can_be_revoked(api: AsgiApiClient,
                                                                tokens: Tokens) -> None:
    form = {**LOGIN, "username": "dev@acme.io", "password": "dev-pw"}
    status, first = api.request("POST", "/oauth/token", form=form)
    assert status == 200 and first["expires_in"] == 7_776_000
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
               "client_id": "particle", "client_secret": "particle"}
    status, second = api.request("POST", "/oauth/token", form=refresh)
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    assert api.request("POST", "/oauth/token", form=refresh)[0] == 400  # used once
    assert api.request("GET", "/v1/user", token=first["access_token"])[0] == 200
    assert api.request("DELETE", f"/v1/access_tokens/{first['access_token']}",
                       token=second["access_token"])[0] == 200
    assert api.request("GET", "/v1/user", token=first["access_token"])[0] == 401
    assert api.request("DELETE", "/v1/access_tokens/current",
                       token=second["access_token"])[0] == 200
    assert api.request("GET", "/v1/user", token=second["access_token"])[0] == 401


# -- finding 3: the admin namespace ----------------------------------------------------------------

ADMIN = "admin-token-for-the-tests-0123456789"
HOST = "127.0.0.1:8080"


@pytest.fixture
def guarded(cloud: Cloud) -> Iterator[AsgiApiClient]:
    """The API as served on 127.0.0.1:8080 with an admin token."""
    config = ApiConfig(admin=AdminAccess(True, ADMIN),
                       hosts=HostPolicy.for_bound("127.0.0.1", 8080))
    with AsgiApiClient(create_app(cloud, config=config)) as client:
        yield client


def call(api: AsgiApiClient, method: str, path: str, *, body: bytes = b"",
         content_type: str | None = "application/json", admin: str | None = ADMIN,
         host: str = HOST, **headers: str) -> tuple[int, Any]:
    sent = {"Host": host, **{k.replace("_", "-"): v for k, v in headers.items()}}
    if content_type is not None:
        sent["Content-Type"] = content_type
    if admin is not None:
        sent["X-Fwsim-Admin-Token"] = admin
    response = api.request_raw(method, path, headers=sent, content=body)
    return response.status_code, response.json() if response.content else None


def test_seed_never_returns_an_existing_users_token_for_a_wrong_password(
        api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = api.request("POST", "/fwsim/seed", json={
        "users": [{"username": "dev@acme.io", "password": "wrong"}]})
    assert status == 403 and "access_token" not in str(body), body
    status, body = api.request("POST", "/fwsim/seed", json={
        "users": [{"username": "dev@acme.io"}]})
    assert status == 400, body
    status, body = api.request("POST", "/fwsim/seed", json={
        "customers": [{"product": "acme", "email": "a@cust.io", "password": "nope"}]})
    assert status == 403 and "access_token" not in str(body), body
    status, body = api.request("POST", "/fwsim/seed", json={
        "users": [{"username": "dev@acme.io", "password": "dev-pw"}]})
    assert status == 200 and len(body["users"]["dev@acme.io"]["access_token"]) == 40


def test_a_foreign_page_cannot_drive_the_admin_namespace(cloud: Cloud,
                                                         guarded: AsgiApiClient) -> None:
    """The CSRF / DNS-rebinding reproduction: text/plain body, foreign Origin or Host."""
    seed = b'{"users": [{"username": "csrf@x.io", "password": "pw"}]}'
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, content_type="text/plain",
                        Origin="http://evil.example")
    assert status == 403 and body["error"] == "Cross-origin request refused"
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, content_type="text/plain")
    assert status == 415 and body["error_description"].endswith("application/json bodies only")
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, host="evil.example:8080")
    assert status == 400 and body["error"] == "Invalid Host header"
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, Sec_Fetch_Site="cross-site")
    assert status == 403
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, admin=None)
    assert status == 401 and body["error"] == "Admin token required"
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed, admin="x" * 36)
    assert status == 401
    assert cloud.store.find_user("csrf@x.io") is None  # every refusal changed nothing
    status, body = call(guarded, "POST", "/fwsim/seed", body=seed,
                        Origin="http://127.0.0.1:8080")
    assert status == 200 and "csrf@x.io" in body["users"]
    status, body = call(guarded, "GET", "/fwsim/state", content_type=None, admin=None,
                        Authorization=f"Bearer {ADMIN}")
    assert status == 200 and "users" in body
    # the rest of the API checks Host and Origin too (DNS rebinding), not the admin token
    status, body = call(guarded, "POST", "/v1/users", admin=None, host="rebound.example:8080",
                        body=b'{"username": "r@x.io", "password": "pw"}')
    assert status == 400
    assert call(guarded, "GET", "/v1/devices", admin=None, host="localhost:8080")[0] == 400


def test_the_admin_namespace_can_be_off(cloud: Cloud) -> None:
    with AsgiApiClient(create_app(cloud, config=ApiConfig(admin=AdminAccess(False)))) as api:
        status, body = api.request("POST", "/fwsim/seed", json=SEED)
        assert status == 404 and "disabled" in body["error_description"]
        assert api.request("GET", "/fwsim/state")[0] == 404
        _, document = api.request("GET", "/openapi.json")
        assert not any(path.startswith("/fwsim") for path in document["paths"])


@pytest.mark.parametrize("header,allowed", [
    ("127.0.0.1:8080", True), ("localhost:8080", True), ("[::1]:8080", True),
    ("LOCALHOST:8080", True), ("127.0.0.1:8081", False), ("127.0.0.1", False),
    ("evil.example:8080", False), ("127.0.0.1.evil.example:8080", False),
    ("user@127.0.0.1:8080", False), ("127.0.0.1:99999", False), ("", False),
    ("127.0.0.1:8080/x", False)])
def test_host_policy_of_a_loopback_bind(header: str, allowed: bool) -> None:
    assert HostPolicy.for_bound("127.0.0.1", 8080).allows_host(header) is allowed


def test_host_policy_of_wildcard_and_named_binds() -> None:
    wildcard = HostPolicy.for_bound("0.0.0.0", 80)
    assert wildcard.allows_host("192.168.1.20") and wildcard.allows_host("[fe80::1]")
    assert not wildcard.allows_host("attacker.example")  # a DNS name could be rebound
    named = HostPolicy.for_bound("10.0.0.5", 9000, extra=("devbox.lan",))
    assert named.allows_host("10.0.0.5:9000") and named.allows_host("devbox.lan:9000")
    assert not named.allows_host("localhost:9000")
    assert named.allows_origin("http://devbox.lan:9000")
    assert not named.allows_origin("null") and not named.allows_origin("http://devbox.lan")
    assert not named.allows_origin("ftp://devbox.lan:9000")


def test_a_served_cloud_has_the_admin_namespace_off_unless_asked() -> None:
    async def main() -> None:
        for config, expected in ((ServerConfig(http_port=0, coap_port=0), (404, 404)),
                                 (ServerConfig(http_port=0, coap_port=0, admin=True),
                                  (401, 200))):
            cloud = open_cloud(":memory:", seed=1, epoch=1_767_225_600)
            server = CloudServer(cloud, config)
            await server.start()
            try:
                async with httpx.AsyncClient(base_url=server.http_url) as http:
                    bare = await http.get("/fwsim/state")
                    token = server.admin_token or ""
                    keyed = await http.get("/fwsim/state",
                                           headers={"X-Fwsim-Admin-Token": token})
                    assert (bare.status_code, keyed.status_code) == expected
                    assert (await http.get("/v1/devices")).status_code == 400  # no token
                    rebound = await http.get("/v1/devices", headers={"Host": "evil.example"})
                    assert rebound.status_code == 400
                    assert rebound.json()["error"] == "Invalid Host header"
            finally:
                await server.stop()
                cloud.store.close()

    asyncio.run(main())


def test_cloud_serve_prints_whether_the_admin_namespace_is_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    assert main(["cloud", "serve", "--http", "0", "--coap", "0", "--db", ":memory:",
                 "--for", "0.1"]) == 0
    assert "admin        off (--admin to serve /fwsim)" in capsys.readouterr().out
    assert main(["cloud", "serve", "--http", "0", "--coap", "0", "--db", ":memory:",
                 "--for", "0.1", "--admin"]) == 0
    out = capsys.readouterr().out
    token = out.split("X-Fwsim-Admin-Token: ", 1)[1].split(")")[0]
    assert len(token) == 40 and int(token, 16) >= 0
