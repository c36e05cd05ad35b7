"""The REST API in process: OAuth grants, users, customers, products, devices."""

from __future__ import annotations

import base64

from cloud_sim import Cloud
from cloud_sim.http.client import AsgiApiClient

from .conftest import CLIENT, DEVICE, FREE_DEVICE, OTHER_DEVICE, SLUG, Tokens

PASSWORD_FORM = {"grant_type": "password", "username": "dev@acme.io", "password": "dev-pw",
                 "client_id": "particle-api", "client_secret": "particle-api",
                 "expires_in": "7776000"}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_password_grant_and_the_token_object(api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = api.request("POST", "/oauth/token", form=PASSWORD_FORM)
    assert status == 200
    assert set(body) == {"token_type", "access_token", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 7776000
    assert len(body["access_token"]) == 40 and int(body["access_token"], 16) >= 0
    status, user = api.request("GET", "/v1/user", token=body["access_token"])
    assert status == 200 and user["username"] == "dev@acme.io"
    # particle-cli's client
    form = {**PASSWORD_FORM, "client_id": "CLI2", "client_secret": "client_secret_here"}
    assert api.request("POST", "/oauth/token", form=form)[0] == 200


def test_oauth_errors(api: AsgiApiClient, tokens: Tokens) -> None:
    bad = {**PASSWORD_FORM, "password": "wrong"}
    assert api.request("POST", "/oauth/token", form=bad) == (400, {
        "error": "invalid_grant", "error_description": "User credentials are invalid"})
    status, body = api.request("POST", "/oauth/token",
                               form={**PASSWORD_FORM, "client_secret": "nope"})
    assert status == 401 and body["error"] == "invalid_client"
    status, body = api.request("POST", "/oauth/token",
                               form={"username": "dev@acme.io", "password": "dev-pw",
                                     "grant_type": "password"})
    assert status == 401 and body["error"] == "invalid_client"
    status, body = api.request("POST", "/oauth/token", form={**PASSWORD_FORM,
                                                             "grant_type": "implicit"})
    assert status == 400 and body["error"] == "unsupported_grant_type"
    status, body = api.request("POST", "/oauth/token", json=PASSWORD_FORM)
    assert status == 400 and body["error"] == "invalid_request"
    status, body = api.request("POST", "/oauth/token", form={**PASSWORD_FORM,
                                                             "expires_in": "-5"})
    assert status == 400 and body["error"] == "invalid_request"
    status, body = api.request("POST", "/oauth/token",
                               form={**PASSWORD_FORM, "grant_type": "urn:custom:mfa-otp"})
    assert status == 400 and body["error"] == "invalid_grant"


def test_client_credentials_customer_scope_and_basic_auth(cloud: Cloud, api: AsgiApiClient,
                                                          tokens: Tokens) -> None:
    status, body = api.request(
        "POST", "/oauth/token", form={"grant_type": "client_credentials",
                                      "scope": "customer=b@cust.io"},
        headers={"Authorization": basic(*CLIENT)})
    assert status == 200 and body["scope"] == "customer=b@cust.io"
    bad = api.request("POST", "/oauth/token", form={"grant_type": "client_credentials"},
                      headers={"Authorization": "Basic %%%"})
    assert bad[0] == 401 and bad[1]["error"] == "invalid_client"
    status, mine = api.request("GET", "/v1/devices", token=body["access_token"])
    assert (status, mine) == (200, [])
    status, body = api.request("POST", "/oauth/token", form={
        "grant_type": "client_credentials", "scope": "customer=nobody@x.io",
        "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert status == 400 and body["error"] == "invalid_grant"
    # without a scope: the client's owner (the product team member)
    status, body = api.request("POST", "/oauth/token", form={
        "grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert status == 200
    assert api.request("GET", f"/v1/products/{SLUG}", token=body["access_token"])[0] == 200
    # a public client has no owner
    status, body = api.request("POST", "/oauth/token", form={
        "grant_type": "client_credentials", "client_id": "particle-api",
        "client_secret": "particle-api"})
    assert status == 400 and body["error"] == "invalid_grant"
    # customers log in with a password through the product client
    status, body = api.request("POST", "/oauth/token", form={
        "grant_type": "password", "username": "a@cust.io", "password": "a-pw",
        "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert status == 200 and body["scope"] == "customer=a@cust.io"


def test_refresh_tokens_are_single_use(api: AsgiApiClient, tokens: Tokens) -> None:
    _, first = api.request("POST", "/oauth/token", form=PASSWORD_FORM)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
            "client_id": "particle-api", "client_secret": "particle-api"}
    status, second = api.request("POST", "/oauth/token", form=form)
    assert status == 200 and second["access_token"] != first["access_token"]
    assert api.request("POST", "/oauth/token", form=form)[1]["error"] == "invalid_grant"
    wrong_client = {**form, "refresh_token": second["refresh_token"], "client_id": "particle",
                    "client_secret": "particle"}
    assert api.request("POST", "/oauth/token", form=wrong_client)[0] == 400


def test_tokens_by_header_query_or_form_and_token_errors(cloud: Cloud, api: AsgiApiClient,
                                                         tokens: Tokens) -> None:
    assert api.request("GET", f"/v1/devices?access_token={tokens.a}")[0] == 200
    assert api.request("POST", "/v1/device_claims", form={"access_token": tokens.a})[0] == 200
    assert api.request("GET", "/v1/devices") == (400, {
        "error": "invalid_request", "error_description": "The access token was not found"})
    assert api.request("GET", "/v1/devices", token="0" * 40) == (401, {
        "error": "invalid_token", "error_description": "The access token provided is invalid."})
    _, short = api.request("POST", "/oauth/token", form={**PASSWORD_FORM, "expires_in": "60"})
    assert api.request("GET", "/v1/devices", token=short["access_token"])[0] == 200
    cloud.world.run_for(61)
    status, body = api.request("GET", "/v1/devices", token=short["access_token"])
    assert status == 401 and body["error_description"] == "The access token provided has expired."
    # expires_in=0: never
    _, forever = api.request("POST", "/oauth/token", form={**PASSWORD_FORM, "expires_in": "0"})
    assert forever["expires_in"] == 0
    cloud.world.run_for(200 * 24 * 3600)
    assert api.request("GET", "/v1/devices", token=forever["access_token"])[0] == 200
    # a refresh token is not an access token
    assert api.request("GET", "/v1/devices", token=short["refresh_token"])[0] == 401
    # log out
    assert api.request("DELETE", "/v1/access_tokens/current",
                       token=forever["access_token"]) == (200, {"ok": True})
    assert api.request("GET", "/v1/devices", token=forever["access_token"])[0] == 401


def test_users(api: AsgiApiClient, tokens: Tokens) -> None:
    assert api.request("POST", "/v1/users", form={"username": "new@x.io",
                                                  "password": "pw"}) == (200, {"ok": True})
    assert api.request("POST", "/v1/users", json={"username": "NEW@x.io", "password": "pw"}) == (
        400, {"ok": False, "errors": ["username must be unique"]})
    assert api.request("POST", "/v1/users", json={"username": "nobody", "password": "pw"})[0] \
        == 400
    assert api.request("GET", "/v1/user", token=tokens.a)[0] == 403
    status, body = api.request("GET", "/v1/access_tokens/current", token=tokens.a)
    assert status == 200 and body["scopes"] == ["customer=a@cust.io"]


def test_create_and_manage_customers(api: AsgiApiClient, tokens: Tokens) -> None:
    form = {"email": "new@cust.io", "password": "pw", "grant_type": "client_credentials",
            "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    status, body = api.request("POST", f"/v1/products/{SLUG}/customers", form=form)
    assert status == 201 and body["scope"] == "customer=new@cust.io"
    assert set(body) == {"token_type", "access_token", "expires_in", "refresh_token", "scope"}
    assert api.request("POST", "/v1/products/4242/customers", form=form)[0] == 400  # exists
    assert api.request("POST", "/v1/products/seven/customers", form=form)[0] == 403
    no_client = {k: v for k, v in form.items() if not k.startswith("client")}
    assert api.request("POST", f"/v1/products/{SLUG}/customers", form=no_client)[0] == 401
    assert api.request("POST", f"/v1/products/{SLUG}/customers",
                       form={**form, "email": "x@cust.io", "password": ""})[0] == 400
    assert api.request("POST", f"/v1/products/{SLUG}/customers",
                       form={**form, "email": "y@cust.io", "password": "",
                             "no_password": "true"})[0] == 201
    # only customers owning a device are listed
    status, listing = api.request("GET", f"/v1/products/{SLUG}/customers", token=tokens.dev)
    assert status == 200
    assert [c["username"] for c in listing["customers"]] == ["a@cust.io"]
    assert listing["customers"][0]["devices"] == [DEVICE]
    assert api.request("GET", f"/v1/products/{SLUG}/customers", token=tokens.a)[0] == 403
    assert api.request("PUT", f"/v1/products/{SLUG}/customers/new@cust.io", token=tokens.dev,
                       json={"password": "changed"}) == (200, {"ok": True})
    assert api.request("PUT", f"/v1/products/{SLUG}/customers/none@cust.io", token=tokens.dev,
                       json={"password": "changed"})[0] == 404


def test_products_by_id_or_slug(api: AsgiApiClient, tokens: Tokens) -> None:
    by_id = api.request("GET", "/v1/products/4242", token=tokens.dev)
    by_slug = api.request("GET", f"/v1/products/{SLUG}", token=tokens.dev)
    assert by_id == by_slug and by_id[1]["product"]["slug"] == SLUG
    # mix-ups: the other product's slug, a number that is not an id, a slug for an id
    assert api.request("GET", "/v1/products/seven", token=tokens.dev)[0] == 403
    assert api.request("GET", "/v1/products/4243", token=tokens.dev) == (404, {
        "ok": False, "error": "Product not found", "error_description": "Product not found"})
    assert api.request("GET", "/v1/products/" + "9" * 30, token=tokens.dev)[0] == 404
    assert api.request("GET", "/v1/products/ACME", token=tokens.dev)[0] == 404
    _, listing = api.request("GET", "/v1/products", token=tokens.dev)
    assert [p["id"] for p in listing["products"]] == [4242]
    # team
    _, team = api.request("GET", f"/v1/products/{SLUG}/team", token=tokens.dev)
    assert [m["username"] for m in team["team"]] == ["dev@acme.io"]
    assert api.request("POST", f"/v1/products/{SLUG}/team", token=tokens.dev,
                       json={"username": "third@dev.io"})[0] == 200
    assert api.request("GET", f"/v1/products/{SLUG}", token=tokens.third)[0] == 200
    assert api.request("DELETE", f"/v1/products/{SLUG}/team/third@dev.io",
                       token=tokens.dev) == (204, None)
    assert api.request("GET", f"/v1/products/{SLUG}", token=tokens.third)[0] == 403


def test_product_devices(cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    status, body = api.request("GET", f"/v1/products/{SLUG}/devices", token=tokens.dev)
    assert status == 200 and [d["id"] for d in body["devices"]] == [DEVICE]
    assert body["devices"][0]["owner"] == "a@cust.io"
    assert body["customers"][0]["username"] == "a@cust.io"
    status, body = api.request("POST", f"/v1/products/{SLUG}/devices", token=tokens.dev,
                               json={"id": FREE_DEVICE.upper()})
    assert (status, body) == (200, {"updated": 1, "nonmemberDeviceIds": [],
                                    "invalidDeviceIds": []})
    file_body = f"e00fce68aabbccddeeff0044\nnot-an-id\n{DEVICE}\n"
    status, body = api.request("POST", f"/v1/products/{SLUG}/devices", token=tokens.dev,
                               form={"file": file_body})
    assert body == {"updated": 2, "nonmemberDeviceIds": [], "invalidDeviceIds": ["not-an-id"]}
    _, body = api.request("GET", "/v1/products/4242/devices?per_page=2&page=2",
                          token=tokens.dev)
    assert len(body["devices"]) == 1 and body["meta"]["total_pages"] == 2
    _, body = api.request("GET", "/v1/products/4242/devices?deviceId=0033", token=tokens.dev)
    assert [d["id"] for d in body["devices"]] == [FREE_DEVICE]
    status, device = api.request("GET", f"/v1/products/{SLUG}/devices/{DEVICE}",
                                 token=tokens.dev)
    assert status == 200 and device["product_id"] == 4242
    assert api.request("GET", f"/v1/products/{SLUG}/devices/{OTHER_DEVICE}",
                       token=tokens.dev)[0] == 404
    # a device of another product cannot be imported
    status, body = api.request("POST", "/v1/products/seven/devices", token=tokens.other,
                               json={"id": DEVICE})
    assert body["invalidDeviceIds"] == [DEVICE]


def test_device_info_rename_and_list(cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    status, info = api.request("GET", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other)
    assert status == 200
    assert {"id", "name", "last_heard", "online", "connected", "platform_id", "product_id",
            "cellular", "functions", "variables"} <= set(info)
    assert info["product_id"] == info["platform_id"] == 32  # a developer device
    assert api.request("PUT", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other,
                       json={"name": "kitchen_sensor", "notes": "n"})[1]["name"] == \
        "kitchen_sensor"
    by_name = api.request("GET", "/v1/devices/kitchen_sensor", token=tokens.other)
    assert by_name[0] == 200 and by_name[1]["id"] == OTHER_DEVICE
    assert api.request("PUT", f"/v1/devices/{OTHER_DEVICE}", token=tokens.other,
                       json={"name": "bad name!"})[0] == 400
    assert api.request("GET", "/v1/devices/kitchen_sensor", token=tokens.dev)[0] == 403


def test_every_error_is_json(api: AsgiApiClient) -> None:
    assert api.request("GET", "/v2/nothing") == (404, {"ok": False, "error": "Not Found",
                                                       "error_description": "Not Found"})
    assert api.request("PATCH", "/v1/devices")[0] == 405
    assert isinstance(api.request("PATCH", "/v1/devices")[1], dict)
    status, document = api.request("GET", "/openapi.json")
    assert status == 200 and "/v1/devices" in document["paths"]
    assert "application/x-www-form-urlencoded" in (
        document["paths"]["/v1/devices"]["post"]["requestBody"]["content"])


def test_admin_expires_claim_codes_and_devices_then_get_them_refused(
        cloud: Cloud, api: AsgiApiClient, tokens: Tokens) -> None:
    from cloud_sim.claims import ClaimOutcome, redeem_claim_code

    _, body = api.request("POST", f"/v1/products/{SLUG}/device_claims", token=tokens.b)
    code = body["claim_code"]
    _, listing = api.request("GET", "/fwsim/claim_codes")
    assert [c["status"] for c in listing["claim_codes"] if c["claim_code"] == code] == ["active"]
    assert api.request("POST", "/fwsim/claim_codes/expire", json={"code": code}) == (
        200, {"ok": True, "expired": 1})
    assert api.request("POST", "/fwsim/claim_codes/expire", json={"code": "nope"})[0] == 404
    assert api.request("POST", "/fwsim/claim_codes/expire", json={})[0] == 400
    _, listing = api.request("GET", "/fwsim/claim_codes")
    assert [c["status"] for c in listing["claim_codes"] if c["claim_code"] == code] == \
        ["expired"]
    result = redeem_claim_code(cloud.store, DEVICE, code, cloud.unix_us)
    assert result.outcome is ClaimOutcome.EXPIRED
    assert cloud.owner_of(DEVICE) is not None and cloud.owner_of(DEVICE) == result.previous_owner
    _, state = api.request("GET", "/fwsim/state")
    assert {"users", "products", "customers", "devices", "claim_codes", "transfers"} <= set(state)
