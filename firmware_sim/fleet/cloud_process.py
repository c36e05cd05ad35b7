"""The fleet's cloud: the Particle cloud served on sockets in a process of its own.

How this works
--------------
``FWSIM_FLEET_ADMIN_TOKEN=T python -m firmware_sim.fleet.cloud_process --codes N --users U``
(the token in the environment: a command line is readable by every local user) builds a
testbed holding only the cloud, makes ``N`` claim codes for ``U`` users in process (no request
per code), serves the cloud (REST with the ``/fwsim`` namespace behind the admin token, and the
device link over UDP, remembering enough peers for the whole fleet) and prints one JSON line:
``{"http": ..., "coap": ..., "codes": [...]}`` (or ``{"error": ...}`` when it cannot serve, e.g.
without the ``cloud`` extra). It runs its world with the real-time driver
until its standard input closes or it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys

from ..kernel.errors import FwSimError
from ..testbed import CloudSpec, ServeOptions, Testbed, TestbedSpec
from ..testbed.clouds.particle import ParticleSettings
from . import loop
from .runner import ADMIN_TOKEN_ENV


def user_email(number: int) -> str:
    return f"fleet-user{number}@example.com"


async def serve(codes: int, users: int, admin_token: str, seed: int, host: str) -> None:
    # served on sockets: tokens, salts and claim codes from the OS CSPRNG, not the seed
    settings = ParticleSettings(unpredictable=True)
    bed = Testbed(TestbedSpec(seed=seed, cloud=CloudSpec("particle", settings=settings),
                              trace_memory_limit=0))
    plug = bed.cloud
    assert plug is not None
    made = [plug.create_claim_code(plug.user(user_email(n % users)), ttl_s=3600)  # type: ignore[attr-defined]
            for n in range(codes)]
    served = await bed.serve_cloud(ServeOptions(
        host=host, extra={"admin": True, "admin_token": admin_token,
                          "max_device_peers": max(4096, 2 * codes)}))
    runner = asyncio.create_task(bed.driver().run())
    print(json.dumps({"http": served.http_url, "coap": served.device_url, "codes": made}),
          flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    await stop.wait()
    bed.driver().stop()
    await runner
    await served.stop()
    bed.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--codes", type=int, required=True)
    parser.add_argument("--users", type=int, default=100)
    # the admin token comes in the environment (``ADMIN_TOKEN_ENV``), which only this user can
    # read (/proc/PID/environ is 0400); a command line is readable by every local user
    parser.add_argument("--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV),
                        help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    if not args.admin_token:
        parser.error(f"the admin token is missing: set {ADMIN_TOKEN_ENV}")
    try:
        loop.run(serve(args.codes, max(1, args.users), args.admin_token, args.seed, args.host))
    except FwSimError as exc:
        # an error fwsim expects (a missing extra, a port in use): one JSON line for the parent
        # (``runner._start_cloud``), which reports it as its own one-line error
        print(json.dumps({"error": str(exc)}), flush=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
