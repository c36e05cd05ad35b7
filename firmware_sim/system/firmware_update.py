"""A firmware update over control requests: the transfer, the OTA flash and the apply/reset.

How this works
--------------
One :class:`FirmwareUpdater` per boot (RAM: a reset forgets a transfer) does the work of three
Device OS layers: the control requests' transfer (``system/src/control/storage.cpp``: the bytes
left), ``FirmwareUpdate`` (``system/src/firmware_update.cpp``: ``startUpdate`` /
``saveChunk`` / ``finishUpdate``, log category ``system.ota``) and the OTA flash
(``hal/src/rtl872x/ota_flash_hal.cpp``, category ``hal.ota``; the checks are
``hal/module_binary.py``).

* :meth:`start` (START_FIRMWARE_UPDATE) cancels a transfer in progress, refuses any format but
  BIN (NOT_SUPPORTED), then ``startUpdate``: updates disabled and not forced -1380, a size past
  the OTA region -1351 (size 0 means the whole region, as ``Spark_Prepare_For_Firmware_Update``
  defaults it). The region is erased, the LED turns magenta, the system events
  ``firmware_update`` begin and ``firmware_update_status`` (in progress) are raised. Chunks are
  1024 bytes.
* :meth:`data` (FIRMWARE_UPDATE_DATA) writes the next chunk: without a transfer INVALID_STATE,
  an empty chunk or one past the announced size OUT_OF_RANGE; every failure cancels the
  transfer. Each chunk raises ``firmware_update`` progress.
* :meth:`finish` (FINISH_FIRMWARE_UPDATE): without a transfer, or with bytes left,
  INVALID_STATE; then the modules are validated. A validate-only request, or a failed
  validation, cancels the transfer and answers the result; otherwise it answers 0 and
  :meth:`apply` runs once the reply is delivered (the completion handler): the modules are
  validated again and staged in their slots (``hal/modules.py`` installs them at the next
  boot) - an asset module is stored instead (``AssetManager::storeAsset``: validated by
  ``module_binary.read_asset``, kept in ``hal/modules.py``'s asset storage) -
  ``firmware_update`` complete (or failed), and the device resets with the reason
  ``update`` - whether or not the update applied (``Spark_Finish_Firmware_Update``).
  Device OS 2.3.1 (the Photon) applies inside FINISH, before the reply, and resets 1000 ms
  after the reply; a failure there is answered and does not reset.
* :meth:`cancel` (CANCEL_FIRMWARE_UPDATE; also a request that does not decode while a DATA or
  FINISH is handled) ends the update: ``firmware_update`` failed, the LED back to the system's.

Trace records (layer ``ota``): ``ota.start``, ``ota.data`` (offset, size), ``ota.finish``,
``ota.cancel``, ``ota.applied`` / ``ota.asset_stored`` / ``ota.apply_failed``;
``led.firmware_update`` on/off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from control_requests.services import FirmwareModuleInfo

from ..hal.module_binary import (
    CRC_SIZE,
    AssetError,
    FetchedModule,
    FlashRegion,
    InvalidSize,
    ModuleFlag,
    ModuleFunction,
    ModuleInfo,
    OtaError,
    UpdatesDisabled,
    asset_dependencies,
    read_asset,
    validate_ota,
)
from ..hal.modules import ALL_CHECKS, InstalledModules
from ..kernel.errors import ResultCode
from ..kernel.trace import Tracer
from ..services.log import DeviceLog
from .events import FirmwareUpdate, SystemEvent, SystemEventBus

CHUNK_SIZE = 1024
FORMAT_BIN = 0
#: ``system_get_update_status``: an update is running
UPDATE_STATUS_IN_PROGRESS = 3
#: ``MODULE_VERIFY_CRC | MODULE_VERIFY_DESTINATION_IS_START_ADDRESS | MODULE_VERIFY_FUNCTION``
_SLOT_FLAGS = 0x02 | 0x04 | 0x08
_SLOT_FLAG_BITS = ((ModuleFlag.DROP_MODULE_INFO, 0x10), (ModuleFlag.COMPRESSED, 0x20),
                   (ModuleFlag.ENCRYPTED, 0x40))


@dataclass(frozen=True, slots=True)
class UpdateHooks:
    """What the updater needs of its device."""

    #: ``System.updatesEnabled() || System.updatesForced()``
    updates_allowed: Callable[[], bool]
    #: ``system_set_flag(SYSTEM_FLAG_OTA_UPDATE_PENDING, 0)``
    clear_update_pending: Callable[[], None]
    #: ``system_get_update_status`` (the device asks :attr:`FirmwareUpdater.running`)
    update_status: Callable[[], int]
    #: ``system_pending_shutdown(reason)`` after ``delay_s``
    pending_shutdown: Callable[[str, float], None]


@dataclass(slots=True)
class _Transfer:
    """``storage.cpp``'s ``g_update``."""

    size: int
    bytes_left: int


