"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from transports.edge_api import port_arg

from ..kernel.errors import ConfigurationError
from ..kernel.world import parse_seed

__all__ = ["BUILTIN_NAMES", "MAX_SPEED", "add_firmware_errors_argument", "add_timing_argument",
           "device_arg", "load_device_config", "port_arg", "seed_arg", "speed_arg"]

#: the built-in firmware names (``firmware_sim.apps.BUILTIN_FIRMWARE``), for help texts
BUILTIN_NAMES = ("default", "session-end-workaround", "session-end-too-early", "clear-session")

_DEVICE_KEYS = {"name", "profile", "firmware", "timing"}


def positive_int(text: str) -> int:
    """An argument that must be a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_float(text: str) -> float:
    """An argument that must be a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


#: the fastest a served world is run (virtual seconds per wall second): beyond, wall times map
#: to virtual instants past what the clock can hold
MAX_SPEED = 1e6


def speed_arg(text: str) -> float:
    """``--speed``: a positive number up to :data:`MAX_SPEED`."""
    value = positive_float(text)
    if value > MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{text!r} is faster than fwsim serves a world in real "
                                         f"time (at most {MAX_SPEED:g})")
    return value


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


def add_firmware_errors_argument(parser: argparse.ArgumentParser) -> None:
    """``--firmware-errors panic|raise`` of the served worlds
    (``FirmwareOptions.firmware_errors``)."""
    parser.add_argument("--firmware-errors", choices=["panic", "raise"], default="panic",
                        help="what an exception raised by a device's Python firmware does: "
                        "panic - the device panics (hard_fault) and resets, as a fault does on "
                        "hardware, and its next boot reports 'panic, hard_fault' (default); "
                        "raise - the error and its traceback are logged, the rest of that step "
                        "is skipped and the device carries on. Either way the world keeps "
                        "running")


def device_arg(text: str) -> tuple[str, str, str | None]:
    """``NAME:PROFILE[:FIRMWARE]`` (the firmware may itself hold colons: ``mod:Class``)."""
    name, _, rest = text.partition(":")
    profile, _, firmware = rest.partition(":")
    if not name or not profile:
        raise argparse.ArgumentTypeError(
            f"invalid device {text!r}: expected NAME:PROFILE[:FIRMWARE]")
    return name, profile, firmware or None


def load_device_config(path: str) -> list[tuple[str, str, str | None, str | None]]:
    """The ``[[device]]`` tables of a TOML file: ``(name, profile, firmware, timing)``.

    ::

        [[device]]
        name = "bench"
        profile = "p2"
        firmware = "session-end-workaround"   # optional
        timing = "fast"                         # optional
    """
    import tomllib

    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path} is not a TOML file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    tables = data.get("device")
    if not isinstance(tables, list) or not tables:
        raise ConfigurationError(f"{path}: expected one or more [[device]] tables")
    devices = []
    for index, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            raise ConfigurationError(f"{path}: device {index} is not a table")
        unknown = set(table) - _DEVICE_KEYS
        if unknown:
            raise ConfigurationError(f"{path}: device {index} has unknown keys "
                                     f"{', '.join(sorted(unknown))} (known: "
                                     f"{', '.join(sorted(_DEVICE_KEYS))})")
        values = {key: table.get(key) for key in _DEVICE_KEYS}
        for key, value in values.items():
            if value is not None and not isinstance(value, str):
                raise ConfigurationError(f"{path}: device {index}: {key} must be a string")
        devices.append((values["name"] or f"dev{index}", values["profile"] or "p2",
                        values["firmware"], values["timing"]))
    return devices
