"""A simulated device: the composition root of HAL, system and communication for one node.

How this works
--------------
Persistent state (the DCT, the Wi-Fi credentials) lives in objects that survive reboots; a
file-backed device keeps them under its storage directory (``dct.bin``, ``wifi.json``) so they
also survive process restarts. Retained RAM (the persisted cloud session, the next boot's reset
reason) survives a software reset but not a power loss. Everything else - system event
subscribers, the network and cloud state machines, the user firmware instance - is rebuilt on
every boot.

Lifecycle: ``power_on()`` boots; ``reset(reason)`` is a software reset (retained RAM kept);
``power_cycle()`` / ``power_off()`` lose retained RAM. On boot the reset reason is read once
(``power_down`` after a power loss) and published as ``spark/device/last_reset`` with the first
cloud handshake of that boot. In AUTOMATIC mode the device connects the network and the cloud by
itself and enters listening mode when it has no Wi-Fi credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..communication.event_names import RESET_EVENT, SYSTEM_EVENT_PREFIXES
from ..communication.protocol import DeviceIdentity, ProtocolOptions
from ..communication.session import SessionPersist
from ..hal.claim import ClaimCodeHal
from ..hal.dct import (
    STARTUP_MODE_FLAG_OFFSET,
    Dct,
    FaultHook,
    FileDctBackend,
    MemoryDctBackend,
)
from ..hal.device_config import SETUP_CODE_ALPHABET, DeviceConfigHal
from ..hal.retained import RetainedMemory
from ..kernel.errors import ConfigurationError, UsageError
from ..kernel.ids import validate_device_id
from ..kernel.world import World
from ..profiles import PlatformProfile, get_profile
from ..services.log import DeviceLog, log_lines
from .app import Firmware, Particle
from .claiming import ClaimCodeRules
from .cloud import CloudConnection, CloudConnector, CloudTiming, HandshakeInputs
from .control_services import build_dispatcher
from .events import SystemEvent, SystemEventBus
from .listening import ListeningMode
from .network import CredentialStore, NetworkManager, NetworkTiming, WifiCredentials
from .radio import radio_environment

FirmwareFactory = Callable[[], Firmware]

RESET_REASONS = (
    "unknown", "pin_reset", "power_management", "power_down", "power_brownout", "watchdog",
    "update", "update_error", "update_timeout", "factory_reset", "safe_mode", "dfu_mode", "panic",
    "user", "config_update",
)

_SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SERIAL_PREFIX = {32: "P046", 12: "ARAV", 6: "PH0A"}


class SystemMode(Enum):
    AUTOMATIC = "automatic"
    SEMI_AUTOMATIC = "semi_automatic"
    MANUAL = "manual"


@dataclass(frozen=True)
class FirmwareOptions:
    """Build-time options of the simulated Device OS + application."""

    #: Models the fix: also publish the claim code after a resumed session.
    send_claim_code_on_resume: bool = False
    system_mode: SystemMode = SystemMode.AUTOMATIC
    #: SYSTEM_FLAG_PUBLISH_RESET_INFO
    publish_reset_info: bool = True
    updates_enabled: bool = True
    updates_forced: bool = False
    product_id: int | None = None
    product_version: int = 0xFFFF
    app_name: str = "fwsim-app"
    app_version: int = 1
    protocol: ProtocolOptions = field(default_factory=ProtocolOptions)
    network: NetworkTiming = field(default_factory=NetworkTiming)
    cloud: CloudTiming = field(default_factory=CloudTiming)
    boot_delay_s: float = 0.05
    #: Device Protection: a protected device refuses most control requests (PROTECTED).
    device_protected: bool = False


class DeviceState(Enum):
    OFF = "off"
    RUNNING = "running"
    DFU = "dfu"


def _random_text(rng: Any, alphabet: str, length: int) -> str:
    return "".join(alphabet[rng.randrange(len(alphabet))] for _ in range(length))


class Device:
    """One simulated Particle device in a :class:`World`."""

    def __init__(self, world: World, name: str | None = None, *,
                 profile: str | PlatformProfile = "p2", device_id: str | None = None,
                 serial_number: str | None = None, mobile_secret: str | None = None,
                 storage_dir: str | Path | None = None, firmware: FirmwareFactory | None = None,
                 options: FirmwareOptions | None = None, dct_fault_hook: FaultHook | None = None,
                 wifi: list[WifiCredentials] | None = None) -> None:
        self.world = world
        self.profile = profile if isinstance(profile, PlatformProfile) else get_profile(profile)
        self.options = options or FirmwareOptions()
        rng = world.rng_for(f"device-identity:{name or len(world.nodes)}")
        self.storage_dir = Path(storage_dir) if storage_dir is not None else None
        backend = (FileDctBackend(self.storage_dir / "dct.bin") if self.storage_dir
                   else MemoryDctBackend())
        self.dct = Dct(backend, fault_hook=dct_fault_hook)
        self.claim = ClaimCodeHal(self.dct)
        self.config = DeviceConfigHal(self.dct)
        self.device_id = self._init_device_id(device_id, rng)
        self.name = name or f"dev-{self.device_id[-6:]}"
        world.add_node(self.name, self)
        self.serial_number = serial_number or self._default_serial(rng)
        self._init_secrets(mobile_secret, rng)
        self.credentials = CredentialStore(self.storage_dir / "wifi.json"
                                           if self.storage_dir else None)
        for creds in wifi or []:
            self.credentials.set(creds)
        self.retained = RetainedMemory()
        self.session = SessionPersist(self.retained)
        self.firmware_factory: FirmwareFactory = firmware or Firmware
        self.tracer = world.trace.bind(self.name, "system")
        self.log = DeviceLog(world.trace.bind(self.name, "log"), self.uptime_ms)
        self.claiming = ClaimCodeRules(self.claim, self.log,
                                       send_on_resume=self.options.send_claim_code_on_resume)
        self.state = DeviceState.OFF
        self.boot_count = 0
        self._boot_us = 0
        self._connector: CloudConnector | None = None
        self._power_lost = True
        self._safe_mode_next_boot = False
        self.safe_mode = False
        #: Hooks run at every boot, after the system objects exist (transports attach here).
        self.boot_hooks: list[Callable[[Device], None]] = []
        #: Hooks run when the device shuts down (reset / power off).
        self.shutdown_hooks: list[Callable[[Device], None]] = []
        self._build_runtime()

    # -- identity ------------------------------------------------------------------------------

    def _init_device_id(self, device_id: str | None, rng: Any) -> str:
        stored = self.dct.read_field("device_id")
        if device_id is not None:
            text = validate_device_id(device_id)
            if stored != bytes.fromhex(text):
                self.dct.write_field("device_id", bytes.fromhex(text))
            return text
        if stored != b"\xff" * 12:
            return stored.hex()
        text = "e00f" + "".join(f"{rng.randrange(256):02x}" for _ in range(10))
        self.dct.write_field("device_id", bytes.fromhex(text))
        return text

    def _default_serial(self, rng: Any) -> str:
        prefix = _SERIAL_PREFIX.get(self.profile.platform_id, "FWSM")
        return prefix + _random_text(rng, _SERIAL_ALPHABET, 15 - len(prefix))

    def _init_secrets(self, mobile_secret: str | None, rng: Any) -> None:
        if mobile_secret is not None:
            if self.config.device_secret() != mobile_secret:
                try:
                    self.config.set_device_secret(mobile_secret)
                except ValueError as exc:
                    raise ConfigurationError(str(exc)) from None
        elif self.config.device_secret() is None:
            self.config.set_device_secret(_random_text(rng, _SERIAL_ALPHABET, 15))
        if self.profile.has_softap and self.config.device_code() is None:
            self.config.set_device_code(_random_text(rng, SETUP_CODE_ALPHABET, 6))

    @property
    def mobile_secret(self) -> str:
        return self.config.device_secret() or ""

    @property
    def setup_code(self) -> str:
        return self.config.setup_code(self.serial_number)

    @property
    def device_id_bytes(self) -> bytes:
        return bytes.fromhex(self.device_id)

    # -- runtime (rebuilt on every boot) -------------------------------------------------------

    def _build_runtime(self) -> None:
        world = self.world
        self.events = SystemEventBus(world.scheduler, self.tracer.child("events"))
        self.network = NetworkManager(scheduler=world.scheduler, tracer=self.tracer.child("net"),
                                      events=self.events, radio=radio_environment(world),
                                      credentials=self.credentials,
                                      timing=self.options.network)
        identity = DeviceIdentity(
            device_id=self.device_id_bytes, platform_id=self.profile.platform_id,
            system_module_version=self.profile.system_module_version,
            product_id=(self.options.product_id if self.options.product_id is not None
                        else self.profile.platform_id),
            product_version=self.options.product_version,
            persists_session=self.profile.persists_session)
        self.particle = Particle(self)
        inputs = HandshakeInputs(
            is_tcp=self.profile.cloud_transport == "tcp",
            publish_reset_info=self.options.publish_reset_info, reset_reason=None,
            updates_enabled=self.options.updates_enabled,
            updates_forced=self.options.updates_forced,
            app_describe=self._app_describe,
            app_subscriptions=lambda: self.particle.subscription_prefixes)
        self.cloud = CloudConnection(
            scheduler=world.scheduler, tracer=self.tracer.child("cloud"), log=self.log,
            events=self.events, claiming=self.claiming, session=self.session, identity=identity,
            protocol_options=self.options.protocol, inputs=inputs,
            system_describe=self._system_describe, on_cloud_event=self._cloud_event,
            timing=self.options.cloud)
        self.cloud.connector = self._connector
        self.network.on_change(self.cloud.set_network_ready)
        self.listening = ListeningMode(self.tracer.child("listening"), self.events,
                                       self.cloud.set_blocked)
        self.listening.on_change(self._listening_changed)
        self.firmware: Firmware | None = None
        self.control = build_dispatcher(self)

    def _system_describe(self) -> bytes:
        describe = {"p": self.profile.platform_id, "v": self.profile.system_version,
                    "m": [{"f": "s", "n": "1", "v": self.profile.system_module_version}]}
        return json.dumps(describe, sort_keys=True, separators=(",", ":")).encode()

    def _app_describe(self) -> bytes:
        describe = {"app": self.options.app_name, "v": self.options.app_version,
                    "f": [], "v_": {}}
        return json.dumps(describe, sort_keys=True, separators=(",", ":")).encode()

    # -- cloud attachment ----------------------------------------------------------------------

    def attach_cloud(self, connector: CloudConnector) -> None:
        """Tell the device how to open a datagram port to its cloud (in-process or UDP)."""
        self._connector = connector
        self.cloud.connector = connector
        if self.state is DeviceState.RUNNING:
            self.cloud._maybe_start()

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state is DeviceState.RUNNING

    def uptime_ms(self) -> int:
        return max(0, (self.world.clock.now_us - self._boot_us) // 1000)

    def power_on(self) -> None:
        if self.state is DeviceState.RUNNING:
            raise UsageError(f"{self.name} is already running")
        self.world.scheduler.call_later(self.options.boot_delay_s, self._boot, label="boot")

    def _boot(self) -> None:
        if self.state is DeviceState.RUNNING:
            return
        if self._power_lost:
            self.retained.power_loss()
            reason = "power_down"
        else:
            reason = self.retained.reset_reason or "unknown"
        self._power_lost = False
        self.retained.reset_reason = None
        self.boot_count += 1
        self._boot_us = self.world.clock.now_us
        self.state = DeviceState.RUNNING
        self.safe_mode, self._safe_mode_next_boot = self._safe_mode_next_boot, False
        self.cloud.inputs.reset_reason = reason
        self.cloud.inputs.safe_mode = self.safe_mode
        self.tracer.emit("device.boot", boot=self.boot_count, reset_reason=reason,
                         profile=self.profile.name, device_id=self.device_id,
                         system_version=self.profile.system_version, safe_mode=self.safe_mode)
        for hook in list(self.boot_hooks):
            hook(self)
        automatic = self.options.system_mode is SystemMode.AUTOMATIC or self.safe_mode
        if automatic:
            self.cloud.want_connected = True
        if not self.safe_mode:  # safe mode runs Device OS without the application
            self.firmware = self.firmware_factory()
            self.firmware.setup(self.particle)
        startup_listening = self.dct.read(STARTUP_MODE_FLAG_OFFSET, 1) == b"\x01"
        if startup_listening:
            self.dct.write(STARTUP_MODE_FLAG_OFFSET, b"\x00")
        if startup_listening or (automatic and len(self.credentials) == 0):
            self.listening.enter()
        elif automatic:
            self.network.connect()

    def _listening_changed(self, active: bool) -> None:
        """Leaving listening mode, the system connects again when the cloud is wanted - or,
        without any Wi-Fi credentials, goes straight back to listening mode."""
        if active or self.state is not DeviceState.RUNNING or not self.cloud.want_connected:
            return
        if len(self.credentials) == 0:
            self.tracer.emit("listening.no_credentials", action="listening mode again")
            self.world.scheduler.call_soon(self.listening.enter, label="listen-again")
        elif not self.network.ready and not self.network.connecting:
            self.network.connect()

    def _shutdown(self) -> None:
        for hook in list(self.shutdown_hooks):
            hook(self)
        self.particle.stop()
        self.cloud.shutdown()
        self.network.shutdown()
        self.events.clear()
        self.state = DeviceState.OFF
        self._build_runtime()

    def reset(self, reason: str = "user", delay_s: float = 0.0, *,
              safe_mode: bool = False) -> None:
        """Software reset: retained RAM (the session) survives, RAM does not."""
        if reason not in RESET_REASONS:
            raise UsageError(f"unknown reset reason {reason!r}")
        if self.state is DeviceState.DFU:
            self.state = DeviceState.OFF
            self.retained.reset_reason = reason
            self.world.scheduler.call_later(self.options.boot_delay_s, self._boot, label="boot")
            return
        if self.state is not DeviceState.RUNNING:
            return
        self._safe_mode_next_boot = safe_mode
        self.events.notify(SystemEvent.RESET, 0)
        self.world.scheduler.call_later(delay_s, self._do_reset, reason, label="reset")

    def _do_reset(self, reason: str) -> None:
        if self.state is not DeviceState.RUNNING:
            return
        self.tracer.emit("device.reset", reason=reason)
        self.retained.reset_reason = reason
        self._shutdown()
        self.world.scheduler.call_later(self.options.boot_delay_s, self._boot, label="boot")

    def factory_reset(self) -> None:
        """Forget Wi-Fi credentials and the cloud session, then reset (``factory_reset``)."""
        self.credentials.clear()
        self.session.discard()
        self.reset("factory_reset")

    def enter_dfu(self) -> None:
        """Leave Device OS for the bootloader's DFU mode (no cloud, no control requests)."""
        if self.state is not DeviceState.RUNNING:
            return
        self.tracer.emit("device.dfu")
        self._shutdown()
        self.state = DeviceState.DFU

    def power_off(self) -> None:
        """Cut the power: RAM and retained RAM are lost; the DCT and credentials stay."""
        if self.state is DeviceState.RUNNING:
            self.tracer.emit("device.power_off")
            self._shutdown()
        self.state = DeviceState.OFF
        self._power_lost = True

    def power_cycle(self, off_s: float = 1.0) -> None:
        self.power_off()
        self.world.scheduler.call_later(off_s, self._boot, label="boot")

    # -- behaviour used by the app API and by control requests ---------------------------------

    @property
    def cloud_connected(self) -> bool:
        return self.running and self.cloud.connected

    def cloud_connect(self) -> None:
        if not self.running:
            return
        self.cloud.connect()
        if not self.network.ready and not self.network.connecting and len(self.credentials):
            self.network.connect()

    def cloud_disconnect(self, *, clear_session: bool = False) -> None:
        if self.running:
            self.cloud.disconnect(clear_session=clear_session)

    def app_publish(self, name: str, data: str | bytes, *, private: bool, ttl: int) -> bool:
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if not name or len(name) > 64 or len(payload) > 1024:
            self.tracer.emit("publish.rejected", name=name[:80], size=len(payload),
                             reason="name must be 1..64 characters and data at most 1024 bytes")
            return False
        if not self.cloud_connected:
            self.tracer.emit("publish.lost", name=name, cloud_state=self.cloud.state.value,
                             reason="cloud not connected"
                             if self.cloud.state.value == "disconnected"
                             else "handshake in progress")
            return False
        mid = self.cloud.protocol.publish(name, payload, private=private, ttl=ttl)
        self.tracer.emit("publish.sent", name=name, private=private, mid=mid)
        return mid is not None

    def _cloud_event(self, name: str, data: bytes) -> None:
        if name.startswith(SYSTEM_EVENT_PREFIXES):
            self._system_event_handler(name, data)
        self.particle.dispatch_event(name, data)

    def _system_event_handler(self, name: str, data: bytes) -> None:
        """``systemEventHandler`` of ``system_cloud_internal.cpp`` (the claim events go to the
        claim-code rules)."""
        if self.claiming.cloud_event(name):
            return
        if name == RESET_EVENT:
            action = data.decode("utf-8", "replace")
            self.tracer.emit("cloud.reset_request", data=action)
            if action in ("safe mode", "dfu", "reboot"):
                reason = {"safe mode": "safe_mode", "dfu": "dfu_mode"}.get(action, "user")
                self.reset(reason)

    # -- convenience for tests and scenarios ---------------------------------------------------

    def log_lines(self) -> list[str]:
        return log_lines(self.world.trace.records, self.name)

    def __repr__(self) -> str:
        return (f"<Device {self.name} {self.profile.name} id={self.device_id} "
                f"{self.state.value}>")
