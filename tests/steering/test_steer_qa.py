"""A QA run steering ``fwsim up`` with ``fwsim ctl`` (an app developer's view), its findings:

* an argument that is not text (a lone surrogate, bytes that are not UTF-8) was an internal error
  (exit 1): now one line, exit 2, nothing sent;
* a panicking device showed only ``state panic``: now why (the firmware's failure), the panic's
  code and name, when it resets itself, the boot count and the last reset reason;
* during a power cycle, other operations said "off (power-cycle it first)": now that a power
  cycle is in progress and when the device boots;
* the owner was an internal principal id: now the account's e-mail address;
* the cloud's name of the device was nowhere: the banner, ``ctl devices`` and ``ctl state`` show
  it, and a served ``fwsim up`` names the cloud device as fwsim does (``lamp``);
* a wrong token said the same as a missing one: now that the token given was refused.

The operations first on virtual time (Steering), then ``fwsim ctl`` as the QA ran it: a real
subprocess (its argv bytes as a shell passes them) against a real ``fwsim up``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from firmware_sim.system.app import Firmware, Particle
from firmware_sim.testbed import Testbed, TestbedSpec, provisioned
from firmware_sim.testbed.steering import Steering

from .test_steering import REPO, TOKEN, Running


class KeyErrorInSetup(Firmware):
    def setup(self, particle: Particle) -> None:
        raise KeyError("colour")


# -- on virtual time -----------------------------------------------------------------------------


@pytest.fixture
def panicking() -> Iterator[tuple[Testbed, Steering]]:
    bed = Testbed(TestbedSpec(seed=7, timing="fast", firmware_errors="panic", devices=(
        *provisioned("bad", firmware=KeyErrorInSetup), *provisioned("good"))))
    steering = Steering(bed)
    logging.disable(logging.ERROR)  # the firmware's traceback, logged once per boot loop
    try:
        bed.power_on()
        bed.run_for(3)
        yield bed, steering
    finally:
        logging.disable(logging.NOTSET)
        steering.close()
        bed.close()


def test_a_panicking_device_says_why_and_until_when(panicking: tuple[Testbed, Steering]
                                                    ) -> None:
    bed, steering = panicking
    state = steering.state("bad")
    assert state["state"] == "panic" and state["uptime_ms"] is None
    panic = state["panic"]
    assert panic["code"] == 1 and panic["name"] == "hard_fault" and panic["sos_s"] == 10.4
    assert panic["why"] == {"where": "setup()", "error": "KeyError: 'colour'"}
    # booted at ~0.05 s, panicked at once: 10.4 s of SOS from then, 3 s of which have passed
    assert 7.0 <= panic["resets_in_s"] <= 7.6, panic
    assert state["boot_count"] == 1 and state["last_reset_reason"] == "power_down"
    with pytest.raises(Exception, match=r"^device bad is panicking \(flashing SOS until it "
                       r"resets itself in 7\.\d s; reset or power-cycle"):
        steering.listening("bad", True)
    bed.run_for(10)  # it reset itself, booted, and panicked again
    again = steering.state("bad")
    assert again["boot_count"] == 2 and again["last_reset_reason"] == "panic"
    assert again["panic"]["resets_in_s"] > panic["resets_in_s"]
    running = steering.state("good")
    assert running["panic"] is None and running["boots_in_s"] is None
    assert running["boot_count"] == 1 and running["last_reset_reason"] == "power_down"


def test_an_off_device_says_a_power_cycle_or_reset_is_under_way(
        panicking: tuple[Testbed, Steering]) -> None:
    bed, steering = panicking
    steering.power_cycle("good", off_s=5)
    bed.run_for(1)
    assert steering.state("good")["boots_in_s"] == 4.0
    for operation in (lambda: steering.reset("good"), lambda: steering.listening("good", True),
                      lambda: steering.network("good", False)):
        with pytest.raises(Exception, match=r"^device good is off: a power cycle is in "
                           r"progress; it boots in 4 s$"):
            operation()
    bed.run_for(4.5)
    assert steering.state("good")["boots_in_s"] is None and steering.state("good")["state"] \
        != "off"
    bed.run_for(5)
    steering.reset("good")
    bed.run_for(0.01)
    assert steering.state("good")["state"] == "off"
    with pytest.raises(Exception, match=r"^device good is off: a reset is in progress; it "
                       r"boots in \d"):
        steering.listening("good", True)


# -- fwsim ctl as the QA ran it --------------------------------------------------------------------


LAMP = """
from firmware_sim import Firmware


