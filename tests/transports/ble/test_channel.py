"""The device's control channel over the virtual air: happy path, limits and every bad input.

Bad inputs of issue 7: wrong mobile secret; truncated or oversize handshake frames (size 0 or
> 512); a tampered tag; a replayed or out-of-order counter; a request before the handshake
completes; a frame larger than the 1024-byte inbound pool; writes before notifications are
enabled; a disconnect in the middle of a request. None may crash or hang the device: each ends
(at most) the connection, and the next connection provisions normally.
"""

from __future__ import annotations

import struct

from control_requests import requests
from control_requests.types import RequestType
from firmware_sim.kernel.errors import ResultCode
from transports.ble.framing import frame_handshake

from .conftest import SECRET, Rig, make_rig


def _still_provisionable(rig: Rig) -> None:
    """A fresh connection with the right secret handshakes and gets an answer."""
    rig.run(0.5)
    central = rig.central("next")
    assert central.open_session()
    assert central.request(RequestType.ECHO, b"ping") == (0, b"ping")
    central.disconnect()


def test_handshake_and_request_with_the_exact_trace_texts(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    call = requests.is_claimed()
    reply = central.request(call.request.type, call.request.payload)
    assert reply is not None and reply[0] == 0 and call.result(reply) is False
    assert rig.logs("[system.ctrl.ble] TRACE: Connected")
    assert rig.logs("[system.ctrl.ble] TRACE: Handshake done")
    assert rig.logs("[system.ctrl.ble] TRACE: Received a request message; type: 201, ID: 1")
    assert rig.prov_events() == ["connected", "handshake_done"]
    central.disconnect()
    rig.run(0.1)
    assert rig.prov_events()[-1] == "disconnected"


def test_notifications_start_at_20_bytes_and_grow_with_the_mtu(rig: Rig) -> None:
    central = rig.central()
    central.connect()
    central.subscribe()
    assert central.handshake()
    assert max(len(p) for p in central.packets) == 20  # ATT_MTU 23 - 3
    other = make_rig(1)
    big = other.central()
    big.connect()
    assert big.exchange_mtu(517) == 247
    big.subscribe()
    assert big.handshake()
    assert max(len(p) for p in big.packets) == 244
    # the device's round one and round two arrive as one stream: 2+330 then 2+168
    assert len(big.received) >= 2 + 330 + 2 + 168 + 2 + 32


def test_a_notification_may_carry_several_messages(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    for index in range(3):  # three requests written back to back
        assert central.channel is not None
        _, frame = central.channel.request(RequestType.ECHO, bytes([index]))
        central.write_stream(frame)
    rig.run(1.0)
    assert sorted(r[2] for r in central.replies) == [b"\x00", b"\x01", b"\x02"]


def test_writes_before_notifications_are_enabled_are_answered_after_subscribing(
        rig: Rig) -> None:
    central = rig.central()
    central.connect()
    central.exchange_mtu(247)
    assert not central.handshake()  # round one written, nothing notified yet
    assert central.packets == []
    assert rig.device.running and central.disconnected is None
    central.subscribe()
    rig.run(0.5)
    assert central.channel is not None and central.channel.state.value == "ready"


def test_wrong_mobile_secret(rig: Rig) -> None:
    central = rig.central()
    assert not central.open_session(secret="WRONGWRONGWRONG")
    rig.run(0.1)
    assert central.disconnected is not None
    assert rig.logs("[system.ctrl.ble] ERROR: Handshake failed")
    assert rig.logs(f"[system.ctrl.ble] ERROR: Channel error: {int(ResultCode.BAD_DATA)}")
    assert rig.prov_events()[:3] == ["connected", "handshake_failed", "disconnected"]
    _still_provisionable(rig)


def test_oversize_and_zero_size_handshake_frames(rig: Rig) -> None:
    for size in (0, 513, 0xFFFF):
        central = rig.central(f"size{size}")
        central.connect()
        central.subscribe()
        central.write_stream(struct.pack("<H", size) + bytes(10))
        rig.run(0.2)
        assert central.disconnected is not None, size
    assert len(rig.logs(f"Channel error: {int(ResultCode.TOO_LARGE)}")) == 3
    _still_provisionable(rig)


def test_truncated_handshake_frames(rig: Rig) -> None:
    # a frame that announces more than is ever sent: the device waits, the phone gives up
    central = rig.central("partial")
    central.connect()
    central.subscribe()
    central.write_stream(struct.pack("<H", 330) + bytes(100))
    rig.run(5.0)
    assert central.disconnected is None and rig.device.running
    central.disconnect()
    # a short frame that is complete but not a valid round one: EC-JPAKE rejects it
    short = rig.central("short")
    short.connect()
    short.subscribe()
    short.write_stream(frame_handshake(bytes(64)))
    rig.run(0.2)
    assert short.disconnected is not None
    assert rig.logs(f"Channel error: {int(ResultCode.UNKNOWN)}")
    _still_provisionable(rig)


def test_tampered_tag_ends_the_connection(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    assert central.channel is not None
    _, frame = central.channel.request(RequestType.ECHO, b"hello")
    tampered = frame[:-1] + bytes([frame[-1] ^ 0x01])
    central.write_stream(tampered)
    rig.run(0.5)
    assert central.disconnected is not None
    assert rig.logs(f"Channel error: {int(ResultCode.UNKNOWN)}")
    assert rig.world.trace.count("ble.request", node=rig.device.name) == 0
    _still_provisionable(rig)


def test_replayed_frame_ends_the_connection(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    assert central.channel is not None
    _, frame = central.channel.request(RequestType.ECHO, b"once")
    central.write_stream(frame)
    rig.run(0.3)
    assert [r[2] for r in central.replies] == [b"once"]
    central.write_stream(frame)  # same bytes, same counter
    rig.run(0.3)
    assert central.disconnected is not None
    assert rig.world.trace.count("ble.request", node=rig.device.name) == 1
    _still_provisionable(rig)


def test_out_of_order_counter_ends_the_connection(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    assert central.channel is not None
    _, first = central.channel.request(RequestType.ECHO, b"1")
    _, second = central.channel.request(RequestType.ECHO, b"2")
    central.write_stream(second + first)
    rig.run(0.5)
    assert central.disconnected is not None and central.replies == []
    _still_provisionable(rig)


def test_request_before_the_handshake_completes(rig: Rig) -> None:
    from transports.ble.channel_crypto import ChannelSession
    from transports.ble.ecjpake import EcJpakeRole

    central = rig.central()
    central.connect()
    central.subscribe()
    fake = ChannelSession(bytes(32), EcJpakeRole.CLIENT).seal_request(1, int(RequestType.ECHO),
                                                                       b"early")
    central.write_stream(fake)
    rig.run(0.5)
    assert central.disconnected is not None
    assert rig.logs("Handshake failed")
    assert rig.world.trace.count("ble.request", node=rig.device.name) == 0
    _still_provisionable(rig)


def test_a_burst_larger_than_the_pool_is_no_memory(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    assert central.channel is not None
    _, frame = central.channel.request(RequestType.ECHO, bytes(1200))
    central.write_stream(frame, response=False)  # 5 packets land before the loop runs
    rig.run(0.5)
    assert central.disconnected is not None
    assert rig.logs(f"Channel error: {int(ResultCode.NO_MEMORY)}")
    assert rig.world.trace.find("ble.pool_full", node=rig.device.name)
    _still_provisionable(rig)


def test_a_large_frame_paced_by_write_responses_gets_through(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    payload = bytes(range(256)) * 6  # 1536 bytes, more than the pool
    assert central.request(RequestType.ECHO, payload) == (0, payload)


def test_disconnect_in_the_middle_of_a_request_drops_the_late_reply() -> None:
    rig = make_rig()
    central = rig.central()
    assert central.open_session()
    call = requests.join_new_network("HomeNet", "home-pass-1")
    assert central.channel is not None
    _, frame = central.channel.request(call.request.type, call.request.payload)
    central.write_stream(frame)
    rig.run(0.2)  # the request is in the dispatcher; joining takes seconds
    central.disconnect()
    rig.run(10.0)
    dropped = rig.world.trace.find("ble.reply_dropped", node=rig.device.name)
    assert len(dropped) == 1 and dropped[0].fields["id"] == 1
    assert central.replies == []
    # the next connection starts clean: new handshake, counters from 1, request id 1 again
    again = rig.central("again")
    assert again.open_session()
    assert again.request(RequestType.ECHO, b"fresh") == (0, b"fresh")
    assert rig.logs("Received a request message; type: 1, ID: 1")


def test_reboot_drops_the_connection_and_the_device_advertises_again(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    rig.device.reset("user")
    rig.run(0.2)
    assert central.disconnected is not None
    rig.run(1.0)
    assert rig.device.running and rig.peripheral.advertising
    _still_provisionable(rig)


def test_reset_request_acts_after_its_reply_is_delivered(rig: Rig) -> None:
    central = rig.central()
    assert central.open_session()
    assert central.request(RequestType.RESET) == (0, b"")
    rig.run(2.0)
    assert rig.device.boot_count == 2
    assert central.disconnected is not None


def test_a_missing_mobile_secret_refuses_the_channel() -> None:
    rig = make_rig()
    rig.device.dct.write_field("device_secret", b"\xff" * 15)
    central = rig.central()
    central.connect()
    rig.run(0.2)
    assert central.disconnected is not None
    assert rig.logs(f"Channel error: {int(ResultCode.NOT_FOUND)}")


def test_runs_are_deterministic() -> None:
    def run(seed: int) -> list[str]:
        rig = make_rig(seed)
        central = rig.central()
        central.open_session()
        central.request(RequestType.ECHO, b"x")
        return [r.summary() for r in rig.world.trace.records]

    assert run(5) == run(5)
    assert SECRET  # the fixture secret is the device's
