"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from transports.edge_api import port_arg

from ..kernel.errors import ConfigurationError
from ..kernel.world import parse_seed

__all__ = ["port_arg", "seed_arg"]


def seed_arg(text: str) -> int:
    try:
        return parse_seed(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
