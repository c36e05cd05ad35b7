"""The dashboard's view models and diagram adapters, without a server: rows, masks, the DCT dump,
the "why" reasons, log and event lines, the last flow."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_requests import RequestType
from firmware_sim.dashboard import views
from firmware_sim.dashboard.flow import MAX_ROWS, button_diagram, device_diagram, particle_flow
from firmware_sim.kernel.trace import TraceRecord

DEVICE_ID = "e00fce68aabbccddeeff0011"


def state(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "dev1", "device_id": DEVICE_ID, "profile": "p2", "firmware": "default",
        "state": "connected", "sessions": {"full": 1, "resumed": 2}, "last_session": "resumed",
        "claim_code_pending": True, "claim_code": "C" * 63, "claimed_flag": False}
    base.update(overrides)
    return base


def rec(seq: int, node: str, layer: str, kind: str, t_s: float = 1.0,
        **fields: Any) -> TraceRecord:
    return TraceRecord(round(t_s * 1e6), seq, node, layer, kind, fields)


# -- rows ----------------------------------------------------------------------------------------


def test_the_resume_bug_reads_resumed_claim_code_pending() -> None:
    row = views.particle_row(state(), owner=None, product=None)
    assert row.summary == "resumed, claim code pending"
    assert row.session == "resumed (1 full, 2 resumed)"
    data = row.to_json()
    assert data["claim"] == "\u2022" * 8 + " (63 chars)"
    assert "C" * 63 not in repr(data), "a row never carries the claim code itself"
    assert data["owner_text"] == "\u2014" and data["claimed_text"] == "no"


@pytest.mark.parametrize(("overrides", "summary", "session"), [
    ({"state": "off", "sessions": {"full": 0, "resumed": 0}, "last_session": None,
      "claim_code_pending": False, "claim_code": None}, "off", "\u2014"),
    ({"state": "listening", "claim_code_pending": False, "claim_code": None}, "listening",
     "resumed (1 full, 2 resumed)"),
    ({"last_session": "full", "claim_code_pending": False, "claim_code": None}, "full",
     "full (1 full, 2 resumed)"),
    ({"state": "handshake"}, "handshake, claim code pending", "resumed (1 full, 2 resumed)"),
])
def test_rows_say_where_the_device_is(overrides: dict[str, Any], summary: str,
                                      session: str) -> None:
    row = views.particle_row(state(**overrides), owner="a@example.com", product="42 (acme)")
    assert row.summary == summary and row.session == session
    assert row.to_json()["owner_text"] == "a@example.com"
    assert row.to_json()["product_text"] == "42 (acme)"


def test_a_button_row_masks_its_secret_and_says_whether_the_cloud_holds_it() -> None:
    row = views.DeviceRow("Claim Button 1", "uuid", "esp32-claim-button", "claim button (mqtt)",
                          "connected", None, 0, 0, True, 12, False, None, None,
                          cloud="thingsboard", kind="button")
    assert row.summary == "connected, claim secret pending" and row.session == "\u2014"
    assert row.claim == views.mask(12)
    stale = views.DeviceRow(**{**row.__dict__, "claim_pending": False})
    assert stale.claim == f"{views.mask(12)}, not registered"
    unknown = views.DeviceRow(**{**row.__dict__, "claim_pending": None})
    assert unknown.claim == "unknown" and views.yes_no(None) == "unknown"


@given(st.integers(min_value=0, max_value=200))
def test_a_mask_shows_the_length_only(length: int) -> None:
    shown = views.mask(length)
    assert "x" not in shown
    assert shown == "(empty)" if length == 0 else shown.endswith(f"({length} chars)")


# -- the DCT -------------------------------------------------------------------------------------


def test_the_dct_dump_shows_offsets_hex_and_ascii() -> None:
    raw = b"ABC\x00" + b"\xff" * 59
    lines = views.dct_dump(raw, views.CLAIM_CODE_FIELD.offset)
    assert views.CLAIM_CODE_FIELD.offset == 1762 and len(lines) == 4
    assert lines[0].offset == "0x06e2" and lines[1].offset == "0x06f2"
    assert lines[0].hex.startswith("41 42 43 00 ff") and lines[0].ascii.startswith("ABC..")
    assert len(lines[-1].hex.split()) == 63 - 48
    assert views.claimed_byte_text(0x31) == "0x31 ('1': claimed)"
    assert views.claimed_byte_text(0x01) == "0x01 (not claimed)"


@given(st.binary(max_size=100), st.integers(min_value=0, max_value=4096))
def test_the_dct_dump_keeps_every_byte(raw: bytes, offset: int) -> None:
    lines = views.dct_dump(raw, offset)
    assert bytes.fromhex("".join(line.hex.replace(" ", "") for line in lines)) == raw
    assert all(len(line.ascii) == len(line.hex.split()) for line in lines)


# -- why -----------------------------------------------------------------------------------------


def test_particle_reasons_explain_refusals_the_stuck_code_and_the_claim() -> None:
    claim = int(RequestType.SET_CLAIM_CODE)
    records = [
        rec(1, "dev1", "control", "control.done", type=claim, result=-160),
        rec(2, "dev1", "cloud", "handshake.resumed", 1.5, claim_code_pending=True),
        rec(2, "dev1", "cloud", "handshake.resumed", 2.0, claim_code_pending=True),
        rec(3, "cloud", "endpoint", "claim.redeem", 3.0, device_id=DEVICE_ID,
            outcome="expired", previous_owner=None, new_owner=None),
        rec(4, "cloud", "cloud", "claim.api", 4.0, device_id=DEVICE_ID, caller="user:b",
            outcome="belongs_to_someone_else"),
        rec(5, "dev1", "cloud", "handshake.full", 5.0, claim_code_pending=True),
        rec(6, "cloud", "endpoint", "claim.redeem", 6.0, device_id=DEVICE_ID,
            outcome="claimed", previous_owner=None, new_owner="user:b"),
        rec(7, "cloud", "endpoint", "claim.redeem", 6.0, device_id="e00f" + "0" * 20,
            outcome="claimed", previous_owner=None, new_owner="user:x"),  # another device
        rec(8, "dev1", "cloud", "handshake.resumed", 7.0, claim_code_pending=False),
        rec(9, "dev1", "events", "publish.lost", 8.0, name="spark/device/claim/code",
            reason="handshake in progress"),
    ]
    reasons = views.particle_reasons(records, name="dev1", device_id=DEVICE_ID,
                                     owners={"user:b": "b@example.com"})
    assert [(r.level, r.t) for r in reasons] == [
        ("failed", 1.0), ("pending", 2.0), ("refused", 3.0), ("refused", 4.0), ("ok", 5.0),
        ("ok", 6.0), ("failed", 8.0)]
    assert "result -160" in reasons[0].detail
    assert reasons[1].detail.startswith("2 resumed sessions without sending it")
    assert "only after a full handshake" in reasons[1].detail
    assert "time to live" in reasons[2].detail and reasons[2].title.endswith("expired")
    assert reasons[3].detail.startswith("b@example.com: the device is owned by someone else")
    assert reasons[5].detail == "owner (none) -> b@example.com"
    assert reasons[6].detail == "handshake in progress"


def test_thingsboard_reasons_come_from_the_claim_history_in_world_seconds() -> None:
    history = [
        {"ts": 1_000_500, "action": "register", "outcome": "saved", "reason": "registered",
         "message": "claim data cached"},
        {"ts": 1_002_000, "action": "claim", "outcome": "FAILURE", "reason": "secret_mismatch",
         "message": "the secret key does not match"},
        {"ts": 1_003_000, "action": "register", "outcome": "rejected",
         "reason": "malformed_payload", "message": "not JSON"},
    ]
    reasons = views.thingsboard_reasons(history, epoch_ms=1_000_000)
    assert [(r.level, r.t) for r in reasons] == [("ok", 0.5), ("refused", 2.0),
                                                  ("failed", 3.0)]
    assert reasons[1].title == "claim: FAILURE (secret_mismatch)"


# -- log and events ------------------------------------------------------------------------------


def test_log_lines_are_device_os_lines_and_button_secrets_are_masked() -> None:
    line = views.log_entry(rec(5, "dev1", "log", "log", uptime_ms=33624, level="INFO",
                               category="comm.protocol.handshake",
                               message="Skipping HELLO message"))
    assert line == {"seq": 5, "level": "info", "text": "0000033624 [comm.protocol.handshake] "
                    "INFO: Skipping HELLO message"}
    button = views.button_log_entry(rec(6, "Claim-Button-1", "button", "claim.secret", 2.5,
                                        trigger="button", secret="s3cretS3cret"))
    assert "s3cretS3cret" not in button["text"] and views.mask(12) in button["text"]
    assert button["text"].startswith("world     2.500s [button] claim.secret trigger=button")


def test_event_data_masks_the_claim_code_and_cuts_long_data() -> None:
    assert views.event_data("spark/device/claim/code", "C" * 63) == views.mask(63)
    assert views.event_data("spark/status", "online") == "online"
    long = views.event_data("x", "y" * 500)
    assert len(long) == 200 and long.endswith("\u2026")


# -- the last flow -------------------------------------------------------------------------------


def _thread() -> list[TraceRecord]:
    claim = int(RequestType.SET_CLAIM_CODE)
    return [
        rec(1, "dev1", "system", "device.boot", 0.1, device_id=DEVICE_ID, profile="p2"),
        rec(2, "cloud", "endpoint", "handshake.full", 3.0, device_id=DEVICE_ID),
        rec(3, "operator", "operator", "operator.set_claim_code", 10.0, device="dev1"),
        rec(4, "dev1", "control", "control.request", 10.0, channel="steering", type=claim,
            size=65),
        rec(5, "dev1", "control", "control.done", 10.01, channel="steering", type=claim,
            result=0, reply_size=0),
        rec(6, "cloud", "endpoint", "session.resumed", 12.0, device_id=DEVICE_ID),
        rec(7, "cloud", "http", "http.request", 13.0, method="GET",
            path=f"/v1/devices/{DEVICE_ID}", status=200),
        rec(8, "operator", "operator", "operator.cloud_forget_session", 14.0, device="dev1"),
        rec(9, "cloud", "endpoint", "session.unknown", 15.0, session_id=b"\x01", reply="rst"),
        rec(10, "cloud", "endpoint", "handshake.full", 15.5, device_id=DEVICE_ID),
        rec(11, "cloud", "endpoint", "claim.redeem", 17.0, device_id=DEVICE_ID,
            outcome="claimed", previous_owner=None, new_owner="user:b"),
    ]


def test_the_last_flow_starts_at_the_claim_code_and_speaks_the_diagrams_vocabulary() -> None:
    flow = particle_flow(_thread(), "dev1")
    assert [r.seq for r in flow] == [1, 4, 5, 6, 7, 8, 9, 10, 11]  # boot kept first
    assert (flow[1].node, flow[1].kind) == ("phone", "phone.step")
    assert flow[1].fields == {"step": "SET_CLAIM_CODE over steering"}
    assert flow[2].fields == {"step": "SET_CLAIM_CODE", "result": "0 (NONE)"}
    assert (flow[4].node, flow[4].kind) == ("customer", "api.call")
    diagram = device_diagram(_thread(), "dev1")
    assert [lane.kind for lane in diagram.lanes] == ["phone", "operator", "customer", "device",
                                                      "cloud"]
    texts = [row.text for row in diagram.rows]
    assert "SET_CLAIM_CODE over steering" in texts and "RST (unknown session)" in texts
    assert "HELLO (full handshake)" in texts
    assert any(t.startswith("claim code redeemed: claimed -> owner user:b") for t in texts)


def test_without_a_claim_code_the_flow_starts_at_the_last_boot_and_is_bounded() -> None:
    records = [rec(i, "dev1", "log", "log", i / 10, uptime_ms=i, level="INFO", category="x",
                   message=f"line {i}") for i in range(1, 300)]
    records.insert(150, rec(1000, "dev1", "system", "device.boot", 15.0,
                            device_id=DEVICE_ID, profile="p2"))
    flow = particle_flow(records, "dev1")
    assert flow[0].seq == 1000 and len(flow) == 150
    assert len(device_diagram(records, "dev1").rows) == MAX_ROWS


def test_a_button_flow_shows_press_claim_info_and_the_customer() -> None:
    records = [
        rec(1, "Claim-Button-1", "button", "device.boot", 0.5, uplink="mqtt"),
        rec(2, "Claim-Button-1", "button", "button.pressed", 5.0),
        rec(3, "Claim-Button-1", "button", "claim.secret", 5.0, secret="abc", duration_ms=30000),
        rec(4, "Claim-Button-1", "button", "claim.sent", 5.0, uplink="mqtt", size=40),
        rec(5, "thingsboard", "tb", "tb.claim.register", 5.1, device="Claim Button 1",
            outcome="not_saved", reason="kept_first_secret"),
        rec(6, "Claim-Button-1", "button", "claim.acked", 5.2, detail="PUBACK reason 0"),
        rec(7, "thingsboard", "tb", "tb.claim.customer", 6.0, device="Claim Button 1",
            user="customerB@thingsboard.org", response="FAILURE", reason="secret_mismatch"),
    ]
    diagram = button_diagram(records, "Claim Button 1", "Claim-Button-1", "thingsboard")
    assert [lane.id for lane in diagram.lanes] == ["person", "Claim-Button-1", "thingsboard",
                                                   "customer"]
    assert diagram.rows[0].seq == 2, "the flow starts at the last press"
    styles = {row.text: row.style for row in diagram.rows}
    assert styles["claim info not_saved (kept_first_secret)"] == "alert"
    assert styles["FAILURE (secret_mismatch)"] == "alert"
    assert "abc" not in " ".join(row.text for row in diagram.rows)
