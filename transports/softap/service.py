"""The SoftAP of one simulated Photon: when it is up, its SSID, its key, its client sessions.

How this works
--------------
``softap_for(device)`` attaches (once per device) a :class:`SoftAp` that follows the device's
lifecycle through its boot and shutdown hooks:

* at every boot it makes sure the device RSA key exists in the DCT (``keys.ensure_device_key``:
  generated at first boot from the world seed in process, from the OS CSPRNG for a device
  served on a socket - a seeded key would let anyone who knows the seed read the Wi-Fi
  passwords a phone sends) and watches listening mode;
* listening mode entered -> SoftAP up (``softap.start`` with the SSID ``<prefix>-<code>``, the
  prefix from DCT ``ssid_prefix`` - ``Photon`` written there when unset, as Device OS does - and
  the 6-character DCT ``device_code``); listening mode left, reset or power loss -> SoftAP down:
  every open client session is closed and the per-session ``configure-ap`` slots are forgotten.

Transports ask for a session per client connection (:meth:`SoftAp.open_tcp`,
:meth:`SoftAp.open_http`); while SoftAP is down they get None (the access point is not there:
the edge resets the connection). After ``connect-ap`` answers, :meth:`SoftAp.schedule_complete`
ends listening mode ``complete_delay_s`` later (``softap_complete``) and the system connects to
the network it knows; a device with no credentials at all goes back to listening mode.
Everything runs on the world's clock; real sockets live in ``transports.softap.edge``.

The device is a :class:`~transports.device_surface.SoftApDevice`: besides identity, lifecycle,
listening mode and the control services (claim code, scans), the DCT's SSID prefix and key
fields and a way to store Wi-Fi credentials as the SoftAP HAL does (the composition side's
``surface_for(device)`` provides those).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa

from firmware_sim.kernel.errors import ConfigurationError
from firmware_sim.kernel.world import World

from ..device_surface import SoftApDevice
from .commands import EnterpriseConfig, SoftApCommands
from .http import HttpSession
from .keys import KEY_BITS, PUBLIC_EXPONENT, ensure_device_key, generate_rsa_key, public_key_der
from .options import SoftApOptions
from .session import Session
from .tcp import TcpSession

__all__ = [
    "DEFAULT_SSID_PREFIX",
    "DEVICE_HTTP_PORT",
    "DEVICE_IP",
    "DEVICE_TCP_PORT",
    "Session",
    "SoftAp",
    "SoftApOptions",
    "device_rsa_key",
    "softap_for",
]

DEFAULT_SSID_PREFIX = "Photon"
MAX_SSID_PREFIX = 25
#: The device's own addresses (device-os.md §6), for display.
DEVICE_IP = "192.168.0.1"
DEVICE_HTTP_PORT = 80
DEVICE_TCP_PORT = 5609
SOFTAP_CHANNEL = 11
#: ``world.shared`` key of the SoftAPs of a world's devices, by device name.
_REGISTRY = "softap"

_S = TypeVar("_S", TcpSession, HttpSession)


class SoftAp:
    """The SoftAP setup service of one Photon-profile device."""

    def __init__(self, device: SoftApDevice, options: SoftApOptions | None = None) -> None:
        if not device.profile.has_softap:
            raise ConfigurationError(
                f"profile {device.profile.name} has no SoftAP (only the Gen2 Photon does)")
        self.device = device
        self.world = device.world
        self.options = options or SoftApOptions()
        self.tracer = device.world.trace.bind(device.name, "softap")
        self.commands = SoftApCommands(self)
        self.active = False
        self.ssid: str | None = None
        self.key: rsa.RSAPrivateKey | None = None
        #: ``configure-ap`` index -> SSID, for this SoftAP session.
        self.slots: dict[int, str] = {}
        self.enterprise: EnterpriseConfig | None = None
        self._sessions: dict[int, Session] = {}
        self._next_conn = 0
        self._listeners: list[Callable[[bool], None]] = []
        self._stop_listening: Callable[[], None] | None = None
        device.boot_hooks.append(self._on_boot)
        device.shutdown_hooks.append(self._on_shutdown)
        if device.running:
            self._on_boot(device)
            if device.listening.active:
                self._start()

    # -- lifecycle -----------------------------------------------------------------------------

    def _on_boot(self, _device: object) -> None:
        self._ensure_key()
        self._stop_listening = self.device.listening.on_change(self._listening_changed)

    def _on_shutdown(self, _device: object) -> None:
        self._stop("device shutdown")
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None

    def _listening_changed(self, listening: bool) -> None:
        if listening:
            self._start()
        else:
            self._stop("listening mode ended")

    def _ensure_key(self) -> None:
        device = self.device
        status = ensure_device_key(device, lambda: (
            rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS)
            if device.secrets_from_os() else device_rsa_key(self.world, device.device_id)))
        self.key = status.key
        fingerprint = hashlib.sha256(public_key_der(status.key.public_key())).hexdigest()[:16]
        self.tracer.emit("softap.device_key", generated=status.generated,
                         public_key_rewritten=status.public_key_rewritten,
                         bits=status.key.key_size, sha256=fingerprint)

    def setup_ssid(self) -> str:
        """``<prefix>-<code>``, read from the DCT (nothing is written)."""
        prefix = self.device.ssid_prefix() or DEFAULT_SSID_PREFIX
        return f"{prefix[:MAX_SSID_PREFIX]}-{self.device.setup_code}"

    def _start(self) -> None:
        if self.active:
            return
        device = self.device
        if device.ssid_prefix() is None:  # fetch_or_generate_ssid_prefix
            device.set_ssid_prefix(DEFAULT_SSID_PREFIX)
        self.ssid = self.setup_ssid()
        self.active = True
        self.slots.clear()
        self.tracer.emit("softap.start", ssid=self.ssid, ip=DEVICE_IP, channel=SOFTAP_CHANNEL)
        self._notify(True)

    def _stop(self, reason: str) -> None:
        if not self.active:
            return
        self.active = False
        for session in list(self._sessions.values()):
            session.close("SoftAP stopped")
        self.slots.clear()
        self.tracer.emit("softap.stop", reason=reason)
        self._notify(False)

    def on_change(self, listener: Callable[[bool], None]) -> Callable[[], None]:
        """``listener(up)`` when SoftAP starts or stops; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, up: bool) -> None:
        for listener in list(self._listeners):
            listener(up)

    # -- sessions ------------------------------------------------------------------------------

    def open_tcp(self, send: Callable[[bytes], None], close: Callable[[], None]
                 ) -> TcpSession | None:
        """A session for a new TCP client, or None while SoftAP is down."""
        if not self.active:
            self.tracer.emit("softap.refused", protocol="tcp", reason="SoftAP is down")
            return None
        session = TcpSession(self, self._new_conn(), send, close)
        return self._register(session)

    def open_http(self, send: Callable[[bytes], None], close: Callable[[], None]
                  ) -> HttpSession | None:
        """A session for a new HTTP client, or None while SoftAP is down."""
        if not self.active:
            self.tracer.emit("softap.refused", protocol="http", reason="SoftAP is down")
            return None
        session = HttpSession(self, self._new_conn(), send, close)
        return self._register(session)

    def _new_conn(self) -> int:
        self._next_conn += 1
        return self._next_conn

    def _register(self, session: _S) -> _S:
        self._sessions[session.conn] = session
        self.tracer.emit("softap.connection", conn=session.conn, protocol=session.protocol)
        return session

    def session_closed(self, session: Session, reason: str) -> None:
        if self._sessions.pop(session.conn, None) is not None:
            self.tracer.emit("softap.closed", conn=session.conn, protocol=session.protocol,
                             reason=reason)

    def close_sessions(self, reason: str = "server stopped") -> None:
        for session in list(self._sessions.values()):
            session.close(reason)

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    # -- what commands need --------------------------------------------------------------------

    def has_credentials_at(self, index: int) -> bool:
        if index in self.slots:
            return True
        return 0 <= index < self.device.wifi_credential_count()

    def schedule_complete(self) -> None:
        """``softap_complete``: leave listening mode shortly after the reply has gone out."""
        self.world.call_later(self.options.complete_delay_s, self._complete,
                              label="softap-complete")

    def _complete(self) -> None:
        device = self.device
        if not device.running or not device.listening.active:
            return
        self.tracer.emit("softap.complete", known_networks=device.wifi_credential_count())
        # The device connects, or goes back to listening mode without credentials.
        device.listening.exit()


_KEY_CACHE: dict[tuple[int, str], rsa.RSAPrivateKey] = {}


def device_rsa_key(world: World, device_id: str) -> rsa.RSAPrivateKey:
    """The key a device with this id generates in this world: the primes come from
    ``world.rng_for("device-rsa-key:<id>")``, so it is a pure function of the seed and the id
    (memoised per process: generating one takes about 0.1 s)."""
    cache_key = (world.seed, device_id)
    key = _KEY_CACHE.get(cache_key)
    if key is None:
        if len(_KEY_CACHE) >= 64:
            _KEY_CACHE.clear()
        key = _KEY_CACHE[cache_key] = generate_rsa_key(
            world.rng_for(f"device-rsa-key:{device_id}"))
    return key


def softap_for(device: SoftApDevice, options: SoftApOptions | None = None) -> SoftAp:
    """The device's SoftAP, attached on first use (``options`` apply to a new one only).

    One per device name in a world (a name is unique there), whatever object stands for it.
    """
    registry: dict[str, SoftAp] = device.world.shared.setdefault(_REGISTRY, {})
    softap = registry.get(device.name)
    if softap is None:
        softap = registry[device.name] = SoftAp(device, options)
    return softap
