"""Reading the string fields of a decoded request: bytes on the device.

``codec.decode_request`` parses into the bytes twin of a message (``codec.device_class``): a
``string`` field holds the bytes nanopb decoded, cut at the first NUL, never repaired. Handlers
that hand a string to a byte-oriented service (the claim code to the DCT) take :func:`raw`;
those that need text (an SSID, a server address) take :func:`text`, which shows bytes that are
not UTF-8 as ``\\xNN`` escapes - what the device stores is then that text
(docs/control-requests.md).
"""

from __future__ import annotations

from google.protobuf.message import Message


def raw(message: Message, name: str) -> bytes:
    """The bytes of the string (or bytes) field ``name``."""
    value = getattr(message, name)
    if isinstance(value, str):  # a host message (tests); the device view holds bytes
        return value.encode("utf-8")
    if not isinstance(value, bytes):
        raise TypeError(f"field {name} of {message.DESCRIPTOR.full_name} is not a string")
    return value


def text(message: Message, name: str) -> str:
    """The string field ``name`` as text; bytes that are not UTF-8 are escaped (``\\xff``)."""
    return raw(message, name).decode("utf-8", errors="backslashreplace")


__all__ = ["raw", "text"]
