"""The device's USB control-request service, transfer by transfer (device-os.md §4)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.kernel import World
from transports.usb.protocol import (
    ServiceReply,
    ServiceStatus,
    SetupPacket,
    check_request,
    init_request,
    recv_request,
    reset_request,
    send_request,
)
from transports.usb.service import RequestState, UsbControlService, UsbServiceFaults
from transports.usb.transfer import TransferResult, TransferStatus

from .conftest import FakeDispatcher, FakeRequest

OK, PENDING, BUSY, NO_MEMORY, NOT_FOUND = (ServiceStatus.OK, ServiceStatus.PENDING,
                                           ServiceStatus.BUSY, ServiceStatus.NO_MEMORY,
                                           ServiceStatus.NOT_FOUND)


class Rig:
    def __init__(self) -> None:
        self.world = World(0)
        self.dispatcher = FakeDispatcher()
        self.started: list[int] = []
        self.service = UsbControlService(
            dispatcher=lambda: self.dispatcher, scheduler=self.world.scheduler,
            tracer=self.world.trace.bind("dev", "usb"), on_init=self.started.append,
            faults=UsbServiceFaults())

    def transfer(self, setup: SetupPacket, data: bytes = b"") -> TransferResult:
        return self.service.handle(setup, data)

    def reply(self, setup: SetupPacket) -> ServiceReply:
        result = self.transfer(setup)
        assert result.ok, result
        return ServiceReply.decode(result.data)

    def init(self, request_type: int, size: int = 0) -> ServiceReply:
        return self.reply(init_request(request_type, size))

    def last(self) -> FakeRequest:
        return self.dispatcher.requests[-1]

    def stalls(self) -> int:
        return self.world.trace.count("usb.stall")


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_request_without_payload(rig: Rig) -> None:
    assert rig.init(201) == ServiceReply(OK, id=1)
    assert rig.last().type == 201 and rig.last().channel == "usb" and rig.started == [201]
    assert rig.reply(check_request(1)) == ServiceReply(PENDING)
    rig.last().complete(0, b"\x08\x01")
    assert rig.reply(check_request(1)) == ServiceReply(OK, size=2, result=0)
    assert rig.reply(check_request(1)) == ServiceReply(OK, size=2, result=0)  # repeatable
    assert rig.transfer(recv_request(1, 2)) == TransferResult.completed(b"\x08\x01")
    assert rig.last().delivered == 1 and rig.service.active_count == 0
    assert rig.reply(check_request(1)) == ServiceReply(NOT_FOUND)


def test_reply_in_chunks_and_recv_past_the_reply(rig: Rig) -> None:
    rig.init(1)
    rig.last().complete(0, bytes(range(100)))
    assert rig.transfer(recv_request(1, 0)).status is TransferStatus.STALL  # 0 bytes
    assert rig.transfer(recv_request(1, 101)).status is TransferStatus.STALL  # past the end
    assert rig.transfer(recv_request(1, 60)).data == bytes(range(60))
    assert rig.transfer(recv_request(1, 41)).status is TransferStatus.STALL  # 60+41 > 100
    assert rig.transfer(recv_request(1, 40)).data == bytes(range(60, 100))
    assert rig.service.active_count == 0 and rig.last().delivered == 1
    assert rig.transfer(recv_request(1, 1)).status is TransferStatus.STALL  # finished


def test_empty_reply_finishes_with_the_check(rig: Rig) -> None:
    rig.init(200, 0)
    rig.last().complete(-270, b"")
    assert rig.reply(check_request(1)) == ServiceReply(OK, result=-270)
    assert rig.service.active_count == 0 and rig.last().delivered == 1


@pytest.mark.parametrize("size", [1, 63, 64])
def test_pooled_payload(rig: Rig, size: int) -> None:
    assert rig.init(1, size) == ServiceReply(OK, id=1)
    assert rig.service.state_of(1) is RequestState.RECV_PAYLOAD
    assert rig.reply(check_request(1)) == ServiceReply(OK)  # ready for SEND
    payload = bytes(range(size))
    assert rig.transfer(send_request(1, size), payload).ok
    assert rig.last().payload == payload and rig.started == []


@pytest.mark.parametrize("size", [65, 4097, 65535])
def test_large_payload_is_allocated_asynchronously(rig: Rig, size: int) -> None:
    assert rig.init(1, size) == ServiceReply(PENDING, id=1)
    assert rig.reply(check_request(1)) == ServiceReply(PENDING)
    assert rig.transfer(send_request(1, 1), b"x").status is TransferStatus.STALL  # not yet
    rig.world.run_for(0.01)
    assert rig.reply(check_request(1)) == ServiceReply(OK)
    payload = bytes(i % 251 for i in range(size))
    for offset in range(0, size, 4096):
        chunk = payload[offset:offset + 4096]
        assert rig.transfer(send_request(1, len(chunk)), chunk).ok
    assert rig.last().payload == payload
    assert rig.service.state_of(1) is RequestState.PENDING


def test_send_beyond_the_announced_size_stalls_and_corrupts_nothing(rig: Rig) -> None:
    rig.init(1, 10)
    assert rig.transfer(send_request(1, 11), bytes(11)).status is TransferStatus.STALL
    assert rig.transfer(send_request(1, 6), b"abcdef").ok
    assert rig.transfer(send_request(1, 5), b"ghijk").status is TransferStatus.STALL  # 6+5>10
    assert rig.transfer(send_request(1, 4), b"ghij").ok
    assert rig.last().payload == b"abcdefghij"
    assert rig.transfer(send_request(1, 1), b"z").status is TransferStatus.STALL  # wrong state
    assert rig.transfer(send_request(1, 3), b"ab").status is TransferStatus.STALL  # short stage


def test_fifth_concurrent_request_is_busy(rig: Rig) -> None:
    ids = [rig.init(1).id for _ in range(4)]
    assert ids == [1, 2, 3, 4]
    assert rig.init(1) == ServiceReply(BUSY)  # no id
    assert rig.world.trace.count("usb.busy") == 1
    rig.dispatcher.requests[0].complete(0, b"")
    rig.reply(check_request(1))  # finishes request 1
    assert rig.init(1) == ServiceReply(OK, id=5)


def test_request_ids_are_a_16_bit_counter_that_wraps_to_zero(rig: Rig) -> None:
    rig.service.last_request_id = 0xFFFE
    assert rig.init(1).id == 0xFFFF
    assert rig.init(1).id == 0  # ++lastReqId_ on a uint16_t; Device OS does not skip 0
    assert rig.init(1).id == 1
    assert rig.reply(check_request(0)) == ServiceReply(PENDING)


def test_unknown_ids(rig: Rig) -> None:
    assert rig.reply(check_request(42)) == ServiceReply(NOT_FOUND)
    assert rig.reply(reset_request(42)) == ServiceReply(NOT_FOUND)
    assert rig.transfer(send_request(42, 1), b"x").status is TransferStatus.STALL
    assert rig.transfer(recv_request(42, 1)).status is TransferStatus.STALL
    assert rig.stalls() == 2


def test_recv_before_the_reply_is_ready_stalls(rig: Rig) -> None:
    rig.init(1)
    assert rig.transfer(recv_request(1, 1)).status is TransferStatus.STALL


def test_reset_one_request_cancels_its_handler(rig: Rig) -> None:
    rig.init(1)
    rig.init(2)
    assert rig.reply(reset_request(1)) == ServiceReply(OK)
    first, second = rig.dispatcher.requests
    assert first.cancelled and not second.cancelled
    assert rig.reply(check_request(1)) == ServiceReply(NOT_FOUND)
    assert rig.reply(check_request(2)) == ServiceReply(PENDING)


def test_reset_zero_cancels_everything_in_every_state(rig: Rig) -> None:
    rig.init(1)  # PENDING (handler running)
    rig.init(2, 10)  # RECV_PAYLOAD
    rig.init(3, 100)  # ALLOC_PENDING
    rig.init(4)
    rig.dispatcher.requests[1].complete(0, b"reply")  # request 4 -> DONE
    assert rig.reply(reset_request(0)) == ServiceReply(OK)
    assert rig.service.active_count == 0
    running, done = rig.dispatcher.requests
    assert running.cancelled  # its completion got CANCELLED (-140)
    assert not done.cancelled and done.delivered == 0  # finished with CANCELLED: no after-reply
    rig.world.run_for(0.1)  # the pending allocation finds nothing
    assert rig.service.active_count == 0
    for request_id in (1, 2, 3, 4):
        assert rig.reply(check_request(request_id)) == ServiceReply(NOT_FOUND)
    assert rig.init(1).id == 5


def test_late_completion_of_a_cancelled_request_is_ignored(rig: Rig) -> None:
    rig.init(1)
    request = rig.last()
    rig.reply(reset_request(1))
    request.complete(0, b"late")
    assert rig.service.active_count == 0


@pytest.mark.parametrize("make", [
    lambda: SetupPacket(0xC0, 1, 0, 1, 63),  # INIT, wLength < 64
    lambda: SetupPacket(0xC0, 1, 0, 1, 65),  # INIT, > 64: the HAL gives no buffer
    lambda: SetupPacket(0xC0, 2, 0, 1, 0),  # CHECK, no data stage
    lambda: SetupPacket(0xC0, 5, 0, 0, 8),  # RESET, short
    lambda: SetupPacket(0xC0, 6, 0, 0, 64),  # unknown service request
    lambda: SetupPacket(0xC0, 15, 0, 0, 64),
    lambda: SetupPacket(0x40, 1, 0, 1, 64),  # INIT host-to-device
    lambda: SetupPacket(0xC0, 3, 0, 1, 4),  # SEND device-to-host
])
def test_malformed_service_requests_stall(rig: Rig, make: object) -> None:
    assert callable(make)
    assert rig.transfer(make()).status is TransferStatus.STALL
    assert rig.service.active_count == 0 and not rig.dispatcher.requests


def test_out_of_memory(rig: Rig) -> None:
    rig.service.faults.pool_exhausted = True
    assert rig.init(1) == ServiceReply(NO_MEMORY)
    rig.service.faults.pool_exhausted = False
    rig.service.faults.heap_exhausted = True
    assert rig.init(1, 65) == ServiceReply(PENDING, id=1)
    rig.world.run_for(0.01)
    assert rig.reply(check_request(1)) == ServiceReply(NO_MEMORY)  # request dropped
    assert rig.reply(check_request(1)) == ServiceReply(NOT_FOUND)


def test_requests_that_abort_the_connection(rig: Rig) -> None:
    for request_type in (40, 70, 200):
        rig.init(request_type)
    rig.init(41, 5)  # with a payload: no abort at INIT
    assert rig.started == [40, 70, 200]  # the port decides which ones abort


def test_closed_service_stalls_everything(rig: Rig) -> None:
    rig.init(1)
    rig.service.shutdown()
    assert rig.transfer(init_request(1)).status is TransferStatus.STALL
    assert rig.service.active_count == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFF), st.integers(0, 0x12), st.integers(0, 0xFFFF),
                          st.integers(0, 8), st.integers(0, 300)), max_size=30))
def test_random_transfers_never_break_the_service(ops: list[tuple[int, int, int, int, int]]
                                                  ) -> None:
    rig = Rig()
    for bm, b_request, w_value, w_index, w_length in ops:
        setup = SetupPacket(bm, b_request, w_value, w_index, w_length)
        data = b"" if setup.is_in else bytes(w_length)
        result = rig.transfer(setup, data)
        assert result.status in (TransferStatus.COMPLETED, TransferStatus.STALL)
        if result.ok and setup.is_in:
            assert len(result.data) <= max(w_length, 64)
        assert 0 <= rig.service.active_count <= 4
        rig.world.run_for(0.002)
