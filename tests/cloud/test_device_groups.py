"""Product device groups (docs/cloud-api.md "Device groups"): the stores keep a product's groups
and each device's memberships (renaming or deleting a group rewrites them; an older SQLite
database gains them on opening), and the REST API creates, lists, edits and deletes groups,
assigns them to one device or to many, and filters the product's device list by them - with
the product routes' access rules and a 4xx, never a 5xx, for bad input. A generated sequence of
operations runs against both stores side by side: same answers, and no device is ever left in a
group its product does not have."""

from __future__ import annotations

import json as jsonlib
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_sim import Cloud
from cloud_sim.http import create_app
from cloud_sim.http.client import AsgiApiClient
from cloud_sim.model import DeviceGroup, DeviceRecord, Product
from cloud_sim.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from cloud_sim.store import CloudStore, MemoryStore
from firmware_sim.kernel import World

from .conftest import DEVICE, FREE_DEVICE, SEED, SLUG, Tokens

SECOND = "e00fce68aabbccddeeff0044"
THIRD = "e00fce68aabbccddeeff0055"
#: the conftest seed plus two more devices of the product (no owner)
GROUP_SEED: dict[str, Any] = {**SEED, "devices": [
    *SEED["devices"], {"id": SECOND, "product": SLUG, "platform_id": 32},
    {"id": THIRD, "product": SLUG, "platform_id": 32}]}
GROUPS = f"/v1/products/{SLUG}/groups"
DEVICES = f"/v1/products/{SLUG}/devices"
SURROGATE = "\ud800"


