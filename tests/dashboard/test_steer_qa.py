"""A QA run steering ``fwsim up`` from the dashboard, its findings:

* a claim code or owner holding a lone surrogate was a 500 with two tracebacks: every text input
  now refuses text no UTF-8 can carry (and the e-mail address and customer letter control
  characters) with a 400 - proven with hypothesis over the JSON endpoints, surrogates included;
* ``{"off_s": -1}`` was silently 1 s and ``{"reconnect": "yes"}`` true: a 400 with the range, a
  strict boolean; the claim code takes 64 characters as ``fwsim ctl`` and the admin route do;
* a panicking device read "panic panic", its uptime "off": now why and when it resets, "panic
  (SOS)", the buttons that cannot work disabled with the reason, boot separators in the log;
* in the browser: the Events panel opens on its newest rows, the status line says what was done
  (not "listening done" twice) and no longer doubles the device's name.

The first part calls the app in process through its whole ASGI stack (as test_app.py); the
last drives the system's Chromium against a real ``fwsim up`` (as test_browser.py: skipped with
the reason without Playwright or Chromium, a failure with FWSIM_REQUIRE_INTEROP=1).
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from firmware_sim.dashboard.app import DashboardApp
from firmware_sim.dashboard.backends import ThingsBoardBackend
from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import CloudSpec, Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.clouds.thingsboard import TbCloudSettings, ThingsBoardPlug
from tests.processes import stop_process

from .test_app import Stepping, dashboard_of, login, particle_dashboard, run

# -- text inputs ---------------------------------------------------------------------------------


@pytest.fixture
def particle() -> Iterator[tuple[Testbed, DashboardApp, Starlette]]:
    bed = Testbed(TestbedSpec(seed=5, devices=provisioned("lamp", "plain"), timing="fast"))
    with particle_dashboard(bed) as (app, root, _):
        yield bed, app, root


@pytest.mark.parametrize(("path", "raw", "message"), [
    # the QA's own requests (json.dumps writes a lone surrogate as \udc80)
    ("lamp/claim-code", '{"code": "\\udc80"}', "code must be Unicode text (no lone "
                                               "surrogates)"),
    ("plain/new-claim-code", '{"owner": "\\udc80@x.com"}', "owner must be Unicode text"),
    ("plain/new-claim-code", '{"owner": "a@\\udc80.com"}', "owner must be Unicode text"),
    ("plain/new-claim-code", '{"owner": "a\\u0000b@x.com"}', "owner must be printable text"),
    ("lamp/call", '{"name": "\\ud800x"}', "name must be Unicode text"),
    ("lamp/call", '{"name": "f", "arg": "\\udfff"}', "arg must be Unicode text"),
    ("lamp/get", '{"name": "\\udc80"}', "name must be Unicode text"),
    ("lamp/claim-code", json.dumps({"code": "E" * 65}), "code is too long (at most 64 "
                                                        "characters)"),
    ("lamp/power-cycle", '{"off_s": -1}', "off_s must be a number of seconds between 0.001 "
                                          "and 3600"),
    ("lamp/power-cycle", '{"off_s": 3601}', "off_s must be a number of seconds between"),
    ("lamp/power-cycle", '{"off_s": "2"}', "off_s must be a number of seconds between"),
    ("lamp/power-cycle", '{"off_s": true}', "off_s must be a number of seconds between"),
    ("lamp/drop-session", '{"reconnect": "yes"}', "reconnect must be true or false"),
    ("lamp/drop-session", '{"reconnect": 1}', "reconnect must be true or false"),
])
def test_text_that_no_utf8_carries_and_loose_values_are_a_400(
        particle: tuple[Testbed, DashboardApp, Starlette], path: str, raw: str,
        message: str) -> None:
    _, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        answer = await client.post(f"/ui/api/devices/{path}", content=raw.encode(),
                                   headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"].startswith(message), answer.json()

    run(root, body)


def test_a_64_character_claim_code_and_a_chosen_off_time_are_taken(
        particle: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = particle

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        # as over USB: SetClaimCodeRequest takes 64 bytes, the HAL keeps 63
        stored = await client.post("/ui/api/devices/lamp/claim-code", json={"code": "E" * 64},
                                   headers=headers)
        assert stored.status_code == 200 and stored.json()["result"] == 0, stored.text
        assert bed.devices["lamp"].claim.pending_code() == "E" * 63
        cycled = await client.post("/ui/api/devices/plain/power-cycle", json={"off_s": 2.5},
                                   headers=headers)
        assert cycled.status_code == 200 and cycled.json()["off_s"] == 2.5
        kept = await client.post("/ui/api/devices/lamp/drop-session",
                                 json={"reconnect": False}, headers=headers)
        assert kept.status_code == 200 and kept.json()["reconnect"] is False

    run(root, body)


#: any Unicode text, lone surrogates included (hypothesis leaves them out of text() by default)
TEXT = st.lists(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr),
                          st.sampled_from(["\x00", "\n", "@", ".com", "a@b.com"])),
                max_size=40).map("".join)
#: text shaped like an e-mail address, so that it passes the address check and goes further
EMAILISH = st.builds("{}@{}.com".format, TEXT.filter(bool), TEXT.filter(bool))
VALUES = st.one_of(TEXT, EMAILISH, st.none(), st.booleans(), st.integers(), st.floats(),
                   st.lists(TEXT, max_size=2), st.dictionaries(TEXT, TEXT, max_size=2))
#: the fields each action reads (a request gets its action's fields, plus any others)
FIELDS = {"power-cycle": ["off_s"], "reset": [], "listening": ["active"], "network": ["up"],
          "drop-session": ["reconnect"], "key-change": [], "claim-code": ["code"],
          "new-claim-code": ["owner"], "call": ["name", "arg"], "get": ["name"],
          "press": [], "claim": ["customer", "secret"], "reclaim": []}
KEYS = st.sampled_from(sorted({key for keys in FIELDS.values() for key in keys} | {"token"}))


#: the actions that take text, more often than the others
TEXT_ACTIONS = ["claim-code", "new-claim-code", "call", "get"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An action (or any text) and a body holding the action's fields - text most of the
    time, any value else - and maybe other fields."""
    action = draw(st.one_of(st.sampled_from(TEXT_ACTIONS * 3 + sorted(FIELDS)), TEXT))
    body = {key: draw(st.one_of(TEXT, EMAILISH, VALUES)) for key in FIELDS.get(action, [])}
    body.update(draw(st.dictionaries(KEYS, VALUES, max_size=2)))
    return action, body


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=st.sampled_from(["lamp", "plain", ""]).flatmap(  # "": any text
    lambda name: st.just(name) if name else TEXT), request=requests())
