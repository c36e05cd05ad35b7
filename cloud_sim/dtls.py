"""The cloud's side of DTLS 1.2 on the UDP device link (OpenSSL, through pyOpenSSL).

How this works
--------------
:class:`DtlsServer` is sans-IO: ``datagram_received(address, data, send)`` takes one UDP
datagram and returns the plaintext records it carried that belong to an *authenticated* device,
each with that device's id; everything it must send back goes through ``send``.
``encrypt(address, plaintext, send)`` sends a record to an authenticated peer, and
``retransmit(send_to)`` resends the flights whose retransmission timer has run out (the socket
adapter calls it a few times a second while handshakes are in progress).

The handshake is the one Device OS runs (``communication/src/dtls_message_channel.cpp``):
DTLS 1.2 only, the single cipher suite TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (Device OS's
``MBEDTLS_SSL_CIPHERSUITES``, ``crypto/inc/mbedtls_config_default.h``; OpenSSL's name
``ECDHE-ECDSA-AES128-CCM8``), P-256, the device authenticated by its key pair and the server by
its own. The device's side (``transports/dtls.py``) is mbedTLS, the library Device OS runs; the
cloud's side is OpenSSL, whose P-256 arithmetic makes a server handshake cost ~2 ms of CPU
instead of mbedTLS's ~14 ms (``benchmarks/bench_dtls.py``). Device OS uses RFC 7250 *raw public
keys* (a Particle extension of its mbedTLS); stock mbedTLS has no raw public keys, so each side
wraps its key in a self-signed certificate (the device's names its id, ``CN=<24 hex digits>``)
and each side *pins the key*, not the certificate: the server looks the device id up in the
cloud's key registry (:mod:`cloud_sim.device_keys`) and requires exactly that public key; the
device requires the server public key from its DCT. The server accepts any certificate chain in
the handshake, but OpenSSL checks the CertificateVerify signature against the certificate's
key, so only the holder of the private key completes the handshake.

Resource limits, so spoofed or abandoned handshakes cost nothing lasting:

* a ClientHello without a valid cookie is answered with a HelloVerifyRequest and **no state is
  kept** (``DTLSv1_listen``; the cookie is an HMAC over the source address with a key drawn at
  start-up, RFC 6347 4.2.1): a spoofed source never gets past this point;
* at most ``max_handshakes`` handshakes in progress, each dropped ``handshake_timeout_s`` after
  it started; a ClientHello beyond the cap is dropped (the device retries);
* at most ``max_peers`` authenticated peers; beyond it the least recently heard is dropped, and
  any peer silent for ``idle_timeout_s`` is dropped (its device handshakes again); an idle
  peer's record buffers are released (``SSL_MODE_RELEASE_BUFFERS``);
* anything from an address with no state that is not a ClientHello is dropped, and so is a
  record that fails authentication or the replay window (DTLS anti-replay, on in Device OS's
  mbedTLS too).

A handshake that completes but whose device is unknown, or whose key is not the registered one,
or that sent no certificate, is refused: the peer gets a close_notify and is dropped before any
record reaches the endpoint (the key is checked against the registry right after the
handshake). A close_notify from a device ends its association. Every outcome is counted in
:class:`DtlsStats`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from .device_keys import ServerKey

#: Device OS's only cipher suite (``MBEDTLS_SSL_CIPHERSUITES``), in mbedTLS's spelling
CIPHER_SUITE = "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"
#: the same suite in OpenSSL's spelling. OpenSSL will not negotiate it above security level 0
#: (the handshake fails at the default level: CCM_8 has a 64-bit tag), so the list names level
#: 0; that admits nothing weaker, since the list has this one suite, DTLS 1.2 only
_OPENSSL_CIPHERS = b"ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0"
_DTLS_1_2 = 0xFEFD
#: datagram size the DTLS layer writes at most (the cloud drops larger datagrams)
DATAGRAM_MTU = 1500
#: a record's plaintext at most: the MTU less the record header (13), the CCM_8 explicit
#: nonce (8) and tag (8); a larger one is dropped like an oversize UDP datagram
MAX_PLAINTEXT = DATAGRAM_MTU - 29
_CONTENT_HANDSHAKE = 22
_CONTENT_APPLICATION = 23
_CLIENT_HELLO = 1
_RECORD_HEADER = 13
_READ_SIZE = 2048
_COOKIE_SIZE = 16
_BIO_READ_SIZE = 65536

Send = Callable[[bytes], None]
#: the key registry's lookup: device id -> SubjectPublicKeyInfo DER, None when unknown
KeyLookup = Callable[[str], bytes | None]


def self_signed_certificate(private_key_der: bytes, common_name: str
                            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate carrying the key (the stand-in for a raw public key): the key's own
    signature over ``CN=<common_name>``, valid 2000-2099."""
    key = serialization.load_der_private_key(private_key_der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the server key is not an EC key")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(_dt.datetime(2000, 1, 1, tzinfo=_dt.UTC))
                   .not_valid_after(_dt.datetime(2099, 1, 1, tzinfo=_dt.UTC))
                   .sign(key, hashes.SHA256()))
    return certificate, key


