"""Garbage datagrams to the ThingsBoard CoAP port are dropped quietly (security QA: 20,000 fuzz
datagrams printed 350 asyncio tracebacks - aiocoap's parser lets a ``UnicodeDecodeError``
escape for an option that is not UTF-8 - and 7,304 aiocoap warnings)."""

from __future__ import annotations

import asyncio
import logging

import aiocoap
import pytest

from cloud_sim.thingsboard.coap import quiet_garbage

NOT_UTF8_PATH = bytes.fromhex("40010001b197")  # CON GET, Uri-Path 0x97


def _escaped_decode_error() -> UnicodeDecodeError:
    try:
        aiocoap.Message.decode(NOT_UTF8_PATH)
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("aiocoap now parses this: the workaround may go")


def test_one_line_a_minute_for_what_aiocoap_ignores(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("fwsim-test-coap-server")
    passed_on: list[dict[str, object]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: passed_on.append(context))
        limiter = quiet_garbage(loop, log)
        assert quiet_garbage(loop, log) is limiter  # installed once
        for _ in range(50):
            loop.call_exception_handler({"message": "x", "exception": _escaped_decode_error()})
        for _ in range(50):
            log.warning("Ignoring unparsable message from %s", "peer")
        other = ValueError("a real bug elsewhere")
        loop.call_exception_handler({"message": "y", "exception": other})
        assert limiter.dropped == 100
        assert [c["exception"] for c in passed_on] == [other]

    with caplog.at_level(logging.WARNING, logger="fwsim-test-coap-server"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "fwsim-test-coap-server"]
    assert lines == ["Ignoring a datagram with an option that is not UTF-8 (1 datagrams "
                     "ignored so far; at most one such line a minute)"]
    log.error("an error still passes")
    assert caplog.records[-1].getMessage() == "an error still passes"
