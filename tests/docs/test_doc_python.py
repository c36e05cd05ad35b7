"""Every ```python block in README.md and docs/*.md, run as written.

Each block must match exactly one :class:`Rule` of :data:`RULES` (by document and a pattern of
its text), which says how it runs:

* ``script``: a complete program, run as the main module (in one Python process with the
  other scripts and snippets, each in a fresh namespace, in a scratch folder); it must not
  raise;
* ``pytest``: a pytest test file: every such block is written to a scratch folder and run in one
  ``pytest -p firmware_sim`` subprocess (plugin autoloading off, the way a project that pins
  its plugins loads this one); each must pass;
* ``snippet:<context>``: a continuation of what the prose around it sets up (``world``,
  ``device``, ``code``...): :data:`CONTEXTS` has that setup, which runs first in the same
  namespace; top-level ``await`` is allowed, as in ``python -m asyncio`` or a notebook;
* ``server:<name>``: a client of a documented server: :data:`SERVERS` says how to start it
  (``fwsim ...`` on free ports) and which values of its output replace the block's
  placeholders (the documented fixed ports, ``<claim code>``...); then the block runs as a
  script;
* ``no: <reason>``: not runnable here, with the reason.

A rule may also replace text (``fills``), each with a reason: the documented explore runs'
counts are the reader's choice and cost minutes of CPU, so fewer runs take the same paths.
Every fill must still match its block, so the docs and this file cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.fences import fenced_blocks
from tests.processes import ReadyServer

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PYTHON_INFOS = {"python", "py", "python3"}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    text: str

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"


def extract(path: Path) -> list[Block]:
    return [Block(path.name, line, "\n".join(body) + "\n")
            for line, info, body in fenced_blocks(path) if info in PYTHON_INFOS]


@dataclass(frozen=True)
class Rule:
    doc: str
    pattern: str
    mode: str
    #: (text in the block, replacement, why)
    fills: tuple[tuple[str, str, str], ...] = ()

    def matches(self, block: Block) -> bool:
        return block.doc == self.doc and re.search(self.pattern, block.text) is not None


FEWER_RUNS = "the run count is the reader's choice; fewer runs take the same code paths in a " \
    "second instead of a minute of CPU"
THINGSBOARD_CLIENTS = "server:thingsboard"

RULES: list[Rule] = [
    Rule("README.md", r"class App\(Firmware\)", "script"),
    Rule("README.md", r"SoftApClient\(", "server:softap"),
    Rule("README.md", r"VirtualUsbHost\(world, device\)", "snippet:p2"),
    Rule("README.md", r"ProvisioningClient\.for_address", "snippet:p2"),
    Rule("README.md", r"TBDeviceMqttClient", THINGSBOARD_CLIENTS),
    Rule("architecture.md", r"Testbed\(TestbedSpec\(seed=7", "script"),
    Rule("ble.md", r"BleakClient\(devices\[0\]", "snippet:p2"),
    Rule("ble.md", r"ProvisioningClient\.for_address", "snippet:p2-ble"),
    Rule("explore.md", r"class ProvisionedOnce\(Checker\)", "script",
         (("runs=300", "runs=20", FEWER_RUNS),)),
    Rule("explore.md", r"strategy=\"pct\", runs=500", "script",
         (("runs=500", "runs=30", FEWER_RUNS),)),
    Rule("explore.md", r"def test_no_unsafe_claim_in_300_runs", "pytest",
         (("runs=300", "runs=20", FEWER_RUNS),)),
    Rule("pytest-plugin.md", r"def test_the_workaround_delivers_the_code", "pytest"),
    Rule("pytest-plugin.md", r"def test_a_photon_set_up_over_softap", "pytest"),
    Rule("serial.md", r"serial_for_url\(\"fwsim://p2\"", "snippet:p2"),
    Rule("thingsboard.md", r"TBDeviceMqttClient", THINGSBOARD_CLIENTS),
    Rule("thingsboard.md", r"tb\.add_button\(\"Lamp\"", "script"),
    Rule("usb.md", r"VirtualUsbHost\(world, device\)\.open\(\)", "snippet:p2"),
]

#: what the prose around a snippet sets up, as code
CONTEXTS: dict[str, str] = {
    # "a device" in a test or script: a P2 in listening mode (it knows no network), its world,
    # and a claim code the world's cloud issued
    "p2": """
        from firmware_sim.testbed import CloudSpec, DeviceSpec, Testbed, TestbedSpec
        bed = Testbed(TestbedSpec(seed=0, cloud=CloudSpec("particle")))
        device = bed.add_device(DeviceSpec("p2", profile="p2", wifi=(), timing="fast"))
        device.power_on()
        bed.run_for(2)
        world = bed.world
        code = bed.cloud.create_claim_code(bed.cloud.user("me@example.com"))
    """,
}
# ble.md's ProvisioningClient section continues its bleak section: the device advertises, `sim`
CONTEXTS["p2-ble"] = CONTEXTS["p2"] + """
        from firmware_sim.testbed.adapters import surface_for
        from transports.ble import SimulatedBle, attach_ble
        attach_ble(surface_for(device))
        sim = SimulatedBle(world)
