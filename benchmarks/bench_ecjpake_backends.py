"""The BLE handshake's CPU per side with each candidate P-256 point-arithmetic backend.

This is the measurement behind the choice in docs/ble-crypto.md. ``transports.ble.ecjpake``
ships one backend, OpenSSL through ``cryptography`` (x-only ECDH plus a y recovery in Python).
For comparison this script swaps the module's three arithmetic helpers (``_mul``, ``_mul_x``,
``_add``, and ``_mul_add`` where the library has a combined one) for adapters over other
libraries, runs complete handshakes with each (key confirmation fails loudly if an adapter were
wrong) and prints the CPU per side next to the OpenSSL floor measured in the same process.

Each backend runs in its own subprocess, because ``ecdsa`` decides at import time whether to
use ``gmpy2``. Backends whose library is not installed are listed as skipped; install them by
hand to compare (``pip install ecdsa gmpy2 fastecdsa pycryptodome``); none is a dependency.

    python benchmarks/bench_ecjpake_backends.py [--runs 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import bench_ble_handshake

import transports.ble.ecjpake as ecjpake_module
from transports.ble.ecjpake import _Point

#: backend name -> the modules it needs and what it is
BACKENDS: dict[str, tuple[tuple[str, ...], str]] = {
    "openssl": (("cryptography",), "OpenSSL ECDH via cryptography, y recovered (shipped)"),
    "pycryptodome": (("Crypto",), "pycryptodome EccPoint (C)"),
    "fastecdsa": (("fastecdsa",), "fastecdsa Point (native, 4.x is Rust)"),
    "ecdsa+gmpy2": (("ecdsa", "gmpy2"), "ecdsa PointJacobi with gmpy2"),
    "ecdsa": (("ecdsa",), "ecdsa PointJacobi, pure Python (before this change)"),
}
_N = ecjpake_module._N

Helpers = dict[str, Callable[..., Any]]


def _ecdsa_helpers() -> Helpers:
    from ecdsa.curves import NIST256p
    from ecdsa.ellipticcurve import PointJacobi

    curve, generator = NIST256p.curve, NIST256p.generator

    def to(point: _Point) -> Any:
        if point == ecjpake_module._BASE:
            return generator  # carries the precomputed tables
        return PointJacobi(curve, point.x, point.y, 1, _N)

    def back(result: Any) -> _Point | None:
        x = result.x()
        return None if x is None else _Point(int(x), int(result.y()))

    def add(a: _Point | None, b: _Point | None) -> _Point | None:
        if a is None or b is None:
            return a if b is None else b
        return back(to(a).mul_add(1, to(b), 1))

    return {
        "_mul": lambda k, p: back(to(p) * (k % _N)),
        "_mul_x": lambda k, p: back(to(p) * k).x,  # type: ignore[union-attr]
        "_add": add,
        "_mul_add": lambda a, p, b, q: back(to(p).mul_add(a % _N, to(q), b % _N)),
    }


def _fastecdsa_helpers() -> Helpers:
    from fastecdsa.curve import P256
    from fastecdsa.point import Point

    def to(point: _Point) -> Any:
        return P256.G if point == ecjpake_module._BASE else Point(point.x, point.y, P256)

    def back(result: Any) -> _Point | None:
        if result.x == 0 and result.y == 0:  # the identity; (0, 0) is not on P-256
            return None
        return _Point(int(result.x), int(result.y))

    def add(a: _Point | None, b: _Point | None) -> _Point | None:
        if a is None or b is None:
            return a if b is None else b
        return back(to(a) + to(b))

    return {
        "_mul": lambda k, p: back(to(p) * (k % _N)),
        "_mul_x": lambda k, p: back(to(p) * k).x,  # type: ignore[union-attr]
        "_add": add,
    }


def _pycryptodome_helpers() -> Helpers:
    from Crypto.PublicKey.ECC import EccPoint

    generator = EccPoint(ecjpake_module._GX, ecjpake_module._GY, "p256")

    def to(point: _Point) -> Any:
        return generator if point == ecjpake_module._BASE else EccPoint(point.x, point.y, "p256")

    def back(result: Any) -> _Point | None:
        if result.is_point_at_infinity():
            return None
        x, y = result.xy
        return _Point(int(x), int(y))

    def add(a: _Point | None, b: _Point | None) -> _Point | None:
        if a is None or b is None:
            return a if b is None else b
        return back(to(a) + to(b))

    return {
        "_mul": lambda k, p: back(to(p) * (k % _N)),
        "_mul_x": lambda k, p: back(to(p) * k).x,  # type: ignore[union-attr]
        "_add": add,
    }


def install(backend: str) -> None:
    """Swap the module's helpers for ``backend``'s (``openssl`` keeps the shipped ones)."""
    makers: dict[str, Callable[[], Helpers]] = {
        "pycryptodome": _pycryptodome_helpers,
        "fastecdsa": _fastecdsa_helpers,
        "ecdsa+gmpy2": _ecdsa_helpers,
        "ecdsa": _ecdsa_helpers,
    }
    if backend == "openssl":
        return
    for name, helper in makers[backend]().items():
        setattr(ecjpake_module, name, helper)


def measure(backend: str, runs: int) -> dict[str, float]:
    """Median CPU ms per side for ``backend``, and the 14-multiplication OpenSSL floor."""
    if backend == "ecdsa":
        sys.modules["gmpy2"] = None  # type: ignore[assignment]  # ecdsa then runs pure Python
    install(backend)
    if backend.startswith("ecdsa"):
        import ecdsa.ellipticcurve

        assert bool(getattr(ecdsa.ellipticcurve, "GMPY", False)) == backend.endswith("gmpy2")
    bench_ble_handshake.one_handshake(0)  # warm-up (tables, imports)
    samples = [bench_ble_handshake.one_handshake(1 + 2 * run) for run in range(runs)]
    client, server = bench_ble_handshake.count_scalar_multiplications()
    return {
        "client_ms": statistics.median(s[0] for s in samples) * 1e3,
        "server_ms": statistics.median(s[1] for s in samples) * 1e3,
        "floor_ms": bench_ble_handshake.openssl_floor(max(client, server), runs) * 1e3,
        "mults": max(client, server),
    }


def available(backend: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in BACKENDS[backend][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="handshakes per backend (median)")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # one backend, JSON out (internal)
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(measure(args.backend, args.runs)))
        return

    print(f"BLE handshake CPU per side by point-arithmetic backend, median of {args.runs} runs")
    print(f"{'backend':<14}{'client ms':>10}{'server ms':>10}{'floor ms':>10}{'ratio':>7}  what")
    for backend, (_, what) in BACKENDS.items():
        if not available(backend):
            print(f"{backend:<14}{'skipped: not installed':>47}  {what}")
            continue
        out = subprocess.run(
            [sys.executable, __file__, "--backend", backend, "--runs", str(args.runs)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out)
        ratio = max(result["client_ms"], result["server_ms"]) / result["floor_ms"]
        print(
            f"{backend:<14}{result['client_ms']:>10.2f}{result['server_ms']:>10.2f}"
            f"{result['floor_ms']:>10.3f}{ratio:>7.1f}  {what}"
        )


if __name__ == "__main__":
    main()
