"""Settings of the emulated ThingsBoard service, with ThingsBoard's defaults.

The claim settings mirror ``thingsboard.yml`` (``security.claim.*`` and the ``claimDevices``
cache spec); the transport limits mirror the MQTT transport's defaults. Choices the public
sources leave open are marked UNVERIFIED here and explained in ``docs/thingsboard.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from firmware_sim.kernel.errors import ConfigurationError

#: 2026-01-01T00:00:00Z: cloud time of virtual instant 0 for in-process (deterministic) worlds.
DEFAULT_EPOCH_MS = 1_767_225_600_000


class ReclaimBody(Enum):
    """What ``DELETE /api/customer/device/{name}/claim`` answers with (docs/thingsboard.md,
    B5)."""

    #: 200 with no body: what the controller code does (the default)
    EMPTY = "empty"
    #: 200 ``{"result":{},"setOrExpired":true}``: what the user guide shows
    DOCUMENTED = "documented"


class BodylessClaim(Enum):
    """What ``POST /api/customer/device/{name}/claim`` without a body answers
    (docs/thingsboard.md, B4)."""

    #: 500 with ThingsBoard's general error JSON: the NullPointerException of the real server
    INTERNAL_ERROR = "internal_error"
    #: treat a missing body like ``{}`` (empty secret)
    EMPTY_SECRET = "empty_secret"


@dataclass(frozen=True)
class MqttLimits:
    """Guards of the MQTT listener (every server faces an attacker, even on loopback)."""

    #: ThingsBoard's ``transport.mqtt.msg_max_payload_size`` default
    max_payload_bytes: int = 65_536
    #: at most this many open connections; the next one is closed at once
    max_connections: int = 2_000
    #: a connection that sends no CONNECT within this many seconds is closed
    connect_timeout_s: float = 10.0
    #: with keep-alive 0 a connected client is closed after this long without a packet
    idle_timeout_s: float = 300.0
    #: ``maxInflightMessages`` announced to the client (``getSessionLimits``)
    max_inflight_messages: int = 100

    def __post_init__(self) -> None:
        if self.max_payload_bytes < 128 or self.max_connections < 1:
            raise ConfigurationError("MQTT limits: payload >= 128 bytes, connections >= 1")
        if self.connect_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ConfigurationError("MQTT limits: timeouts must be positive")


@dataclass(frozen=True)
class ThingsBoardSettings:
    #: ``security.claim.allowClaimingByDefault``
    allow_claiming_by_default: bool = True
    #: ``security.claim.duration`` (ms): the window when a device sends ``durationMs`` <= 0
    claim_duration_ms: int = 86_400_000
    #: ``cache.specs.claimDevices.timeToLiveInMinutes`` (0 disables the cache)
    cache_ttl_minutes: int = 1440
    #: ``cache.specs.claimDevices.maxSize`` (0 disables the cache)
    cache_max_size: int = 1000
    reclaim_body: ReclaimBody = ReclaimBody.EMPTY
    bodyless_claim: BodylessClaim = BodylessClaim.INTERNAL_ERROR
    #: ThingsBoard's ``JWT_TOKEN_EXPIRATION_TIME`` / ``JWT_REFRESH_TOKEN_EXPIRATION_TIME`` (s)
    jwt_expiration_s: int = 9_000
    jwt_refresh_expiration_s: int = 604_800
    #: device profile transport option ``sendAckOnValidationException`` (MQTT): acknowledge a
    #: malformed claim payload instead of closing the connection
    send_ack_on_validation_exception: bool = False
    #: entries of the per-device claim history kept for "why" (in memory)
    history_per_device: int = 50
    mqtt: MqttLimits = field(default_factory=MqttLimits)

    def __post_init__(self) -> None:
        if self.claim_duration_ms <= 0:
            raise ConfigurationError("security.claim.duration must be positive (ms)")
        if self.cache_ttl_minutes < 0 or self.cache_max_size < 0:
            raise ConfigurationError("claimDevices cache: TTL and max size must be >= 0")
        if self.jwt_expiration_s <= 0 or self.jwt_refresh_expiration_s <= 0:
            raise ConfigurationError("JWT expiration times must be positive")
        if self.history_per_device < 1:
            raise ConfigurationError("history_per_device must be >= 1")

    @property
    def cache_enabled(self) -> bool:
        return self.cache_ttl_minutes > 0 and self.cache_max_size > 0
