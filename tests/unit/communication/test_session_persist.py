from __future__ import annotations

from firmware_sim.communication.session import (
    MAXIMUM_SESSION_USES,
    RestoreStatus,
    SessionData,
    SessionPersist,
)
from firmware_sim.hal.retained import RetainedMemory


def _persist() -> tuple[SessionPersist, RetainedMemory]:
    retained = RetainedMemory()
    persist = SessionPersist(retained)
    persist.save(SessionData(b"\x01" * 8, 77, 0, 5, 0xABCD))
    return persist, retained


def test_each_restore_counts_and_the_fourth_is_refused() -> None:
    assert MAXIMUM_SESSION_USES == 3
    persist, _ = _persist()
    for expected in (1, 2, 3):
        status, data = persist.restore(77)
        assert status is RestoreStatus.COMPLETE and data is not None
        assert data.use_counter == expected
    status, data = persist.restore(77)
    assert status is RestoreStatus.NO_SESSION and data is not None and data.use_counter == 3


def test_a_message_on_the_resumed_session_resets_the_counter() -> None:
    persist, _ = _persist()
    persist.restore(77)
    persist.restore(77)
    persist.cancel_move()
    loaded = persist.load()
    assert loaded is not None and loaded.use_counter == 0


def test_keys_checksum_mismatch_clear_and_discard() -> None:
    persist, retained = _persist()
    assert persist.restore(78)[0] is RestoreStatus.NO_SESSION
    persist.clear()
    assert retained.session == bytes(len(retained.session or b""))
    assert persist.restore(77)[0] is RestoreStatus.NO_SESSION
    persist, retained = _persist()
    persist.discard()
    assert retained.session is None


def test_power_loss_forgets_the_session() -> None:
    persist, retained = _persist()
    retained.power_loss()
    assert persist.load() is None
