"""CPU cost of one BLE control-channel handshake per side, against an OpenSSL floor.

Runs full handshakes (EC-JPAKE rounds one and two, secret derivation, key confirmation and the
AES-CCM session setup) between an fwsim client and an fwsim server, timing each side's own work
with ``time.process_time``. In the same run it counts the P-256 scalar multiplications each side
performs and times that many multiplications done by OpenSSL through ``cryptography`` (one ECDH
exchange = one variable-base scalar multiplication): the floor a C implementation would need.

    python benchmarks/bench_ble_handshake.py [--runs 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import __version__ as cryptography_version
from cryptography.hazmat.backends.openssl import backend as openssl_backend
from cryptography.hazmat.primitives.asymmetric import ec

import transports.ble.ecjpake as ecjpake_module
from benchmarks.targets import ble_line
from transports.ble.channel_crypto import (
    ChannelSession,
    HandshakeTranscript,
    client_confirmation,
    device_confirmation,
    verify_client_confirmation,
    verify_device_confirmation,
)
from transports.ble.ecjpake import EcJpake, EcJpakeRole

PASSWORD = b"0123456789ABCDE"


class SideClock:
    """Accumulates the CPU time spent inside ``with clock:`` blocks."""

    def __init__(self) -> None:
        self.total = 0.0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        start = time.process_time()
        try:
            yield
        finally:
            self.total += time.process_time() - start


def one_handshake(seed: int) -> tuple[float, float]:
    """CPU seconds spent by the client and by the server on one complete handshake."""
    client_clock, server_clock = SideClock(), SideClock()
    with client_clock():
        client = EcJpake(EcJpakeRole.CLIENT, PASSWORD, random.Random(seed).randbytes)
        client_one = client.write_round_one()
    with server_clock():
        server = EcJpake(EcJpakeRole.SERVER, PASSWORD, random.Random(seed + 1).randbytes)
        server.read_round_one(client_one)
        server_one, server_two = server.write_round_one(), server.write_round_two()
    with client_clock():
        client.read_round_one(server_one)
        client.read_round_two(server_two)
        client_two = client.write_round_two()
        client_secret = client.derive_secret()
        transcript = HandshakeTranscript(client_one, server_one, server_two, client_two)
        confirmation = client_confirmation(client_secret, transcript)
    with server_clock():
        server.read_round_two(client_two)
        server_secret = server.derive_secret()
        verify_client_confirmation(server_secret, transcript, confirmation)
        answer = device_confirmation(server_secret, transcript, confirmation)
        ChannelSession(server_secret, EcJpakeRole.SERVER)
    with client_clock():
        verify_device_confirmation(client_secret, transcript, confirmation, answer)
        ChannelSession(client_secret, EcJpakeRole.CLIENT)
    return client_clock.total, server_clock.total


def count_scalar_multiplications() -> tuple[int, int]:
    """Scalar multiplications per side, counted as the protocol needs them.

    Each ``k·P`` with ``k`` not 0 or 1 (mod n) counts once, at the outermost arithmetic helper
    that asks for it (``_mul``, ``_mul_x`` or ``_mul_add``); what a helper does inside (the
    second ECDH of the y recovery, ``_mul_add`` calling ``_mul``) is not counted again, so the
    floor is the same 14 multiplications whatever the backend.
    """
    counts = {"current": 0, "depth": 0}
    originals = {name: getattr(ecjpake_module, name) for name in ("_mul", "_mul_x", "_mul_add")}

    def nontrivial(k: int) -> int:
        return int(k % ecjpake_module._N not in (0, 1))

    multiplications: dict[str, Callable[..., int]] = {
        "_mul": lambda k, point: nontrivial(k),
        "_mul_x": lambda k, point: 1,
        "_mul_add": lambda a, p, b, q: nontrivial(a) + nontrivial(b),
    }

    def counting(name: str) -> Callable[..., Any]:
        def helper(*args: Any) -> Any:
            if counts["depth"] == 0:
                counts["current"] += multiplications[name](*args)
            counts["depth"] += 1
            try:
                return originals[name](*args)
            finally:
                counts["depth"] -= 1

        return helper

    def measured(step: Callable[[], Any]) -> tuple[Any, int]:
        before = counts["current"]
        result = step()
        return result, counts["current"] - before

    for name in originals:
        setattr(ecjpake_module, name, counting(name))
    try:
        client = EcJpake(EcJpakeRole.CLIENT, PASSWORD, random.Random(5).randbytes)
        server = EcJpake(EcJpakeRole.SERVER, PASSWORD, random.Random(6).randbytes)
        client_one, c1 = measured(client.write_round_one)
        _, s1 = measured(lambda: server.read_round_one(client_one))
        server_one, s2 = measured(server.write_round_one)
        server_two, s3 = measured(server.write_round_two)
        _, c2 = measured(lambda: client.read_round_one(server_one))
        _, c3 = measured(lambda: client.read_round_two(server_two))
        client_two, c4 = measured(client.write_round_two)
        _, c5 = measured(client.derive_secret)
        _, s4 = measured(lambda: server.read_round_two(client_two))
        _, s5 = measured(server.derive_secret)
    finally:
        for name, original in originals.items():
            setattr(ecjpake_module, name, original)
    return c1 + c2 + c3 + c4 + c5, s1 + s2 + s3 + s4 + s5


def openssl_floor(multiplications: int, runs: int) -> float:
    """Median CPU seconds of ``multiplications`` P-256 ECDH exchanges in OpenSSL."""
    curve = ec.SECP256R1()
    private_keys = [ec.generate_private_key(curve) for _ in range(multiplications)]
    peers = [ec.generate_private_key(curve).public_key() for _ in range(multiplications)]
    samples = []
    for _ in range(runs):
        start = time.process_time()
        for private_key, peer in zip(private_keys, peers, strict=True):
            private_key.exchange(ec.ECDH(), peer)
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def openssl_version() -> str:
    return str(openssl_backend.openssl_version_text()).removeprefix("OpenSSL ").split(" ")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="handshakes to time (median)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    one_handshake(args.seed)  # warm-up (generator tables, imports)
    samples = [one_handshake(args.seed + 2 * run) for run in range(args.runs)]
    client_cpu = statistics.median(sample[0] for sample in samples)
    server_cpu = statistics.median(sample[1] for sample in samples)
    client_mults, server_mults = count_scalar_multiplications()
    client_floor = openssl_floor(client_mults, args.runs)
    server_floor = openssl_floor(server_mults, args.runs)

    print(f"BLE handshake (EC-JPAKE P-256 + key confirmation), median of {args.runs} runs")
    print(
        f"point arithmetic: OpenSSL {openssl_version()} through cryptography {cryptography_version}"
        " (ECDH, y recovered in Python)"
    )
    print(f"{'side':<8}{'fwsim CPU ms':>14}{'scalar mults':>14}{'OpenSSL ms':>12}{'ratio':>8}")
    for side, cpu, mults, floor in (
        ("client", client_cpu, client_mults, client_floor),
        ("server", server_cpu, server_mults, server_floor),
    ):
        print(f"{side:<8}{cpu * 1e3:>14.2f}{mults:>14}{floor * 1e3:>12.3f}{cpu / floor:>8.1f}")
    for side, cpu, floor in (("client", client_cpu, client_floor),
                             ("server", server_cpu, server_floor)):
        print(ble_line(side, cpu / floor))


if __name__ == "__main__":
    main()
