"""Handlers of ``system/src/control/cloud.cpp``: connection status, connect, disconnect."""

from __future__ import annotations

from .._pb import cloud_pb2
from ..dispatcher import Handler, HandlerContext
from ..types import RequestType


def connection_status(ctx: HandlerContext) -> None:
    ctx.done(0, cloud_pb2.GetConnectionStatusReply(
        status=ctx.services.cloud_status()))  # type: ignore[arg-type]


def connect(ctx: HandlerContext) -> None:
    ctx.services.cloud_connect()
    ctx.done(0)


def disconnect(ctx: HandlerContext) -> None:
    ctx.services.cloud_disconnect()
    ctx.done(0)


HANDLERS: dict[RequestType, Handler] = {
    RequestType.CLOUD_GET_CONNECTION_STATUS: connection_status,
    RequestType.CLOUD_CONNECT: connect,
    RequestType.CLOUD_DISCONNECT: disconnect,
}
