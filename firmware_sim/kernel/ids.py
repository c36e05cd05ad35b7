"""Device ids: the one validator every layer uses.

A Particle device id is the 12-byte hardware id written as 24 lowercase hexadecimal characters
(Device OS ``hal_get_device_id`` / control request ``GET_DEVICE_ID``; the cloud API's
``/v1/devices/:deviceId``). Two forms:

* :func:`validate_device_id` for ids a person typed (a CLI option, a test fixture): surrounding
  spaces and upper case are forgiven, anything else is a :class:`ConfigurationError` with one line;
* :func:`is_device_id` for ids a peer sent (a URL, a request body): the exact canonical form only.
"""

from __future__ import annotations

from .errors import ConfigurationError

DEVICE_ID_SIZE = 12
DEVICE_ID_HEX_LENGTH = 2 * DEVICE_ID_SIZE
_HEX_DIGITS = frozenset("0123456789abcdef")


def is_device_id(text: str) -> bool:
    """True when ``text`` is exactly 24 lowercase hexadecimal characters."""
    return len(text) == DEVICE_ID_HEX_LENGTH and _HEX_DIGITS.issuperset(text)


def validate_device_id(device_id: str) -> str:
    """The canonical form of ``device_id`` (stripped, lower case); ConfigurationError if it is
    not 24 hexadecimal characters."""
    text = device_id.strip().lower()
    if not is_device_id(text):
        raise ConfigurationError(
            f"invalid device id {device_id!r}: expected {DEVICE_ID_HEX_LENGTH} hex characters")
    return text
