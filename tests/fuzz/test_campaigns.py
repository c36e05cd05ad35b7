"""A bounded sample of each fuzz campaign of ``benchmarks/`` (issue 14, "Done when").

The long runs - 100,000 REST requests, 10,000 USB bridge frames, 200,000 serial bytes,
100,000 CoAP datagrams - are ``python benchmarks/fuzz_*.py`` and print their figures; CI runs
the same code on a small count, with the same verdict: 0 server errors, 0 crashes, 0 hangs,
and a correct answer afterwards.
"""

from __future__ import annotations

import asyncio

from benchmarks import fuzz_coap, fuzz_rest, fuzz_serial, fuzz_usb_bridge
from benchmarks.fuzzing import CampaignResult


def verdict(result: CampaignResult, at_least: int) -> None:
    assert result.inputs >= at_least, result.report()
    assert result.ok, result.report()


def test_rest_api_sample() -> None:
    verdict(asyncio.run(fuzz_rest.campaign(600, seed=11, workers=4, in_process=True)), 600)


def test_usb_bridge_sample() -> None:
    verdict(asyncio.run(fuzz_usb_bridge.campaign(400, seed=11)), 400)


def test_serial_console_sample() -> None:
    verdict(asyncio.run(fuzz_serial.campaign(6_000, seed=11)), 6_000)


def test_coap_endpoint_sample() -> None:
    verdict(asyncio.run(fuzz_coap.campaign(1_000, seed=11)), 1_000)
