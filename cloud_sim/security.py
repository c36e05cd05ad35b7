"""Secrets of a served cloud: where its randomness comes from, and the tokens it prints.

How this works
--------------
An in-process cloud draws token values, ids, password salts, claim codes and session ids from
seeded streams of its World (``world.rng_for``): a scenario replays byte for byte, and nothing
reaches a socket. A cloud that serves sockets (``fwsim cloud serve``, ``fwsim up``) is built
with ``Cloud(..., unpredictable=True)`` and draws all of them from :func:`csprng` instead - the
operating system's CSPRNG behind :mod:`secrets` - so neither the seed (``fwsim up`` defaults to
seed 0) nor outputs observed through the API (a Mersenne Twister is rebuilt from 624 outputs)
predict the next token. Simulation behaviour never depends on the *values* of these secrets,
only on their existence, so a served world's timing is unchanged.

:func:`start_token` is the access token ``fwsim up`` prints: a fresh one on every start (the
previous start's printed tokens are revoked), with the real cloud's default lifetime, unless the
operator fixes one with ``--token``.
"""

from __future__ import annotations

import random
import re
import secrets
from typing import Protocol

from firmware_sim.kernel.errors import ConfigurationError

from . import accounts
from .model import Principal, Token, TokenKind
from .store import CloudStore


class _Cloud(Protocol):
    @property
    def store(self) -> CloudStore: ...

    @property
    def unix_us(self) -> int: ...

#: 20 random bytes, 40 hex characters: the size of Particle's access tokens
TOKEN_BYTES = 20
_TOKEN_TEXT = re.compile(r"[A-Za-z0-9._~-]{20,256}")


def csprng() -> random.Random:
    """A ``random.Random`` whose every method draws from the OS CSPRNG (``secrets``)."""
    return secrets.SystemRandom()


def new_token() -> str:
    """40 hex characters from the OS CSPRNG (admin tokens, tokens printed at start)."""
    return secrets.token_hex(TOKEN_BYTES)


def check_token_text(token: str, what: str = "--token") -> str:
    """A token an operator chose: 20-256 URL-safe characters (a short one is guessable)."""
    if not _TOKEN_TEXT.fullmatch(token):
        raise ConfigurationError(f"{what} must be 20 to 256 characters of A-Z a-z 0-9 . _ ~ -")
    return token


def start_token(cloud: _Cloud, principal: Principal, client_id: str,
                token: str | None = None) -> str:
    """The access token a start-up prints for ``principal``: earlier start tokens (same
    ``client_id``) are revoked; ``token`` fixes the value (else a fresh CSPRNG one). Lifetime:
    the default access-token lifetime (90 days)."""
    store = cloud.store
    now_us = cloud.unix_us
    with store.transaction():
        if token is not None:
            check_token_text(token)
            existing = store.get_token(token)
            if existing is not None and existing.principal != principal:
                raise ConfigurationError("--token is already another account's token")
        for old in store.tokens_of(principal):
            if old.client_id == client_id and old.kind is TokenKind.ACCESS:
                store.delete_token(old.token)
        value = token if token is not None else new_token()
        while token is None and store.get_token(value) is not None:
            value = new_token()
        store.add_token(Token(value, TokenKind.ACCESS, principal, client_id, now_us,
                              now_us + accounts.DEFAULT_TOKEN_DURATION_S * 1_000_000))
    return value
