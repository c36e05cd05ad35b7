"""fwsim's EC-JPAKE against mbedTLS's (the library Device OS runs), in both roles.

The peer is tests/interop/mbedtls/ecjpake_peer.c linked with libmbedcrypto built from Debian's
mbedtls source package with MBEDTLS_ECJPAKE_C (tests/interop/mbedtls/build.sh). The test finds
it through FWSIM_MBEDTLS_HARNESS or in ${FWSIM_CACHE:-~/.cache/fwsim}/mbedtls/ecjpake_peer; with
FWSIM_MBEDTLS_BUILD=1 it runs build.sh itself first. Otherwise it skips.
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from transports.ble.channel_crypto import (
    ChannelSession,
    HandshakeTranscript,
    client_confirmation,
    device_confirmation,
    verify_client_confirmation,
)
from transports.ble.ecjpake import EcJpake, EcJpakeError, EcJpakeRole

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "mbedtls" / "build.sh"
VECTORS = json.loads(
    (HERE.parent / "transports" / "ble" / "mbedtls_ecjpake_vectors.json").read_text())
REF = {name: bytes.fromhex(value) for name, value in VECTORS["reference_handshake"].items()}
PASSWORD = b"0123456789ABCDE"  # 15 characters, like a mobile secret
ANSWER_TIMEOUT_S = 20.0
CLIENT, SERVER = EcJpakeRole.CLIENT, EcJpakeRole.SERVER
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF


def _default_harness() -> Path:
    cache = Path(os.environ.get("FWSIM_CACHE") or Path.home() / ".cache" / "fwsim")
    return cache / "mbedtls" / "ecjpake_peer"


def _find_harness() -> Path:
    configured = os.environ.get("FWSIM_MBEDTLS_HARNESS")
    harness = Path(configured) if configured else _default_harness()
    if not (harness.is_file() and os.access(harness, os.X_OK)):
        if not configured and os.environ.get("FWSIM_MBEDTLS_BUILD") == "1":
            subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.DEVNULL)
        if not (harness.is_file() and os.access(harness, os.X_OK)):
            pytest.skip(
                f"mbedTLS EC-JPAKE harness not found at {harness}: build it with "
                f"`bash {BUILD_SCRIPT.relative_to(HERE.parent.parent)}` (needs apt + a C "
                "compiler), or point FWSIM_MBEDTLS_HARNESS at a built ecjpake_peer, or set "
                "FWSIM_MBEDTLS_BUILD=1 to build it from the test"
            )
    return harness


class MbedtlsPeer:
    """One mbedTLS EC-JPAKE context in a child process, driven line by line."""

    def __init__(self, harness: Path, role: EcJpakeRole, password: bytes) -> None:
        self.process = subprocess.Popen(
            [str(harness), role.value, password.hex()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._pending = b""

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], ANSWER_TIMEOUT_S)
            if not ready:
                raise AssertionError(f"mbedTLS peer did not answer {command.split()[0]!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                stderr = self.process.stderr.read() if self.process.stderr else b""
                raise AssertionError(f"mbedTLS peer exited: {stderr.decode(errors='replace')}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode()

    def write(self, step: str) -> bytes:
        answer = self.ask(step)
        assert answer.startswith("ok "), f"mbedTLS {step} failed: {answer}"
        return bytes.fromhex(answer[3:])

    def read(self, step: str, message: bytes) -> str:
        """'ok' or 'err -0x....' exactly as the harness prints it."""
        return self.ask(f"{step} {message.hex()}")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write(b"quit\n")
            self.process.stdin.close()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


PeerFactory = Callable[[EcJpakeRole, bytes], MbedtlsPeer]


@pytest.fixture(scope="module")
def harness() -> Path:
    return _find_harness()


@pytest.fixture
def mbedtls(harness: Path) -> Iterator[PeerFactory]:
    peers: list[MbedtlsPeer] = []

    def start(role: EcJpakeRole, password: bytes) -> MbedtlsPeer:
        peer = MbedtlsPeer(harness, role, password)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


def _fwsim_outcome(read: Callable[[bytes], None], message: bytes) -> str:
    try:
        read(message)
    except EcJpakeError as error:
        return f"err -0x{-error.mbedtls_code:04x}"
    return "ok"


def fwsim_client_vs_mbedtls_server(
    mbedtls: PeerFactory, client_password: bytes, server_password: bytes, seed: int
) -> tuple[list[bytes], bytes, bytes]:
    client = EcJpake(CLIENT, client_password, random.Random(seed).randbytes)
    server = mbedtls(SERVER, server_password)
    client_one = client.write_round_one()
    assert server.read("r1", client_one) == "ok"
    server_one, server_two = server.write("w1"), server.write("w2")
    client.read_round_one(server_one)
    client.read_round_two(server_two)
    client_two = client.write_round_two()
    assert server.read("r2", client_two) == "ok"
    messages = [client_one, server_one, server_two, client_two]
    return messages, client.derive_secret(), server.write("secret")


def mbedtls_client_vs_fwsim_server(
    mbedtls: PeerFactory, client_password: bytes, server_password: bytes, seed: int
) -> tuple[list[bytes], bytes, bytes]:
    client = mbedtls(CLIENT, client_password)
    server = EcJpake(SERVER, server_password, random.Random(seed).randbytes)
    client_one = client.write("w1")
    server.read_round_one(client_one)
    server_one, server_two = server.write_round_one(), server.write_round_two()
    assert client.read("r1", server_one) == "ok"
    assert client.read("r2", server_two) == "ok"
    client_two = client.write("w2")
    server.read_round_two(client_two)
    messages = [client_one, server_one, server_two, client_two]
    return messages, client.write("secret"), server.derive_secret()


ROLES = {
    "fwsim-client/mbedtls-server": fwsim_client_vs_mbedtls_server,
    "mbedtls-client/fwsim-server": mbedtls_client_vs_fwsim_server,
}


@pytest.mark.parametrize("pairing", list(ROLES))
def test_handshake_derives_the_same_secret(mbedtls: PeerFactory, pairing: str) -> None:
    sizes: Counter[tuple[int, ...]] = Counter()
    for seed in range(6):
        messages, client_secret, server_secret = ROLES[pairing](mbedtls, PASSWORD, PASSWORD, seed)
        assert len(client_secret) == 32
        assert client_secret == server_secret
        sizes[tuple(len(message) for message in messages)] += 1
        # the confirmations both ends would send then agree as well
        transcript = HandshakeTranscript(*messages)
        confirmation = client_confirmation(client_secret, transcript)
        verify_client_confirmation(server_secret, transcript, confirmation)
        device = ChannelSession(server_secret, SERVER)
        phone = ChannelSession(client_secret, CLIENT)
        assert device.open_request(phone.seal_request(1, 2, b"hi")).payload == b"hi"
        assert len(device_confirmation(server_secret, transcript, confirmation)) == 32
    # r is written with its minimal length, so a message is 1 byte shorter once in ~256 proofs
    assert sizes.most_common(1)[0][0] == (330, 330, 168, 165)


@pytest.mark.parametrize("pairing", list(ROLES))
def test_wrong_password_gives_different_secrets(mbedtls: PeerFactory, pairing: str) -> None:
    _, client_secret, server_secret = ROLES[pairing](mbedtls, PASSWORD, b"0123456789ABCDX", 1)
    assert len(client_secret) == len(server_secret) == 32
    assert client_secret != server_secret


def test_harness_reproduces_the_reference_handshake(mbedtls: PeerFactory) -> None:
    """The harness with mbedTLS's fixed keys derives the published secret: it is wired right."""
    client = mbedtls(CLIENT, REF["password"])
    assert client.ask(f"keys {REF['x1'].hex()} {REF['x2'].hex()}") == "ok"
    assert client.read("r1", REF["server_round_one"]) == "ok"
    assert client.read("r2", REF["server_round_two"]) == "ok"
    assert client.write("secret") == REF["premaster_secret"]


