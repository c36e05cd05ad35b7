"""Input generators shared by the fuzz campaigns (``benchmarks/fuzz_*.py``) and their bounded
samples in the test suite (``tests/fuzz``, ``tests/control/test_failure_containment.py``).

Generators take a seeded ``random.Random`` (a campaign is replayable from its seed) and aim at
what broke servers before: text that is not UTF-8 or not Latin-1, Unicode digits, numbers
beyond 64 bits, lengths at and past every limit, truncation, and valid messages with one field
changed.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from control_requests import codec
from control_requests.types import RequestType

#: requests that reset the device once their reply is delivered (a bridge then loses the
#: enumeration it opened; the campaigns reopen it)
RESETTING = frozenset({RequestType.RESET, RequestType.FACTORY_RESET, RequestType.DFU_MODE,
                       RequestType.SAFE_MODE, RequestType.FINISH_FIRMWARE_UPDATE})
KNOWN_TYPES = [int(t) for t in RequestType]

NASTY_TEXT = ["", "\u00b2", "\u0661\u0662", "\U0001d7d7", "\ufffd", "é" * 40, "€" * 11,
              "Photon", "x" * 64, "\x00abc", "a\u200bb", "😀" * 9, "ÿ", "%s%n"]


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _text_bytes(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.4:
        return rng.choice(NASTY_TEXT).encode("utf-8")
    if pick < 0.7:  # not UTF-8 at all: lone continuation bytes, overlong forms, surrogates
        return rng.choice([b"\x85", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff\xfe", b"\xe2\x82"]
                          ) * rng.randrange(1, 4)
    return rng.randbytes(rng.randrange(0, 48))


def message_payload(rng: random.Random, descriptor: Descriptor, depth: int = 0) -> bytes:
    """A protobuf encoding of ``descriptor`` with fuzzed values (strings often not UTF-8,
    lengths past nanopb's limits, varints up to 64 bits, nested messages)."""
    out = bytearray()
    for member in descriptor.fields:
        if rng.random() < 0.3:
            continue
        for _ in range(rng.choice([1, 1, 1, 2])):
            number = member.number
            if member.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                data = _text_bytes(rng)
                out += _varint(number << 3 | 2) + _varint(len(data)) + data
            elif member.type == FieldDescriptor.TYPE_MESSAGE:
                data = (message_payload(rng, member.message_type, depth + 1) if depth < 3
                        else rng.randbytes(4))
                out += _varint(number << 3 | 2) + _varint(len(data)) + data
            elif member.type in (FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32,
                                FieldDescriptor.TYPE_FLOAT):
                out += _varint(number << 3 | 5) + rng.randbytes(4)
            elif member.type in (FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
                                FieldDescriptor.TYPE_DOUBLE):
                out += _varint(number << 3 | 1) + rng.randbytes(8)
            else:
                value = rng.choice([0, 1, 2, 3, 127, 2**31 - 1, 2**31, 2**32, 2**63, 2**64 - 1,
                                    rng.randrange(2**64)])
                out += _varint(number << 3) + _varint(value)
    return bytes(out)


def control_request(rng: random.Random, kind: int | None = None, *,
                    allow_resets: bool = False) -> tuple[int, bytes]:
    """A control request type (``kind``, else drawn) and payload: mostly schema-aware fuzzed
    payloads, sometimes random bytes; sometimes an unknown type number."""
    if kind is None or rng.random() < 0.1:
        kind = rng.choice(KNOWN_TYPES) if rng.random() < 0.9 else rng.randrange(0x10000)
    if not allow_resets and kind in RESETTING:
        kind = int(RequestType.ECHO)
    pair = codec.message_pair(kind)
    if pair is not None and rng.random() < 0.8:
        payload = message_payload(rng, pair.request.DESCRIPTOR)
    else:
        payload = rng.randbytes(rng.choice([0, 1, 7, 33, 200]))
    if payload and rng.random() < 0.1:  # truncated
        payload = payload[:rng.randrange(len(payload))]
    return kind, payload


def control_requests(rng: random.Random, count: int, *, allow_resets: bool = False
                     ) -> list[tuple[int, bytes]]:
    """``count`` requests cycling through every known type (so each is hit count/80 times),
    with fuzzed payloads and some unknown numbers."""
    return [control_request(rng, KNOWN_TYPES[i % len(KNOWN_TYPES)], allow_resets=allow_resets)
            for i in range(count)]


# -- campaign results ----------------------------------------------------------------------------


@dataclass
class CampaignResult:
    """The figures a campaign prints: inputs, then 0 server errors, 0 crashes, 0 hangs, and a
    correct answer afterwards."""

    name: str
    unit: str
    inputs: int = 0
    server_errors: int = 0
    crashes: int = 0
    hangs: int = 0
    correct_after: bool = False
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.server_errors == self.crashes == self.hangs == 0) and self.correct_after

    def failure(self, kind: str, sample: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.samples) < 10:
            self.samples.append(f"{kind}: {sample[:300]}")

    def report(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        lines = [f"{self.name}: {self.inputs:,} {self.unit} in {self.seconds:.1f} s "
                 f"({rate:,.0f}/s)",
                 f"  server errors {self.server_errors}, crashes {self.crashes}, "
                 f"hangs {self.hangs}, correct answer afterwards: "
                 f"{'yes' if self.correct_after else 'NO'}",
                 "  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in
                                            sorted(self.outcomes.items()))]
        lines += [f"  note: {note}" for note in self.notes]
        lines += [f"  sample {sample}" for sample in self.samples]
        lines.append("  PASS" if self.ok else "  FAIL")
        return "\n".join(lines)
