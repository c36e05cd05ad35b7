"""Shared pieces of the explorer's tests: the test-only mutations of the safety tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

import cloud_sim.claims as claims
from firmware_sim.hal import dct as dct_module
from firmware_sim.kernel.errors import PowerCut


@pytest.fixture
def cloud_accepts_used_codes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mutation: the cloud redeems a claim code that was already consumed (consumes it twice)."""
    original = claims.decide_claim_code

    def sloppy(claim: Any, code: str, device: Any, team: Any, now_us: int) -> Any:
        if claim is not None and claim.consumed:
            claim = replace(claim, consumed_us=None, consumed_by=None)
        return original(claim, code, device, team, now_us)

    monkeypatch.setattr(claims, "decide_claim_code", sloppy)
    yield


@pytest.fixture
def non_atomic_dct(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mutation: a DCT write commits byte by byte (a power cut leaves a torn field)."""

    def torn_write(self: dct_module.Dct, offset: int, data: bytes) -> int:
        self._check_alive()
        self._check_range(offset, len(data))
        try:
            self.fault_hook("begin")
            for index, byte in enumerate(data):
                self.fault_hook(f"modify:{index}")
                self._pages = dct_module._written(self._pages, offset + index, bytes([byte]))
                self.backend.commit(dct_module._join(self._pages), lambda step: None)
            self.writes += 1
            self.fault_hook("done")
        except PowerCut:
            self._dead = True
            raise
        return 0

    monkeypatch.setattr(dct_module.Dct, "write", torn_write)
    yield