def test_no_text_input_gives_a_5xx(particle: tuple[Testbed, DashboardApp, Starlette],
                                   device: str, request: tuple[str, dict[str, Any]]) -> None:
    """Every JSON endpoint - the actions, the login, the device and secret reads - with any
    text, lone surrogates and invalid UTF-8 in the path included: a clear 4xx or a 200."""
    _, _, root = particle
    action, body = request
    # a lone surrogate in the path travels as the bytes a client would send: invalid UTF-8
    device_path = quote(device.encode("utf-8", "surrogatepass"), safe="")
    action_path = quote(action.encode("utf-8", "surrogatepass"), safe="")
    raw = json.dumps(body).encode()  # \udc80 escapes: valid JSON, not valid text

    async def send(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        answers = [
            await client.post(f"/ui/api/devices/{device_path}/{action_path}", content=raw,
                              headers=headers),
            await client.post("/ui/login", content=json.dumps(
                {"token": body.get("token", device)}).encode(), headers=headers),
            await client.get(f"/ui/api/devices/{device_path}"),
            await client.get(f"/ui/api/devices/{device_path}/secret"),
        ]
        for answer in answers:
            assert answer.status_code < 500, (answer.request.url, answer.text)
            if answer.status_code >= 400 and not answer.headers.get(
                    "content-type", "").startswith("application/json"):
                # an empty path segment matches no route: the test's mount says so in text
                assert answer.status_code == 404 and answer.text == "Not Found", answer.text
            elif answer.status_code >= 400:
                error = answer.json()["error"]
                assert error and "\n" not in error and "Traceback" not in error

    run(root, send)


@pytest.fixture
def thingsboard() -> Iterator[Starlette]:
    bed = Testbed(TestbedSpec(seed=2, access_points=(), cloud=CloudSpec(
        "thingsboard", settings=TbCloudSettings(buttons=1))))
    plug = bed.cloud
    assert isinstance(plug, ThingsBoardPlug)
    plug.power_on()
    bed.run_for(5)
    backend = ThingsBoardBackend(bed, plug, Stepping(bed))
    _, root = dashboard_of(backend)
    yield root
    backend.close()
    bed.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(["press", "claim", "reclaim", "call"]),
       body=st.dictionaries(st.sampled_from(["customer", "secret", "name"]), VALUES,
                            max_size=3))
