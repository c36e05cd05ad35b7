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
import logging
import random
import struct
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from control_requests.dispatcher import ControlDispatcher

from ..communication.event_names import (
    KEY_RESTORE_EVENT,
    RESET_EVENT,
    SYSTEM_EVENT_PREFIXES,
    UPDATES_EVENT_PREFIX,
)
from ..communication.protocol import DeviceIdentity, ProtocolOptions
from ..communication.session import SessionPersist
from ..communication.wire import VariableType
from ..hal.claim import ClaimCodeHal
from ..hal.dct import (
    STARTUP_MODE_FLAG_OFFSET,
    Dct,
    FaultHook,
    FileDctBackend,
    MemoryDctBackend,
)
from ..hal.device_config import SETUP_CODE_ALPHABET, DeviceConfigHal
from ..hal.device_keys import DeviceKeys, RandomBytes
from ..hal.module_binary import ota_platform
from ..hal.modules import InstalledModules, firmware_modules
from ..hal.retained import RetainedMemory
from ..kernel.errors import ConfigurationError, UsageError
from ..kernel.ids import validate_device_id
from ..kernel.scheduler import StepAborted, WatchdogExpired
from ..kernel.world import World
from ..profiles import PlatformProfile, get_profile
from ..services.log import DeviceLog, LogLevel, log_lines
from .app import Firmware, Particle
from .claiming import ClaimCodeRules
from .cloud import (
    CLEAR_SESSION,
    SERVER_SETTINGS_CORRUPTED,
    CloudConnection,
    CloudConnector,
    CloudTiming,
    HandshakeInputs,
)
from .control_services import build_dispatcher
from .dfu import DeviceDfu
from .events import SystemEvent, SystemEventBus
from .features import Feature, FeatureFlags
from .firmware_update import UPDATE_STATUS_IN_PROGRESS, FirmwareUpdater, UpdateHooks
from .listening import ListeningMode
from .network import CredentialStore, NetworkManager, NetworkTiming, WifiCredentials
from .radio import radio_environment
from .server_config import ServerConfig, ServerSettings, decode_server_moved
from .timing import DEFAULT_TIMING, TimingProfile, timing_profile

FirmwareFactory = Callable[[], Firmware]
#: ``FirmwareOptions.firmware_errors`` values
FIRMWARE_ERRORS = ("raise", "panic")
#: the panic code ``HardFault`` (``services/inc/panic.h``)
PANIC_HARD_FAULT = 1

_log = logging.getLogger("fwsim.firmware")

RESET_REASONS = (
    "unknown", "pin_reset", "power_management", "power_down", "power_brownout", "watchdog",
    "update", "update_error", "update_timeout", "factory_reset", "safe_mode", "dfu_mode", "panic",
    "user", "config_update",
)

#: ``world.shared`` key: device name -> the device, for the BLE transport's start-up rules
#: (:meth:`Device.ble_channel_at_boot`, :meth:`Device.ble_provisioning_allowed`)
BLE_RULES = "ble-system-rules"

#: ``START_DFU_FLASHER_SERIAL_SPEED``: opening the USB serial port at this bit rate enters DFU
START_DFU_FLASHER_SERIAL_SPEED = 14400
#: ``system_get_update_status`` values carried by the ``firmware_update_status`` event
UPDATE_STATUS_UNKNOWN, UPDATE_STATUS_NOT_AVAILABLE, UPDATE_STATUS_PENDING = 0, 1, 2

_SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SERIAL_PREFIX = {32: "P046", 12: "ARAV", 6: "PH0A"}


class SystemMode(Enum):
    AUTOMATIC = "automatic"
    SEMI_AUTOMATIC = "semi_automatic"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
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
    #: the timing profile (``system/timing.py``): ``thread`` (calibrated to the forum thread's
    #: P2) or ``fast``; the four fields below override parts of it (None: the profile's)
    timing: str = DEFAULT_TIMING
    protocol: ProtocolOptions | None = None
    network: NetworkTiming | None = None
    cloud: CloudTiming | None = None
    boot_delay_s: float | None = None
    #: Device Protection: a protected device refuses most control requests (PROTECTED).
    device_protected: bool = False
    #: The DER public key whose signatures a ServerMoved request must carry (Device OS builds
    #: Particle's in; None: no request validates).
    server_moved_key: bytes | None = None
    #: What an exception raised by the user firmware (its construction, ``setup``, a timer, an
    #: event or system-event handler, a function handler, a variable getter) does: ``raise``
    #: lets it propagate out of the world's run, so a test sees the bug; ``panic`` does what a
    #: fault in user code does on hardware - the device panics (``hard_fault``: the next
    #: boot's ``spark/device/last_reset`` is ``panic, hard_fault``) and resets, the rest of
    #: that step is abandoned (a function call gets no answer), and the world keeps running
    #: (``fwsim up`` and ``fwsim device run`` use it).
    firmware_errors: str = "raise"

    def resolved_timing(self) -> TimingProfile:
        """The named profile with this options' overrides applied (the named profile itself,
        shared by every device, when nothing is overridden)."""
        base = timing_profile(self.timing)
        if (self.boot_delay_s is None and self.network is None and self.cloud is None
                and self.protocol is None):
            return base
        return TimingProfile(
            base.name, base.summary,
            base.boot_delay_s if self.boot_delay_s is None else self.boot_delay_s,
            self.network or base.network, self.cloud or base.cloud,
            self.protocol or base.protocol)


