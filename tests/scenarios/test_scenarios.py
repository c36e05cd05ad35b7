"""The six claim-code scenarios: verdicts, and Device OS log texts in the right order."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim.scenarios import SCENARIOS, get_scenario

FULL_HANDSHAKE = [
    "[system] INFO: Cloud: connecting",
    "[system] INFO: Starting handshake: presense_announce=0",
    "[comm.protocol.handshake] INFO: Establish secure connection",
    "[comm.protocol.handshake] INFO: Sending HELLO message",
    "[comm.protocol.handshake] INFO: Handshake completed",
]
RESUME = [
    "[system] INFO: Cloud: connecting",
    "[comm.protocol.handshake] INFO: Establish secure connection",
    "[comm.dtls] INFO: restored session from persisted session data. next_msg_id=",
    "[comm.protocol.handshake] INFO: Skipping HELLO message",
    "[system] INFO: cloud connected from existing session.",
    "[system] INFO: Cloud connected",
]
CLAIM_DELIVERED = [
    "[system] INFO: Send spark/device/claim/code event for code ",
    "[system] INFO: Cloud connected",
    "[system] TRACE: Claim code received by the cloud and cleared locally.",
]


def assert_in_order(lines: list[str], expected: list[str], start: int = 0) -> int:
    """Each expected fragment appears in a later line than the previous one; returns the index
    after the last match."""
    index = start
    for fragment in expected:
        while index < len(lines) and fragment not in lines[index]:
            index += 1
        assert index < len(lines), f"{fragment!r} missing (in order) from:\n" + "\n".join(lines)
        index += 1
    return index


def test_the_catalog_has_the_six_scenarios() -> None:
    assert list(SCENARIOS) == ["fresh-claim", "resume-bug", "session-end-workaround",
                               "session-end-too-early", "clear-session", "fixed-firmware",
                               "product-customer-transfer"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes(name: str) -> None:
    result = get_scenario(name).run(seed=0)
    failed = [c.description for c in result.checks if not c.ok]
    assert result.passed, f"{name} failed: {failed}\n" + "\n".join(result.timeline)


def test_log_lines_have_device_os_form() -> None:
    result = get_scenario("fresh-claim").run(seed=0)
    for line in result.timeline:
        uptime, rest = line.split(" ", 1)
        assert len(uptime) == 10 and uptime.isdigit()
        assert rest.startswith("[") and "] " in rest
        level = rest.split("] ", 1)[1].split(":", 1)[0]
        assert level in ("TRACE", "INFO", "WARN", "ERROR")


def test_fresh_claim_timeline() -> None:
    lines = get_scenario("fresh-claim").run(seed=0).timeline
    index = assert_in_order(lines, FULL_HANDSHAKE)
    assert_in_order(lines, CLAIM_DELIVERED, index)
    sent = next(line for line in lines if "Send spark/device/claim/code" in line)
    code = sent.rsplit(" ", 1)[1]
    assert len(code) == 63


def test_resume_bug_timeline_never_sends_the_code() -> None:
    lines = get_scenario("resume-bug").run(seed=0).timeline
    index = assert_in_order(lines, FULL_HANDSHAKE)
    assert_in_order(lines, ["[system] INFO: Cloud: disconnecting",
                            "[system] INFO: Cloud: disconnected", *RESUME], index)
    assert not any("claim/code" in line for line in lines)


def test_session_end_workaround_timeline() -> None:
    lines = get_scenario("session-end-workaround").run(seed=0).timeline
    index = assert_in_order(lines, [*FULL_HANDSHAKE, *RESUME])
    index = assert_in_order(lines, ["[app] INFO: published spark/device/session/end: ok",
                                    "[comm.coap] WARN: Received RST message; discarding session",
                                    *FULL_HANDSHAKE, *CLAIM_DELIVERED], index)


def test_session_end_too_early_timeline() -> None:
    result = get_scenario("session-end-too-early").run(seed=0)
    lines = result.timeline
    assert_in_order(lines, ["[system] INFO: Cloud: connecting",
                            "[app] INFO: published spark/device/session/end: lost", *RESUME[1:]])
    lost = result.world.trace.find("publish.lost", name="spark/device/session/end")
    assert lost and lost[0].get("cloud_state") in ("socket_connecting", "handshaking")
    assert not result.cloud.cloud.bus.find("spark/device/session/end")


def test_clear_session_timeline() -> None:
    lines = get_scenario("clear-session").run(seed=0).timeline
    index = assert_in_order(lines, [*FULL_HANDSHAKE, *RESUME])
    assert_in_order(lines, ["[system] INFO: Cloud: disconnecting",
                            "[system] INFO: Clearing session data",
                            "[system] INFO: Cloud: disconnected", *FULL_HANDSHAKE,
                            *CLAIM_DELIVERED], index)


def test_fixed_firmware_sends_on_resume() -> None:
    lines = get_scenario("fixed-firmware").run(seed=0).timeline
    index = assert_in_order(lines, FULL_HANDSHAKE)
    assert_in_order(lines, [*RESUME[:5], *CLAIM_DELIVERED], index)


def test_same_seed_gives_a_byte_identical_trace(tmp_path: Path) -> None:
    for name in SCENARIOS:
        a, b = tmp_path / f"{name}-a.jsonl", tmp_path / f"{name}-b.jsonl"
        get_scenario(name).run(seed=1234, trace_path=a)
        get_scenario(name).run(seed=1234, trace_path=b)
        assert a.read_bytes() == b.read_bytes(), name
        assert a.stat().st_size > 1000


def test_other_seeds_still_reproduce_the_behaviour() -> None:
    for seed in (1, 2, 99):
        for name in SCENARIOS:
            assert get_scenario(name).run(seed=seed).passed, (name, seed)


# -- the stories as scenario files (fwsim scenario run --file NAME) ------------------------------

STORY_FILES = ["resume-bug", "session-end-too-early", "fixed-firmware"]


@pytest.mark.parametrize("name", STORY_FILES)
def test_the_story_files_reproduce_their_story(name: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    trace = tmp_path / f"{name}.jsonl"
    assert main(["scenario", "run", "--file", name, "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert f"PASS {name} (seed 0)" in out
    lines = [line for line in out.splitlines() if line[:10].isdigit()]
    # the same Device OS story as the Python scenario of the same name
    index = assert_in_order(lines, FULL_HANDSHAKE)
    if name == "fixed-firmware":
        assert_in_order(lines, [*RESUME[:5], *CLAIM_DELIVERED], index)
    else:
        assert_in_order(lines, RESUME, index)
        assert not any("claim/code" in line for line in lines)
    again = tmp_path / "again.jsonl"
    assert main(["scenario", "run", "--file", name, "--trace", str(again), "--quiet"]) == 0
    assert again.read_bytes() == trace.read_bytes()


def test_scenario_list_names_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    from firmware_sim.cli import main

    assert main(["scenario", "list", "--files"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()]
    assert sorted(names) == sorted([*STORY_FILES, "p2-provisioning", "p2-chaos",
                                    "tb-claiming", "tb-documented-flow", "tb-press-and-claim"])
