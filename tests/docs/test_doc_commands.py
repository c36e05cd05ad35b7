"""Every shell command in README.md and docs/*.md, run as written.

The commands are extracted from the fenced shell blocks (``sh``, ``bash``, ``shell``,
``console``) and from ``$ ``-prefixed lines of other blocks (the README's tour). Each one must
match exactly one rule of :data:`RULES`:

* ``run``: run as written (``bash -c``) in a scratch folder holding the repository's
  ``tests``/``transports`` folders (linked) and the files earlier commands of the same document
  wrote; it must exit 0;
* ``serve``: a server command: started as written, it must print its ``ready`` line; then it is
  stopped with Ctrl-C (SIGINT) and must exit 0;
* ``with:<server>``: a client command run against a server of :data:`SERVERS` started for it,
  the document's placeholders (``PORT``, ``<code>``, ...) filled from that server's output;
* ``no: <reason>``: not runnable here, with the reason (a toolchain or hardware this job has
  not, or a command another test runs: the install in tests/packaging, the interop tests).

A command no rule matches fails the test, so the docs cannot drift from the code.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.fences import fenced_blocks
from tests.processes import ReadyServer

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_INFOS = {"sh", "bash", "shell", "console"}


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def extract(path: Path) -> list[Command]:
    found: list[Command] = []
    for line, info, body in fenced_blocks(path):
        for text in "\n".join(body).replace("\\\n", " ").splitlines():
            text = text.strip()
            if info in SHELL_INFOS:
                text = text.removeprefix("$ ")
                if text and not text.startswith("#"):
                    found.append(Command(path.name, line, text))
            elif text.startswith("$ "):
                found.append(Command(path.name, line, text[2:]))
    return found


INTEROP = "a real client; its interop test runs it (tests/interop)"
RULES: list[tuple[str, str]] = [
    # the README's two quick-start commands are CI's own (.ci/run), the base install is
    # tests/packaging
    (r"^python3 -m venv \.venv && \. \.venv/bin/activate && pip install", "no: the install; "
     ".ci/run runs the README's, tests/packaging installs without extras"),
    (r"^pip install '\.\[thingsboard\]'", "no: an install (tests/packaging installs the package)"),
    (r"^\. \.venv/bin/activate && pytest$", "no: the test suite itself (.ci/run)"),
    (r"^\. \.venv/bin/activate$", "no: activates the venv this test already runs in"),
    (r"^ruff check \. && mypy", "no: lint and types, run by .ci/run"),
    (r"^python scripts/gen_proto\.py", "no: regenerates control_requests/_pb (needs the "
     "dev-proto extra; tests/unit/control_requests checks the generated code)"),
    (r"^python benchmarks/", "no: a benchmark script (figures in docs/performance.md)"),
    (r"^(particle|screen|minicom|dfu-util|emulator|printf) ", f"no: {INTEROP} or hardware"),
    (r"^(FWSIM_USB_BRIDGE=|PARTICLE_DISABLE_UPDATE=1 particle)", f"no: particle-cli, {INTEROP}"),
    (r"^export (FWSIM_USB_BRIDGE|NODE_OPTIONS|FWSIM_TTY|PARTICLE_DISABLE_UPDATE)",
     "no: environment for particle-cli (tests/interop/test_particle_cli_*.py)"),
    (r"^curl -X POST .*api/v1/<device token>/claim", "no: the device HTTP API; "
     "tests/interop/test_tb_clients.py and tests/thingsboard post the same request"),
    (r"^export FWSIM_ADMIN_TOKEN=\$\(python3", "run"),
    (r"^export FWSIM_TB_PASSWORD=<tenant password>", "no: sets the tenant administrator's "
     "printed password for the fwsim tb commands; the test passes the printed one to them in "
     "their environment (TB_PASSWORD)"),
    (r"^fwsim cloud serve .*&$", "no: backgrounded for the next command; "
     "tests/cloud/test_cli_cloud.py runs cloud serve + device run --scenario across processes"),
    (r"^fwsim device run --cloud coap://127\.0\.0\.1:5683 --api", "no: needs the cloud of the "
     "line before; tests/cloud/test_cli_cloud.py runs this pair"),
    (r"^fwsim serve --usb-bridge 0 --serial-link /tmp/fwsim/ttyACM0 &$", "no: backgrounded for "
     "particle-cli (tests/interop/test_serial_pty.py)"),
    (r"^fwsim serve --ble-hci android-netsim", "no: needs the Android emulator's netsim "
     "(docs/ble.md); tests/transports/ble covers the bumble host it uses"),
    (r"^fwsim (up|serve|cloud serve)\b", "serve"),
    (r"^fwsim usb start-listening \| stop-listening", "no: a synopsis of four commands; "
     "tests/transports/usb runs each over the bridge"),
    (r"^fwsim usb ", "with:usb"),
    (r"^fwsim ble (scan|provision) --hci tcp-client:127\.0\.0\.1:19001", "with:ble"),
    (r"^fwsim tb button --mqtt tb\.example\.com", "no: a real ThingsBoard's host; "
     "tests/thingsboard/test_tb_button_cli.py runs the button against fwsim up"),
    (r"^fwsim tb (press|why|button) ", "with:tb"),
    (r"^fwsim ctl ", "with:up"),
    (r"^fwsim (scenario|trace|explore|tb scenario|logdiff|control|ble provision --in-process)"
     r"\b", "run"),
]

#: servers for the ``with:`` commands: how to start one, which output fills which placeholder
UP_TOKEN = "d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5d0c5"
SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "up": (["up", "--timing", "fast", "--db", ":memory:", "--quiet", "--admin-token",
            UP_TOKEN], {"CODE": r"claim code\s+(\S{63})"}),
    "usb": (["serve", "--usb-bridge", "0", "--timing", "fast", "--quiet"],
            {"PORT": r"usb bridge: 127\.0\.0\.1:(\d+)", "CODE": r"claim code (\S+) for"}),
    "ble": (["serve", "--ble", "bumble:tcp-server:127.0.0.1:19001", "--ble-advertise", "always",
             "--secret",
             "ABCDEFGHJKLMNPQ", "--timing", "fast", "--quiet"],
            {"<mobile secret>": r"mobile secret (\w+)", "<code>": r"claim code (\S+) for",
             "CODE": r"claim code (\S+) for"}),
    "tb": (["up", "--cloud", "thingsboard", "--devices", "3"],
           {"TOKEN": r"'Claim Button 2' token (\S+)"}),
}
#: the tenant administrator's password a ThingsBoard server printed (fresh on every start),
#: which the docs export as FWSIM_TB_PASSWORD for the ``fwsim tb`` commands
TB_PASSWORD = r"tenant@thingsboard\.org / (\S+)$"


def rule_for(command: Command) -> str:
    matches = [mode for pattern, mode in RULES if re.search(pattern, command.text)]
    assert matches, f"no rule for the documented command {command}: add one to RULES"
    return matches[0]


ALL = [command for path in DOCS if path.name != "performance.md" for command in extract(path)]
PERFORMANCE = extract(REPO / "docs" / "performance.md")


def test_every_documented_command_has_a_rule() -> None:
    assert len(ALL) > 40
    unmatched = [str(c) for c in ALL + PERFORMANCE
                 if not any(re.search(p, c.text) for p, _ in RULES)]
    assert not unmatched, "documented commands without a rule:\n" + "\n".join(unmatched)


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    for name in ("tests", "transports"):
        (folder / name).symlink_to(REPO / name)
    # the README's own firmware example, `my_app.py:App`
    (folder / "my_app.py").write_text(
        "from firmware_sim import Firmware\n\n\nclass App(Firmware):\n"
        "    def setup(self, particle):\n        particle.log('my app is up')\n")
    # `real.log` in docs/logdiff.md is the reader's own device log: the thread's, here
    (folder / "real.log").write_bytes(
        (REPO / "tests/fidelity/data/thread-resume.log").read_bytes())
    subprocess.run([sys.executable, "-m", "firmware_sim.cli", "scenario", "run", "resume-bug",
                    "--quiet", "--trace", "run.jsonl"], cwd=folder, check=True, timeout=120,
                   capture_output=True)
    return folder


def _by_doc(mode: str) -> list[Command]:
    return [c for c in ALL if rule_for(c) == mode]


@pytest.mark.parametrize("doc", sorted({c.doc for c in _by_doc("run")}))
def test_runnable_commands_run_as_written(doc: str, scratch: Path) -> None:
    for command in [c for c in _by_doc("run") if c.doc == doc]:
        done = subprocess.run(["bash", "-c", command.text], cwd=scratch, env=_env(),
                              capture_output=True, text=True, timeout=180, check=False)
        # explore and logdiff answer with a verdict: 1 is "found a violation" / "the logs differ"
        allowed = (0, 1) if re.match(r"^fwsim (explore|logdiff)\b", command.text) else (0,)
        printed = done.stdout.strip() or not command.text.startswith("fwsim ")
        assert done.returncode in allowed and printed, (
            f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def start_server(argv: list[str] | str, cwd: Path) -> ReadyServer:
    """A documented server command, started as written. Its ports are the documented fixed
    ones, so a port another process still holds is waited for (a few retries)."""
    command = argv if isinstance(argv, str) else shlex.join(["fwsim", *argv])
    for attempt in range(4):
        try:
            return ReadyServer(command, cwd, _env())
        except AssertionError as exc:
            if "Address already in use" not in str(exc) or attempt == 3:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


#: the documented servers fall into two groups that share no fixed port: the clouds (``up``,
#: ``cloud serve``: HTTP 8080, CoAP 5683, MQTT 1883) with the SoftAP examples (8080/8081, 5609),
#: and the device-only ``serve`` commands (USB bridge, pty: free ports; BLE: 19001). Each group is
#: one test, so the two run on separate workers at once and no fixed port is used twice.
CLOUD_PORTS = re.compile(r"^fwsim (up|cloud serve)\b|--softap-(tcp|http) \d")


def _group(text: str) -> str:
    return "clouds" if CLOUD_PORTS.search(text) else "device"


SERVER_GROUPS = {"up": "clouds", "tb": "clouds", "usb": "device", "ble": "device"}


@pytest.mark.parametrize("group", ["clouds", "device"])
def test_servers_and_their_clients(group: str, scratch: Path) -> None:
    """The server commands of ``group`` start and stop cleanly, then each server of
    :data:`SERVERS` in that group is started and its client commands run against it."""
    _server_commands(group, scratch)
    for name in sorted(SERVERS):
        if SERVER_GROUPS[name] == group:
            _client_commands(name, scratch)


def test_every_server_has_a_port_group() -> None:
    assert set(SERVER_GROUPS) == set(SERVERS)
    for name, (argv, _) in SERVERS.items():
        assert _group(shlex.join(["fwsim", *argv])) == SERVER_GROUPS[name], name


def _server_commands(group: str, scratch: Path) -> None:
    seen = set()
    for command in _by_doc("serve"):
        text = re.sub(r"\s+#.*$", "", command.text)
        if text in seen or _group(text) != group:
            continue
        seen.add(text)
        server = start_server(text, scratch)
        assert server.stop() == 0, f"{command}: {server.output[-5:]}"


def _client_commands(name: str, scratch: Path) -> None:
    argv, fills = SERVERS[name]
    commands = _by_doc(f"with:{name}")
    assert commands, f"no documented command needs the {name} server any more"
    server = start_server(argv, scratch)
    try:
        for command in commands:
            text = re.sub(r"\s+#.*$", "", command.text)
            for placeholder, pattern in fills.items():
                text = text.replace(placeholder, server.value(pattern))
            env = dict(_env(), FWSIM_URL="http://127.0.0.1:8080", FWSIM_ADMIN_TOKEN=UP_TOKEN)
            if name == "tb":
                env["FWSIM_TB_PASSWORD"] = server.value(TB_PASSWORD)
            done = subprocess.run(["bash", "-c", text], cwd=scratch, env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, f"{command}\n{text}\n{done.stdout}\n{done.stderr}"
    finally:
        server.stop()


def test_every_not_runnable_command_says_why() -> None:
    for command in ALL + PERFORMANCE:
        mode = rule_for(command)
        assert mode in ("run", "serve") or mode.startswith(("with:", "no: ")), (command, mode)
        if mode.startswith("no: "):
            assert len(mode) > 20, f"{command}: give a reason"


def test_the_docs_stand_alone() -> None:
    """Users have the repository, not the team's reference sheets: no doc points at them, and
    every relative link of README.md and docs/ resolves."""
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for needle in ("shared/spec", "../shared", "/work/shared", "cloud.md", "device-os.md",
                       "real-clients.md"):
            assert needle not in text, f"{path.name} cites {needle}"
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"
