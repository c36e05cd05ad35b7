"""Benchmark of the dashboard (``/ui``): how fast its pages paint in a real browser.

``fwsim up --timing fast --devices N`` runs in a subprocess; the system's Chromium (Playwright,
``/usr/bin/chromium``, never a downloaded browser) logs in once, then loads the device list and
a device page ``--loads`` times each (a fresh navigation every time, caches as a browser keeps
them). For each page it prints, in milliseconds, the median and the 95th percentile of

* the server's answer (navigation timing ``responseStart - requestStart``),
* the first contentful paint (``first-contentful-paint``, from the navigation's start),
* the page's ``load`` event,

the HTML size, and how long a change takes to show: an action clicked on the device page until
its state badge says so (enter listening mode, over the live stream). The target is a first
paint under 200 ms on loopback.

Run: ``python benchmarks/bench_dashboard.py`` (``--devices N``, ``--loads N``).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  return {server: nav.responseStart - nav.requestStart, load: nav.loadEventEnd,
          fcp: paint ? paint.startTime : null, size: nav.transferSize};
}"""


def start_up(devices: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim.cli", "up", "--http", "0", "--coap", "0", "--db",
         ":memory:", "--timing", "fast", "--devices", str(devices), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    url = None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        found = re.search(r"dashboard\s+(\S+)", line)
        if found:
            url = found.group(1)
        if "ready;" in line or time.monotonic() > deadline:
            break
    if url is None:
        proc.kill()
        raise SystemExit("fwsim up printed no dashboard line")
    return proc, url


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(page: Any, url: str, loads: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"server": [], "fcp": [], "load": [], "size": []}
    for _ in range(loads):
        page.goto(url, wait_until="load")
        page.wait_for_timeout(50)  # the paint entry is queued after the first frame
        timing = page.evaluate(TIMING)
        for key in figures:
            if timing[key] is not None:
                figures[key].append(float(timing[key]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        print("needs Playwright for Python: pip install -e '.[test]'", file=sys.stderr)
        return 2
    if not os.path.exists(CHROMIUM):
        print(f"needs {CHROMIUM}: apt-get install chromium", file=sys.stderr)
        return 2
    proc, url = start_up(args.devices)
    base = url.split("#", 1)[0]
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.goto(url)
            page.locator("#devices").wait_for()
            expect(page.locator('tr[data-device="dev1"] [data-field="state"]')).to_have_text(
                "connected", timeout=20_000)
            print(f"dashboard of fwsim up, {args.devices} devices, {args.loads} loads per page "
                  "(ms: median / p95)")
            for label, target in (("device list", base), ("device page", f"{base}devices/dev1")):
                figures = measure(page, target, args.loads)
                line = "  ".join(
                    f"{name} {statistics.median(values):6.1f} / {percentile(values, 0.95):6.1f}"
                    for name, values in figures.items() if name != "size" and values)
                size = statistics.median(figures["size"]) if figures["size"] else 0
                print(f"{label:<12} {line}  html+assets {size / 1024:.1f} KiB")
            page.goto(f"{base}devices/dev1")
            page.locator("#log").wait_for()
            latencies = []
            for active in (True, False) * 5:
                button = "Enter listening" if active else "Leave listening"
                state = "listening" if active else "connected"
                started = time.perf_counter()
                page.get_by_role("button", name=button).click()
                expect(page.locator("#state-badge")).to_have_text(state, timeout=20_000)
                latencies.append((time.perf_counter() - started) * 1000)
            print(f"action to the page: enter/leave listening shown in "
                  f"{statistics.median(latencies):.0f} ms median, "
                  f"{percentile(latencies, 0.95):.0f} ms p95 (click, POST, the device's "
                  "state change, the live stream; leaving includes reconnecting)")
            context.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
