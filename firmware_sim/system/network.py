"""Wi-Fi credentials and the network connection state machine.

How this works
--------------
States: OFF -> ON -> CONNECTING -> CONNECTED, and DISCONNECTING -> ON on the way down. Each
transition raises ``network_status`` with the Device OS values (powering_on 4, on 5,
connecting 6, connected 7, disconnecting 10, disconnected 11, powering_off 2, off 3).

``connect()`` picks the strongest access point in the world's radio environment for which a
credential is stored, and succeeds ``join_delay_s`` later if the stored password is right (then,
with ``dhcp_s`` > 0, the link is up and the interface is CONNECTED once DHCP gave it an address
``dhcp_s`` later). If no
known network is in range, or the join fails, it retries every ``retry_s`` while a connection is
wanted. An access point leaving the radio environment drops a connected device.

``join_new_network`` is Device OS ``joinNewNetwork`` (``system/src/control/wifi_new.cpp``): it
saves the new credentials (remembering the old ones), disconnects, joins that network, and on
success emits ``network_credentials`` added (1); on failure it restores the previous credentials
and, if the device was not connecting or connected before, leaves the network down - else the
device goes on connecting to its known networks (a retry ``retry_s`` later).

Credentials live in a store that survives reboots (a JSON file when the device has a storage
directory; Device OS keeps them in ``/sys/wifi_config.bin``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path

from ..kernel.errors import ConfigurationError, ResultCode
from ..kernel.private_files import open_private_text
from ..kernel.scheduler import Scheduler, TimerHandle
from ..kernel.trace import Tracer
from .events import NetworkCredentials, NetworkStatus, SystemEvent, SystemEventBus
from .radio import AccessPoint, RadioEnvironment, WifiSecurity

MAX_KNOWN_NETWORKS = 10


@dataclass(frozen=True)
class WifiCredentials:
    ssid: str
    password: str | None = None
    security: WifiSecurity = WifiSecurity.WPA2_PSK
    bssid: bytes = b""
    hidden: bool = False

    @property
    def has_password(self) -> bool:
        return self.password is not None


class CredentialStore:
    """Known networks, kept in insertion order; optionally persisted to a JSON file."""

    __slots__ = ("_networks", "_path")

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._networks: dict[str, WifiCredentials] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            for item in raw:
                creds = WifiCredentials(str(item["ssid"]), item.get("password"),
                                        WifiSecurity(int(item.get("security", 3))),
                                        bytes.fromhex(item.get("bssid", "")),
                                        bool(item.get("hidden", False)))
                self._networks[creds.ssid] = creds
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ConfigurationError(f"cannot read Wi-Fi credentials {path}: {exc}") from exc

    def _save(self) -> None:
        if self._path is None:
            return
        items = []
        for creds in self._networks.values():
            item = asdict(creds)
            item["bssid"] = creds.bssid.hex()
            item["security"] = int(creds.security)
            items.append(item)
        tmp = self._path.with_name(self._path.name + ".tmp")
        with open_private_text(tmp) as stream:  # the passwords
            stream.write(json.dumps(items, indent=1))
        tmp.replace(self._path)

    def __len__(self) -> int:
        return len(self._networks)

    def __contains__(self, ssid: object) -> bool:
        return ssid in self._networks

    def get(self, ssid: str) -> WifiCredentials | None:
        return self._networks.get(ssid)

    def all(self) -> list[WifiCredentials]:
        return list(self._networks.values())

    def set(self, creds: WifiCredentials) -> int:
        if creds.ssid not in self._networks and len(self._networks) >= MAX_KNOWN_NETWORKS:
            # Device OS drops the oldest entry to make room.
            oldest = next(iter(self._networks))
            del self._networks[oldest]
        self._networks[creds.ssid] = creds
        self._save()
        return 0

    def remove(self, ssid: str) -> None:
        if self._networks.pop(ssid, None) is not None:
            self._save()

    def clear(self) -> None:
        self._networks.clear()
        self._save()


class NetState(Enum):
    OFF = "off"
    ON = "on"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"


@dataclass(frozen=True)
class NetworkTiming:
    """Durations of the Wi-Fi interface (the profiles' values: ``system/timing.py``)."""

    #: powering the interface on (Device OS init and the radio's firmware start at boot)
    power_on_s: float = 0.2
    #: joining an access point (the radio's scan, authentication, association, WPA2 handshake)
    join_delay_s: float = 2.5
    #: from link up to an IP address (DHCP); 0 means the address comes with the link
    dhcp_s: float = 0.0
    disconnect_s: float = 0.1
    retry_s: float = 5.0


class NetworkManager:
    """The Wi-Fi station interface of one device."""

    __slots__ = (
        "_events", "_join_done", "_join_target", "_listeners", "_radio", "_scheduler", "_timer",
        "_tracer", "credentials", "current", "state", "timing", "want_connected",
    )

    def __init__(self, *, scheduler: Scheduler, tracer: Tracer, events: SystemEventBus,
                 radio: RadioEnvironment, credentials: CredentialStore,
                 timing: NetworkTiming | None = None) -> None:
        self._scheduler = scheduler
        self._tracer = tracer
        self._events = events
        self._radio = radio
        self.credentials = credentials
        self.timing = timing or NetworkTiming()
        self.state = NetState.OFF
        self.want_connected = False
        self.current: AccessPoint | None = None
        self._timer: TimerHandle | None = None
        self._join_target: str | None = None
        self._join_done: Callable[[int], None] | None = None
        self._listeners: list[Callable[[bool], None]] = []
        radio.subscribe(self._radio_changed)

    # -- observers -----------------------------------------------------------------------------

    def on_change(self, listener: Callable[[bool], None]) -> None:
        """``listener(ready)`` is called when the network becomes ready or stops being ready."""
        self._listeners.append(listener)

    @property
    def ready(self) -> bool:
        return self.state is NetState.CONNECTED

    @property
    def connecting(self) -> bool:
        return self.state is NetState.CONNECTING

    def shutdown(self) -> None:
        """Forget timers and observers (the device is rebooting)."""
        self._cancel()
        self._radio.unsubscribe(self._radio_changed)
        self._listeners.clear()

    # -- transitions ---------------------------------------------------------------------------

    def _set(self, state: NetState, status: NetworkStatus) -> None:
        self.state = state
        self._tracer.emit("network.state", state=state.value)
        self._events.notify(SystemEvent.NETWORK_STATUS, status)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _later(self, delay: float, callback: Callable[[], None], label: str) -> None:
        self._cancel()
        self._timer = self._scheduler.call_later(delay, callback, label=label)

    def connect(self) -> None:
        self.want_connected = True
        if self.state is NetState.OFF:
            self._set(NetState.OFF, NetworkStatus.POWERING_ON)
            self._later(self.timing.power_on_s, self._powered_on, "net-power-on")
        elif self.state is NetState.ON:
            self._start_connecting()

    def _powered_on(self) -> None:
        self._timer = None
        self._set(NetState.ON, NetworkStatus.ON)
        if self.want_connected:
            self._start_connecting()

    def _start_connecting(self) -> None:
        self._set(NetState.CONNECTING, NetworkStatus.CONNECTING)
        self._attempt()

    def _choose(self) -> AccessPoint | None:
        if self._join_target is not None:
            ap = self._radio.find(self._join_target)
            return ap
        for ap in self._radio.scan():
            if ap.ssid in self.credentials:
                return ap
        for creds in self.credentials.all():  # hidden networks are not in a scan
            ap = self._radio.find(creds.ssid)
            if ap is not None and ap.hidden:
                return ap
        return None

    def _attempt(self) -> None:
        self._timer = None
        if self.state is not NetState.CONNECTING:
            return
        ap = self._choose()
        if ap is None:
            self._tracer.emit("network.no_known_network",
                              known=[c.ssid for c in self.credentials.all()])
            self._attempt_failed()
            return
        self._tracer.emit("network.joining", ssid=ap.ssid)
        self._later(self.timing.join_delay_s, lambda: self._join_result(ap), "net-join")

    def _join_result(self, ap: AccessPoint) -> None:
        self._timer = None
        creds = self.credentials.get(ap.ssid)
        if (self._radio.find(ap.ssid) is None or creds is None
                or not ap.accepts(creds.password)):
            self._tracer.emit("network.join_failed", ssid=ap.ssid,
                              reason="not in range" if self._radio.find(ap.ssid) is None
                              else "authentication failed")
            self._attempt_failed()
            return
        if self.timing.dhcp_s > 0:
            self._tracer.emit("network.link_up", ssid=ap.ssid)
            self._later(self.timing.dhcp_s, lambda: self._ip_configured(ap), "net-dhcp")
        else:
            self._ip_configured(ap)

    def _ip_configured(self, ap: AccessPoint) -> None:
        self._timer = None
        if self.state is not NetState.CONNECTING:
            return
        if self._radio.find(ap.ssid) is None:
            self._tracer.emit("network.join_failed", ssid=ap.ssid, reason="not in range")
            self._attempt_failed()
            return
        self.current = ap
        self._set(NetState.CONNECTED, NetworkStatus.CONNECTED)
        done, self._join_done, self._join_target = self._join_done, None, None
        if done is not None:
            done(0)
        for listener in list(self._listeners):
            listener(True)

    def _attempt_failed(self) -> None:
        if self._join_done is not None:
            done, self._join_done, self._join_target = self._join_done, None, None
            done(int(ResultCode.NOT_FOUND))
            # the join restored the previous credentials and, unless the device had been
            # connecting or connected, took the network down; otherwise it goes on trying its
            # known networks (below), as Device OS's network manager does
        if (self.want_connected and self.state is NetState.CONNECTING
                and self._timer is None):
            self._later(self.timing.retry_s, self._attempt, "net-retry")

    def disconnect(self) -> None:
        """Leave the network (the interface stays powered)."""
        self.want_connected = False
        self._drop()

    def _drop(self) -> None:
        if self.state in (NetState.CONNECTED, NetState.CONNECTING):
            was_ready = self.state is NetState.CONNECTED
            self._cancel()
            self._set(NetState.DISCONNECTING, NetworkStatus.DISCONNECTING)
            self.current = None
            self._set(NetState.ON, NetworkStatus.DISCONNECTED)
            if was_ready:
                for listener in list(self._listeners):
                    listener(False)

    def power_off(self) -> None:
        self.want_connected = False
        self._drop()
        if self.state is NetState.ON:
            self._set(NetState.ON, NetworkStatus.POWERING_OFF)
            self._set(NetState.OFF, NetworkStatus.OFF)

    def _radio_changed(self) -> None:
        current = self.current
        if (self.state is NetState.CONNECTED and current is not None
                and self._radio.find(current.ssid) is None):
            self._tracer.emit("network.link_lost", ssid=current.ssid)
            want = self.want_connected
            self._drop()
            self.want_connected = want
            if want:
                self._start_connecting()

    # -- joinNewNetwork ------------------------------------------------------------------------

    def join_new_network(self, creds: WifiCredentials, done: Callable[[int], None]) -> None:
        """Store ``creds`` and join that network; ``done(result)`` reports a system_error_t."""
        ap = self._radio.find(creds.ssid)
        if ap is not None:  # RTL872x: the security comes from the scan, not the request
            creds = WifiCredentials(creds.ssid, creds.password, ap.security, creds.bssid,
                                    creds.hidden)
        old = self.credentials.get(creds.ssid)
        need_to_connect = self.state in (NetState.CONNECTING, NetState.CONNECTED)
        self.credentials.set(creds)
        want = self.want_connected

        def finished(result: int) -> None:
            if result == 0:
                self._events.notify(SystemEvent.NETWORK_CREDENTIALS, NetworkCredentials.ADDED)
                self.want_connected = True  # the network stays up (guard dismissed)
            else:
                if old is not None:
                    self.credentials.set(old)
                else:
                    self.credentials.remove(creds.ssid)
                if not need_to_connect:
                    self.disconnect()
                self.want_connected = want
            done(result)

        self._join(creds.ssid, finished)

    def join_known_network(self, ssid: str, done: Callable[[int], None]) -> None:
        if ssid not in self.credentials:
            done(int(ResultCode.NOT_FOUND))
            return
        want = self.want_connected

        def finished(result: int) -> None:
            if result != 0:
                self.disconnect()
                self.want_connected = want
            done(result)

        self._join(ssid, finished)

    def _join(self, ssid: str, finished: Callable[[int], None]) -> None:
        """Drop the current network and join ``ssid``; ``finished(result)`` reports it."""
        self._drop()
        self._join_target = ssid
        self._join_done = finished
        self.want_connected = True
        if self.state is NetState.OFF:
            self.connect()
        else:
            self._start_connecting()

    def set_credentials(self, creds: WifiCredentials) -> int:
        """``SetNetworkCredentialsRequest``: store without joining, emit credentials added."""
        result = self.credentials.set(creds)
        if result == 0:
            self._events.notify(SystemEvent.NETWORK_CREDENTIALS, NetworkCredentials.ADDED)
        return result

    def clear_credentials(self) -> None:
        self.credentials.clear()
        self._events.notify(SystemEvent.NETWORK_CREDENTIALS, NetworkCredentials.CLEARED)

    def scan(self) -> list[AccessPoint]:
        return self._radio.scan()
