"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from ..kernel.errors import ConfigurationError
from ..kernel.world import parse_seed


def seed_arg(text: str) -> int:
    try:
        return parse_seed(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def port_arg(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range 0..65535")
    return port