class Lamp(Firmware):
    def setup(self, particle):
        self.level = 0
        particle.function("brightness", self.brightness)
        particle.variable("level", lambda: self.level, "int")

    def brightness(self, argument):
        self.level = len(argument)
        return self.level
"""
BAD_SETUP = """
from firmware_sim import Firmware


class BadSetup(Firmware):
    def setup(self, particle):
        raise ValueError("setup always fails")
"""


def fwsim_ctl(url: str, *argv: str | bytes, token: str | bytes | None = TOKEN
              ) -> subprocess.CompletedProcess[str]:
    """``fwsim ctl`` in its own process, its arguments given as bytes where a shell would."""
    options: list[str | bytes] = ["--url", url]
    if token is not None:
        options += ["--token", token]
    env = {key: value for key, value in os.environ.items()
           if key not in ("FWSIM_URL", "FWSIM_ADMIN_TOKEN")}
    return subprocess.run([sys.executable, "-m", "firmware_sim.cli", "ctl", *options, *argv],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env)


def one_line(done: subprocess.CompletedProcess[str], text: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.strip() == f"fwsim: error: {text}", done.stderr
    assert done.stdout == ""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("qa-steer")
    (folder / "lamp.py").write_text(LAMP)
    (folder / "badsetup.py").write_text(BAD_SETUP)
    server = Running(["up", "--http", "0", "--coap", "0", "--db", ":memory:", "--timing",
                      "fast", "--for", "180", "--admin-token", TOKEN,
                      "--device", f"lamp:p2:{folder / 'lamp.py'}",
                      "--device", f"bad:p2:{folder / 'badsetup.py'}",
                      "--device", "plain:photon2"], "ready;")
    try:
        server.wait_for(r"^lamp .*Cloud connected", 20)
        server.wait_for(r"^plain .*Cloud connected", 20)
        yield server
    finally:
        server.stop()


def test_arguments_that_are_not_text_are_one_line_exit_2(up: Running) -> None:
    url = up.value(r"REST API\s+(http://\S+)")
    # $'\udc80' in bash: the UTF-8 bytes of a surrogate, which Python keeps as lone surrogates
    surrogate = "\udc80".encode("utf-8", "surrogatepass")
    one_line(fwsim_ctl(url, "state", surrogate), "device is not valid text: b'\\xed\\xb2\\x80' "
             "(bytes that are not UTF-8, or a lone surrogate)")
    one_line(fwsim_ctl(url, "state", b"bad\xff"), "device is not valid text: b'bad\\xff' "
             "(bytes that are not UTF-8, or a lone surrogate)")
    one_line(fwsim_ctl(url, "call", "lamp", surrogate, "x"), "function is not valid text: "
             "b'\\xed\\xb2\\x80' (bytes that are not UTF-8, or a lone surrogate)")
    one_line(fwsim_ctl(url, "call", "lamp", "brightness", b"\xff"),
             "argument is not valid text: b'\\xff' (bytes that are not UTF-8, or a lone "
             "surrogate)")
    one_line(fwsim_ctl(url, "set-claim-code", "lamp", b"\xc3"), "claim code is not valid "
             "text: b'\\xc3' (bytes that are not UTF-8, or a lone surrogate)")
    one_line(fwsim_ctl(url, "devices", token=b"\xff"), "--token is not valid text: b'\\xff' "
             "(bytes that are not UTF-8, or a lone surrogate)")
    one_line(fwsim_ctl(url, "devices", token="t\u00e9"),
             "--token must be printable ASCII (the admin token printed by `fwsim up`)")


def test_a_wrong_token_is_told_apart_from_a_missing_one(up: Running) -> None:
    url = up.value(r"REST API\s+(http://\S+)")
    one_line(fwsim_ctl(url, "devices", token="wrong"), "401: the admin token given was "
             "refused: the server wants its admin token, the one `fwsim up` printed (--token "
             "or FWSIM_ADMIN_TOKEN)")
    one_line(fwsim_ctl(url, "devices", token=None), "the server wants its admin token: --token "
             "or FWSIM_ADMIN_TOKEN (printed by `fwsim up`); none was given")


def test_cloud_names_owner_names_and_a_panic_in_ctl(up: Running) -> None:
    url = up.value(r"REST API\s+(http://\S+)")
    lamp_id = up.value(r"device lamp\s+([0-9a-f]{24})")
    # the banner names each device in the cloud as fwsim does
    assert ", cloud name lamp, cloud link coap://" in up.wait_for(r"device lamp ", 1)
    assert ", cloud name plain, " in up.wait_for(r"device plain ", 1)
    token = up.value(r"access token\s+([0-9a-f]{40})")
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as api:
        assert api.post("/v1/devices", data={"id": lamp_id}).json()["ok"] is True
        assert api.get("/v1/devices/lamp").json()["id"] == lamp_id  # found by its name
    devices = fwsim_ctl(url, "devices")
    assert devices.returncode == 0, devices.stderr
    header, *rows = devices.stdout.splitlines()
    assert header.split()[:6] == ["name", "id", "profile", "state", "cloud", "name"]
    lamp_row = next(row for row in rows if row.startswith("lamp "))
    assert lamp_row.split()[4] == "lamp" and lamp_row.endswith(" developer@fwsim.local")
    assert "user:" not in devices.stdout
    state = json.loads(fwsim_ctl(url, "state", "lamp", "--json").stdout)
    assert state["owner_name"] == "developer@fwsim.local" and state["cloud_name"] == "lamp"
    assert state["owner"].startswith("user:")  # the principal stays, for scripts
    text = fwsim_ctl(url, "state", "lamp").stdout
    assert "\nowner               developer@fwsim.local\n" in text, text
    assert "\ncloud name          lamp\n" in text, text

    # the panicking device: why, the panic, when it resets, the boots
    bad = json.loads(fwsim_ctl(url, "state", "bad", "--json").stdout)
    assert bad["state"] == "panic" and bad["panic"]["name"] == "hard_fault"
    assert bad["panic"]["why"] == {"where": "setup()",
                                   "error": "ValueError: setup always fails"}
    assert 0 <= bad["panic"]["resets_in_s"] <= 10.4 and bad["boot_count"] >= 1
    assert bad["last_reset_reason"] in ("power_down", "panic")
    human = fwsim_ctl(url, "state", "bad").stdout
    assert "\npanic               hard_fault (code 1): setup() raised ValueError: setup always " \
        "fails; resets itself in " in human, human
    assert "\nboot count          " in human and "\nlast reset reason   " in human


def test_operations_during_a_power_cycle_say_so(up: Running) -> None:
    url = up.value(r"REST API\s+(http://\S+)")
    cycle = fwsim_ctl(url, "power-cycle", "plain", "--off", "20")
    assert cycle.stdout.strip() == "plain: power cut for 20.0 s", cycle.stderr
    for argv in (("reset", "plain"), ("listening", "plain", "on")):
        done = fwsim_ctl(url, *argv)
        assert done.returncode == 2 and done.stderr.startswith(
            "fwsim: error: 409: device plain is off: a power cycle is in progress; it boots "
            "in "), done.stderr
        assert done.stderr.rstrip().endswith(" s") and len(done.stderr.splitlines()) == 1
    assert "\nboots in s          " in fwsim_ctl(url, "state", "plain").stdout
