"""Handlers of ``system/src/control/config.cpp`` and the system-level requests.

Behaviour per device-os.md §3: DEVICE_ID is 24 lowercase hex (UNKNOWN if the id is not 12
bytes); SET_CLAIM_CODE passes the decoded code's bytes, unchanged, to ``HAL_Set_Claim_Code``
(NUL-padded, cut at 63, an empty code means "no code"; a code starting with 0xFF is stored as
0xFF and therefore never published); SET_DEVICE_SETUP_DONE(true) is 0 and (false) NOT_SUPPORTED with
nothing written, IS_DEVICE_SETUP_DONE always replies done (both deprecated in Device OS 6);
GET_SYSTEM_CAPABILITIES replies no flags; SET_FEATURE / GET_FEATURE know ETHERNET_DETECTION only
(NOT_SUPPORTED otherwise); SET_STARTUP_MODE with any mode but LISTENING clears the startup flag;
START_LISTENING while listening is 0, and NOT_ALLOWED when the feature
DISABLE_LISTENING_MODE is set (outside safe mode); the reset family replies 0 and acts 1000 ms
after the reply is delivered; ECHO returns the request bytes; DIAGNOSTIC_INFO answers only an
empty request. The SET/GET_SERVER_ADDRESS and SET/GET_SERVER_PROTOCOL handlers serve the Photon
(Device OS 2.3.1); Device OS 6 answers NOT_SUPPORTED to them (``handlers/__init__.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from firmware_sim.kernel.errors import ResultCode

from .._pb import config_pb2
from ..dispatcher import Handler, HandlerContext
from ..types import RequestType
from .fields import raw, text

DEVICE_MODE_NORMAL = 0
DEVICE_MODE_LISTENING = 1
#: ``particle.ctrl.Feature``: the one feature SET_FEATURE / GET_FEATURE know
FEATURE_ETHERNET_DETECTION = 1


def echo(ctx: HandlerContext) -> None:
    ctx.done(0, ctx.payload)


def device_id(ctx: HandlerContext) -> None:
    text = ctx.services.device_id().lower()
    if len(text) != 24:
        ctx.done(int(ResultCode.UNKNOWN))
        return
    ctx.done(0, config_pb2.GetDeviceIdReply(id=text))


def serial_number(ctx: HandlerContext) -> None:
    ctx.done(0, config_pb2.GetSerialNumberReply(serial=ctx.services.serial_number()))


def system_version(ctx: HandlerContext) -> None:
    ctx.done(0, config_pb2.GetSystemVersionReply(version=ctx.services.system_version()))


def ncp_firmware_version(ctx: HandlerContext) -> None:
    version = ctx.services.ncp_firmware_version()
    if version is None:
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.done(0, config_pb2.GetNcpFirmwareVersionReply(version=version[0],
                                                      module_version=version[1]))


def system_capabilities(ctx: HandlerContext) -> None:
    # ``getSystemCapabilities`` (system/src/control/config.cpp) encodes an empty reply: no
    # platform sets a flag since COMPRESSED_OTA's ``HAL_PLATFORM_COMPRESSED_BINARIES`` went.
    ctx.done(0, config_pb2.GetSystemCapabilitiesReply())


def set_feature(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetFeatureRequest, ctx.message)
    if msg.feature != FEATURE_ETHERNET_DETECTION:
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.done(ctx.services.set_feature(msg.feature, msg.enabled))


def get_feature(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.GetFeatureRequest, ctx.message)
    if msg.feature != FEATURE_ETHERNET_DETECTION:
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.done(0, config_pb2.GetFeatureReply(enabled=ctx.services.get_feature(msg.feature)))


def _after_reply(action: Callable[[], None]) -> Handler:
    def handler(ctx: HandlerContext) -> None:
        ctx.services.abort_connection()
        ctx.after_reply(action)
        ctx.done(0)

    return handler


def reset(ctx: HandlerContext) -> None:
    services = ctx.services
    _after_reply(lambda: services.system_reset("user"))(ctx)


def factory_reset(ctx: HandlerContext) -> None:
    _after_reply(ctx.services.factory_reset)(ctx)


def dfu_mode(ctx: HandlerContext) -> None:
    _after_reply(ctx.services.enter_dfu)(ctx)


def safe_mode(ctx: HandlerContext) -> None:
    _after_reply(ctx.services.enter_safe_mode)(ctx)


def start_listening(ctx: HandlerContext) -> None:
    if ctx.services.is_listening():  # already listening: INVALID_STATE mapped to 0
        ctx.done(0)
        return
    ctx.services.abort_connection()
    ctx.done(ctx.services.start_listening())  # NOT_ALLOWED when listening mode is disabled


def stop_listening(ctx: HandlerContext) -> None:
    ctx.services.stop_listening()
    ctx.done(0)


def get_device_mode(ctx: HandlerContext) -> None:
    mode = DEVICE_MODE_LISTENING if ctx.services.is_listening() else DEVICE_MODE_NORMAL
    ctx.done(0, config_pb2.GetDeviceModeReply(mode=mode))  # type: ignore[arg-type]


def set_device_setup_done(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetDeviceSetupDoneRequest, ctx.message)
    ctx.done(0 if msg.done else int(ResultCode.NOT_SUPPORTED))


def is_device_setup_done(ctx: HandlerContext) -> None:
    # Deprecated in Device OS 6: hard-coded "done", no DCT read (config.cpp ``isDeviceSetupDone``).
    ctx.done(0, config_pb2.IsDeviceSetupDoneReply(done=True))


def set_startup_mode(ctx: HandlerContext) -> None:
    # LISTENING sets SYSTEM_FLAG_STARTUP_LISTEN_MODE; every other mode (NORMAL, or a number the
    # enum does not have) takes the default branch and clears it.
    msg = cast(config_pb2.SetStartupModeRequest, ctx.message)
    ctx.services.set_startup_listening(msg.mode == DEVICE_MODE_LISTENING)
    ctx.done(0)


def get_protected_state(ctx: HandlerContext) -> None:
    state, overridden = ctx.services.protected_state()
    ctx.done(0, config_pb2.GetProtectedStateReply(state=state, overridden=overridden))


def set_protected_state(ctx: HandlerContext) -> None:
    # The signed unlock handshake with the cloud is not simulated.
    ctx.done(int(ResultCode.NOT_SUPPORTED))


def set_claim_code(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetClaimCodeRequest, ctx.message)
    ctx.done(ctx.services.set_claim_code(raw(msg, "code")))


def is_claimed(ctx: HandlerContext) -> None:
    ctx.done(0, config_pb2.IsClaimedReply(claimed=ctx.services.is_claimed()))


def not_supported(ctx: HandlerContext) -> None:
    ctx.done(int(ResultCode.NOT_SUPPORTED))


def set_softap_ssid(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetSoftApSsidRequest, ctx.message)
    # the prefix is stored as the bytes the client sent (nanopb hands them over unchanged)
    ctx.done(ctx.services.set_softap_ssid(raw(msg, "prefix"), text(msg, "suffix")))


def set_server_address(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetServerAddressRequest, ctx.message)
    ctx.done(ctx.services.set_server_address(msg.protocol, text(msg, "address"), msg.port))


def get_server_address(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.GetServerAddressRequest, ctx.message)
    address, port = ctx.services.server_address(msg.protocol)
    ctx.done(0, config_pb2.GetServerAddressReply(address=address, port=port))


def set_server_protocol(ctx: HandlerContext) -> None:
    msg = cast(config_pb2.SetServerProtocolRequest, ctx.message)
    ctx.done(ctx.services.set_server_protocol(msg.protocol))


def get_server_protocol(ctx: HandlerContext) -> None:
    ctx.done(0, config_pb2.GetServerProtocolReply(
        protocol=ctx.services.server_protocol()))  # type: ignore[arg-type]


def start_nyan(ctx: HandlerContext) -> None:
    ctx.services.nyan(True)
    ctx.done(0)


def stop_nyan(ctx: HandlerContext) -> None:
    ctx.services.nyan(False)
    ctx.done(0)


def diagnostic_info(ctx: HandlerContext) -> None:
    if ctx.payload:
        ctx.done(int(ResultCode.NOT_SUPPORTED))
        return
    ctx.done(0, ctx.services.diagnostics())


HANDLERS: dict[RequestType, Handler] = {
    RequestType.ECHO: echo,
    RequestType.DEVICE_ID: device_id,
    RequestType.SERIAL_NUMBER: serial_number,
    RequestType.SYSTEM_VERSION: system_version,
    RequestType.NCP_FIRMWARE_VERSION: ncp_firmware_version,
    RequestType.GET_SYSTEM_CAPABILITIES: system_capabilities,
    RequestType.SET_FEATURE: set_feature,
    RequestType.GET_FEATURE: get_feature,
    RequestType.RESET: reset,
    RequestType.FACTORY_RESET: factory_reset,
    RequestType.DFU_MODE: dfu_mode,
    RequestType.SAFE_MODE: safe_mode,
    RequestType.START_LISTENING: start_listening,
    RequestType.STOP_LISTENING: stop_listening,
    RequestType.GET_DEVICE_MODE: get_device_mode,
    RequestType.SET_DEVICE_SETUP_DONE: set_device_setup_done,
    RequestType.IS_DEVICE_SETUP_DONE: is_device_setup_done,
    RequestType.SET_STARTUP_MODE: set_startup_mode,
    RequestType.GET_PROTECTED_STATE: get_protected_state,
    RequestType.SET_PROTECTED_STATE: set_protected_state,
    RequestType.DIAGNOSTIC_INFO: diagnostic_info,
    RequestType.SET_CLAIM_CODE: set_claim_code,
    RequestType.IS_CLAIMED: is_claimed,
    RequestType.SET_SECURITY_KEY: not_supported,
    RequestType.GET_SECURITY_KEY: not_supported,
    RequestType.SET_SERVER_ADDRESS: set_server_address,
    RequestType.GET_SERVER_ADDRESS: get_server_address,
    RequestType.SET_SERVER_PROTOCOL: set_server_protocol,
    RequestType.GET_SERVER_PROTOCOL: get_server_protocol,
    RequestType.START_NYAN_SIGNAL: start_nyan,
    RequestType.STOP_NYAN_SIGNAL: stop_nyan,
    RequestType.SET_SOFTAP_SSID: set_softap_ssid,
}
