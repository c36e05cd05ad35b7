"""The device's side of DTLS 1.2 on the UDP cloud link (mbedTLS, through python-mbedtls).

How this works
--------------
:class:`DtlsClient` is sans-IO. It is created with the device's credentials
(:class:`DtlsCredentials`: the device id, its private key and the server public key it trusts,
all read from the DCT by the testbed) and a ``send`` function; ``start()`` sends the
ClientHello, ``datagram_received(data)`` feeds it whatever the socket received and returns the
plaintext records, ``write(plaintext)`` sends one record once the handshake is done (records
written earlier wait, at most ``max_queued`` and each once - the protocol's retransmissions of a
waiting record are the same bytes - and go out when it completes), ``poll()``
retransmits a handshake flight whose timer ran out (call it every ``RETRANSMIT_POLL_S``).

The handshake is Device OS's (``communication/src/dtls_message_channel.cpp``): DTLS 1.2 only,
TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, P-256, handshake retransmission from 3 s doubling to 16 s
(:func:`client_configuration`; Device OS: ``mbedtls_ssl_conf_handshake_timeout(&conf, 3000,
6000)``, which stops doubling at 6 s), a ``max_retransmit``-th unanswered flight failing it. Device
OS uses raw public keys; stock mbedTLS has none, so the device presents a self-signed
certificate of its key naming its id (``CN=<device id>``) and accepts the server's
certificate only when it carries exactly the public key from the DCT (``alt_server_public_key``):
the key is pinned, the certificate is just its envelope.

The outcome is ``established`` or ``failed`` (with ``failure``: a TLS error, the wrong server
key, a timeout). The device's protocol above never learns about DTLS: its own stand-in
handshake and its CoAP messages are the plaintext records, so a failed DTLS handshake looks to
it like a cloud that does not answer (its retransmissions run out, the connection is retried).
"""

from __future__ import annotations

import datetime as _dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mbedtls import hashlib as mbed_hashlib
from mbedtls import pk as mbed_pk
from mbedtls import tls as mbed_tls
from mbedtls import x509 as mbed_x509
from mbedtls.exceptions import TLSError

#: Device OS's only cipher suite (``MBEDTLS_SSL_CIPHERSUITES``)
CIPHER_SUITE = "TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8"
#: datagram size the DTLS layer writes at most (the cloud drops larger datagrams)
DATAGRAM_MTU = 1500
#: a record's plaintext at most: the MTU less the record header (13), the CCM_8 explicit
#: nonce (8) and tag (8); a larger one is dropped like an oversize UDP datagram
MAX_PLAINTEXT = DATAGRAM_MTU - 29
RETRANSMIT_POLL_S = 0.25
_READ_SIZE = 2048

Send = Callable[[bytes], None]


@dataclass(frozen=True)
class DtlsCredentials:
    device_id: str
    #: the device's P-256 private key, DER (SEC1 as in the DCT, or PKCS#8)
    private_key_der: bytes
    #: the server public key the device trusts, SubjectPublicKeyInfo DER
    server_public_key_der: bytes


@functools.lru_cache(maxsize=4096)
def _certificate(private_key_der: bytes, common_name: str) -> tuple[mbed_x509.CRT, mbed_pk.ECC]:
    """The device's self-signed certificate (fixed validity dates, so the same key and name
    always give an equivalent one): made once per key, not at every connection (it was ~6 ms
    of a device's ~33 ms of DTLS start-up in a fleet)."""
    key = mbed_pk.ECC.from_DER(private_key_der)
    csr = mbed_x509.CSR.new(key, f"CN={common_name}", mbed_hashlib.sha256())
    crt = mbed_x509.CRT.selfsign(csr, key, _dt.datetime(2000, 1, 1), _dt.datetime(2099, 1, 1),
                                 1)
    return crt, key


def _public_key_of(certificate_der: bytes) -> bytes | None:
    try:
        cert = x509.load_der_x509_certificate(certificate_der)
        return cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError):
        return None