def test_no_text_input_of_a_claim_button_gives_a_5xx(thingsboard: Starlette, action: str,
                                                      body: dict[str, Any]) -> None:
    async def send(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        answer = await client.post(f"/ui/api/devices/Claim%20Button%201/{action}",
                                   content=json.dumps(body).encode(), headers=headers)
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            error = answer.json()["error"]
            assert error and "\n" not in error and "Traceback" not in error

    run(thingsboard, send)


# -- a panicking device --------------------------------------------------------------------------


class FailingSetup(Firmware):
    def setup(self, particle: Particle) -> None:
        raise KeyError("colour")


@pytest.fixture
def panicking() -> Iterator[tuple[Testbed, DashboardApp, Starlette]]:
    bed = Testbed(TestbedSpec(seed=5, timing="fast", firmware_errors="panic", devices=(
        *provisioned("bad", firmware=FailingSetup), *provisioned("plain"))))
    logging.disable(logging.ERROR)  # the firmware's traceback, once per boot loop
    try:
        with particle_dashboard(bed) as (app, root, _):
            yield bed, app, root
    finally:
        logging.disable(logging.NOTSET)


def test_a_panicking_device_page_says_why_when_and_what_works(
        panicking: tuple[Testbed, DashboardApp, Starlette]) -> None:
    bed, _, root = panicking
    bed.run_for(1)  # 11 s: it panicked, reset itself at 10.45 s, booted and panicked again

    async def body(client: httpx.AsyncClient) -> None:
        headers = await login(client)
        page = (await client.get("/ui/devices/bad", headers={"accept": "text/html"})).text
        summary = re.search(r'id="summary" data-field="summary">([^<]*)<', page)
        assert summary is not None
        assert re.fullmatch(r"panicked: setup\(\) raised KeyError: &#39;colour&#39;; resets "
                            r"in \d+ s", summary.group(1)), summary.group(1)
        # every button but Reset, Power-cycle and the cloud's claim code: disabled, with why
        buttons = re.findall(r"<button ([^>]*)>([^<]*)</button>", page)
        disabled = sorted(text for attrs, text in buttons if " disabled title=\"the device "
                          "is panicking (flashing SOS)" in f" {attrs}")
        assert disabled == sorted([
            "Enter listening", "Leave listening", "Cut network", "Restore network",
            "Drop session", "Drop session + reconnect", "Key change from the cloud",
            "Set claim code (as a phone)", "Call function", "Read variable"]), buttons
        enabled = [text for attrs, text in buttons if "disabled" not in attrs]
        assert {"Power-cycle", "Reset", "Issue a claim code"} <= set(enabled)
        assert 'maxlength="64"' in page
        # the Device OS log: a separator at each boot
        boots = re.findall(r'<span class="lvl-boot">([^<]*)</span>', page)
        assert boots[:2] == [
            "\u2500\u2500\u2500\u2500 boot 1 (reset reason power_down) at world 0.050 s "
            "\u2500\u2500\u2500\u2500",
            "\u2500\u2500\u2500\u2500 boot 2 (reset reason panic) at world 10.500 s "
            "\u2500\u2500\u2500\u2500"], boots
        panels = (await client.get("/ui/api/devices/bad")).json()
        assert panels["row"]["summary"].startswith("panicked: setup() raised KeyError")
        session = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", panels["session_html"]))
        assert session["Uptime"] == "panic (SOS)"
        assert re.fullmatch(r"hard_fault \(code 1\), SOS for 10.4 s; resets in \d+(\.\d)? s",
                            session["Panic"]), session
        assert session["Boots"] == "2 (last reset reason panic)"
        refused = await client.post("/ui/api/devices/bad/listening", json={"active": True},
                                    headers=headers)
        assert refused.status_code == 409 and "is panicking" in refused.json()["error"]
        # a running device: its uptime, no panic, and its buttons enabled
        plain = (await client.get("/ui/devices/plain", headers={"accept": "text/html"})).text
        assert " disabled" not in plain
        assert (await client.post("/ui/api/devices/bad/reset", json={},
                                  headers=headers)).status_code == 200

    run(root, body)


# -- in the browser ------------------------------------------------------------------------------

PUBLISHER = """
from firmware_sim import Firmware


class Publisher(Firmware):
    def setup(self, particle):
        self.particle = particle
        self.ticks = 0
        particle.function("crash_soon", self.crash_soon)
        particle.every(1, self.tick)

    def tick(self):
        self.ticks += 1
        self.particle.publish("tick", str(self.ticks))

    def crash_soon(self, argument):
        def crash():
            raise RuntimeError("lamp bug")
        self.particle.after(0.5, crash)
        return 0
"""


class QaUp:
    """``fwsim up`` with the QA's devices in a subprocess (``--speed 4``), read until ready."""

    def __init__(self, folder: Path) -> None:
        self.stderr = (folder / "up.stderr").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", "up", "--http", "0", "--coap", "0",
             "--db", ":memory:", "--timing", "fast", "--speed", "4", "--for", "300",
             "--device", "lamp:p2:publisher.py", "--device", "plain:p2"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=folder,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        assert self.proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:  # the banner comes at once; `ready;` ends it
            seen.append(line)
            if "ready;" in line or time.monotonic() > deadline:
                break
        found = next((re.search(r"dashboard\s+(http://\S+)/ui/#token=(\S+)", line)
                      for line in seen if " dashboard " in line), None)
        if found is None:
            self.stop()
            raise AssertionError("fwsim up did not start:\n" + "".join(seen))
        self.base, self.token = found.group(1), found.group(2)
        self.url = f"{self.base}/ui/#token={self.token}"
        # keep reading, so the pipe never fills: the log is in up.out, for a failing test
        self.out = folder / "up.out"
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with self.out.open("w") as out:
            for line in self.proc.stdout or ():
                out.write(line)
                out.flush()

    def stop(self) -> None:
        stop_process(self.proc, self.proc.stdout, self.stderr)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QaUp]:
    from .test_browser import _playwright

    _playwright()
    folder = tmp_path_factory.mktemp("qa-up")
    (folder / "publisher.py").write_text(PUBLISHER)
    server = QaUp(folder)
    yield server
    server.stop()
    errors = Path(server.stderr.name).read_text()
    assert "internal error" not in errors, errors


