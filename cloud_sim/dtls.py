"""The cloud's side of DTLS 1.2 on the UDP device link (mbedTLS, through python-mbedtls).

How this works
--------------
:class:`DtlsServer` is sans-IO: ``datagram_received(address, data, send)`` takes one UDP
datagram and returns the plaintext records it carried that belong to an *authenticated* device,
each with that device's id; everything it must send back goes through ``send``.
``encrypt(address, plaintext, send)`` sends a record to an authenticated peer.

The handshake is the one Device OS runs (``communication/src/dtls_message_channel.cpp``):
DTLS 1.2 only, the single cipher suite TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (Device OS's
``MBEDTLS_SSL_CIPHERSUITES``, ``crypto/inc/mbedtls_config_default.h``), P-256, the device
authenticated by its key pair and the server by its own. Device OS uses RFC 7250 *raw public
keys* (a Particle extension of its mbedTLS); stock mbedTLS has no raw public keys, so each side
wraps its key in a self-signed certificate (the device's names its id, ``CN=<24 hex digits>``)
and each side *pins the key*, not the certificate: the server looks the device id up in the
cloud's key registry (:mod:`cloud_sim.device_keys`) and requires exactly that public key; the
device requires the server public key from its DCT. mbedTLS checks the CertificateVerify
signature, so only the holder of the private key completes the handshake.

Resource limits, so spoofed or abandoned handshakes cost nothing lasting:

* a ClientHello without a valid cookie is answered with a HelloVerifyRequest and **no state is
  kept** (the cookie is an HMAC over the source address, RFC 6347 4.2.1): a spoofed source never
  gets past this point;
* at most ``max_handshakes`` handshakes in progress, each dropped ``handshake_timeout_s`` after
  it started; a ClientHello beyond the cap is dropped (the device retries);
* at most ``max_peers`` authenticated peers; beyond it the least recently heard is dropped, and
  any peer silent for ``idle_timeout_s`` is dropped (its device handshakes again);
* anything from an address with no state that is not a ClientHello is dropped, and so is a
  record that fails authentication or the replay window (mbedTLS anti-replay,
  ``MBEDTLS_SSL_DTLS_ANTI_REPLAY``, on in Device OS too).

A handshake that completes but whose device is unknown, or whose key is not the registered one,
or that sent no certificate, is refused: the peer gets a close_notify and is dropped before any
record reaches the endpoint (stock mbedTLS cannot check a key *during* the handshake, so the
refusal comes right after it). Every outcome is counted in :class:`DtlsStats`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from mbedtls import hashlib as mbed_hashlib
from mbedtls import pk as mbed_pk
from mbedtls import tls as mbed_tls
from mbedtls import x509 as mbed_x509
from mbedtls.exceptions import TLSError

from .device_keys import ServerKey

#: Device OS's only cipher suite (``MBEDTLS_SSL_CIPHERSUITES``)
CIPHER_SUITE = "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"
#: datagram size the DTLS layer writes at most (the cloud drops larger datagrams)
DATAGRAM_MTU = 1500
#: a record's plaintext at most: the MTU less the record header (13), the CCM_8 explicit
#: nonce (8) and tag (8); a larger one is dropped like an oversize UDP datagram
MAX_PLAINTEXT = DATAGRAM_MTU - 29
_CONTENT_HANDSHAKE = 22
_CLIENT_HELLO = 1
_RECORD_HEADER = 13
_READ_SIZE = 2048

Send = Callable[[bytes], None]
#: the key registry's lookup: device id -> SubjectPublicKeyInfo DER, None when unknown
KeyLookup = Callable[[str], bytes | None]


def self_signed_certificate(private_key_der: bytes, common_name: str) -> tuple[
        mbed_x509.CRT, mbed_pk.ECC]:
    """A certificate carrying the key (the stand-in for a raw public key): the key's own
    signature over ``CN=<common_name>``, valid 2000-2099."""
    key = mbed_pk.ECC.from_DER(private_key_der)
    csr = mbed_x509.CSR.new(key, f"CN={common_name}", mbed_hashlib.sha256())
    crt = mbed_x509.CRT.selfsign(csr, key, _dt.datetime(2000, 1, 1), _dt.datetime(2099, 1, 1),
                                 1)
    return crt, key


def certificate_identity(der: bytes) -> tuple[str, bytes] | None:
    """``(common name, SubjectPublicKeyInfo DER)`` of a peer certificate, None if malformed."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if names else ""
        public = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, IndexError):
        return None
    return common_name, public


def is_client_hello(data: bytes) -> bool:
    """A DTLS record of epoch 0 carrying a ClientHello handshake message."""
    return (len(data) > _RECORD_HEADER and data[0] == _CONTENT_HANDSHAKE
            and data[3:5] == b"\x00\x00" and data[_RECORD_HEADER] == _CLIENT_HELLO)


def _is_handshake_flight(data: bytes) -> bool:
    """A record of a handshake in progress: handshake (22) or ChangeCipherSpec (20)."""
    return len(data) > _RECORD_HEADER and data[0] in (_CONTENT_HANDSHAKE, 20)