def client_configuration(credentials: DtlsCredentials, *, handshake_timeout_min: float = 3.0,
                         handshake_timeout_max: float = 16.0) -> mbed_tls.DTLSConfiguration:
    certificate, key = _certificate(credentials.private_key_der, credentials.device_id)
    return mbed_tls.DTLSConfiguration(
        ciphers=(CIPHER_SUITE,), lowest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2,
        highest_supported_version=mbed_tls.DTLSVersion.DTLSv1_2, anti_replay=True,
        certificate_chain=((certificate,), key),
        # the server's certificate is self-signed: its key is pinned after the handshake
        validate_certificates=False,
        handshake_timeout_min=handshake_timeout_min, handshake_timeout_max=handshake_timeout_max)


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


class DtlsClient:
    """One DTLS connection of the device (one UDP socket)."""

    def __init__(self, credentials: DtlsCredentials, send: Send, *, max_queued: int = 64,
                 handshake_timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic,
                 configuration: mbed_tls.DTLSConfiguration | None = None) -> None:
        self.credentials = credentials
        self._send = send
        self._clock = clock
        self.max_queued = max_queued
        self.handshake_timeout_s = handshake_timeout_s
        config = configuration or client_configuration(credentials)
        self._buffer = mbed_tls.ClientContext(config).wrap_buffers(None)
        self._buffer.setmtu(DATAGRAM_MTU)
        self._queue: list[bytes] = []
        self._started = 0.0
        self.established = False
        self.failure: str | None = None
        self.records_in = 0
        self.records_out = 0
        self.handshake_s: float | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def cipher_suite(self) -> str | None:
        """The negotiated suite (None before the handshake is done)."""
        if not self.established:
            return None
        cipher = self._buffer.cipher()
        return str(cipher[0]) if isinstance(cipher, tuple) else str(cipher)

    def start(self) -> None:
        self._started = self._clock()
        self._step()

    def poll(self) -> None:
        """Retransmit a handshake flight whose timer ran out; fail one that took too long."""
        if self.established or self.failed:
            return
        if self._clock() - self._started > self.handshake_timeout_s:
            self._fail("handshake timed out")
            return
        self._step()

    def write(self, plaintext: bytes) -> bool:
        """Send one record (queued until the handshake is done); False if dropped."""
        if self.failed or len(plaintext) > MAX_PLAINTEXT:
            return False
        if not self.established:
            # a retransmission of a record still waiting is the same record: it goes once
            if plaintext in self._queue:
                return True
            if len(self._queue) >= self.max_queued:
                return False
            self._queue.append(bytes(plaintext))
            return True
        try:
            self._buffer.write(plaintext)
        except TLSError as exc:
            self._fail(f"write: {exc}")
            return False
        self.records_out += 1
        self._flush()
        return True

    def datagram_received(self, data: bytes) -> list[bytes]:
        """Feed one datagram; returns the plaintext records it completed."""
        if self.failed:
            return []
        try:
            self._buffer.receive_from_network(data)
        except TLSError as exc:
            self._fail(f"receive: {exc}")
            return []
        if not self.established:
            self._step()
            if not self.established:
                return []
        records: list[bytes] = []
        try:
            while True:
                try:
                    plaintext = self._buffer.read(_READ_SIZE)
                except (mbed_tls.WantReadError, mbed_tls.WantWriteError):
                    break
                if not plaintext:
                    break
                records.append(plaintext)
        except TLSError as exc:  # a close_notify from the cloud (it refused us), or worse
            self._fail(f"the cloud closed the connection ({exc!r})")
        self._flush()
        self.records_in += len(records)
        return records

    # -- internals -----------------------------------------------------------------------------

    def _flush(self) -> None:
        _flush(self._buffer, self._send)

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            self._queue.clear()

    def _step(self) -> None:
        try:
            done = _handshake_steps(self._buffer, self._send)
        except TLSError as exc:
            self._flush()
            self._fail(f"handshake: {exc}")
            return
        self._flush()
        if not done:
            return
        try:
            peer = self._buffer.getpeercert(binary_form=True)
        except (TLSError, ValueError):
            peer = None
        if not peer or _public_key_of(peer) != self.credentials.server_public_key_der:
            self._fail("the server's key is not the one in the DCT")
            return
        self.established = True
        self.handshake_s = self._clock() - self._started
        queued, self._queue = self._queue, []
        for plaintext in queued:
            self.write(plaintext)


__all__ = ["CIPHER_SUITE", "RETRANSMIT_POLL_S", "DtlsClient", "DtlsCredentials",
           "client_configuration"]
