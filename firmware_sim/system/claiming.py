"""The system layer's claim-code rules: when the code is published, when it is cleared.

How this works
--------------
The code itself lives in the DCT behind the claim-code HAL (``hal/claim.py``:
``HAL_Set_Claim_Code``, ``HAL_Get_Claim_Code``, ``HAL_IsDeviceClaimed``). A code is *pending*
when ``HAL_Get_Claim_Code`` succeeds and the field's first byte is neither 0x00 (empty or
cleared) nor 0xFF (erased DCT, never set) - :meth:`ClaimCodeHal.pending_code`. Around it the
system layer has two rules, both in Device OS ``system/src/system_cloud_internal.cpp``:

* **Publish after a full handshake only** (``Spark_Handshake``). When the protocol reports a full
  handshake (result 0, including a resume that fell back to HELLO because the app state changed),
  a pending code is logged as ``Send spark/device/claim/code event for code <code>`` (bytes that
  are not UTF-8 shown as ``\\xNN``) and published as the private event
  ``spark/device/claim/code`` with the code's bytes as data. When the
  protocol reports ``SESSION_RESUMED`` nothing is published: a code set while the device holds a
  valid session is not delivered until the next full handshake (the Device OS 6.2 behaviour
  behind the forum thread). ``send_claim_code_on_resume`` (``FirmwareOptions``) models the fix a
  Device OS maintainer called acceptable: publish after a resume as well.
* **Clear on the cloud's answer** (``systemEventHandler``). Any event from the cloud whose name
  starts with ``spark/device/claim/`` (the cloud sends ``spark/device/claim/confirm``) logs at
  TRACE ``Claim code received by the cloud and cleared locally.`` and calls
  ``HAL_Set_Claim_Code(NULL)``, which clears the code and marks the device claimed. The event's
  data is ignored.

Nothing else publishes or clears the code: the control request ``SET_CLAIM_CODE``, the SoftAP and
serial consoles and fwsim's CLI only write one through the HAL.
"""

from __future__ import annotations

from collections.abc import Callable

from ..communication.event_names import CLAIM_CODE_EVENT, CLAIM_EVENT_PREFIX
from ..hal.claim import ClaimCodeHal
from ..services.log import DeviceLog

LOG = "system"

#: Publishes a private event: ``publish(name, data)``.
PrivatePublish = Callable[[str, bytes], object]


class ClaimCodeRules:
    """The publish and clear rules of one device's claim code."""

    __slots__ = ("_hal", "_log", "send_on_resume")

    def __init__(self, hal: ClaimCodeHal, log: DeviceLog, *,
                 send_on_resume: bool = False) -> None:
        self._hal = hal
        self._log = log
        self.send_on_resume = send_on_resume

    @property
    def code_pending(self) -> bool:
        """A code is stored that the next full handshake publishes."""
        return self._hal.pending_code() is not None

    def after_handshake(self, *, resumed: bool, publish: PrivatePublish) -> bool:
        """Publish the pending code if the rule allows it; returns whether it was published."""
        if resumed and not self.send_on_resume:
            return False
        code = self._hal.pending_code_bytes()
        if code is None:
            return False
        shown = code.decode("utf-8", "backslashreplace")
        self._log.info(LOG, f"Send {CLAIM_CODE_EVENT} event for code {shown}")
        publish(CLAIM_CODE_EVENT, code)
        return True

    def cloud_event(self, name: str) -> bool:
        """Apply the clear rule to an event from the cloud; True if it was a claim event."""
        if not name.startswith(CLAIM_EVENT_PREFIX):
            return False
        self._log.trace(LOG, "Claim code received by the cloud and cleared locally.")
        self._hal.set_claim_code(None)
        return True
