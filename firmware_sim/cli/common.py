"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from transports.edge_api import port_arg

from ..kernel.errors import ConfigurationError
from ..kernel.world import parse_seed

__all__ = ["add_timing_argument", "port_arg", "seed_arg"]


def seed_arg(text: str) -> int:
    try:
        return parse_seed(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_timing_argument(parser: argparse.ArgumentParser) -> None:
    """``--timing thread|fast``: the devices' timing profile (docs/device-model.md)."""
    from ..system.timing import DEFAULT_TIMING, TIMING_PROFILES

    parser.add_argument("--timing", choices=list(TIMING_PROFILES), default=DEFAULT_TIMING,
                        help="device timing profile: " + "; ".join(
                            f"{name}: {profile.summary}"
                            for name, profile in TIMING_PROFILES.items())
                        + f" (default {DEFAULT_TIMING})")