class DeviceState(Enum):
    OFF = "off"
    RUNNING = "running"
    DFU = "dfu"
    #: the bootloader is starting DFU mode (between the reset and the enumeration)
    ENTERING_DFU = "entering_dfu"
    #: a panic is flashing its SOS pattern (interrupts off: nothing runs) before the reset
    PANIC = "panic"


def panic_sos_s(code: int) -> float:
    """How long a panic flashes its pattern before the reset (``panic_internal`` in Device OS's
    ``services/src/panic.c``): twice the SOS preamble (3 x 250 ms + 100, 3 x 400 ms + 100,
    3 x 250 ms + 900) and then ``code`` pulses of 600 ms and an 800 ms pause - 10.4 s for a
    hard fault (code 1)."""
    sos_ms = 3 * 250 + 100 + 3 * 400 + 100 + 3 * 250 + 900
    return 2 * (sos_ms + code * 600 + 800) / 1000


class _HandshakeAnswers:
    """A device's answers to what its handshakes ask (``HandshakeQuestions``), read from the
    device at the time."""

    __slots__ = ("_device",)

    def __init__(self, device: Device) -> None:
        self._device = device

    def app_describe(self) -> bytes:
        return self._device._app_describe()

    def app_subscriptions(self) -> list[str]:
        return self._device.particle.subscription_prefixes

    def send_app_description(self) -> bool:
        device = self._device
        return device.options.system_mode is not SystemMode.AUTOMATIC or device.app_setup_done

    def time_known(self) -> bool:
        return self._device._time_known()

    def call_function(self, name: str, argument: str) -> int | None:
        return self._device.particle.call_function(name, argument)

    def variable_value(self, name: str) -> tuple[VariableType, bytes] | None:
        return self._device.particle.variable_value(name)


def _random_text(rng: Any, alphabet: str, length: int) -> str:
    return "".join(alphabet[rng.randrange(len(alphabet))] for _ in range(length))


