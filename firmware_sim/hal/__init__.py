"""Hardware abstraction: DCT storage, claim-code HAL calls, identity fields, retained RAM."""

from .claim import CLAIM_CODE_SIZE, CLAIMED_MARK, HAL_GET_ERROR, ClaimCodeHal
from .dct import (
    DCT_LAYOUT,
    DCT_SIZE,
    FIELDS,
    Dct,
    DctBackend,
    DctField,
    DctFile,
    DctFiles,
    DctSizeError,
    FileDctBackend,
    MemoryDctBackend,
    OsDctFiles,
)
from .device_config import SETUP_CODE_ALPHABET, DeviceConfigHal
from .device_keys import DeviceKeys
from .retained import RetainedMemory

__all__ = [
    "CLAIMED_MARK",
    "CLAIM_CODE_SIZE",
    "DCT_LAYOUT",
    "DCT_SIZE",
    "FIELDS",
    "HAL_GET_ERROR",
    "SETUP_CODE_ALPHABET",
    "ClaimCodeHal",
    "Dct",
    "DctBackend",
    "DctField",
    "DctFile",
    "DctFiles",
    "DctSizeError",
    "DeviceConfigHal",
    "DeviceKeys",
    "FileDctBackend",
    "MemoryDctBackend",
    "OsDctFiles",
    "RetainedMemory",
]
