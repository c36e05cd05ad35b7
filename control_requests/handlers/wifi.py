"""Handlers of ``system/src/control/wifi_new.cpp`` (Wi-Fi platforms).

JOIN_NEW_NETWORK accepts NO_CREDENTIALS or PASSWORD credentials only (else NOT_SUPPORTED) and
completes when the join succeeded or failed (``network_credentials`` added is raised by the
system on success); SET_NETWORK_CREDENTIALS stores without joining and raises the same event;
GET_CURRENT_NETWORK fails with INVALID_STATE when not connected.
"""

from __future__ import annotations

from typing import cast

from firmware_sim.kernel.errors import ResultCode

from .._pb import wifi_pb2
from ..dispatcher import Handler, HandlerContext
from ..types import RequestType
from .fields import text

NO_CREDENTIALS = 0
PASSWORD = 1


def _password(credentials: wifi_pb2.Credentials) -> str | None:
    return text(credentials, "password") if credentials.type == PASSWORD else None


def join_new_network(ctx: HandlerContext) -> None:
    msg = cast(wifi_pb2.JoinNewNetworkRequest, ctx.message)
    if msg.credentials.type not in (NO_CREDENTIALS, PASSWORD):
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.services.wifi_join_new(text(msg, "ssid"), _password(msg.credentials), msg.bssid,
                               msg.hidden,
                               lambda result: ctx.done(result))


def join_known_network(ctx: HandlerContext) -> None:
    msg = cast(wifi_pb2.JoinKnownNetworkRequest, ctx.message)
    ctx.services.wifi_join_known(text(msg, "ssid"), lambda result: ctx.done(result))


def get_known_networks(ctx: HandlerContext) -> None:
    reply = wifi_pb2.GetKnownNetworksReply()
    for network in ctx.services.wifi_known_networks():
        reply.networks.add(ssid=network.ssid, security=network.security,
                           credentials_type=PASSWORD if network.has_password
                           else NO_CREDENTIALS)
    ctx.done(0, reply)


def remove_known_network(ctx: HandlerContext) -> None:
    msg = cast(wifi_pb2.RemoveKnownNetworkRequest, ctx.message)
    ctx.services.wifi_remove_known(text(msg, "ssid"))
    ctx.done(0)


def clear_known_networks(ctx: HandlerContext) -> None:
    ctx.services.wifi_clear_known()
    ctx.done(0)


def get_current_network(ctx: HandlerContext) -> None:
    current = ctx.services.wifi_current()
    if current is None:
        ctx.done(int(ResultCode.INVALID_STATE))
        return
    ctx.done(0, wifi_pb2.GetCurrentNetworkReply(ssid=current.ssid, bssid=current.bssid,
                                                channel=current.channel, rssi=current.rssi))


def scan_networks(ctx: HandlerContext) -> None:
    reply = wifi_pb2.ScanNetworksReply()
    for network in ctx.services.wifi_scan():
        reply.networks.add(ssid=network.ssid, bssid=network.bssid,
                           security=network.security,
                           channel=network.channel, rssi=network.rssi)
    ctx.done(0, reply)


def set_network_credentials(ctx: HandlerContext) -> None:
    msg = cast(wifi_pb2.SetNetworkCredentialsRequest, ctx.message)
    if msg.credentials.type not in (NO_CREDENTIALS, PASSWORD):
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.done(ctx.services.wifi_set_credentials(text(msg, "ssid"), _password(msg.credentials),
                                               msg.security, msg.bssid, msg.hidden))


HANDLERS: dict[RequestType, Handler] = {
    RequestType.WIFI_JOIN_NEW_NETWORK: join_new_network,
    RequestType.WIFI_JOIN_KNOWN_NETWORK: join_known_network,
    RequestType.WIFI_GET_KNOWN_NETWORKS: get_known_networks,
    RequestType.WIFI_REMOVE_KNOWN_NETWORK: remove_known_network,
    RequestType.WIFI_CLEAR_KNOWN_NETWORKS: clear_known_networks,
    RequestType.WIFI_GET_CURRENT_NETWORK: get_current_network,
    RequestType.WIFI_SCAN_NETWORKS: scan_networks,
    RequestType.WIFI_SET_NETWORK_CREDENTIALS: set_network_credentials,
}
