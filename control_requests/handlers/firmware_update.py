"""Handlers of the firmware update requests (Device OS ``system/src/control/storage.cpp``).

START_FIRMWARE_UPDATE (250) replies the chunk size; FIRMWARE_UPDATE_DATA (253) takes the next
chunk; FINISH_FIRMWARE_UPDATE (251) validates, and unless ``validate_only`` replies 0 first and
applies once the reply is delivered (``system_ctrl_set_result`` with a completion handler; the
device then resets with the reason ``update``); CANCEL_FIRMWARE_UPDATE (252) always answers 0.
A DATA or FINISH payload that does not decode cancels the transfer too (``ON_BAD_DATA``), as
Device OS's cleanup covers its decoder's failure. The transfer itself is the device's
(``firmware_sim/system/firmware_update.py``).
"""

from __future__ import annotations

from typing import cast

from .._pb import storage_pb2
from ..dispatcher import BadDataAction, Handler, HandlerContext
from ..services import DeviceServices
from ..types import RequestType


def start(ctx: HandlerContext) -> None:
    msg = cast(storage_pb2.StartFirmwareUpdateRequest, ctx.message)
    result, chunk_size = ctx.services.firmware_update_start(msg.size, int(msg.format))
    if result != 0:
        ctx.done(result)
        return
    ctx.done(0, storage_pb2.StartFirmwareUpdateReply(chunk_size=chunk_size))


def data(ctx: HandlerContext) -> None:
    msg = cast(storage_pb2.FirmwareUpdateDataRequest, ctx.message)
    ctx.done(ctx.services.firmware_update_data(bytes(msg.data)))


def finish(ctx: HandlerContext) -> None:
    msg = cast(storage_pb2.FinishFirmwareUpdateRequest, ctx.message)
    result = ctx.services.firmware_update_finish(msg.validate_only)
    if result == 0 and not msg.validate_only:
        ctx.after_reply(ctx.services.firmware_update_apply, delay_s=0.0)
    ctx.done(result)


def cancel(ctx: HandlerContext) -> None:
    ctx.services.firmware_update_cancel()
    ctx.done(0)


def _cancel_transfer(services: DeviceServices) -> None:
    services.firmware_update_cancel()


HANDLERS: dict[RequestType, Handler] = {
    RequestType.START_FIRMWARE_UPDATE: start,
    RequestType.FINISH_FIRMWARE_UPDATE: finish,
    RequestType.CANCEL_FIRMWARE_UPDATE: cancel,
    RequestType.FIRMWARE_UPDATE_DATA: data,
}

ON_BAD_DATA: dict[RequestType, BadDataAction] = {
    RequestType.FIRMWARE_UPDATE_DATA: _cancel_transfer,
    RequestType.FINISH_FIRMWARE_UPDATE: _cancel_transfer,
}
