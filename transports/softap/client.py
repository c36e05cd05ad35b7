"""A small host-side SoftAP setup client (asyncio), speaking both the TCP and the HTTP protocol.

How this works
--------------
It does what ``@particle/softap-setup`` does, in Python: one connection per command; over TCP
``<name>\\n<length>\\n\\n<json>`` and the reply read until the device closes; over HTTP a GET
without a body or a POST of the JSON as ``application/x-www-form-urlencoded`` (h11 frames and
parses the HTTP). The password is encrypted with the device's public key (RSA PKCS#1 v1.5,
hex); an EAP-TLS private key with AES-128-CBC under a random key+IV that is itself
RSA-encrypted into ``ek``. Errors: :class:`SoftApError` for no reply, a timeout or an unreadable
reply; :class:`SoftApCommandError` (with the device's ``r``) for a refused command.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import h11
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from firmware_sim.kernel.errors import FwSimError

from .keys import load_public_key
from .security import EAP_PEAP, EAP_TLS, ENTERPRISE_ENABLED, security_name, security_value
from .tcp import encode_request

DEFAULT_HOST = "192.168.0.1"
DEFAULT_PORTS = {"tcp": 5609, "http": 80}
_EAP_TYPES = {"peap": EAP_PEAP, "peap/mschapv2": EAP_PEAP, "eap-tls": EAP_TLS, "tls": EAP_TLS}


class SoftApError(FwSimError):
    """The device did not answer, or answered something unreadable."""


class SoftApCommandError(SoftApError):
    """The device answered with a non-zero ``r``."""

    def __init__(self, command: str, result: int) -> None:
        super().__init__(f"{command}: the device answered r={result}")
        self.command = command
        self.result = result


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    claimed: bool


@dataclass(frozen=True)
class ScanResult:
    ssid: str
    rssi: int
    security: int
    channel: int
    max_data_rate: int

    @property
    def security_name(self) -> str | None:
        return security_name(self.security)


def node_utf8(text: str) -> bytes:
    """``Buffer.from(text, "utf8")``: UTF-8, a lone surrogate written as U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def request_body(body: Mapping[str, Any]) -> bytes:
    """A command's JSON body as the JavaScript library sends it (``JSON.stringify``, then UTF-8):
    non-ASCII text as itself, a lone surrogate as its ``\\uXXXX`` escape (well-formed
    JSON.stringify)."""
    text = json.dumps(dict(body), separators=(",", ":"), ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def encrypt_password(public_key: rsa.RSAPublicKey, password: str | bytes) -> str:
    """``pwd``: RSA PKCS#1 v1.5 with the device key, lower-case hex (as node-rsa writes it).
    Like node-rsa, a password longer than one block (the key size in bytes less 11: 117 bytes
    for the device's 1024-bit key) is encrypted block by block and the blocks concatenated;
    the device then fails to decrypt it and answers with mbedTLS's error code."""
    data = node_utf8(password) if isinstance(password, str) else password
    block = public_key.key_size // 8 - 11
    chunks = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    return "".join(public_key.encrypt(chunk, padding.PKCS1v15()).hex() for chunk in chunks)


def encrypt_private_key(public_key: rsa.RSAPublicKey, pem: str,
                        key_iv: bytes | None = None) -> tuple[str, str]:
    """EAP-TLS ``(ek, key)``: AES-128-CBC (PKCS#7) under ``key_iv`` (32 random bytes)."""
    kiv = key_iv if key_iv is not None else os.urandom(32)
    padder = sym_padding.PKCS7(128).padder()
    data = padder.update(pem.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(kiv[:16]), modes.CBC(kiv[16:32])).encryptor()
    encrypted = encryptor.update(data) + encryptor.finalize()
    return public_key.encrypt(kiv, padding.PKCS1v15()).hex(), encrypted.hex()


def _format_pem(text: str) -> str:
    return text.strip() + "\r\n"


def parse_reply(raw: bytes) -> dict[str, Any] | None:
    """A reply's JSON object (the TCP ``\\n\\n`` preamble skipped), None when there is none."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SoftApError(f"unreadable reply {text[:80]!r}: {exc}") from None
    if not isinstance(value, dict):
        raise SoftApError(f"reply is not a JSON object: {text[:80]!r}")
    return value


class SoftApClient:
    """Talks to a device's SoftAP setup servers (real or simulated)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int | None = None, *,
                 protocol: str = "tcp", timeout_s: float = 8.0,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        if protocol not in DEFAULT_PORTS:
            raise ValueError(f"protocol must be 'tcp' or 'http', not {protocol!r}")
        self.host = host
        self.protocol = protocol
        self.port = port if port is not None else DEFAULT_PORTS[protocol]
        self.timeout_s = timeout_s
        self._random_bytes = random_bytes
        self._public_key: rsa.RSAPublicKey | None = None

    # -- transport -----------------------------------------------------------------------------

    async def send_command(self, name: str, body: Mapping[str, Any] | None = None
                           ) -> dict[str, Any] | None:
        """Send one command; the reply's JSON object, or None when the device wrote none."""
        payload = None if body is None else request_body(body)
        try:
            raw = await asyncio.wait_for(
                self._tcp(name, payload) if self.protocol == "tcp" else self._http(name, payload),
                self.timeout_s)
        except TimeoutError:
            raise SoftApError(f"{name}: no reply within {self.timeout_s:g} s") from None
        except OSError as exc:
            raise SoftApError(f"{name}: {exc.strerror or exc}") from exc
        return parse_reply(raw)

    async def _tcp(self, name: str, payload: bytes | None) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(encode_request(name, payload))
            await writer.drain()
            return await reader.read()  # the device closes after its reply
        finally:
            writer.close()

    async def _http(self, name: str, payload: bytes | None) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        conn = h11.Connection(h11.CLIENT)
        headers = [("Host", f"{self.host}:{self.port}"), ("Connection", "close")]
        if payload is not None:
            headers += [("Content-Type", "application/x-www-form-urlencoded"),
                        ("Content-Length", str(len(payload)))]
        request = h11.Request(method="POST" if payload is not None else "GET",
                              target="/" + name, headers=headers)
        try:
            data = conn.send(request) or b""
            if payload is not None:
                data += conn.send(h11.Data(data=payload)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            writer.write(data)
            await writer.drain()
            body = bytearray()
            status = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(4096))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except h11.RemoteProtocolError as exc:
            raise SoftApError(f"{name}: bad HTTP reply: {exc}") from None
        finally:
            writer.close()
        if status != 200:
            raise SoftApError(f"{name}: HTTP {status}")
        return bytes(body)

    async def _checked(self, name: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        reply = await self.send_command(name, body)
        if reply is None:
            raise SoftApError(f"{name}: the device wrote no reply")
        return reply

    async def _result(self, name: str, body: Mapping[str, Any] | None = None) -> None:
        reply = await self._checked(name, body)
        result = reply.get("r")
        if result != 0:
            raise SoftApCommandError(name, result if isinstance(result, int) else -1)

    # -- commands ------------------------------------------------------------------------------

    async def version(self) -> int:
        return int((await self._checked("version"))["v"])

    async def device_info(self) -> DeviceInfo:
        reply = await self._checked("device-id")
        return DeviceInfo(str(reply.get("id", "")).lower(), reply.get("c") == "1")

    async def public_key(self) -> rsa.RSAPublicKey:
        reply = await self._checked("public-key")
        if reply.get("r") != 0:
            raise SoftApCommandError("public-key", int(reply.get("r", -1)))
        try:
            der = bytes.fromhex(str(reply["b"]))
        except (KeyError, ValueError) as exc:
            raise SoftApError(f"public-key: bad key hex ({exc})") from None
        key = load_public_key(der)
        if key is None:
            raise SoftApError("public-key: not an RSA SubjectPublicKeyInfo")
        self._public_key = key
        return key

    async def scan(self) -> list[ScanResult]:
        reply = await self._checked("scan-ap")
        return [ScanResult(str(s["ssid"]), int(s["rssi"]), int(s["sec"]), int(s["ch"]),
                           int(s["mdr"])) for s in reply.get("scans", [])]

    async def set(self, key: str, value: str) -> None:
        await self._result("set", {"k": key, "v": value})

    async def set_claim_code(self, code: str) -> None:
        if not code:
            raise ValueError("a claim code is required")
        await self.set("cc", code)

    async def configure(self, ssid: str, password: str | None = None, *,
                        security: str | int | None = None, channel: int = 0, index: int = 0,
                        eap: str | int | None = None, inner_identity: str | None = None,
                        outer_identity: str | None = None, client_certificate: str | None = None,
                        private_key: str | None = None, ca: str | None = None) -> None:
        """``configure-ap`` (fetch :meth:`public_key` first, as softap-setup requires)."""
        if self._public_key is None:
            raise SoftApError("fetch the device public key before configure()")
        sec = security_value(security) if security is not None else (
            security_value("wpa2_aes") if password else 0)
        config: dict[str, Any] = {"idx": index, "ssid": ssid, "sec": sec, "ch": channel}
        if sec & ENTERPRISE_ENABLED:
            eap_type = _EAP_TYPES[eap.lower()] if isinstance(eap, str) else eap
            if eap_type == EAP_TLS:
                if not client_certificate or not private_key:
                    raise ValueError("EAP-TLS needs client_certificate and private_key")
                config["crt"] = _format_pem(client_certificate)
                ek, encrypted = encrypt_private_key(self._public_key, _format_pem(private_key),
                                                    self._random_bytes(32))
                config["key"] = encrypted
                config["ek"] = ek
            elif eap_type == EAP_PEAP:
                if not inner_identity or not password:
                    raise ValueError("PEAP needs inner_identity and password")
                config["ii"] = inner_identity
            else:
                raise ValueError(f"unknown EAP type {eap!r}")
            config["eap"] = eap_type
            if outer_identity:
                config["oi"] = outer_identity
            if ca:
                config["ca"] = _format_pem(ca)
        if password:
            config["pwd"] = encrypt_password(self._public_key, password)
        await self._result("configure-ap", config)

    async def connect(self, index: int = 0) -> None:
        await self._result("connect-ap", {"idx": index})