def _dtls12_configuration(**kwargs: object) -> mbed_tls.DTLSConfiguration:
    return mbed_tls.DTLSConfiguration(
        ciphers=(CIPHER_SUITE,), lowest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2,
        highest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2, anti_replay=True,
        **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class DtlsLimits:
    #: handshakes in progress at once (past the cookie exchange)
    max_handshakes: int = 1024
    #: a handshake not finished this long after it started is dropped
    handshake_timeout_s: float = 10.0
    #: authenticated peers remembered (least recently heard dropped beyond it)
    max_peers: int = 4096
    #: an authenticated peer silent this long is dropped (devices ping every 25 s)
    idle_timeout_s: float = 600.0


@dataclass
class DtlsStats:
    cookies_sent: int = 0
    handshakes_started: int = 0
    handshakes_done: int = 0
    refused: int = 0
    busy: int = 0
    stray: int = 0
    expired: int = 0
    failed: int = 0
    records: int = 0
    #: datagrams that decrypted to nothing (replays, duplicates, stale retransmissions)
    discarded: int = 0
    refusals: dict[str, int] = field(default_factory=dict)


class _Peer:
    __slots__ = ("buffer", "device_id", "last_heard", "started")

    def __init__(self, buffer: mbed_tls.TLSWrappedBuffer, now: float) -> None:
        self.buffer = buffer
        self.started = now
        self.last_heard = now
        self.device_id: str | None = None


#: (typed as an int by python-mbedtls's stubs, a HandshakeStep at run time)
_HANDSHAKE_OVER: object = mbed_tls.HandshakeStep.HANDSHAKE_OVER


def _flush(buffer: mbed_tls.TLSWrappedBuffer, send: Send) -> None:
    while True:
        out = buffer.peek_outgoing(65536)
        if not out:
            return
        buffer.consume_outgoing(len(out))
        send(out)


def _handshake_steps(buffer: mbed_tls.TLSWrappedBuffer, send: Send) -> bool:
    """Run the handshake as far as the input allows, sending what it writes; True once it is
    over. (python-mbedtls's ``do_handshake`` takes one step per call, and answers
    WantWriteError while a written flight waits to be taken.)"""
    for _ in range(64):
        if buffer._handshake_state is _HANDSHAKE_OVER:
            return True
        try:
            buffer.do_handshake()
        except mbed_tls.WantWriteError:
            _flush(buffer, send)
        except mbed_tls.WantReadError:
            return False
    return buffer._handshake_state is _HANDSHAKE_OVER


class DtlsServer:
    """DTLS 1.2 for every peer of the cloud's UDP socket."""

    def __init__(self, server_key: ServerKey, keys: KeyLookup, *,
                 limits: DtlsLimits | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_event: Callable[[str, dict[str, object]], None] | None = None) -> None:
        self.limits = limits or DtlsLimits()
        self._keys = keys
        self._clock = clock
        self._on_event = on_event
        certificate, key = self_signed_certificate(server_key.private_der, "fwsim-cloud")
        self._context = mbed_tls.ServerContext(_dtls12_configuration(
            certificate_chain=((certificate,), key),
            # the device's certificate is self-signed: mbedTLS still requests it and checks its
            # CertificateVerify signature; the key is then pinned against the registry
            validate_certificates=False))
        self._handshaking: OrderedDict[Hashable, _Peer] = OrderedDict()
        self._peers: OrderedDict[Hashable, _Peer] = OrderedDict()
        self.stats = DtlsStats()

    # -- what the socket adapter calls ---------------------------------------------------------

    @property
    def handshakes_in_progress(self) -> int:
        return len(self._handshaking)

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    def device_of(self, address: Hashable) -> str | None:
        peer = self._peers.get(address)
        return peer.device_id if peer is not None else None

    def datagram_received(self, address: Hashable, data: bytes, send: Send
                          ) -> list[tuple[str, bytes]]:
        """Process one datagram; returns ``(device id, plaintext)`` for each record of an
        authenticated device it carried."""
        now = self._clock()
        self._expire(now)
        peer = self._peers.get(address)
        pending = self._handshaking.get(address)
        if pending is not None and (peer is None or _is_handshake_flight(data)):
            pending.last_heard = now
            return self._handshake(address, pending, data, send)
        if peer is not None and not is_client_hello(data):
            peer.last_heard = now
            self._peers.move_to_end(address)
            return self._read(address, peer, data, send)
        # a ClientHello from an address with an authenticated peer starts a new handshake
        # beside it: the old association goes only when the new one completes (RFC 6347
        # 4.2.8), so a replayed ClientHello cannot cut a device off
        if not is_client_hello(data):
            self.stats.stray += 1
            return []
        return self._client_hello(address, data, send, now)

    def encrypt(self, address: Hashable, plaintext: bytes, send: Send) -> bool:
        """Send ``plaintext`` as one record to an authenticated peer."""
        peer = self._peers.get(address)
        if peer is None or len(plaintext) > MAX_PLAINTEXT:
            return False
        try:
            peer.buffer.write(plaintext)
            _flush(peer.buffer, send)
        except TLSError as exc:
            self._fail(address, "write", exc)
            return False
        return True

    def forget(self, address: Hashable) -> None:
        self._forget(address)

    # -- internals -----------------------------------------------------------------------------

    def _event(self, kind: str, **fields: object) -> None:
        if self._on_event is not None:
            self._on_event(kind, fields)

    def _forget(self, address: Hashable) -> None:
        self._peers.pop(address, None)
        self._handshaking.pop(address, None)

    def _expire(self, now: float) -> None:
        limits = self.limits
        while self._handshaking:
            address, peer = next(iter(self._handshaking.items()))
            if now - peer.started <= limits.handshake_timeout_s:
                break
            del self._handshaking[address]
            self.stats.expired += 1
        while self._peers:
            address, peer = next(iter(self._peers.items()))
            if now - peer.last_heard <= limits.idle_timeout_s:
                break
            del self._peers[address]
            self._event("dtls.idle", device_id=peer.device_id)

    def _client_hello(self, address: Hashable, data: bytes, send: Send, now: float
                      ) -> list[tuple[str, bytes]]:
        buffer = self._context.wrap_buffers()
        buffer.setmtu(DATAGRAM_MTU)
        buffer.setcookieparam(repr(address).encode())
        peer = _Peer(buffer, now)
        try:
            _handshake_steps(buffer, send)  # a fresh context first starts its state machine
            buffer.receive_from_network(data)
            _handshake_steps(buffer, send)
        except mbed_tls.HelloVerifyRequest:
            _flush(buffer, send)  # the cookie; nothing is kept for this address
            self.stats.cookies_sent += 1
            return []
        except TLSError as exc:
            self.stats.failed += 1
            self._event("dtls.failed", stage="client hello", error=str(exc))
            return []
        if len(self._handshaking) >= self.limits.max_handshakes:
            self.stats.busy += 1
            return []
        _flush(buffer, send)
        self.stats.handshakes_started += 1
        self._handshaking[address] = peer
        return []

    def _handshake(self, address: Hashable, peer: _Peer, data: bytes, send: Send
                   ) -> list[tuple[str, bytes]]:
        buffer = peer.buffer
        try:
            buffer.receive_from_network(data)
            done = _handshake_steps(buffer, send)
        except TLSError as exc:
            self._fail(address, "handshake", exc)
            return []
        _flush(buffer, send)
        if not done:
            return []
        del self._handshaking[address]
        device_id = self._authenticate(buffer)
        if device_id is None:
            # tell the peer at once (a close_notify), rather than let it time out
            with contextlib.suppress(TLSError):
                buffer.shutdown()
                _flush(buffer, send)
            return []
        peer.device_id = device_id
        self._peers[address] = peer
        while len(self._peers) > self.limits.max_peers:
            self._peers.popitem(last=False)
        self.stats.handshakes_done += 1
        self._event("dtls.authenticated", device_id=device_id)
        return self._read(address, peer, b"", send)

    def _authenticate(self, buffer: mbed_tls.TLSWrappedBuffer) -> str | None:
        """The device id the handshake proved, or None (refused)."""
        try:
            der = buffer.getpeercert(binary_form=True)
        except (TLSError, ValueError):
            der = None
        identity = certificate_identity(der) if der else None
        if identity is None:
            self._refuse("no certificate", "")
            return None
        device_id, public = identity
        device_id = device_id.lower()
        registered = self._keys(device_id)
        if registered is None:
            self._refuse("unknown device", device_id)
            return None
        if registered != public:
            self._refuse("wrong key", device_id)
            return None
        return device_id

    def _refuse(self, reason: str, device_id: str) -> None:
        self.stats.refused += 1
        self.stats.refusals[reason] = self.stats.refusals.get(reason, 0) + 1
        self._event("dtls.refused", reason=reason, device_id=device_id)
        return None

    def _read(self, address: Hashable, peer: _Peer, data: bytes, send: Send
              ) -> list[tuple[str, bytes]]:
        buffer = peer.buffer
        records: list[tuple[str, bytes]] = []
        assert peer.device_id is not None
        try:
            if data:
                buffer.receive_from_network(data)
            while True:
                try:
                    plaintext = buffer.read(_READ_SIZE)
                except (mbed_tls.WantReadError, mbed_tls.WantWriteError):
                    break
                if not plaintext:  # nothing more (python-mbedtls: also after a close_notify)
                    break
                records.append((peer.device_id, plaintext))
        except TLSError as exc:
            self._fail(address, "read", exc)
        _flush(buffer, send)  # a retransmitted flight the peer asked for again
        if data and not records:
            self.stats.discarded += 1
        self.stats.records += len(records)
        return records

    def _fail(self, address: Hashable, stage: str, exc: Exception) -> None:
        """Drop the failed association: the handshake in progress, or the peer (the other
        one of the same address, if any, stays)."""
        self.stats.failed += 1
        self._event("dtls.failed", stage=stage, error=str(exc))
        if stage == "handshake":
            self._handshaking.pop(address, None)
        else:
            self._peers.pop(address, None)


__all__ = ["CIPHER_SUITE", "DtlsLimits", "DtlsServer", "DtlsStats", "certificate_identity",
           "is_client_hello", "self_signed_certificate"]
