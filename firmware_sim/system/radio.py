"""The simulated radio environment: which Wi-Fi access points are in range.

One environment per world (``radio_environment(world)``), shared by every device in it. Access
points carry what a scan reports (ssid, bssid, security, channel, rssi) and the password a join
must present. Devices subscribe to changes so that an access point vanishing drops them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from control_requests.types import WifiSecurity as WifiSecurity  # re-exported

from ..kernel.errors import UsageError
from ..kernel.world import World


@dataclass(frozen=True)
class AccessPoint:
    ssid: str
    password: str | None = None
    security: WifiSecurity = WifiSecurity.WPA2_PSK
    channel: int = 6
    rssi: int = -50
    bssid: bytes = field(default=b"")
    hidden: bool = False

    def __post_init__(self) -> None:
        if not 0 < len(self.ssid.encode("utf-8")) <= 32:
            raise UsageError(f"SSID {self.ssid!r} must be 1..32 bytes")
        if self.bssid and len(self.bssid) != 6:
            raise UsageError("BSSID must be 6 bytes")
        if self.security is WifiSecurity.NO_SECURITY and self.password:
            raise UsageError(f"open network {self.ssid!r} cannot have a password")

    @property
    def mac(self) -> bytes:
        if self.bssid:
            return self.bssid
        return bytes([0x02]) + hashlib.sha256(self.ssid.encode()).digest()[:5]

    def accepts(self, password: str | None) -> bool:
        if self.security is WifiSecurity.NO_SECURITY:
            return True
        return password is not None and password == self.password


Listener = Callable[[], None]


class RadioEnvironment:
    def __init__(self) -> None:
        self._aps: dict[str, AccessPoint] = {}
        self._listeners: list[Listener] = []

    def add(self, ap: AccessPoint) -> AccessPoint:
        self._aps[ap.ssid] = ap
        self._changed()
        return ap

    def remove(self, ssid: str) -> None:
        if self._aps.pop(ssid, None) is not None:
            self._changed()

    def find(self, ssid: str) -> AccessPoint | None:
        return self._aps.get(ssid)

    def scan(self) -> list[AccessPoint]:
        """Visible access points, strongest first (hidden ones are not listed)."""
        visible = [ap for ap in self._aps.values() if not ap.hidden]
        return sorted(visible, key=lambda ap: (-ap.rssi, ap.ssid))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self.unsubscribe(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener`` (an equal bound method of the same object will do)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()


def radio_environment(world: World) -> RadioEnvironment:
    env = world.shared.get("radio")
    if env is None:
        env = world.shared["radio"] = RadioEnvironment()
    if not isinstance(env, RadioEnvironment):
        raise UsageError("world.shared['radio'] is not a RadioEnvironment")
    return env
