"""Hypothesis state machine: the claim-code HAL against a reference model of its semantics."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware_sim.hal import ClaimCodeHal, Dct, MemoryDctBackend


class ClaimHalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.backend = MemoryDctBackend()
        self.dct = Dct(self.backend)
        self.hal = ClaimCodeHal(self.dct)
        self.model_code = bytearray(b"\xff" * 63)
        self.model_claimed = 0xFF

    @rule(code=st.binary(max_size=80))
    def set_code(self, code: bytes) -> None:
        assert self.hal.set_claim_code(code) == 0
        self.model_code[:] = code[:63].ljust(63, b"\x00")

    @rule()
    def clear(self) -> None:
        assert self.hal.set_claim_code(None) == 0
        self.model_code[0] = 0
        self.model_claimed = 0x31

    @rule(value=st.integers(0, 255))
    def poke_claimed(self, value: int) -> None:
        self.dct.write(1825, bytes([value]))
        self.model_claimed = value

    @rule()
    def reboot(self) -> None:
        self.dct = Dct(self.backend)
        self.hal = ClaimCodeHal(self.dct)

    @invariant()
    def matches_model(self) -> None:
        assert self.hal.stored_code() == bytes(self.model_code)
        assert self.hal.is_device_claimed() is (self.model_claimed == 0x31)
        first = self.model_code[0]
        expected = (None if first in (0, 0xFF)
                    else bytes(self.model_code).split(b"\x00", 1)[0])
        assert self.hal.pending_code_bytes() == expected
        assert self.hal.pending_code() == (
            None if expected is None else expected.decode("utf-8", "backslashreplace"))
        # nothing outside the two fields ever changes
        image = self.dct.image()
        assert image[:1762] == b"\xff" * 1762 and image[1826:] == b"\xff" * (8391 - 1826)


TestClaimHal = ClaimHalMachine.TestCase
TestClaimHal.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
