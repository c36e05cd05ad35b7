"""A device served on a socket draws its secrets from the OS CSPRNG (security QA: the SoftAP RSA
key and the BLE mobile secret were the same on every ``fwsim up`` with the default seed, so
anyone who knew the seed could read the Wi-Fi password a phone sends or pass the BLE handshake);
an in-process device keeps seeded ones, so a run stays replayable."""

from __future__ import annotations

import secrets

from transports.softap.keys import public_key_der

from .conftest import make_photon


def _identity(**kwargs: object) -> tuple[str, bytes]:
    photon = make_photon(0, **kwargs)
    key = photon.softap.key
    assert key is not None
    return photon.device.mobile_secret, public_key_der(key.public_key())


def test_in_process_the_secrets_follow_the_seed() -> None:
    assert _identity() == _identity()
    assert not make_photon(0).device.secrets_from_os


def test_served_the_secrets_come_from_the_os() -> None:
    first, second = (_identity(key_random=secrets.token_bytes) for _ in range(2))
    seeded = _identity()
    assert first[0] != second[0] and first[1] != second[1]
    assert seeded[0] not in (first[0], second[0]) and seeded[1] not in (first[1], second[1])
    assert len(first[0]) == len(seeded[0]) == 15


def test_fwsim_serve_draws_them_from_the_os_too() -> None:
    """Security QA: ``fwsim serve`` (in-process cloud, edges on sockets) printed the same mobile
    secret and served the same SoftAP key on every run with the default seed."""
    from firmware_sim.cli import build_parser
    from firmware_sim.cli.serve_cmd import build_testbed
    from firmware_sim.testbed import Testbed

    def served_secret() -> tuple[str, bool]:
        args = build_parser("serve").parse_args(["serve", "--profile", "photon"])
        bed = build_testbed(args)
        assert isinstance(bed, Testbed)
        with bed:
            device = bed.devices["dev"]
            return device.mobile_secret, device.secrets_from_os

    (first, from_os), (second, _) = served_secret(), served_secret()
    assert from_os and first != second