def _mutations(valid: bytes, seed: int, prefix_offsets: list[int]) -> list[bytes]:
    """Deterministic hostile variants of a valid message."""
    rng = random.Random(seed)
    variants = [valid[:cut] for cut in range(0, len(valid), 11)]
    variants += [valid + b"\x00", valid + bytes(rng.randrange(256) for _ in range(5))]
    for _ in range(40):
        data = bytearray(valid)
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
        variants.append(bytes(data))
    for offset in prefix_offsets:
        for value in (0, 1, 2, 32, 33, 64, 65, 66, 255):
            data = bytearray(valid)
            data[offset] = value
            variants.append(bytes(data))
    for offset in prefix_offsets:  # point format byte / first scalar byte
        for value in (0x00, 0x02, 0x03, 0x06):
            data = bytearray(valid)
            data[offset + 1] = value
            variants.append(bytes(data))
    return variants


def _special_round_one(valid: bytes) -> list[bytes]:
    """Hand-made cases: x + p, r = n, r padded with a zero, the point at infinity."""
    variants = [valid[:133] + N.to_bytes(32, "big") + valid[165:]]
    variants.append(valid[:132] + b"\x21\x00" + valid[133:])
    variants.append(b"\x01\x00" + valid[66:])
    variants.append(valid[:66] + b"\x01\x00" + valid[132:])
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    for x in range(1, 200):
        rhs = (x**3 - 3 * x + b) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            point = bytes([65, 4]) + (x + P).to_bytes(32, "big") + y.to_bytes(32, "big")
            variants.append(point + valid[66:])
            variants.append(
                bytes([65, 4]) + x.to_bytes(32, "big") + y.to_bytes(32, "big") + valid[66:]
            )
            break
    return variants


