"""Handlers of ``system/src/control/network.cpp`` (the interface requests; the platforms with
Device OS's interface API, here every platform but the Photon).

GET_INTERFACE_LIST replies index, name and type of each interface; GET_INTERFACE replies one
interface in full: flags, extended flags, MTU, metric (always 0: ``if_get_metric``), hardware
address and its IPv4 and IPv6 addresses with their prefix lengths (no gateway, DNS or source:
Device OS fills in only the addresses). An index with no interface completes with -1, the value
``if_get_by_index`` returns and the handler passes on unchanged. Both config submessages are
sent even when they hold no address, as the device's nanopb encoder sends them.
"""

from __future__ import annotations

from typing import cast

from .._pb import network_pb2
from ..dispatcher import Handler, HandlerContext
from ..services import NetworkInterface
from ..types import RequestType

#: what ``if_get_by_index`` returns for an index with no interface (the request's result)
NO_SUCH_INTERFACE = -1


def get_interface_list(ctx: HandlerContext) -> None:
    reply = network_pb2.GetInterfaceListReply()
    for iface in ctx.services.network_interfaces():
        reply.interfaces.add(index=iface.index, name=iface.name, type=iface.type)
    ctx.done(0, reply)


def _interface_message(iface: NetworkInterface) -> network_pb2.Interface:
    message = network_pb2.Interface(index=iface.index, name=iface.name,
                                    type=cast(network_pb2.InterfaceType, iface.type),
                                    flags=iface.flags, ext_flags=iface.ext_flags,
                                    hw_address=iface.hw_address, mtu=iface.mtu, metric=0)
    message.ipv4_config.SetInParent()
    message.ipv6_config.SetInParent()
    for address, prefix in iface.ipv4:
        entry = message.ipv4_config.addresses.add(prefix_length=prefix)
        entry.address.v4.address = int.from_bytes(address, "big")
    for address, prefix in iface.ipv6:
        entry = message.ipv6_config.addresses.add(prefix_length=prefix)
        entry.address.v6.address = address
    return message


def get_interface(ctx: HandlerContext) -> None:
    msg = cast(network_pb2.GetInterfaceRequest, ctx.message)
    for iface in ctx.services.network_interfaces():
        if iface.index == msg.index:
            reply = network_pb2.GetInterfaceReply()
            reply.interface.CopyFrom(_interface_message(iface))
            ctx.done(0, reply)
            return
    ctx.done(NO_SUCH_INTERFACE)


HANDLERS: dict[RequestType, Handler] = {
    RequestType.NETWORK_GET_INTERFACE_LIST: get_interface_list,
    RequestType.NETWORK_GET_INTERFACE: get_interface,
}