class FirmwareUpdater:
    """The firmware update of one device for one boot (module header)."""

    __slots__ = ("_events", "_gone", "_hooks", "_log", "_modules", "_region", "_tracer",
                 "_transfer", "apply_before_reply", "running")

    def __init__(self, modules: InstalledModules, *, tracer: Tracer, log: DeviceLog,
                 events: SystemEventBus, hooks: UpdateHooks) -> None:
        self._modules = modules
        self._tracer = tracer
        self._log = log
        self._events = events
        self._hooks = hooks
        #: Device OS 2.3.1 (Gen2): FINISH applies before it replies
        self.apply_before_reply = modules.platform.apply_before_reply
        self._transfer: _Transfer | None = None
        self._region = bytearray()
        #: ``FirmwareUpdate::updating_``
        self.running = False
        self._gone = False

    @property
    def ota_size(self) -> int:
        return self._modules.platform.ota_size

    # -- storage.cpp ---------------------------------------------------------------------------

    def start(self, size: int, file_format: int) -> tuple[int, int]:
        """START_FIRMWARE_UPDATE: (result, chunk size)."""
        self.cancel()
        if file_format != FORMAT_BIN:
            self._log.error("system", f"Unknown binary format: {file_format}")
            return int(ResultCode.NOT_SUPPORTED), 0
        result = self._start_update(size or self.ota_size)
        if result != 0:
            self._log.error("system", f"Spark_Prepare_For_Firmware_Update() failed: {result}")
            return result, 0
        self._transfer = _Transfer(size, size)
        self._tracer.emit("ota.start", size=size, chunk_size=CHUNK_SIZE)
        return 0, CHUNK_SIZE

    def data(self, chunk: bytes) -> int:
        """FIRMWARE_UPDATE_DATA: any failure cancels the transfer."""
        transfer = self._transfer
        if transfer is None:
            result = int(ResultCode.INVALID_STATE)
        elif not chunk or len(chunk) > transfer.bytes_left:
            result = int(ResultCode.OUT_OF_RANGE)
        else:
            offset = transfer.size - transfer.bytes_left
            result = self._save_chunk(chunk, offset)
            if result == 0:
                transfer.bytes_left -= len(chunk)
                self._tracer.emit("ota.data", offset=offset, size=len(chunk))
                return 0
        self._tracer.emit("ota.data_failed", size=len(chunk), result=result)
        self.cancel()
        return result

    def finish(self, validate_only: bool) -> int:
        """FINISH_FIRMWARE_UPDATE: 0 when :meth:`apply` is to run after the reply."""
        transfer = self._transfer
        if transfer is None or transfer.bytes_left > 0:
            result = int(ResultCode.INVALID_STATE)
        elif self.apply_before_reply and not validate_only:
            result = self._finish_update()
            self._transfer = None
            self._tracer.emit("ota.finish", validate_only=False, result=result)
            return result
        else:
            result = self._validate()
            self._tracer.emit("ota.finish", validate_only=validate_only, result=result)
            if result == 0 and not validate_only:
                return 0
        self.cancel()
        return result

    def cancel(self) -> None:
        """``cancelFirmwareUpdate`` (CANCEL_FIRMWARE_UPDATE answers 0 whatever it finds)."""
        if self._transfer is None:
            return
        self._transfer = None
        self._tracer.emit("ota.cancel")
        self._end_update(ok=False)

    def discard(self) -> None:
        """The device shut down: RAM is gone, a completion handler still due does nothing."""
        self._gone = True
        self._transfer = None
        self.running = False

    def apply(self) -> None:
        """``firmwareUpdateCompletionHandler``: the FINISH reply was delivered."""
        if self._gone:
            return
        if self.apply_before_reply:  # Device OS 2.3.1: applied already; reset 1000 ms later
            self._hooks.pending_shutdown("update", 1.0)
            return
        if self._transfer is None:
            return
        self._transfer = None
        result = self._finish_update()
        if result < 0:
            self._log.error("system", f"Spark_Finish_Firmware_Update() failed: {result}")
        # "reset the device regardless of whether the update has been applied successfully"
        self._hooks.pending_shutdown("update", 0.0)

    # -- firmware_update.cpp -------------------------------------------------------------------

    def _start_update(self, file_size: int) -> int:
        if self.running:
            return int(ResultCode.INVALID_STATE)
        if not self._hooks.updates_allowed():
            return UpdatesDisabled.code_value
        if not file_size or file_size > self.ota_size:
            return InvalidSize.code_value
        self._region = bytearray()  # HAL_FLASH_Begin: the region reads erased
        self._hooks.clear_update_pending()
        self._tracer.emit("led.firmware_update", on=True, color="magenta")
        self.running = True
        self._events.notify(SystemEvent.FIRMWARE_UPDATE, FirmwareUpdate.BEGIN)
        self._events.notify(SystemEvent.FIRMWARE_UPDATE_STATUS, self._hooks.update_status())
        return 0

    def _save_chunk(self, chunk: bytes, offset: int) -> int:
        if not self.running:
            return int(ResultCode.INVALID_STATE)
        end = offset + len(chunk)
        if len(self._region) < end:
            self._region.extend(b"\xff" * (end - len(self._region)))
        self._region[offset:end] = chunk
        self._events.notify(SystemEvent.FIRMWARE_UPDATE, FirmwareUpdate.PROGRESS)
        return 0

    def _finish_update(self) -> int:
        """``finishUpdate`` without flags: apply (``HAL_FLASH_End``), end the update."""
        if not self.running:
            return int(ResultCode.INVALID_STATE)
        try:
            self._apply_modules()
            result = 0
        except OtaError as exc:
            result = exc.code
        self._end_update(ok=result >= 0)
        return result

    def _end_update(self, *, ok: bool) -> None:
        if not self.running:
            return
        self._tracer.emit("led.firmware_update", on=False)
        self.running = False
        self._events.notify(SystemEvent.FIRMWARE_UPDATE,
                            FirmwareUpdate.COMPLETE if ok else FirmwareUpdate.FAILED)
        self._events.notify(SystemEvent.FIRMWARE_UPDATE_STATUS, self._hooks.update_status())

    # -- ota_flash_hal.cpp ---------------------------------------------------------------------

    def _fetch_and_validate(self) -> tuple[FlashRegion, list[FetchedModule]]:
        def validating(info: ModuleInfo) -> None:
            self._log.info("hal.ota", f"Validating module; type: {info.function}; index: "
                                      f"{info.index}; version: {info.version}")

        def too_many(count: int) -> None:
            self._log.warn("hal.ota", "Got more than 2 combined modules")

        region = FlashRegion(bytes(self._region), self.ota_size)
        return region, validate_ota(region, self._modules.platform, self._modules.modules(),
                                    on_validate=validating, on_too_many=too_many)

    def _validate(self) -> int:
        """``finishUpdate(VALIDATE_ONLY)``: ``HAL_FLASH_OTA_Validate``."""
        if not self.running:
            return int(ResultCode.INVALID_STATE)
        try:
            self._fetch_and_validate()
        except OtaError as exc:
            self._tracer.emit("ota.invalid", result=exc.code, error=exc.message)
            return exc.code
        return 0

    def _apply_modules(self) -> None:
        """``HAL_FLASH_End``: validate again, then put each module in a slot (an asset in the
        asset storage)."""
        region, modules = self._fetch_and_validate()
        for module in modules:
            info = module.info
            self._log.info("hal.ota", f"Applying module; type: {info.function}; index: "
                                      f"{info.index}; version: {info.version}")
            if info.function == ModuleFunction.ASSET:
                self._store_asset(region, module)
                continue
            if info.function != ModuleFunction.NCP_FIRMWARE:
                slot = _SLOT_FLAGS
                for flag, bit in _SLOT_FLAG_BITS:
                    if info.flags & flag:
                        slot |= bit
                self._log.info("hal.ota", f"OTA module flags: 0x{info.flags:X} DCT slot "
                                          f"flags: 0x{slot:X}")
            self._modules.stage(_installed_entry(region, module))
            self._tracer.emit("ota.applied", function=info.function, index=info.index,
                              version=info.version, size=module.size)

    def _store_asset(self, region: FlashRegion, module: FetchedModule) -> None:
        """``AssetManager::storeAsset``: the module's bytes from its start address (relative to
        where it sits in the OTA region) through its CRC-32."""
        info = module.info
        try:
            data = region.read(module.offset + info.start_address, info.length + CRC_SIZE)
            if data is None:  # UNVERIFIED (fwsim): the device would read other flash
                raise AssetError(int(ResultCode.BAD_DATA), "asset module past the OTA region")
            asset = read_asset(data)
            self._log.info("system", f"Storing asset {asset.name} (hash={asset.hash.hex()}) "
                                     f"size={asset.storage_size} original size={asset.size}")
            self._modules.store_asset(data, asset)
        except AssetError as exc:
            self._log.error("hal.ota", "Unable to apply module")
            self._tracer.emit("ota.apply_failed", function=info.function, result=exc.code,
                              reason=exc.detail)
            raise
        self._tracer.emit("ota.asset_stored", name=asset.name, hash=asset.hash.hex(),
                          size=asset.size, storage_size=asset.storage_size)


def _installed_entry(region: FlashRegion, module: FetchedModule) -> FirmwareModuleInfo:
    """A staged module as ``HAL_System_Info`` will list it (it passed every check), with the
    assets a user part requires."""
    info = module.info
    deps = tuple((d.function, d.index, d.version) for d in (info.dependency, info.dependency2)
                 if 0 < d.function <= int(ModuleFunction.ASSET))
    max_size = module.bounds.maximum_size if module.bounds is not None else module.size
    assets = (asset_dependencies(region, module) if info.function == ModuleFunction.USER_PART
              else ())
    return FirmwareModuleInfo(info.function, info.index, info.version, module.size, max_size,
                              ALL_CHECKS, ALL_CHECKS, module.sha256, deps, assets=assets)


__all__ = ["CHUNK_SIZE", "UPDATE_STATUS_IN_PROGRESS", "FirmwareUpdater", "UpdateHooks"]
