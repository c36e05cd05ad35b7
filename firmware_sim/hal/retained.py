"""Retained system RAM: survives a software reset, lost on power loss.

On UDP platforms Device OS keeps the persisted DTLS session (``SessionPersistDataOpaque``) in
``retained_system`` memory: "preserved across software resets, but cleared in deep sleep or
through an external reset". The reset reason of the next boot (and a panic's code) lives here
too, and so does the validity of the real-time clock (``hal_rtc_time_is_valid``: fwsim keeps
it across software resets and loses it with the power, UNVERIFIED).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RetainedMemory:
    session: bytes | None = None
    reset_reason: str | None = None
    reset_data: int = 0
    rtc_valid: bool = False

    def power_loss(self) -> None:
        self.session = None
        self.reset_reason = None
        self.reset_data = 0
        self.rtc_valid = False