class Device:
    """One simulated Particle device in a :class:`World`.

    Memory: a fleet holds thousands of these, so the attributes are slots (an instance dict of
    more than 30 keys is not key-shared: 1.5 KiB per device), and the parts an idle device never
    uses - the control-request dispatcher, listening mode - are built on first use (the same
    object until the next boot, as before). The parts that hold the DCT (``claim``, ``config``,
    ``features``, ``server_config``, ``keys``) stay in the instance dict, where a tool that
    reopens the flash after a power cut finds them with ``vars(device)``; ``__dict__`` also
    takes any attribute a test or a subclass adds.
    """

    __slots__ = (
        "__dict__", "__weakref__", "_boot_us", "_connector", "_control", "_firmware_update",
        "_installed_modules", "_last_failure", "_listening", "_power_lost", "_safe_mode_next_boot",
        "app_setup_done", "boot_count", "boot_hooks",
        "claiming", "cloud", "credentials", "dct", "device_id", "dfu", "events", "firmware",
        "firmware_factory", "key_errors", "log", "name", "network", "options", "particle",
        "profile", "retained", "safe_mode", "secrets_from_os", "serial_number", "session",
        "shutdown_hooks",
        "state", "storage_dir", "timing", "tracer", "updates_forced", "updates_pending",
        "world",
    )

    def __init__(self, world: World, name: str | None = None, *,
                 profile: str | PlatformProfile = "p2", device_id: str | None = None,
                 serial_number: str | None = None, mobile_secret: str | None = None,
                 storage_dir: str | Path | None = None, firmware: FirmwareFactory | None = None,
                 options: FirmwareOptions | None = None, dct_fault_hook: FaultHook | None = None,
                 wifi: list[WifiCredentials] | None = None,
                 key_random: RandomBytes | None = None) -> None:
        self.world = world
        self.profile = profile if isinstance(profile, PlatformProfile) else get_profile(profile)
        self.options = options or FirmwareOptions()
        if self.options.firmware_errors not in FIRMWARE_ERRORS:
            raise UsageError(f"firmware_errors must be one of {', '.join(FIRMWARE_ERRORS)}, not "
                             f"{self.options.firmware_errors!r}")
        self.timing = self.options.resolved_timing()
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
        #: True when the device's secrets come from ``key_random`` (the OS CSPRNG for a device
        #: on a socket): its mobile secret and, on a Photon, its SoftAP RSA key too; in-process
        #: devices keep seeded ones (a run stays replayable)
        self.secrets_from_os = key_random is not None
        self._init_secrets(mobile_secret, random.Random(key_random(32)) if key_random else rng)
        self.credentials = CredentialStore(self.storage_dir / "wifi.json"
                                           if self.storage_dir else None)
        for creds in wifi or []:
            self.credentials.set(creds)
        self.retained = RetainedMemory()
        self._last_failure: tuple[str, str] | None = None
        self.session = SessionPersist(self.retained)
        self.firmware_factory: FirmwareFactory = firmware or Firmware
        self.tracer = world.trace.bind(self.name, "system")
        self.log = DeviceLog(world.trace.bind(self.name, "log"), self.uptime_ms)
        self.claiming = ClaimCodeRules(self.claim, self.log,
                                       send_on_resume=self.options.send_claim_code_on_resume)
        self.features = FeatureFlags(self.dct)
        self.server_config = ServerConfig(self.dct, self.log)
        if self.server_config.erased():  # factory provisioning of a new DCT
            self.server_config.restore_defaults(quiet=True)
        #: the P-256 key pair of the UDP cloud link (DCT ``alt_device_*_key``), generated once
        #: when the DCT has none: from ``key_random`` (the testbed passes the OS CSPRNG for a
        #: device on a socket), else from a seeded stream (in-process runs stay replayable)
        self.keys = DeviceKeys(self.dct)
        self.keys.ensure(key_random or world.rng_for(f"device-key:{self.name}").randbytes)
        rules: dict[str, Device] = world.shared.setdefault(BLE_RULES, {})
        rules[self.name] = self
        self.dfu = DeviceDfu(world, self.name, self.dct, dfu_pid=self.profile.dfu_pid,
                             usb_vid=self.profile.usb_vid, series=self.profile.series,
                             device_id=self.device_id,
                             protected=self._device_protected, leave=self._leave_dfu)
        #: ``particle_key_errors`` of the current boot
        self.key_errors = 0
        self.app_setup_done = False
        self.state = DeviceState.OFF
        self.boot_count = 0
        self._boot_us = 0
        self._connector: CloudConnector | None = None
        self._power_lost = True
        self._safe_mode_next_boot = False
        self.safe_mode = False
        #: the modules in flash (``hal/modules.py``), made on first use
        self._installed_modules: InstalledModules | None = None
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
        drawn = "e00f" + "".join(f"{rng.randrange(256):02x}" for _ in range(10))
        if stored != b"\xff" * 12:
            # the id stored by an earlier run wins; it was drawn all the same, so what the
            # stream gives next - the serial number - is the first run's again
            return stored.hex()
        text = drawn
        self.dct.write_field("device_id", bytes.fromhex(text))
        return text

    def _default_serial(self, rng: Any) -> str:
        prefix = _SERIAL_PREFIX.get(self.profile.platform_id, "FWSM")
        return prefix + _random_text(rng, _SERIAL_ALPHABET, 15 - len(prefix))

    def _init_secrets(self, mobile_secret: str | None, rng: Any) -> None:
        """The mobile secret (BLE) and the setup code, kept in the DCT once made; ``rng`` is
        seeded from the OS CSPRNG for a device on a socket (anyone who knows the world seed
        could otherwise compute the secret and pass the BLE handshake)."""
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

    def keys_checksum(self) -> int:
        """``compute_checksum`` of ``dtls_message_channel.cpp``: a CRC over the CRCs of the
        server public key and the device private key; a persisted session whose checksum
        differs is not restored (new keys, or another cloud: a full handshake). fwsim: zlib's
        CRC-32 over the two DCT fields (Device OS uses the HAL's CRC-32 over the key buffers;
        UNVERIFIED whether the values agree)."""
        server = zlib.crc32(self.dct.read_field("alt_server_public_key"))
        device = zlib.crc32(self.dct.read_field("alt_device_private_key"))
        return zlib.crc32(struct.pack("<II", server, device))

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
                                      timing=self.timing.network)
        identity = DeviceIdentity(
            device_id=self.device_id_bytes, platform_id=self.profile.platform_id,
            system_module_version=self.profile.system_module_version,
            product_id=(self.options.product_id if self.options.product_id is not None
                        else self.profile.platform_id),
            product_version=self.options.product_version,
            persists_session=self.profile.persists_session,
            keys_checksum=self.keys_checksum())
        self.particle = Particle(self)
        inputs = HandshakeInputs(
            is_tcp=self.profile.cloud_transport == "tcp",
            publish_reset_info=self.options.publish_reset_info, reset_reason=None,
            updates_enabled=self.options.updates_enabled,
            updates_forced=self.options.updates_forced,
            device=_HandshakeAnswers(self))
        self.cloud = CloudConnection(
            scheduler=world.scheduler, tracer=self.tracer.child("cloud"), log=self.log,
            events=self.events, claiming=self.claiming, session=self.session, identity=identity,
            protocol_options=self.timing.protocol, inputs=inputs,
            system_describe=self._system_describe, on_cloud_event=self._cloud_event,
            timing=self.timing.cloud, on_server_moved=self._server_moved,
            on_time=self._time_synced)
        self.updates_forced = self.options.updates_forced
        self.updates_pending: bool | None = None  # None: no "pending" event this boot
        self.cloud.connector = self._connector
        self.network.on_change(self.cloud.set_network_ready)
        self._listening: ListeningMode | None = None  # built on first use: ``listening``
        self.firmware: Firmware | None = None
        self._control: ControlDispatcher | None = None  # built on first use: ``control``
        self._firmware_update: FirmwareUpdater | None = None  # built on first use

    @property
    def listening(self) -> ListeningMode:
        """Listening mode of this boot (built when first asked for: most devices never are)."""
        listening = self._listening
        if listening is None:
            listening = self._listening = ListeningMode(
                self.tracer.child("listening"), self.events, self.cloud.set_blocked,
                allowed=self._listening_allowed, log=self.log)
            listening.on_change(self._listening_changed)
        return listening

    @property
    def control(self) -> ControlDispatcher:
        """The control-request dispatcher of this boot (built when a request first comes). A
        device that is not running - off, panicking (interrupts off), in DFU mode - runs no
        Device OS, so its dispatcher is a closed one: a request is traced and dropped, and the
        host times out."""
        control = self._control
        running = self.state is DeviceState.RUNNING
        if control is None or (control.closed and running):
            control = self._control = build_dispatcher(self)
            if not running:
                control.close()
        return control

    @property
    def installed_modules(self) -> InstalledModules:
        """The firmware modules in flash; a file-backed device keeps them in ``modules.json``."""
        modules = self._installed_modules
        if modules is None:
            options = self.options
            modules = self._installed_modules = InstalledModules(
                lambda: firmware_modules(system_version=self.profile.system_module_version,
                                         app_version=options.app_version,
                                         device_id=self.device_id),
                ota_platform(self.profile.platform_id), self._modules_path())
        return modules

    def _modules_path(self) -> Path | None:
        return self.storage_dir / "modules.json" if self.storage_dir is not None else None

    @property
    def firmware_update(self) -> FirmwareUpdater:
        """The firmware update of this boot (``system/firmware_update.py``)."""
        updater = self._firmware_update
        if updater is None:
            updater = self._firmware_update = FirmwareUpdater(
                self.installed_modules, tracer=self.tracer.child("ota"), log=self.log,
                events=self.events, hooks=UpdateHooks(
                    updates_allowed=lambda: self.options.updates_enabled or self.updates_forced,
                    clear_update_pending=self._clear_update_pending,
                    update_status=self._update_status,
                    pending_shutdown=self._pending_shutdown))
        return updater

    def _clear_update_pending(self) -> None:
        if self.updates_pending is not None:
            self.updates_pending = False

    def _pending_shutdown(self, reason: str, delay_s: float) -> None:
        """``system_pending_shutdown``: ``reset_pending``, then the reset."""
        self.events.notify(SystemEvent.RESET_PENDING, 0)
        self.reset(reason, delay_s)

    def _install_staged_modules(self) -> str | None:
        """The boot reads the slots a host wrote over DFU, the bootloader copies the modules an
        update put in slots (``hal/modules.py``); returns why the system will not run the
        application (then it boots into safe mode)."""
        path = self._modules_path()
        written = self.dfu.take_flash_changes()
        if self._installed_modules is None and not written and (
                path is None or not (path.exists() or path.with_name("assets.json").exists())):
            return None
        modules = self.installed_modules
        if written:
            for read in modules.read_slots(self.dfu.flash.read, written):
                listed = read.listed
                self.tracer.emit("bootloader.module_found", function=int(read.bounds.function),
                                 index=int(read.bounds.index),
                                 version=listed.version if listed is not None else None,
                                 listed=listed is not None,
                                 usable=read.found is not None and read.found.usable)
        for module in modules.boot():
            self.tracer.emit("bootloader.module_installed", type=int(module.type),
                             index=module.index, version=module.version, size=module.size)
        required = modules.required_assets()
        for asset in required:
            self.log.info("system", f"Required asset name={asset.name} hash={asset.hash.hex()}")
        missing = modules.missing_assets() if required else []
        if missing:
            self.log.info("system", f"There are {len(missing)} missing assets")
            for asset in missing:
                self.log.info("system", f"Missing {asset.name} ({asset.hash.hex()})")
        return modules.safe_mode_reason()

    def _system_describe(self) -> bytes:
        describe = {"p": self.profile.platform_id, "v": self.profile.system_version,
                    "m": [{"f": "s", "n": "1", "v": self.profile.system_module_version}]}
        return json.dumps(describe, sort_keys=True, separators=(",", ":")).encode()

    def _app_describe(self) -> bytes:
        """The application DESCRIBE. With functions or variables registered it is Device OS's
        (``system_app_info``, ``system/src/system_info.cpp``): ``{"f":[names],"v":{name:
        type code}}`` in registration order; with none, fwsim's own document (the app's name
        and version, unchanged so that every trace stays as it was)."""
        particle = self.particle
        functions, variables = particle.function_names, particle.variable_types
        if functions or variables:
            return json.dumps({"f": functions, "v": {name: int(kind) for name, kind
                                                     in variables.items()}},
                              separators=(",", ":")).encode()
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
        self.world.scheduler.call_later(self.timing.boot_delay_s, self._boot, label="boot")

    def _boot(self) -> None:
        if self.state is DeviceState.RUNNING:
            return
        if self._power_lost:
            self.retained.power_loss()
            reason = "power_down"
        else:
            reason = self.retained.reset_reason or "unknown"
        self._power_lost = False
        unusable = self._install_staged_modules()
        self.retained.reset_reason = None
        reset_data, self.retained.reset_data = self.retained.reset_data, 0
        self.boot_count += 1
        self._boot_us = self.world.clock.now_us
        self.state = DeviceState.RUNNING
        self.safe_mode, self._safe_mode_next_boot = self._safe_mode_next_boot, False
        if unusable is not None and not self.safe_mode:
            self.tracer.emit("system.safe_mode", reason=unusable)
            self.safe_mode = True
        self.cloud.inputs.reset_reason = reason
        self.cloud.inputs.reset_data = reset_data
        self.cloud.inputs.safe_mode = self.safe_mode
        self._validate_server_settings()
        # Spark_Protocol_Init reads the keys at every start: the session restore compares the
        # checksum of this boot's keys (the server key may have changed since the last one)
        protocol = self.cloud.protocol
        protocol.identity = replace(protocol.identity, keys_checksum=self.keys_checksum())
        self.tracer.emit("device.boot", boot=self.boot_count, reset_reason=reason,
                         profile=self.profile.name, device_id=self.device_id,
                         system_version=self.profile.system_version, safe_mode=self.safe_mode)
        for hook in list(self.boot_hooks):
            hook(self)
        automatic = self.options.system_mode is SystemMode.AUTOMATIC or self.safe_mode
        if automatic:
            self.cloud.want_connected = True
        self.app_setup_done = False
        if not self.safe_mode:  # safe mode runs Device OS without the application
            self.firmware = self.particle.run_user("the firmware's construction",
                                                   self.firmware_factory)
            self.particle.run_user("setup()", self.firmware.setup, self.particle)
            self.app_setup_done = True
        startup_listening = self.dct.read(STARTUP_MODE_FLAG_OFFSET, 1) == b"\x01"
        if startup_listening:
            self.dct.write(STARTUP_MODE_FLAG_OFFSET, b"\x00")
        if startup_listening or (automatic and len(self.credentials) == 0):
            self.listening.enter()
        elif automatic:
            self.network.connect()

    def _listening_changed(self, active: bool) -> None:
        """Entering listening mode takes the network down too (``ListeningModeHandler::enter``:
        ``cloud_disconnect`` then ``NetworkManager::deactivateConnections``; the interface stays
        powered, so it can scan and join). Leaving it, the system connects again when the cloud
        is wanted - or, without any Wi-Fi credentials, goes straight back to listening mode."""
        if active:
            if self.network.ready or self.network.connecting:
                self.network.disconnect()
            return
        if self.state is not DeviceState.RUNNING or not self.cloud.want_connected:
            return
        if len(self.credentials) == 0:
            self.tracer.emit("listening.no_credentials", action="listening mode again")
            self.world.scheduler.call_soon(self.listening.enter, label="listen-again")
        elif not self.network.ready and not self.network.connecting:
            self.network.connect()

    def _shutdown(self) -> None:
        for hook in list(self.shutdown_hooks):
            hook(self)
        if self._firmware_update is not None:
            self._firmware_update.discard()
        if self._control is not None:
            self._control.close()
        self.particle.stop()
        self.cloud.shutdown()
        self.network.shutdown()
        self.events.clear()
        self.state = DeviceState.OFF
        self._build_runtime()

    def reset(self, reason: str = "user", delay_s: float = 0.0, *,
              safe_mode: bool = False, data: int = 0) -> None:
        """Software reset: retained RAM (the session) survives, RAM does not. In DFU mode a
        reset leaves the bootloader and boots Device OS."""
        if reason not in RESET_REASONS:
            raise UsageError(f"unknown reset reason {reason!r}")
        if self.state is DeviceState.DFU:
            self._leave_dfu(reason)
            return
        if self.state is DeviceState.PANIC:
            self._safe_mode_next_boot = safe_mode
            self._panic_reset(reason, data, self.boot_count)
            return
        if self.state is not DeviceState.RUNNING:
            return
        self._safe_mode_next_boot = safe_mode
        self.events.notify(SystemEvent.RESET, 0)
        self.world.scheduler.call_later(delay_s, self._do_reset, reason, data, label="reset")

    def _do_reset(self, reason: str, data: int = 0) -> None:
        if self.state is not DeviceState.RUNNING:
            return
        self._reset_now(reason, data)

    def _reset_now(self, reason: str, data: int) -> None:
        """The reset itself (``HAL_Core_System_Reset_Ex``): the reason and its data kept in
        retained RAM for the next boot, which comes after the bootloader's delay."""
        self.tracer.emit("device.reset", reason=reason)
        self.retained.reset_reason = reason
        self.retained.reset_data = data
        if self.state is DeviceState.RUNNING:
            self._shutdown()
        self.state = DeviceState.OFF
        self.world.scheduler.call_later(self.timing.boot_delay_s, self._boot, label="boot")

    def panic(self, code: int) -> None:
        """A system panic (``panic_``): everything stops at once (interrupts off: no network,
        no cloud, no control requests), the LED flashes SOS and the code
        (:func:`panic_sos_s`, 10.4 s for a hard fault), then the device resets with the reason
        ``panic`` and the code, published after the next handshake as ``panic, <name or
        code>``. A power cut or a reset during the pattern ends it sooner."""
        if self.state is not DeviceState.RUNNING:
            return
        sos_s = panic_sos_s(code)
        self.tracer.emit("device.panic", code=code, sos_s=sos_s)
        self._shutdown()
        self.state = DeviceState.PANIC
        self.world.scheduler.call_later(sos_s, self._panic_reset, "panic", code,
                                        self.boot_count, label="panic-reset")

    def _panic_reset(self, reason: str, data: int, boot: int) -> None:
        """The reset that ends the panic of boot ``boot``, or a reset asked for while the
        pattern flashes. The pattern's own reset does nothing once the device has booted again
        (a reset or power cycle ended that panic sooner)."""
        if self.state is DeviceState.PANIC and boot == self.boot_count:
            self._reset_now(reason, data)

    def firmware_failed(self, exc: BaseException, where: str) -> None:
        """The user firmware raised ``exc`` in ``where`` (``Particle.run_user``): return to let
        it propagate, or - ``firmware_errors="panic"`` - log it, panic (``hard_fault``) and
        abandon the current step (``StepAborted``). A firmware that the served world's step
        watchdog interrupted (``WatchdogExpired``: it blocked or looped) resets with the reason
        ``watchdog`` instead, as a hardware watchdog resets a device whose application hangs."""
        if self.options.firmware_errors != "panic" or self.state is not DeviceState.RUNNING:
            return
        hung = isinstance(exc, WatchdogExpired)
        try:
            text = str(exc)
        except Exception:  # an exception whose __str__ raises is still the firmware's
            text = "(its str() raised)"
        error = f"{type(exc).__name__}: {text}"[:300]
        outcome = "watchdog reset" if hung else "panic (hard_fault)"
        self.log.log(LogLevel.ERROR, "app",
                     f"{where} {'hung' if hung else 'raised'} {error}; {outcome}")
        frames = traceback.format_exception(exc)
        self.tracer.emit("app.failed", where=where, error=error,
                         traceback="".join(frames)[-4000:])
        # a firmware that fails the same way on every boot logs its traceback once
        repeated = self._last_failure == (where, error)
        self._last_failure = (where, error)
        _log.error("device %s: %s %s %s; %s%s", self.name,
                   where if where.startswith("the firmware") else f"the firmware's {where}",
                   "hung:" if hung else "raised", error, outcome,
                   " (as the last time: the traceback is in the trace's app.failed)"
                   if repeated else "", exc_info=None if repeated else exc)
        if hung:
            self.tracer.emit("device.watchdog")
            self._do_reset("watchdog")
        else:
            self.panic(PANIC_HARD_FAULT)
        raise StepAborted from None

    def factory_reset(self) -> None:
        """Forget Wi-Fi credentials and the cloud session, then reset (``factory_reset``)."""
        self.credentials.clear()
        self.session.discard()
        self.reset("factory_reset")

    def enter_dfu(self) -> None:
        """``System.dfu()``: reset into the bootloader's DFU mode (no Device OS: no cloud, no
        control requests); the bootloader enumerates on the platform's DFU PID."""
        if self.state is not DeviceState.RUNNING:
            return
        self.tracer.emit("device.dfu", reason="dfu_mode")
        self.retained.reset_reason = "dfu_mode"
        self._shutdown()
        self.state = DeviceState.ENTERING_DFU
        self.world.scheduler.call_later(self.timing.boot_delay_s, self._dfu_started,
                                        label="dfu-start")

    def _device_protected(self) -> bool:
        return self.options.device_protected

    def _dfu_started(self) -> None:
        if self.state is not DeviceState.ENTERING_DFU:
            return
        self.state = DeviceState.DFU
        self.retained.power_loss()  # UNVERIFIED: the session does not survive DFU (dfu.py)
        self.retained.reset_reason = "dfu_mode"
        self.tracer.emit("dfu.enumerated", pid=self.profile.dfu_pid)
        self.dfu.set_active(True)

    def _leave_dfu(self, reason: str = "dfu_mode") -> None:
        if self.state not in (DeviceState.DFU, DeviceState.ENTERING_DFU):
            return
        self.tracer.emit("dfu.leave", reason=reason)
        self.dfu.set_active(False)
        self.state = DeviceState.OFF
        self.retained.reset_reason = reason
        self.world.scheduler.call_later(self.timing.boot_delay_s, self._boot, label="boot")

    # -- feature flags (``system/features.py``) ------------------------------------------------

    def _listening_allowed(self) -> bool:
        return self.safe_mode or not self.features.get(Feature.DISABLE_LISTENING_MODE)

    def set_feature(self, feature: Feature, enabled: bool) -> int:
        """``HAL_Feature_Set``; setting DISABLE_LISTENING_MODE takes the device out of
        listening mode (``manage_listening_mode_flag``)."""
        result = self.features.set(feature, enabled)
        if (feature is Feature.DISABLE_LISTENING_MODE and enabled and self.running
                and self._listening is not None and self._listening.active
                and not self._listening_allowed()):
            self.listening.exit()
        return result

    def ble_channel_at_boot(self) -> bool:
        """``SystemControl::init``: the BLE control channel is initialised in safe mode or
        when listening mode is not disabled."""
        return self.safe_mode or not self.features.get(Feature.DISABLE_LISTENING_MODE)

    def ble_provisioning_allowed(self) -> bool:
        """BLE provisioning mode and its custom UUIDs need DISABLE_LISTENING_MODE."""
        return self.features.get(Feature.DISABLE_LISTENING_MODE)

    def line_coding_changed(self, bitrate: int) -> None:
        """``system_lineCodingBitRateHandler``: the USB serial port opened at 14400 baud
        cancels the network connection and enters DFU mode."""
        if bitrate == START_DFU_FLASHER_SERIAL_SPEED and self.running:
            self.tracer.emit("usb.serial_dfu_request", bitrate=bitrate)
            self.cloud_disconnect()
            self.enter_dfu()

    def power_off(self) -> None:
        """Cut the power: RAM and retained RAM are lost; the DCT and credentials stay."""
        if self.state is DeviceState.RUNNING:
            self.tracer.emit("device.power_off")
            self._shutdown()
        if self.state in (DeviceState.DFU, DeviceState.ENTERING_DFU):
            self.dfu.set_active(False)
        self.state = DeviceState.OFF
        self._power_lost = True

    def power_cycle(self, off_s: float = 1.0) -> None:
        self.power_off()
        self.world.scheduler.call_later(off_s, self._boot, label="boot")

    # -- server settings (``system/server_config.py``) -----------------------------------------

    def _validate_server_settings(self) -> None:
        """``Spark_Protocol_Init``: invalid server settings are restored, and remembered as
        key errors published after every handshake of this boot."""
        self.key_errors = 0
        if not self.server_config.validate():
            self.log.error("system", "Server settings are invalid, restoring defaults")
            self.key_errors |= SERVER_SETTINGS_CORRUPTED
            self.server_config.restore_defaults()
        self.cloud.inputs.key_errors = self.key_errors

    def _server_moved(self, payload: bytes, respond: Callable[[int], None]) -> None:
        """``handleServerMovedRequest``: parse, validate the signature, answer the cloud, then
        disconnect gracefully clearing the session, store the new settings and reset with the
        reason ``config_update``."""
        try:
            request = decode_server_moved(payload)
        except ValueError as exc:
            self.tracer.emit("server_moved.malformed", error=str(exc))
            respond(-280)  # BAD_DATA
            return
        result = self.server_config.validate_server_moved(request,
                                                          self.options.server_moved_key)
        if result != 0:
            self.tracer.emit("server_moved.rejected", result=result)
            respond(result)
            return
        respond(0)
        self.cloud.disconnect(clear_session=True)
        try:
            self.server_config.update(ServerSettings(request.address, request.effective_port,
                                                     request.public_key))
        except ValueError as exc:
            self.log.error("system", f"Failed to update server settings: {exc}")
        self.reset("config_update")

    def _time_synced(self, unix_time: int) -> None:
        self.retained.rtc_valid = True

    def _time_known(self) -> bool:
        """``hal_rtc_time_is_valid() || spark_sync_time_last() != 0``."""
        return self.retained.rtc_valid or self.cloud.time_synced

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

    def spark_cloud_disconnect(self, flags: int = 0) -> None:
        """``spark_cloud_disconnect(flags)``: ``CLEAR_SESSION`` (0x04) clears the session -
        at once when disconnected, while disconnecting otherwise."""
        self.cloud_disconnect(clear_session=bool(flags & CLEAR_SESSION))

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
        """``systemEventHandler`` of ``system_cloud_internal.cpp``, in its order: the update
        flags, the claim events (the claim-code rules), ``spark/device/reset``,
        ``spark/device/key/restore``."""
        text = data.split(b"\x00", 1)[0].decode("utf-8", "backslashreplace")
        if name.startswith(UPDATES_EVENT_PREFIX):
            self._updates_event(name[len(UPDATES_EVENT_PREFIX):], text)
        elif self.claiming.cloud_event(name):
            return
        elif name == RESET_EVENT:
            self.tracer.emit("cloud.reset_request", data=text)
            if text == "safe mode":
                self.reset("safe_mode", safe_mode=True)
            elif text == "dfu":
                self.enter_dfu()
            elif text == "reboot":
                self.reset("user")
            elif text == "network":
                self.log.warn("system", "Received a command to reset the network")
                self.world.scheduler.call_soon(self._reset_network_interfaces,
                                               label="reset-network")
        elif name.startswith(KEY_RESTORE_EVENT):
            self.log.warn("system", "Received key restore event")
            self.server_config.restore_defaults()
            self.reset("config_update")

    def _updates_event(self, suffix: str, data: str) -> None:
        """``particle/device/updates/forced`` and ``.../pending``. Device OS compares with
        ``strncmp`` over the received lengths, so any prefix of ``forced``/``pending`` selects
        it and any prefix of ``true`` (even the empty data) means true."""
        flag = "true".startswith(data)
        if "forced".startswith(suffix):
            self.updates_forced = flag
            self.cloud.inputs.updates_forced = flag
            self.tracer.emit("updates.forced", value=flag)
        elif "pending".startswith(suffix):
            before = self._update_status()
            self.updates_pending = flag
            self.tracer.emit("updates.pending", value=flag)
            after = self._update_status()
            if after != before:
                self.events.notify(SystemEvent.FIRMWARE_UPDATE_STATUS, after)

    def _update_status(self) -> int:
        """``system_get_update_status``."""
        if self._firmware_update is not None and self._firmware_update.running:
            return UPDATE_STATUS_IN_PROGRESS
        if self.updates_pending is None:
            return UPDATE_STATUS_UNKNOWN
        return UPDATE_STATUS_PENDING if self.updates_pending else UPDATE_STATUS_NOT_AVAILABLE

    def _reset_network_interfaces(self) -> None:
        """``resetNetworkInterfaces``: every active interface goes down and up again."""
        if not self.running:
            return
        self.tracer.emit("network.reset")
        want = self.network.want_connected
        self.network.disconnect()
        if want:
            self.network.connect()

    # -- convenience for tests and scenarios ---------------------------------------------------

    def log_lines(self) -> list[str]:
        return log_lines(self.world.trace.records, self.name)

    def __repr__(self) -> str:
        return (f"<Device {self.name} {self.profile.name} id={self.device_id} "
                f"{self.state.value}>")