"""

#: server name -> (fwsim arguments, {placeholder in the block: pattern of its value in the
#: server's output})
SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    # README's `fwsim serve --profile photon --softap-tcp 5609 ...`, on a free port
    "softap": (["serve", "--profile", "photon", "--softap-tcp", "0", "--softap-claim-owner",
                "me@example.com", "--timing", "fast", "--quiet"],
               {"5609": r"softap tcp: 127\.0\.0\.1:(\d+)",
                "<claim code>": r"claim code (\S+) for"}),
    # README's `fwsim up --cloud thingsboard --devices 3`, on free ports (its buttons send their
    # claim data with their own secret at boot, and ThingsBoard keeps the first one)
    "thingsboard": (["up", "--cloud", "thingsboard", "--devices", "3", "--http", "0", "--mqtt",
                     "0", "--coap", "0", "--db", ":memory:", "--quiet"],
                    {"8080": r"REST API\s+http://127\.0\.0\.1:(\d+)",
                     "1883": r"MQTT\s+mqtt://127\.0\.0\.1:(\d+)",
                     "<device token>": r"'Claim Button 1' token (\S+)",
                     "<button secret>": r"button\s+'Claim Button 1' secret (\S+)",
                     # the demo passwords are fresh on every start
                     "<customer A password>": r"customerA@thingsboard\.org / (\S+)$"}),
}

ALL = [block for path in DOCS for block in extract(path)]


def rule_for(block: Block) -> Rule:
    matches = [rule for rule in RULES if rule.matches(block)]
    assert len(matches) == 1, (
        f"{block.name}: {len(matches)} rules match this python block; exactly one must "
        f"(add one to RULES):\n{block.text}")
    return matches[0]


def filled(block: Block) -> str:
    text = block.text
    for old, new, _ in rule_for(block).fills:
        assert old in text, f"{block.name}: {old!r} is no longer in the block"
        text = text.replace(old, new)
    return text


def _by_mode(mode: str) -> list[Block]:
    return [block for block in ALL if rule_for(block).mode == mode]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_every_python_block_has_one_rule() -> None:
    assert len(ALL) >= 15
    for block in ALL:
        rule = rule_for(block)
        assert rule.mode in ("script", "pytest") or rule.mode.startswith(
            ("snippet:", "server:", "no: ")), (block.name, rule.mode)
        if rule.mode.startswith("snippet:"):
            assert rule.mode.removeprefix("snippet:") in CONTEXTS, block.name
        if rule.mode.startswith("server:"):
            assert rule.mode.removeprefix("server:") in SERVERS, block.name
        filled(block)


def test_every_rule_is_used_and_every_reason_says_why() -> None:
    for rule in RULES:
        assert any(rule.matches(block) for block in ALL), f"unused rule {rule}"
        if rule.mode.startswith("no: "):
            reason = rule.mode.removeprefix("no: ")
            assert len(reason) > 40 and " " in reason, f"{rule}: give a substantive reason"
        for old, new, why in rule.fills:
            assert old != new and len(why) > 40, f"{rule}: say why {old!r} is replaced"
    for name, (_, fills) in SERVERS.items():
        assert fills, f"server {name} fills no placeholder"
    assert SERVERS, "the server rules need at least one server"


#: runs blocks one after the other in this process, each in a fresh namespace as ``__main__``
#: (top-level ``await`` allowed), and prints ``ok <name>`` or the traceback and ``FAILED <name>``
RUNNER = textwrap.dedent("""
    import ast, asyncio, inspect, json, sys, traceback
    failed = 0
    for item in json.load(sys.stdin):
        namespace = {"__name__": "__main__"}
        try:
            for filename, source in item["sources"]:
                code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                result = eval(code, namespace)
                if inspect.iscoroutine(result):
                    asyncio.run(result)
            print("ok", item["name"], flush=True)
        except BaseException:
            traceback.print_exc(file=sys.stdout)
            print("FAILED", item["name"], flush=True)
            failed += 1
    sys.exit(1 if failed else 0)