def certificate_identity(cert: x509.Certificate) -> tuple[str, bytes] | None:
    """``(common name, SubjectPublicKeyInfo DER)`` of a peer certificate, None if malformed."""
    try:
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


def _record_spans(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each DTLS record in ``data``, back to back, as its header declares
    it: a torn last record ends past ``len(data)``; trailing bytes too short for a header end
    the walk."""
    start = 0
    while start + _RECORD_HEADER <= len(data):
        end = start + _RECORD_HEADER + int.from_bytes(data[start + 11:start + 13], "big")
        yield start, end
        start = end


def _application_records(data: bytes) -> int | None:
    """How many records ``data`` holds when it is nothing but whole application-data records
    (content type 23); None for anything else (handshake, alert, malformed)."""
    count = last_end = 0
    for start, end in _record_spans(data):
        if data[start] != _CONTENT_APPLICATION:
            return None
        count += 1
        last_end = end
    return count if count and last_end == len(data) else None


def _is_handshake_flight(data: bytes) -> bool:
    """A record of a handshake in progress: handshake (22) or ChangeCipherSpec (20)."""
    return len(data) > _RECORD_HEADER and data[0] in (_CONTENT_HANDSHAKE, 20)


def datagrams(records: bytes, mtu: int = DATAGRAM_MTU) -> Iterator[bytes]:
    """``records`` (what the connection wrote: whole DTLS records back to back) packed into
    datagrams of at most ``mtu`` bytes, never splitting a record (the MTU set on the connection
    keeps each record under it)."""
    if len(records) <= mtu:  # the usual case: one record, or a flight that fits
        if records:
            yield records
        return
    first = 0
    for start, end in _record_spans(records):
        if end - first > mtu and start > first:
            yield records[first:start]
            first = start
    yield records[first:]


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
    __slots__ = ("connection", "device_id", "last_heard", "sequence_offset", "started")

    def __init__(self, connection: SSL.Connection, now: float, sequence_offset: int) -> None:
        self.connection = connection
        self.started = now
        self.last_heard = now
        self.device_id: str | None = None
        #: added to OpenSSL's epoch-0 record numbers (:func:`_shift_epoch0_sequence`)
        self.sequence_offset = sequence_offset


def _written(connection: SSL.Connection) -> bytes:
    """What the connection wrote since the last call: whole DTLS records back to back."""
    out = b""
    while True:
        try:
            chunk = connection.bio_read(_BIO_READ_SIZE)
        except SSL.WantReadError:  # nothing (more) written
            return out
        out += chunk
        if len(chunk) < _BIO_READ_SIZE:  # a memory BIO hands over all it holds at once
            return out


def _shift_epoch0_sequence(records: bytes, offset: int) -> bytes:
    """``records`` with ``offset`` added to the sequence number of every epoch-0 record.

    After ``DTLSv1_listen`` OpenSSL numbers the ServerHello's record 1 whatever the ClientHello's
    number, so once a ClientHello was retransmitted the ServerHello repeats the number of the
    HelloVerifyRequest and mbedTLS's replay window drops it: the handshake never completes.
    RFC 6347 4.2.1 has the server take its record number from the ClientHello; this does that
    for the rest of epoch 0. Epoch-0 records are unprotected and the handshake transcript covers
    handshake messages, not record headers, so renumbering them changes nothing else."""
    if offset <= 0:
        return records
    out = bytearray(records)
    for start, _ in _record_spans(records):
        if out[start + 3:start + 5] == b"\x00\x00":
            number = int.from_bytes(out[start + 5:start + 11], "big") + offset
            out[start + 5:start + 11] = number.to_bytes(6, "big")
    return bytes(out)


def _flush(connection: SSL.Connection, send: Send, offset: int = 0) -> None:
    """Send what the connection wrote, as datagrams of at most the MTU."""
    for datagram in datagrams(_shift_epoch0_sequence(_written(connection), offset)):
        send(datagram)


def _accept_any_chain(connection: SSL.Connection, certificate: object, errno: int,
                      depth: int, ok: int) -> bool:
    return True  # the key is pinned after the handshake (module header)


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
        self._cookie_key = secrets.token_bytes(32)
        certificate, key = self_signed_certificate(server_key.private_der, "fwsim-cloud")
        context = SSL.Context(SSL.DTLS_METHOD)
        context.set_min_proto_version(_DTLS_1_2)
        context.set_max_proto_version(_DTLS_1_2)
        context.set_cipher_list(_OPENSSL_CIPHERS)
        context.use_certificate(certificate)
        context.use_privatekey(key)
        # request the device's certificate (a handshake without one completes and is then
        # refused, so the refusal is counted like the others)
        context.set_verify(SSL.VERIFY_PEER, _accept_any_chain)
        context.set_options(SSL.OP_NO_QUERY_MTU | (SSL.OP_COOKIE_EXCHANGE or 0)
                            | SSL.OP_NO_TICKET | SSL.OP_NO_RENEGOTIATION)
        context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        context.set_mode(SSL.MODE_RELEASE_BUFFERS)
        context.set_cookie_generate_callback(self._cookie)
        context.set_cookie_verify_callback(self._cookie_matches)
        self._context = context
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
            peer.connection.send(plaintext)
            _flush(peer.connection, send)
        except SSL.Error as exc:
            self._fail(address, "write", exc)
            return False
        return True

    def retransmit(self, send_to: Callable[[Any], Send]) -> int:
        """Resend every handshake flight whose retransmission timer ran out (OpenSSL's timer:
        1 s, doubling); returns how many handshakes are still in progress."""
        self._expire(self._clock())
        for address, peer in list(self._handshaking.items()):
            connection = peer.connection
            due = connection.DTLSv1_get_timeout()
            if due is None or due > 0:
                continue
            try:
                connection.DTLSv1_handle_timeout()
                _flush(connection, send_to(address), peer.sequence_offset)
            except SSL.Error as exc:
                self._fail(address, "handshake", exc)
        return len(self._handshaking)

    def forget(self, address: Hashable) -> None:
        self._forget(address)

    # -- internals -----------------------------------------------------------------------------

    def _cookie(self, connection: SSL.Connection) -> bytes:
        address = repr(connection.get_app_data()).encode()
        return hmac.new(self._cookie_key, address, hashlib.sha256).digest()[:_COOKIE_SIZE]

    def _cookie_matches(self, connection: SSL.Connection, cookie: bytes) -> bool:
        return hmac.compare_digest(cookie, self._cookie(connection))

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
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(address)
        connection.set_accept_state()
        connection.set_ciphertext_mtu(DATAGRAM_MTU)
        try:
            connection.bio_write(data)
            connection.DTLSv1_listen()
        except SSL.WantReadError:  # no valid cookie yet: the HelloVerifyRequest, no state
            _flush(connection, send)
            self.stats.cookies_sent += 1
            return []
        except SSL.Error as exc:
            self.stats.failed += 1
            self._event("dtls.failed", stage="client hello", error=_describe(exc))
            return []
        if len(self._handshaking) >= self.limits.max_handshakes:
            self.stats.busy += 1
            return []
        # OpenSSL numbers its ServerHello record 1; the ClientHello's own number is the one
        # to continue from (it is past every HelloVerifyRequest this address was sent)
        peer = _Peer(connection, now, int.from_bytes(data[5:11], "big") - 1)
        self.stats.handshakes_started += 1
        self._handshaking[address] = peer
        return self._handshake(address, peer, b"", send)

    def _handshake(self, address: Hashable, peer: _Peer, data: bytes, send: Send
                   ) -> list[tuple[str, bytes]]:
        connection = peer.connection
        try:
            if data:
                connection.bio_write(data)
            connection.do_handshake()
        except SSL.WantReadError:
            _flush(connection, send, peer.sequence_offset)
            return []
        except SSL.Error as exc:
            _flush(connection, send, peer.sequence_offset)  # the alert, if OpenSSL wrote one
            self._fail(address, "handshake", exc)
            return []
        _flush(connection, send, peer.sequence_offset)
        del self._handshaking[address]
        device_id = self._authenticate(connection)
        if device_id is None:
            # tell the peer at once (a close_notify), rather than let it time out
            with contextlib.suppress(SSL.Error):
                connection.shutdown()
            _flush(connection, send)
            return []
        peer.device_id = device_id
        self._peers[address] = peer
        while len(self._peers) > self.limits.max_peers:
            self._peers.popitem(last=False)
        self.stats.handshakes_done += 1
        self._event("dtls.authenticated", device_id=device_id)
        return self._read(address, peer, b"", send)

    def _authenticate(self, connection: SSL.Connection) -> str | None:
        """The device id the handshake proved, or None (refused)."""
        certificate = connection.get_peer_certificate(as_cryptography=True)
        identity = certificate_identity(certificate) if certificate is not None else None
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
        connection = peer.connection
        records: list[tuple[str, bytes]] = []
        assert peer.device_id is not None
        # the usual datagram: application records only, so at most that many to read and
        # nothing for OpenSSL to answer (pyOpenSSL reports "nothing more" as an exception,
        # which cost about a third of a record's time)
        expected = _application_records(data) if data else None
        try:
            if data:
                connection.bio_write(data)
            while expected is None or len(records) < expected:
                try:
                    plaintext = connection.recv(_READ_SIZE)
                except SSL.WantReadError:
                    break
                if not plaintext:
                    break
                records.append((peer.device_id, plaintext))
        except SSL.ZeroReturnError:  # the device's close_notify: the association ends
            self._peers.pop(address, None)
            self._event("dtls.closed", device_id=peer.device_id)
        except SSL.Error as exc:
            self._fail(address, "read", exc)
        if expected is None:
            # a retransmitted last flight (its ChangeCipherSpec is an epoch-0 record), an alert
            _flush(connection, send, peer.sequence_offset)
        if data and not records:
            self.stats.discarded += 1
        self.stats.records += len(records)
        return records

    def _fail(self, address: Hashable, stage: str, exc: Exception) -> None:
        """Drop the failed association: the handshake in progress, or the peer (the other
        one of the same address, if any, stays)."""
        self.stats.failed += 1
        self._event("dtls.failed", stage=stage, error=_describe(exc))
        if stage == "handshake":
            self._handshaking.pop(address, None)
        else:
            self._peers.pop(address, None)


def _describe(exc: Exception) -> str:
    """An OpenSSL error as one line (pyOpenSSL's ``str`` is a list of tuples)."""
    if isinstance(exc, SSL.Error) and exc.args and isinstance(exc.args[0], list):
        reasons = [str(part[-1]) for part in exc.args[0] if isinstance(part, tuple) and part]
        if reasons:
            return "; ".join(reasons)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


__all__ = ["CIPHER_SUITE", "DtlsLimits", "DtlsServer", "DtlsStats", "certificate_identity",
           "datagrams", "is_client_hello", "self_signed_certificate"]
