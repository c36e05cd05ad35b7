"""Retained system RAM: survives a software reset, lost on power loss.

On UDP platforms Device OS keeps the persisted DTLS session (``SessionPersistDataOpaque``) in
``retained_system`` memory: "preserved across software resets, but cleared in deep sleep or
through an external reset". The reset reason of the next boot lives here too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RetainedMemory:
    session: bytes | None = None
    reset_reason: str | None = None
    reset_data: int = 0

    def power_loss(self) -> None:
        self.session = None
        self.reset_reason = None
        self.reset_data = 0