""")


def _run_blocks(items: list[tuple[str, list[tuple[str, str]]]], cwd: Path,
                timeout_s: float = 120) -> None:
    payload = json.dumps([{"name": name, "sources": sources} for name, sources in items])
    done = subprocess.run([sys.executable, "-c", RUNNER], input=payload, cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    output = done.stdout + done.stderr
    for name, _ in items:
        assert f"ok {name}" in done.stdout.splitlines(), f"{name} failed:\n{output[-4000:]}"
    assert done.returncode == 0, output[-4000:]


def _snippet_sources(block: Block) -> list[tuple[str, str]]:
    context = rule_for(block).mode.removeprefix("snippet:")
    return [(f"<context {context}>", textwrap.dedent(CONTEXTS[context])),
            (block.name, filled(block))]


#: the scripts and snippets, split in two groups that run at once on the two test workers
GROUPS = {
    "explore": [b for b in _by_mode("script") if b.doc == "explore.md"],
    "others": [b for b in ALL if b.doc != "explore.md" and (
        rule_for(b).mode == "script" or rule_for(b).mode.startswith("snippet:"))],
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_scripts_and_snippets_run(group: str, tmp_path: Path) -> None:
    blocks = GROUPS[group]
    assert blocks, f"no python block in group {group}"
    items = [(b.name, _snippet_sources(b) if rule_for(b).mode.startswith("snippet:")
              else [(b.name, filled(b))]) for b in blocks]
    _run_blocks(items, tmp_path)


def test_every_script_and_snippet_is_in_a_group() -> None:
    grouped = [b for blocks in GROUPS.values() for b in blocks]
    runnable = [b for b in ALL if rule_for(b).mode == "script"
                or rule_for(b).mode.startswith("snippet:")]
    assert sorted(b.name for b in grouped) == sorted(b.name for b in runnable)


def test_pytest_blocks_pass(tmp_path: Path) -> None:
    blocks = _by_mode("pytest")
    assert blocks
    files = []
    for block in blocks:
        path = tmp_path / f"test_{re.sub(r'[^a-z0-9]+', '_', block.name.lower())}.py"
        path.write_text(filled(block), encoding="utf-8")
        files.append(path.name)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "firmware_sim", "-p",
                           "no:cacheprovider", "-q", *files], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(rf"\b{len(blocks)} passed\b", done.stdout), done.stdout[-2000:]


SERVER_BLOCKS = [block for block in ALL if rule_for(block).mode.startswith("server:")]


def test_every_server_has_a_client() -> None:
    used = {rule_for(block).mode.removeprefix("server:") for block in SERVER_BLOCKS}
    assert used == set(SERVERS), f"servers no documented python block needs: {set(SERVERS) - used}"


@pytest.mark.parametrize("block", SERVER_BLOCKS, ids=[b.name for b in SERVER_BLOCKS])
def test_server_clients_run(block: Block, tmp_path: Path) -> None:
    """A block that talks to a server runs against a fresh one, its placeholders filled from
    what the server printed."""
    argv, fills = SERVERS[rule_for(block).mode.removeprefix("server:")]
    running = ReadyServer(["fwsim", *argv], tmp_path, _env())
    try:
        text = filled(block)
        for placeholder, pattern in fills.items():
            assert placeholder in text, f"{block.name}: no {placeholder!r} to fill"
            text = text.replace(placeholder, running.value(pattern))
        _run_blocks([(block.name, [(block.name, text)])], tmp_path, timeout_s=60)
    finally:
        assert running.stop() == 0, running.output[-5:]
