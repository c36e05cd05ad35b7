"""A simulated device on the USB bus: descriptors, raw 'P' requests, re-enumeration, quirks."""

from __future__ import annotations

import pytest

from firmware_sim.kernel import World
from firmware_sim.system import Device
from transports.usb import attach_usb, usb_port_of
from transports.usb.descriptors import DeviceDescriptor, decode_string_descriptor
from transports.usb.protocol import ServiceReply, SetupPacket, init_request
from transports.usb.transfer import TransferStatus

from .conftest import DEVICE_ID, make_device

Rig = tuple[World, Device, object]


def test_descriptors_identify_the_device(p2: Rig) -> None:
    _, device, _ = p2
    port = attach_usb(device)
    assert attach_usb(device) is port and usb_port_of(device) is port
    result = port.control_transfer(SetupPacket(0x80, 6, 0x0100, 0, 18))
    descriptor = DeviceDescriptor.decode(result.data)
    assert (descriptor.idVendor, descriptor.idProduct) == (0x2B04, 0xC020)
    serial = port.control_transfer(SetupPacket(0x80, 6, 0x0300 | descriptor.iSerialNumber,
                                               0x0409, 255))
    assert decode_string_descriptor(serial.data) == DEVICE_ID.upper()
    short = port.control_transfer(SetupPacket(0x80, 6, 0x0100, 0, 8))
    assert short.data == result.data[:8]  # truncated to wLength
    for setup in (SetupPacket(0x80, 6, 0x0305, 0x0409, 255),  # no such string
                  SetupPacket(0x80, 0, 0, 0, 2),  # GET_STATUS: not modelled
                  SetupPacket(0x00, 9, 1, 0, 0),  # SET_CONFIGURATION
                  SetupPacket(0xA1, 0x21, 0, 0, 7),  # CDC class request
                  SetupPacket(0xC1, 1, 0, 200, 64)):  # vendor, recipient interface
        assert port.control_transfer(setup).status is TransferStatus.STALL


@pytest.mark.parametrize(("profile", "pid"), [("p2", 0xC020), ("photon2", 0xC020),
                                              ("argon", 0xC00C), ("photon", 0xC006)])
def test_profile_pids(profile: str, pid: int) -> None:
    _, device, _ = make_device(profile)
    assert attach_usb(device).describe()["productId"] == pid


def test_raw_device_id_and_version(p2: Rig) -> None:
    _, device, _ = p2
    port = attach_usb(device)
    assert port.control_transfer(SetupPacket(0xC0, 0x50, 0, 20, 64)).data == (
        DEVICE_ID.upper().encode())  # uppercase, unlike GET_DEVICE_ID (lowercase)
    assert port.control_transfer(SetupPacket(0xC0, 0x50, 0, 30, 64)).data == b"6.2.0"
    for setup in (SetupPacket(0xC0, 0x50, 0, 20, 23),  # too short for the id
                  SetupPacket(0xC0, 0x50, 0, 30, 4),
                  SetupPacket(0xC0, 0x50, 0, 20, 0),  # no data stage
                  SetupPacket(0xC0, 0x50, 0, 20, 65),  # > 64: no HAL buffer
                  SetupPacket(0xC0, 0x50, 0, 31, 64),  # unknown raw request
                  SetupPacket(0x40, 0x50, 0, 99, 1),
                  SetupPacket(0xC0, 0x51, 0, 20, 64)):  # neither service nor 'P'
        assert port.control_transfer(setup, bytes(setup.wLength if not setup.is_in else 0)
                                     ).status is TransferStatus.STALL


def test_raw_reset_resets_immediately_and_the_device_re_enumerates(p2: Rig) -> None:
    world, device, _ = p2
    port = attach_usb(device)
    boots, epoch = device.boot_count, port.epoch
    result = port.control_transfer(SetupPacket(0x40, 0x50, 0, 40, 1), b"\x00")
    assert result.status is TransferStatus.NO_DEVICE  # no status stage: the device is gone
    world.run_for(0.01)
    assert not port.attached
    assert port.control_transfer(init_request(1)).status is TransferStatus.NO_DEVICE
    world.run_for(1)
    assert device.boot_count == boots + 1 and port.attached and port.epoch == epoch + 1
    stale = port.control_transfer(SetupPacket(0xC0, 0x50, 0, 30, 64), epoch=epoch)
    assert stale.status is TransferStatus.NO_DEVICE  # a handle from before the reboot
    fresh = port.control_transfer(init_request(1), epoch=port.epoch)
    assert ServiceReply.decode(fresh.data).id == 1  # ids restart with the new channel


def test_raw_cloud_disconnect() -> None:
    world, device, _ = make_device(connected=True)
    port = attach_usb(device)
    assert port.control_transfer(SetupPacket(0x40, 0x50, 0, 302, 1), b"\x00").ok
    world.run_for(1)
    assert not device.cloud_connected and not device.cloud.want_connected


def test_p2_zero_length_out_transfers_never_complete() -> None:
    world, device, _ = make_device("p2", connected=True)
    port = attach_usb(device)
    result = port.control_transfer(SetupPacket(0x40, 0x50, 0, 302, 0))
    assert result.status is TransferStatus.TIMED_OUT
    world.run_for(1)
    assert device.cloud_connected  # nothing happened on the device
    _, argon, _ = make_device("argon", connected=True)
    assert attach_usb(argon).control_transfer(SetupPacket(0x40, 0x50, 0, 302, 0)).ok


def test_out_data_stage_must_match_wlength(p2: Rig) -> None:
    _, device, _ = p2
    port = attach_usb(device)
    assert port.control_transfer(SetupPacket(0x40, 0x50, 0, 302, 3), b"\x00"
                                 ).status is TransferStatus.STALL


def test_detached_while_off_and_in_dfu(p2: Rig) -> None:
    world, device, _ = p2
    port = attach_usb(device)
    device.power_off()
    assert not port.attached
    assert port.control_transfer(init_request(1)).status is TransferStatus.NO_DEVICE
    device.power_on()
    world.run_for(1)
    assert port.attached
    device.enter_dfu()
    assert not port.attached


def test_reset_request_aborts_the_cloud_connection_at_init() -> None:
    world, device, _ = make_device(connected=True)
    port = attach_usb(device)
    assert ServiceReply.decode(port.control_transfer(init_request(40)).data).id == 1
    assert not device.cloud_connected and not device.cloud.want_connected
    assert world.trace.count("usb.abort_connection", type=40, disconnect=True) == 1