def call(api: AsgiApiClient, method: str, path: str, *, token: str | None = None,
         json: Any = None, form: dict[str, str] | None = None) -> tuple[int, Any]:
    """Send exact bytes: JSON with ``\\uXXXX`` escapes (so a lone surrogate gets through), or
    a form."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = b""
    if json is not None:
        headers["Content-Type"] = "application/json"
        content = jsonlib.dumps(json).encode()
    elif form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        content = urlencode(form).encode()
    response = api.request_raw(method, path, headers=headers, content=content)
    return response.status_code, response.json() if response.content else None


def listed(api: AsgiApiClient, token: str, groups: str) -> list[str]:
    status, body = call(api, "GET", f"{DEVICES}?groups={groups}", token=token)
    assert status == 200, body
    return sorted(d["id"] for d in body["devices"])


@pytest.fixture
def dev(api: AsgiApiClient, tokens: Tokens) -> str:
    """The team member's token, with the product's extra devices seeded."""
    status, body = call(api, "POST", "/fwsim/seed", json={"devices": GROUP_SEED["devices"]})
    assert status == 200, body
    return tokens.dev


# -- the stores ----------------------------------------------------------------------------------


def test_a_store_keeps_groups_and_memberships_and_rewrites_them(store: CloudStore) -> None:
    store.add_product(Product(1, "one"))
    store.add_product(Product(2, "two"))
    for product_id, name in ((1, "beta"), (1, "asia"), (2, "beta")):
        store.add_group(DeviceGroup(product_id, name))
    store.put_device(DeviceRecord("a" * 24, product_id=1, groups=("beta", "asia")))
    store.put_device(DeviceRecord("b" * 24, product_id=2, groups=("beta",)))
    assert [g.name for g in store.list_groups(1)] == ["asia", "beta"]
    assert store.get_group(1, "beta") == DeviceGroup(1, "beta")
    assert store.get_group(1, "none") is None and store.list_groups(3) == []
    # a rename follows the devices and keeps their order; the other product's group stays
    store.update_group("beta", DeviceGroup(1, "europe", "the EU", "#34495e"))
    assert store.get_group(1, "beta") is None
    assert store.get_group(1, "europe") == DeviceGroup(1, "europe", "the EU", "#34495e")
    device = store.get_device("a" * 24)
    assert device is not None and device.groups == ("europe", "asia")
    store.delete_group(1, "asia")
    device = store.get_device("a" * 24)
    assert device is not None and device.groups == ("europe",)
    other = store.get_device("b" * 24)
    assert other is not None and other.groups == ("beta",)
    assert [g.name for g in store.list_groups(2)] == ["beta"]


def test_a_database_of_the_previous_version_opens_and_gains_groups(tmp_path: Path) -> None:
    """A database written before groups existed (schema 3: what ``fwsim up --db`` of the
    previous version wrote) opens: its devices are in no group and can join one."""
    db = tmp_path / "c.db"
    connection = sqlite3.connect(db)
    for migration in MIGRATIONS[:3]:
        connection.executescript(migration)
    connection.execute("PRAGMA user_version = 3")
    connection.execute("INSERT INTO products (id, slug) VALUES (4242, 'acme')")
    connection.execute("INSERT INTO devices (id, product_id, online, notes) "
                       "VALUES (?, 4242, 0, 'kept')", ("a" * 24,))
    connection.commit()
    connection.close()
    store = SqliteStore(db)
    assert store.schema_version == SCHEMA_VERSION == 4
    device = store.get_device("a" * 24)
    assert device is not None and device.groups == () and device.notes == "kept"
    assert store.list_groups(4242) == []
    store.add_group(DeviceGroup(4242, "beta"))
    device.groups = ("beta",)
    store.put_device(device)
    store.close()
    reopened = SqliteStore(db)
    device = reopened.get_device("a" * 24)
    assert device is not None and device.groups == ("beta",)
    assert reopened.list_groups(4242) == [DeviceGroup(4242, "beta")]
    reopened.close()


# -- the REST API --------------------------------------------------------------------------------


def test_create_list_get_edit_and_delete_a_group(api: AsgiApiClient, dev: str) -> None:
    status, body = call(api, "POST", GROUPS, token=dev,
                               json={"name": "group_a", "description": "the A group",
                                     "color": "#34495E"})
    assert status == 201 and body == {"group": {"name": "group_a",
                                                 "description": "the A group",
                                                 "color": "#34495e"}}
    status, body = call(api, "POST", GROUPS, token=dev, form={"name": "group-b"})
    assert status == 201 and body["group"] == {"name": "group-b", "description": None,
                                               "color": None}
    assert call(api, "GET", f"{GROUPS}?name=b", token=dev)[1] == {
        "groups": [{"name": "group-b", "description": None, "color": None}]}
    assert [g["name"] for g in call(api, "GET", GROUPS, token=dev)[1]["groups"]] == [
        "group-b", "group_a"]
    call(api, "PUT", f"{DEVICES}/{DEVICE}", token=dev, json={"groups": ["group_a"]})
    status, body = call(api, "GET", f"{GROUPS}/group_a", token=dev)
    assert status == 200 and body["group"]["device_count"] == 1
    status, body = call(api, "PUT", f"{GROUPS}/group_a", token=dev,
                               json={"name": "double_agent", "description": ""})
    assert status == 200 and body == {"group": {"name": "double_agent", "description": None,
                                                "color": "#34495e", "device_count": 1}}
    assert call(api, "GET", f"{DEVICES}/{DEVICE}", token=dev)[1]["groups"] == [
        "double_agent"]
    assert call(api, "GET", f"/v1/products/{SLUG}", token=dev)[1]["product"]["groups"] == [
        "double_agent", "group-b"]
    status, _ = call(api, "DELETE", f"{GROUPS}/double_agent", token=dev)
    assert status == 204
    assert call(api, "GET", f"{GROUPS}/double_agent", token=dev)[0] == 404
    assert call(api, "GET", f"{DEVICES}/{DEVICE}", token=dev)[1]["groups"] == []


def test_assigning_groups_sets_them_whole_and_the_list_filter_follows(
        api: AsgiApiClient, dev: str) -> None:
    status, body = call(api, "PUT", f"{DEVICES}/{DEVICE}", token=dev,
                               json={"groups": ["europe", "asia", "europe"]})
    assert status == 200 and body["id"] == DEVICE and body["groups"] == ["europe", "asia"]
    assert body["updated_at"].endswith("Z")
    # an unknown group name creates the group; the reference's form encoding works too
    response = api.request_raw("PUT", f"{DEVICES}/{SECOND}", headers={
        "Authorization": f"Bearer {dev}", "Content-Type": "application/x-www-form-urlencoded"},
        content=b"groups[]=asia&groups[]=trucks")
    assert response.status_code == 200 and response.json()["groups"] == ["asia", "trucks"]
    assert [g["name"] for g in call(api, "GET", GROUPS, token=dev)[1]["groups"]] == [
        "asia", "europe", "trucks"]
    assert listed(api, dev, "europe") == [DEVICE]
    assert listed(api, dev, "asia") == [DEVICE, SECOND]
    assert listed(api, dev, "europe,trucks") == [DEVICE, SECOND]
    assert listed(api, dev, "nothing") == []
    assert len(listed(api, dev, "")) == 3  # no filter
    # absolute: the new list replaces the old one; [] leaves the device in no group
    call(api, "PUT", f"{DEVICES}/{DEVICE}", token=dev, json={"groups": ["trucks"]})
    assert listed(api, dev, "europe") == [] and listed(api, dev, "trucks") == [DEVICE, SECOND]
    assert call(api, "PUT", f"{DEVICES}/{SECOND}", token=dev, json={"groups": []})[1][
        "groups"] == []
    assert listed(api, dev, "asia") == []


def test_batch_adds_then_removes_groups_for_many_devices(api: AsgiApiClient, dev: str) -> None:
    call(api, "PUT", f"{DEVICES}/{DEVICE}", token=dev, json={"groups": ["old", "keep"]})
    status, body = call(api, "PUT", DEVICES, token=dev, json={
        "action": "groups", "devices": [DEVICE, SECOND.upper()],
        "metadata": {"add": ["new"], "remove": ["old"]}})
    assert status == 200 and body == {"ok": True}
    assert call(api, "GET", f"{DEVICES}/{DEVICE}", token=dev)[1]["groups"] == ["keep", "new"]
    assert call(api, "GET", f"{DEVICES}/{SECOND}", token=dev)[1]["groups"] == ["new"]
    assert listed(api, dev, "new") == [DEVICE, SECOND]
    # one id that is not a device of the product: 404, and nothing changes
    status, body = call(api, "PUT", DEVICES, token=dev, json={
        "action": "groups", "devices": [THIRD, FREE_DEVICE], "metadata": {"add": ["x"]}})
    assert status == 404 and body["error"] == "device not found"
    assert listed(api, dev, "x") == [] and call(api, "GET", f"{GROUPS}/x", token=dev)[0] == 404


def test_a_device_leaving_the_product_leaves_its_groups(api: AsgiApiClient, dev: str) -> None:
    call(api, "PUT", f"{DEVICES}/{SECOND}", token=dev, json={"groups": ["beta"]})
    assert call(api, "DELETE", f"{DEVICES}/{SECOND}", token=dev)[0] == 204
    call(api, "POST", DEVICES, token=dev, json={"id": SECOND})  # imported again
    assert call(api, "GET", f"{DEVICES}/{SECOND}", token=dev)[1]["groups"] == []
    assert call(api, "GET", f"{GROUPS}/beta", token=dev)[1]["group"]["device_count"] == 0


def test_a_device_seeded_into_another_product_leaves_its_groups(
        api: AsgiApiClient, dev: str, cloud: Cloud) -> None:
    call(api, "PUT", f"{DEVICES}/{SECOND}", token=dev, json={"groups": ["beta"]})
    assert call(api, "POST", "/fwsim/seed", json={"devices": [
        {"id": SECOND, "product": SLUG}]})[0] == 200  # the same product: kept
    assert call(api, "GET", f"{DEVICES}/{SECOND}", token=dev)[1]["groups"] == ["beta"]
    status, body = call(api, "POST", "/fwsim/seed", json={
        "products": [{"id": 5151, "slug": "other-co"}],
        "devices": [{"id": SECOND, "product": "other-co"}]})
    assert status == 200, body
    moved = cloud.store.get_device(SECOND)
    assert moved is not None and moved.product_id == 5151 and moved.groups == ()


def test_only_the_product_team_reaches_its_groups(api: AsgiApiClient, dev: str,
                                                  tokens: Tokens) -> None:
    call(api, "POST", GROUPS, token=dev, json={"name": "beta"})
    requests: list[tuple[str, str, Any]] = [
        ("GET", GROUPS, None), ("POST", GROUPS, {"name": "x"}), ("GET", f"{GROUPS}/beta", None),
        ("PUT", f"{GROUPS}/beta", {"name": "x"}), ("DELETE", f"{GROUPS}/beta", None),
        ("PUT", f"{DEVICES}/{DEVICE}", {"groups": ["x"]}),
        ("PUT", DEVICES, {"action": "groups", "devices": [DEVICE], "metadata": {"add": ["x"]}})]
    for method, path, body in requests:
        for token in (tokens.other, tokens.a):  # another product's team; the device's customer
            status, answer = call(api, method, path, token=token, json=body)
            assert status == 403 and answer["error"] == "Permission Denied", (method, path)
        status, answer = call(api, method, path.replace(SLUG, "nope"), token=dev, json=body)
        assert status == 404 and answer["error"] == "Product not found", (method, path)
        assert call(api, method, path, json=body)[0] in (400, 401)  # no token
    assert [g["name"] for g in call(api, "GET", GROUPS, token=dev)[1]["groups"]] == ["beta"]


BAD_REQUESTS: list[tuple[str, str, Any, int]] = [
    ("POST", GROUPS, {}, 400),
    ("POST", GROUPS, {"name": "Beta"}, 400),
    ("POST", GROUPS, {"name": "a b"}, 400),
    ("POST", GROUPS, {"name": "x" * 65}, 400),
    ("POST", GROUPS, {"name": "bet" + SURROGATE}, 400),
    ("POST", GROUPS, {"name": ["beta"]}, 400),
    ("POST", GROUPS, {"name": "ok", "color": "red"}, 400),
    ("POST", GROUPS, {"name": "ok", "description": "d" * 1025}, 400),
    ("POST", GROUPS, {"name": "ok", "description": SURROGATE}, 400),
    ("POST", GROUPS, {"name": "beta"}, 400),  # exists
    ("GET", f"{GROUPS}/missing", None, 404),
    ("GET", f"{GROUPS}/{'x' * 300}", None, 404),
    ("GET", f"{GROUPS}/%ED%A0%80", None, 404),
    ("PUT", f"{GROUPS}/beta", {}, 400),
    ("PUT", f"{GROUPS}/beta", {"name": "gamma"}, 400),  # exists
    ("PUT", f"{GROUPS}/missing", {"name": "x"}, 404),
    ("DELETE", f"{GROUPS}/missing", None, 404),
    ("PUT", f"{DEVICES}/{DEVICE}", {}, 400),
    ("PUT", f"{DEVICES}/{DEVICE}", {"groups": "beta"}, 400),
    ("PUT", f"{DEVICES}/{DEVICE}", {"groups": [1]}, 400),
    ("PUT", f"{DEVICES}/{DEVICE}", {"groups": [SURROGATE]}, 400),
    ("PUT", f"{DEVICES}/{DEVICE}", {"groups": [f"g{i}" for i in range(101)]}, 400),
    ("PUT", f"{DEVICES}/{FREE_DEVICE}", {"groups": ["beta"]}, 404),
    ("PUT", f"{DEVICES}/nothex", {"groups": ["beta"]}, 404),
    ("PUT", DEVICES, {"action": "approve", "devices": [DEVICE], "metadata": {"add": ["x"]}},
     400),
    ("PUT", DEVICES, {"action": "groups", "devices": DEVICE, "metadata": {"add": ["x"]}}, 400),
    ("PUT", DEVICES, {"action": "groups", "devices": [], "metadata": {"add": ["x"]}}, 400),
    ("PUT", DEVICES, {"action": "groups", "devices": [DEVICE] * 1001,
                      "metadata": {"add": ["x"]}}, 400),
    ("PUT", DEVICES, {"action": "groups", "devices": [DEVICE], "metadata": ["x"]}, 400),
    ("PUT", DEVICES, {"action": "groups", "devices": [DEVICE], "metadata": {}}, 400),
    ("PUT", DEVICES, {"action": "groups", "devices": [DEVICE],
                      "metadata": {"add": ["UP"]}}, 400),
]


def test_bad_input_is_a_4xx_that_changes_nothing(api: AsgiApiClient, dev: str) -> None:
    for name in ("beta", "gamma"):
        call(api, "POST", GROUPS, token=dev, json={"name": name})
    for method, path, body, expected in BAD_REQUESTS:
        status, answer = call(api, method, path, token=dev, json=body)
        assert status == expected, (method, path, body, answer)
        assert answer["ok"] is False and isinstance(answer["error"], str)
    assert [g["name"] for g in call(api, "GET", GROUPS, token=dev)[1]["groups"]] == [
        "beta", "gamma"]
    assert call(api, "GET", f"{DEVICES}/{DEVICE}", token=dev)[1]["groups"] == []


# -- generated operations against both stores ---------------------------------------------------

VALID_NAMES = st.sampled_from(["a", "b", "c-1", "d_2"])
NAMES = st.one_of(VALID_NAMES, VALID_NAMES, VALID_NAMES,
                  st.sampled_from(["Bad", "", "x" * 65, SURROGATE, "é"]))
NAME_LISTS = st.one_of(st.lists(VALID_NAMES, max_size=3), st.lists(VALID_NAMES, max_size=3),
                       st.lists(NAMES, max_size=3), NAMES, st.integers(), st.none())
GOOD_LISTS = st.one_of(st.lists(VALID_NAMES, max_size=3), st.lists(VALID_NAMES, max_size=3),
                       NAME_LISTS)
PRODUCT_DEVICES = st.sampled_from([DEVICE, SECOND, THIRD, DEVICE.upper()])
DEVICE_IDS = st.one_of(PRODUCT_DEVICES, PRODUCT_DEVICES, PRODUCT_DEVICES,
                       st.sampled_from([FREE_DEVICE, "nothex"]))
OPERATIONS = st.one_of(
    st.tuples(st.just("POST"), st.just(GROUPS),
              st.fixed_dictionaries({"name": NAMES}, optional={
                  "color": st.sampled_from(["#abc", "#A1B2C3", "blue", ""]),
                  "description": st.sampled_from(["", "desc", SURROGATE])})),
    st.tuples(st.just("PUT"), NAMES.map(lambda n: f"{GROUPS}/{n}"),
              st.fixed_dictionaries({}, optional={"name": NAMES,
                                                  "color": st.sampled_from(["#123", "no"])})),
    st.tuples(st.just("DELETE"), NAMES.map(lambda n: f"{GROUPS}/{n}"), st.none()),
    st.tuples(st.just("DELETE"), VALID_NAMES.map(lambda n: f"{GROUPS}/{n}"), st.none()),
    st.tuples(st.just("PUT"), DEVICE_IDS.map(lambda d: f"{DEVICES}/{d}"),
              st.fixed_dictionaries({"groups": NAME_LISTS})),
    st.tuples(st.just("PUT"), st.just(DEVICES), st.fixed_dictionaries(
        {"action": st.sampled_from(["groups", "groups", "groups", "other"]),
         "devices": st.lists(DEVICE_IDS, min_size=1, max_size=2),
         "metadata": st.one_of(
             st.fixed_dictionaries({"add": GOOD_LISTS}, optional={"remove": GOOD_LISTS}),
             st.fixed_dictionaries({"add": GOOD_LISTS}, optional={"remove": GOOD_LISTS}),
             st.fixed_dictionaries({"remove": GOOD_LISTS}), st.just({}), st.just(["a"]))})),
)


def _served(store: CloudStore) -> tuple[AsgiApiClient, str]:
    client = AsgiApiClient(create_app(Cloud(World(1), store=store)))
    client.__enter__()
    status, body = call(client, "POST", "/fwsim/seed", json=GROUP_SEED)
    assert status == 200, body
    return client, body["users"]["dev@acme.io"]["access_token"]


@pytest.fixture(scope="module")
def both_stores() -> Any:
    served = [_served(MemoryStore()), _served(SqliteStore(":memory:"))]
    yield served
    for client, _ in served:
        client.__exit__(None, None, None)


def _path_safe(path: str) -> str:
    return path.replace(SURROGATE, "%ED%A0%80").replace("é", "%C3%A9")


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(operations=st.lists(OPERATIONS, min_size=1, max_size=8))
def test_generated_operations_agree_on_both_stores_and_keep_memberships_consistent(
        both_stores: list[tuple[AsgiApiClient, str]],
        operations: list[tuple[str, str, Any]]) -> None:
    for method, path, body in operations:
        answers = [call(client, method, _path_safe(path), token=token, json=body)
                   for client, token in both_stores]
        status, answer = answers[0]
        assert status < 500, (method, path, body, answer)
        assert answers[1] == answers[0], (method, path, body)
        if status >= 400:
            assert answer["ok"] is False and isinstance(answer["error"], str)
    for client, token in both_stores:
        groups = {g["name"] for g in call(client, "GET", GROUPS, token=token)[1]["groups"]}
        devices = call(client, "GET", f"{DEVICES}?per_page=100", token=token)[1]["devices"]
        for device in devices:
            assert set(device["groups"]) <= groups and len(set(device["groups"])) == len(
                device["groups"]), device
        for name in groups:
            members = sorted(d["id"] for d in devices if name in d["groups"])
            assert listed(client, token, name) == members
            count = call(client, "GET", f"{GROUPS}/{name}", token=token)[1]["group"]
            assert count["device_count"] == len(members)
