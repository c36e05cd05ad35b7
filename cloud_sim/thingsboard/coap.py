"""The CoAP device API of the emulated ThingsBoard: ``POST coap://host/api/v1/{token}/claim``.

Answers (docs/thingsboard.md, B2): **2.01 Created** when the claim request was accepted (even when
the claim rules refuse it: the reason goes to the trace and the claim history), **4.01
Unauthorized** for an unknown token, **4.00 Bad Request** for a payload that cannot be parsed
(ThingsBoard's adaptor error; UNVERIFIED which 4.xx a real server picks, docs/thingsboard.md), 4.04
for any other path, 4.05 for another method. Served by aiocoap over UDP only: aiocoap's default
server transports would also listen for CoAP over TCP on the same port and CoAP over WebSocket
on port + 3000 (and TLS where it can), attack surface ThingsBoard's CoAP transport does not have.
"""

from __future__ import annotations

import sys
from typing import Any

import aiocoap
import aiocoap.resource as resource

from ..runtime import Runtime
from .service import DeviceAck, ThingsBoardService

MAX_PAYLOAD_BYTES = 64 * 1024
#: aiocoap's UDP server transport: ``udp6`` where aiocoap supports it (Linux), else the simple
#: socket server (its own defaults make the same split)
COAP_TRANSPORTS = ["udp6"] if sys.platform == "linux" else ["simplesocketserver"]


class ClaimApi(resource.Resource, resource.PathCapable):  # type: ignore[misc]
    """The root resource: parses ``uri_path`` itself."""

    def __init__(self, service: ThingsBoardService, runtime: Runtime) -> None:
        super().__init__()
        self.service = service
        self.runtime = runtime

    async def render(self, request: Any) -> aiocoap.Message:
        path = tuple(request.opt.uri_path)
        if len(path) != 4 or path[:2] != ("api", "v1") or path[3] != "claim":
            return aiocoap.Message(code=aiocoap.NOT_FOUND)
        if request.code != aiocoap.POST:
            return aiocoap.Message(code=aiocoap.METHOD_NOT_ALLOWED)
        payload = bytes(request.payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            return aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE)
        self.runtime.sync()
        try:
            ack = self.service.device_claim(path[2], payload or None, transport="coap")
        finally:
            self.runtime.wake()
        if ack is DeviceAck.UNAUTHORIZED:
            return aiocoap.Message(code=aiocoap.UNAUTHORIZED)
        if ack is DeviceAck.MALFORMED:
            return aiocoap.Message(code=aiocoap.BAD_REQUEST)
        return aiocoap.Message(code=aiocoap.CREATED)


async def serve_coap(service: ThingsBoardService, runtime: Runtime, host: str,
                     port: int) -> aiocoap.Context:
    return await aiocoap.Context.create_server_context(ClaimApi(service, runtime),
                                                       bind=(host, port),
                                                       transports=list(COAP_TRANSPORTS))