@pytest.fixture(scope="module")
def browser(up: QaUp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from .test_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, _playwright

    with _playwright()() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1100})
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


def sessions_of(page: Any, up: QaUp) -> int:
    """lamp's sessions (full and resumed) as the dashboard counts them, once connected."""
    row = page.request.get(f"{up.base}/ui/api/devices/lamp").json()["row"]
    return int(row["full"]) + int(row["resumed"]) if row["state"] == "connected" else -1


def ticks_of(page: Any, up: QaUp) -> tuple[int, float]:
    """The tick events of lamp the dashboard shows: how many, and the newest one's time."""
    events = page.request.get(f"{up.base}/ui/api/devices/lamp").json()["events"]
    ticks = [event["t"] for event in events if event["name"] == "tick"]
    return len(ticks), max(ticks, default=0.0)


def test_events_open_on_the_newest_the_status_says_what_was_done_and_a_panic_disables(
        up: QaUp, browser: Any) -> None:
    from .test_browser import expect

    check = expect()
    page = browser.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    try:
        page.goto(up.url)
        page.locator("#devices").wait_for()
        deadline = time.monotonic() + 30  # enough events to scroll (one a second, at speed 4)
        while ticks_of(page, up)[0] < 16 and time.monotonic() < deadline:
            time.sleep(0.5)
        page.goto(f"{up.base}/ui/devices/lamp")
        check(page.locator("#state-badge")).to_have_text("connected")
        wrap = page.locator(".events-wrap")
        wrap.scroll_into_view_if_needed()
        position = wrap.evaluate("e => [e.scrollTop, e.scrollHeight, e.clientHeight]")
        top, height, visible = position
        assert height > visible + 40, position  # the panel scrolls
        assert top + visible >= height - 40, position  # and opened on its newest rows

        status = page.locator("#status")
        for button, said in [("Enter listening", "lamp: listening mode entered"),
                             ("Leave listening", "lamp: listening mode left"),
                             ("Cut network", "lamp: network cut (it left its access point)"),
                             ("Restore network", "lamp: network restored (it joins its access "
                                                 "point again)")]:
            page.get_by_role("button", name=button, exact=True).click()
            check(status).to_have_text(said)
        check(page.locator("#state-badge")).to_have_text("connected")
        sessions = sessions_of(page, up)
        page.get_by_role("button", name="Power-cycle", exact=True).click()
        check(status).to_have_text("lamp: power cut for 1 s; it boots again")
        page.get_by_role("button", name="Reset", exact=True).click()
        check(status).to_have_text("lamp: power-cycle in progress; wait for it to finish")
        deadline = time.monotonic() + 30  # back on the cloud: a new session, a new tick
        while sessions_of(page, up) == sessions and time.monotonic() < deadline:
            time.sleep(0.2)
        newest = ticks_of(page, up)[1]
        while ticks_of(page, up)[1] == newest and time.monotonic() < deadline:
            time.sleep(0.2)
        check(page.locator("#state-badge")).to_have_text("connected")

        # a firmware bug panics the device: the page disables what cannot work, then enables
        # it again when the device is back
        page.get_by_label("Function or variable").fill("crash_soon")
        page.get_by_role("button", name="Call function").click()
        check(status).to_have_text("crash_soon returned 0")
        listen = page.get_by_role("button", name="Enter listening", exact=True)
        check(page.locator("#state-badge")).to_have_text("panic")
        check(listen).to_be_disabled()
        assert "panicking" in (listen.get_attribute("title") or "")
        check(page.get_by_role("button", name="Reset", exact=True)).to_be_enabled()
        check(page.locator("#summary")).to_contain_text("panicked: a timer raised "
                                                        "RuntimeError: lamp bug; resets in")
        check(page.locator("#log .lvl-boot").last).to_contain_text("boot")
        check(page.locator("#state-badge")).to_have_text("connected")
        check(listen).to_be_enabled()
        assert listen.get_attribute("title") is None
    finally:
        page.close()
    assert not failures, failures
