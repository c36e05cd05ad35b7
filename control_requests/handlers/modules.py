"""Handlers of the module and asset requests (Device OS ``system/src/control/storage.cpp``).

GET_MODULE_INFO replies the modules of the main store in the current form (field ``modules``,
``particle.cloud.FirmwareModule``, the describe's own encoding), each with its SHA-256 (Device OS
forces it here) and, for a user part, the assets it requires (``asset_dependencies``: name and
hash); the deprecated ``modules_deprecated`` list is left empty, as Device OS 6 leaves it.
GET_ASSET_INFO replies the assets available in storage (name, hash, original size, size in
storage) and those the application requires (name and hash): ``EncodeAssets`` over
``AssetManager::availableAssets`` / ``requiredAssets`` (``system/src/control/storage.cpp``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from .._pb import describe_pb2, storage_pb2
from ..dispatcher import Handler, HandlerContext
from ..services import FirmwareAsset
from ..types import RequestType


def _add_assets(field: Any, assets: Iterable[FirmwareAsset]) -> None:
    """``encodeAssetDependencies``."""
    for asset in assets:
        field.add(hash=asset.hash, name=asset.name, size=asset.size,
                  storage_size=asset.storage_size)


def get_module_info(ctx: HandlerContext) -> None:
    reply = storage_pb2.GetModuleInfoReply()
    for module in ctx.services.firmware_modules():
        entry = reply.modules.add(
            type=cast(describe_pb2.FirmwareModuleType, module.type), index=module.index,
            version=module.version, store=cast(describe_pb2.FirmwareModuleStore, module.store),
            max_size=module.max_size, checked_flags=module.checked_flags,
            passed_flags=module.passed_flags, hash=module.hash, size=module.size)
        for kind, index, version in module.dependencies:
            entry.dependencies.add(type=cast(describe_pb2.FirmwareModuleType, kind), index=index,
                                   version=version)
        _add_assets(entry.asset_dependencies, module.assets)
    ctx.done(0, reply)


def get_asset_info(ctx: HandlerContext) -> None:
    available, required = ctx.services.asset_info()
    reply = storage_pb2.GetAssetInfoReply()
    _add_assets(reply.available, available)
    _add_assets(reply.required, required)
    ctx.done(0, reply)


HANDLERS: dict[RequestType, Handler] = {
    RequestType.GET_MODULE_INFO: get_module_info,
    RequestType.GET_ASSET_INFO: get_asset_info,
}
