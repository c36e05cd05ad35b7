"""The dashboard in a real browser: Playwright for Python driving the system's Chromium against
a running ``fwsim up`` (a subprocess, ``--timing fast``).

* a device goes from listening to connected, a claim code is set through the page (as a phone
  would), the session is dropped, and the full handshake and the owner change appear;
* the forum thread's resume bug reproduced from the page alone: the code set while connected, a
  reconnect resumes, the page says "resumed, claim code pending", the session is dropped, a full
  handshake follows and the owner changes;
* bad input through the page and its endpoints - an unknown device, a forged origin, no token,
  no CSRF token, a double click and a second action during a power cycle - gets a clear message,
  never a 5xx, and the page stays live.

Marked ``interop`` (a real third-party program): skipped with the reason when Playwright or
``/usr/bin/chromium`` is missing, a failure in CI (``FWSIM_REQUIRE_INTEROP=1``). No browser is
ever downloaded. A failing test leaves a screenshot in ``.fwsim-traces/screenshots/``. With
``FWSIM_UPDATE_SCREENSHOT=1`` the resume-bug test rewrites ``docs/dashboard.png`` (the README's
picture).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import stop_process

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
#: virtual seconds per wall second: the 2.5 s Wi-Fi join and the cloud's 2.25 s claim
#: confirmation take well under a second
SPEED = "4"
WAIT_MS = 15_000
#: where a failing test's screenshot goes (beside the plugin's failure traces, git-ignored)
SCREENSHOTS = Path(os.environ.get("FWSIM_SCREENSHOTS", ".fwsim-traces/screenshots"))


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium); no browser is downloaded")
    return sync_playwright


class Up:
    """``fwsim up`` in a subprocess, its output read as it is printed."""

    def __init__(self, workdir: Path) -> None:
        self.stderr = (workdir / "up.stderr").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firmware_sim.cli", "up", "--http", "0", "--coap", "0",
             "--db", ":memory:", "--timing", "fast", "--speed", SPEED, "--devices", "3",
             "--for", "300", "--quiet"],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=workdir,
            env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any("ready;" in line for line in seen):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError("fwsim up did not start:\n" + "\n".join(seen))
            with contextlib.suppress(queue.Empty):
                seen.append(self.lines.get(timeout=0.2))
        found = next(re.search(r"dashboard\s+(http://\S+)/ui/#token=(\S+)", line)
                     for line in seen if " dashboard " in line)
        assert found is not None, seen
        self.base, self.token = found.group(1), found.group(2)
        self.url = f"{self.base}/ui/#token={self.token}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def stop(self) -> None:
        stop_process(self.proc, self.proc.stdout, self.stderr)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    _playwright()
    server = Up(tmp_path_factory.mktemp("up"))
    yield server
    server.stop()
    errors = (Path(server.stderr.name)).read_text()
    assert "Traceback" not in errors and "internal error" not in errors, errors


@pytest.fixture(scope="module")
def browser(up: Up, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with _playwright()() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1100})
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser: Any, up: Up, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on("response", lambda response: failures.append(
        f"{response.status} {response.url}") if response.status >= 500 else None)
    page.goto(up.url)  # logs in: the token travels in the fragment only
    page.locator("#devices").wait_for()
    assert "#token" not in page.url, "the login page strips the token from the address"
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing page: {shot.resolve()}")
    page.close()
    assert not failures, failures


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    return playwright_expect


def open_device(page: Any, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    page.locator("#log").wait_for()
    expect()(page.get_by_role("heading", level=1)).to_have_text(name)
    expect()(page.locator("#state-badge")).to_have_text("connected")


def set_claim_code(page: Any, owner: str) -> None:
    page.get_by_label("New owner (e-mail)").fill(owner)
    page.get_by_role("button", name="Issue a claim code").click()
    expect()(page.get_by_role("textbox", name="Claim code", exact=True)).to_have_value(
        re.compile(r"^\S{63}$"))
    page.get_by_role("button", name="Set claim code (as a phone)").click()
    expect()(page.locator("#status")).to_contain_text("claim code stored on the device")
    expect()(page.locator("#summary")).to_contain_text("claim code pending")


def test_listening_to_connected_then_a_claim_code_and_the_owner_change(page: Any) -> None:
    check = expect()
    check(page.locator('tr[data-device="dev1"] [data-field="state"]')).to_have_text("connected")
    open_device(page, "dev1")
    enter = page.get_by_role("button", name="Enter listening")
    enter.focus()
    page.keyboard.press("Enter")  # by keyboard: the button keeps the focus through the request
    check(page.locator("#state-badge")).to_have_text("listening")
    check(enter).to_be_focused()
    check(page.locator("#status")).to_have_text("dev1: listening mode entered")
    page.keyboard.press("Tab")
    check(page.get_by_role("button", name="Leave listening")).to_be_focused()
    page.keyboard.press("Enter")
    check(page.locator("#state-badge")).to_have_text("connected")
    set_claim_code(page, "customer-a@example.com")
    page.get_by_role("button", name="Drop session + reconnect").click()
    check(page.locator("#diagram")).to_contain_text("HELLO (full handshake)")
    check(page.locator("#session")).to_contain_text("customer-a@example.com")
    check(page.locator("#summary")).to_have_text("full")
    check(page.locator("#log")).to_contain_text("Send spark/device/claim/code event for code")
    check(page.locator("#why")).to_contain_text("Claim code accepted by the cloud")
    page.get_by_role("link", name="Devices").click()
    check(page.locator('tr[data-device="dev1"] [data-field="owner_text"]')).to_have_text(
        "customer-a@example.com")


def test_the_resume_bug_reproduced_from_the_page_alone(page: Any) -> None:
    check = expect()
    open_device(page, "dev2")
    set_claim_code(page, "customer-b@example.com")
    page.get_by_role("button", name="Cut network").click()
    check(page.locator("#state-badge")).not_to_have_text("connected")
    page.get_by_role("button", name="Restore network").click()
    check(page.locator("#summary")).to_have_text("resumed, claim code pending")
    check(page.locator("#why")).to_contain_text(
        "Session resumed with a claim code pending: the code was not sent")
    check(page.locator("#log")).to_contain_text("cloud connected from existing session.")
    check(page.locator("#session")).not_to_contain_text("customer-b@example.com")
    page.get_by_role("button", name="Drop session + reconnect").click()
    check(page.locator("#diagram")).to_contain_text("RST (unknown session)")
    check(page.locator("#summary")).to_have_text("full")
    check(page.locator("#session")).to_contain_text("customer-b@example.com")
    check(page.locator("#why")).to_contain_text("owner (none) -> customer-b@example.com")
    if os.environ.get("FWSIM_UPDATE_SCREENSHOT") == "1":
        page.set_viewport_size({"width": 1280, "height": 1560})
        check(page.locator("#diagram")).to_contain_text("claim code redeemed")
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"))


def test_bad_input_gets_a_clear_message_and_the_page_stays_live(page: Any, up: Up,
                                                                 browser: Any) -> None:
    check = expect()
    api = f"{up.base}/ui/api/devices"
    open_device(page, "dev3")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    headers = {"content-type": "application/json", "x-csrf-token": csrf}
    # an empty owner: the server's one-line message, shown in the page's status box
    page.get_by_role("button", name="Issue a claim code").click()
    check(page.locator("#status")).to_have_text("dev3: owner is required")
    # a double click on a transition, then a second action while the device is off
    page.get_by_role("button", name="Power-cycle").dblclick()
    first = page.request.post(f"{api}/dev3/power-cycle", data="{}", headers=headers)
    second = page.request.post(f"{api}/dev3/reset", data="{}", headers=headers)
    assert first.status == 409 or first.ok, first.text()
    assert second.status == 409, second.text()
    assert second.json() == {"ok": False, "error": "dev3: power-cycle in progress; wait for it "
                             "to finish"}
    check(page.locator("#state-badge")).to_have_text("connected")  # not stuck
    # forged origin, no CSRF token, an unknown device
    forged = page.request.post(f"{api}/dev3/reset", data="{}",
                               headers={**headers, "origin": "http://evil.example"})
    assert forged.status == 403 and "refused" in forged.json()["error"].lower()
    no_csrf = page.request.post(f"{api}/dev3/reset", data="{}",
                                headers={"content-type": "application/json"})
    assert no_csrf.status == 403 and "CSRF" in no_csrf.json()["error"]
    unknown = page.request.get(f"{api}/nope")
    assert unknown.status == 404 and "unknown device 'nope'" in unknown.json()["error"]
    page.goto(f"{up.base}/ui/devices/nope")
    check(page.get_by_role("alert")).to_contain_text("unknown device 'nope'")
    page.get_by_role("link", name="Back to the devices").click()
    check(page.locator("#devices")).to_be_visible()
    # no session: the page asks for the token, a wrong one is refused in one line
    browser.clear_cookies()
    assert page.request.get(api).status == 401
    page.goto(f"{up.base}/ui/")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    check(page.get_by_role("alert")).to_have_text("that is not the admin token printed at "
                                                  "start-up")
    page.get_by_label("Admin token").fill(up.token)
    page.get_by_role("button", name="Log in").click()
    check(page.locator('tr[data-device="dev3"] [data-field="state"]')).to_have_text("connected")
