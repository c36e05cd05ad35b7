"""Names of the system events the device and the cloud exchange, defined once for both sides.

Pure constants: the device's system layer and the emulated cloud (``cloud_sim``) import them from
here. Sources are Device OS ``system/src/system_cloud_internal.cpp`` (``Spark_Handshake``,
``systemEventHandler``, ``publishResetReasonIfNeeded``, ``publishSafeModeEventIfNeeded``) unless
noted.
"""

from __future__ import annotations

from typing import Final

#: Prefixes of the events the system layer itself subscribes to (``registerSystemSubscriptions``).
SYSTEM_EVENT_PREFIXES: Final = ("spark", "particle")
#: The same, in the order ``registerSystemSubscriptions`` subscribes (and the cloud receives).
SYSTEM_EVENT_PREFIXES_IN_ORDER: Final = ("particle", "spark")

#: Published by the device after a full handshake, data = the claim code (private).
CLAIM_CODE_EVENT: Final = "spark/device/claim/code"
#: Any cloud-to-device event starting with this clears the device's claim code.
CLAIM_EVENT_PREFIX: Final = "spark/device/claim/"
#: What the cloud sends back once it accepted a claim code (the emulated cloud's default; the
#: name is from a Device OS maintainer's description, the real cloud's code is closed).
CLAIM_CONFIRM_EVENT: Final = "spark/device/claim/confirm"

#: Published by applications (not Device OS) to ask the cloud to drop the session.
SESSION_END_EVENT: Final = "spark/device/session/end"
#: Published once per boot with the reset reason (SYSTEM_FLAG_PUBLISH_RESET_INFO).
LAST_RESET_EVENT: Final = "spark/device/last_reset"
#: Published after every handshake while the device runs in safe mode.
SAFE_MODE_EVENT: Final = "spark/device/safemode"
#: Cloud-to-device: data "safe mode", "dfu", "reboot" or "network".
RESET_EVENT: Final = "spark/device/reset"
#: Cloud-to-device: restore the default server settings, then reset (``config_update``).
KEY_RESTORE_EVENT: Final = "spark/device/key/restore"
#: Published after every handshake while the device has key errors (data: the flags).
KEY_ERROR_EVENT: Final = "spark/device/key/error"
#: Cloud-to-device prefix of ``.../forced`` and ``.../pending`` (data "true" or other).
UPDATES_EVENT_PREFIX: Final = "particle/device/updates/"
#: Published after every handshake with "true"/"false".
UPDATES_ENABLED_EVENT: Final = "particle/device/updates/enabled"
UPDATES_FORCED_EVENT: Final = "particle/device/updates/forced"

#: Cloud-side event with data "online" / "offline" (the Particle cloud's device status).
STATUS_EVENT: Final = "spark/status"
