"""The cloud's key registry: each device's public key, and the cloud's own server key pair.

How this works
--------------
The real cloud knows every device's public key from manufacturing (or ``particle keys send``)
and authenticates the device with it in the DTLS handshake of the UDP link; the device knows
the server's public key from its DCT (``alt_server_public_key``). fwsim's cloud does the same:

* :meth:`DeviceKeyRegistry.register` records a device's P-256 SubjectPublicKeyInfo (DER). The
  testbed registers the devices it links to its cloud (in process and ``fwsim up``); a device
  in another process (``fwsim device run --api ... --admin-token ...``) registers itself through
  the guarded admin route ``POST /fwsim/devices/<id>/key``. Registering a different key for a
  known device replaces it (as ``particle keys send`` does).
* :meth:`DeviceKeyRegistry.server_key` is the cloud's P-256 key pair, generated from the OS
  CSPRNG the first time it is needed.
* With an SQLite database file, both live in two tables of their own in that file
  (``fwsim_device_keys``, ``fwsim_server_key``; created when missing, outside the store's
  versioned schema, through a connection of this module's own), so a restarted
  ``fwsim cloud serve --db FILE`` keeps them and devices keep connecting. Otherwise they live in
  memory.

A key that is not a P-256 public key is refused with :class:`KeyRegistryError` (a
:class:`~firmware_sim.kernel.errors.UsageError`: the REST API answers 400).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from firmware_sim.kernel.errors import ConfigurationError, UsageError
from firmware_sim.kernel.private_files import private_file

from .ownership import is_device_id


class KeyRegistryError(UsageError):
    """A key or a device id the registry cannot keep."""


@dataclass(frozen=True)
class ServerKey:
    #: PKCS#8 DER of the private key
    private_der: bytes
    #: SubjectPublicKeyInfo DER (what devices keep in ``alt_server_public_key``)
    public_der: bytes


def normalize_public_key(data: bytes | str) -> bytes:
    """A P-256 public key as SubjectPublicKeyInfo DER, from DER bytes, PEM text or hex text."""
    raw: bytes
    if isinstance(data, str):
        text = data.strip()
        if text.startswith("-----BEGIN"):
            raw = text.encode("ascii", "replace")
        else:
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raise KeyRegistryError("public key: expected PEM or hex DER") from None
    else:
        raw = bytes(data)
    try:
        key = (serialization.load_pem_public_key(raw) if raw.startswith(b"-----BEGIN")
               else serialization.load_der_public_key(raw))
    except (ValueError, TypeError, UnicodeError):
        raise KeyRegistryError("public key: not a DER or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeyRegistryError("public key: must be a P-256 (secp256r1) key")
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _new_server_key() -> ServerKey:
    key = ec.generate_private_key(ec.SECP256R1())
    return ServerKey(
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        key.public_key().public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))


class DeviceKeyRegistry:
    """Device public keys and the server key pair, in memory or in an SQLite file."""

    def __init__(self, path: str | None = None) -> None:
        self._keys: dict[str, bytes] = {}
        self._server: ServerKey | None = None
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        if path is not None and path != ":memory:" and not path.startswith("file::memory:"):
            try:
                if not path.startswith("file:"):
                    private_file(path)  # the server's private key
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                           timeout=10.0)
                self._db.executescript(
                    "CREATE TABLE IF NOT EXISTS fwsim_device_keys ("
                    " device_id TEXT PRIMARY KEY, public_key BLOB NOT NULL);"
                    "CREATE TABLE IF NOT EXISTS fwsim_server_key ("
                    " id INTEGER PRIMARY KEY CHECK (id = 1), private_key BLOB NOT NULL,"
                    " public_key BLOB NOT NULL);")
                for device_id, public in self._db.execute(
                        "SELECT device_id, public_key FROM fwsim_device_keys"):
                    self._keys[str(device_id)] = bytes(public)
                row = self._db.execute(
                    "SELECT private_key, public_key FROM fwsim_server_key").fetchone()
                if row is not None:
                    self._server = ServerKey(bytes(row[0]), bytes(row[1]))
            except (sqlite3.Error, OSError) as exc:
                raise ConfigurationError(f"cannot keep device keys in {path!r}: {exc}") from None

    def register(self, device_id: str, public_key: bytes | str) -> bytes:
        """Record ``device_id``'s public key (DER, PEM or hex); returns it as DER."""
        device_id = device_id.lower()
        if not is_device_id(device_id):
            raise KeyRegistryError(f"invalid device id {device_id!r}")
        der = normalize_public_key(public_key)
        with self._lock:
            if self._keys.get(device_id) == der:
                return der
            self._keys[device_id] = der
            if self._db is not None:
                self._db.execute("INSERT OR REPLACE INTO fwsim_device_keys VALUES (?, ?)",
                                 (device_id, der))
        return der

    def public_key(self, device_id: str) -> bytes | None:
        return self._keys.get(device_id.lower())

    def __contains__(self, device_id: object) -> bool:
        return isinstance(device_id, str) and device_id.lower() in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def server_key(self) -> ServerKey:
        """The cloud's key pair (generated from the CSPRNG on first use, then kept)."""
        with self._lock:
            if self._server is None:
                self._server = _new_server_key()
                if self._db is not None:
                    self._db.execute("INSERT OR REPLACE INTO fwsim_server_key VALUES (1, ?, ?)",
                                     (self._server.private_der, self._server.public_der))
            return self._server

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


__all__ = ["DeviceKeyRegistry", "KeyRegistryError", "ServerKey", "normalize_public_key"]