def test_round_one_errors_match_mbedtls(mbedtls: PeerFactory) -> None:
    """For every hostile round one, fwsim and mbedTLS agree: accepted, or the same error code."""
    valid = mbedtls(CLIENT, PASSWORD).write("w1")
    reader = mbedtls(SERVER, PASSWORD)
    cases = _mutations(valid, 1, [0, 66, 132, 165, 231, 297]) + _special_round_one(valid)
    cases += [
        bytes.fromhex(case["message"])
        for case in VECTORS["cases"]
        if case["step"] == "read_round_one"
    ]
    outcomes: Counter[str] = Counter()
    for message in cases:
        expected = reader.read("r1", message)
        got = _fwsim_outcome(EcJpake(SERVER, PASSWORD).read_round_one, message)
        assert got == expected, f"round one {message.hex()}: fwsim {got}, mbedTLS {expected}"
        outcomes[expected] += 1
    assert {"ok", "err -0x4f80", "err -0x4e80", "err -0x4e00", "err -0x4c80"} <= set(outcomes)


def test_round_two_errors_match_mbedtls(mbedtls: PeerFactory) -> None:
    """Same for the server's round two as read by a client holding mbedTLS's reference keys."""
    reader = mbedtls(CLIENT, REF["password"])
    assert reader.ask(f"keys {REF['x1'].hex()} {REF['x2'].hex()}") == "ok"
    assert reader.read("r1", REF["server_round_one"]) == "ok"

    def fwsim_read(message: bytes) -> None:
        side = EcJpake(CLIENT, REF["password"], private_keys=(REF["x1"], REF["x2"]))
        side.read_round_one(REF["server_round_one"])
        side.read_round_two(message)

    valid = REF["server_round_two"]
    cases = _mutations(valid, 2, [3, 69, 135])
    cases += [
        bytes.fromhex(curve) + valid[3:] for curve in ("030018", "03001d", "020017", "030000")
    ]
    cases += [
        bytes.fromhex(case["message"])
        for case in VECTORS["cases"]
        if case["step"] == "read_round_two" and case["role"] == "client"
    ]
    outcomes: Counter[str] = Counter()
    for message in cases:
        expected = reader.read("r2", message)
        got = _fwsim_outcome(fwsim_read, message)
        assert got == expected, f"round two {message.hex()}: fwsim {got}, mbedTLS {expected}"
        outcomes[expected] += 1
    assert {"ok", "err -0x4f80", "err -0x4e80", "err -0x4e00", "err -0x4c80"} <= set(outcomes)
