"""Both HTTP/1.1 protocols the served API can run on (``cloud_sim.connections``): httptools (the
default when installed) and h11 (a base + ``cloud`` install without httptools) enforce the same
limits with the same answers. ``test_limits.py`` runs on the default; this file runs its
connection checks again on the other protocol and compares the two byte for byte."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from importlib.util import find_spec

import pytest

from cloud_sim.connections import ConnectionLimits, http_protocol_name
from cloud_sim.server import CloudServer, ServerConfig

from . import test_limits
from .conftest import open_cloud

needs_httptools = pytest.mark.skipif(find_spec("httptools") is None,
                                     reason="httptools is not installed")
OTHER = "h11" if http_protocol_name("auto") == "httptools" else "httptools"

CHECKS: list[Callable[[], None]] = [
    test_limits.test_a_silent_or_slowloris_connection_gets_408_and_is_closed,
    test_limits.test_a_body_is_read_whole_at_once_late_in_pieces_or_answered_408,
    test_limits.test_the_head_deadline_starts_again_after_each_response,
    test_limits.test_at_the_cap_a_new_connection_evicts_an_idle_one,
    test_limits.test_at_the_cap_with_busy_connections_newcomers_get_503_and_streams_are_capped,
    test_limits.test_idle_and_slowloris_connections_at_the_fd_limit_do_not_deny_service,
]


@needs_httptools
@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[5:40])
def test_the_limits_hold_on_the_other_protocol(check: Callable[[], None],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FWSIM_HTTP_PROTOCOL", OTHER)  # ServerConfig's default, in subprocesses too
    check()


HOST = b"Host: 127.0.0.1:PORT\r\n"
HEADS = [
    b"GARBAGE\r\n\r\n",
    b"GET /v1/\xff\xfe HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: x\r\n\r\n",
    b"GET /v1/devices HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 15_000 + b"\r\n\r\n",
    b"GET /v1/devices HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 20_000,  # incomplete, >16 KiB
    b"GET /v1/devices%ff HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /v1/devices HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n",
    b"GET http://127.0.0.1:PORT/v1/devices HTTP/1.1\r\n" + HOST + b"\r\n",
    b"GET /v1/devices HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /v1/users HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
]


def _answers(protocol: str) -> list[bytes]:
    async def main() -> list[bytes]:
        cloud = open_cloud(":memory:", seed=2, epoch=1_767_225_600)
        server = CloudServer(cloud, ServerConfig(http_port=0, coap_port=0, http_protocol=protocol,
                                                 limits=ConnectionLimits(head_timeout_s=2)))
        await server.start()
        assert server.http_protocol == protocol
        answers = []
        try:
            for head in HEADS:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
                writer.write(head.replace(b"PORT", str(server.http_port).encode()))
                raw = await asyncio.wait_for(reader.read(65536), 5)
                answers.append(re.sub(rb"date: [^\r]*", b"date: -", raw))
                writer.close()
        finally:
            await server.stop()
            cloud.store.close()
        return answers

    return asyncio.run(main())


@needs_httptools
def test_both_protocols_answer_the_same_bytes() -> None:
    h11, httptools = _answers("h11"), _answers("httptools")
    for head, one, other in zip(HEADS, h11, httptools, strict=True):
        assert one == other, head[:60]
    assert h11[4].startswith(b"HTTP/1.1 400 ")  # an incomplete head over 16 KiB
    assert h11[7].startswith(b"HTTP/1.1 404 ")  # absolute-form: routed by its whole text


def test_an_unknown_protocol_is_a_configuration_error() -> None:
    from firmware_sim.kernel.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown HTTP protocol"):
        CloudServer(open_cloud(":memory:", seed=1, epoch=0),
                    ServerConfig(http_protocol="h2"))
