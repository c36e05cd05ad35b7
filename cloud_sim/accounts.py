"""Accounts: password hashes, OAuth clients and access/refresh tokens (cloud.md A5).

Pure helpers over a :class:`CloudStore`; randomness comes from a caller-supplied
``random.Random`` (the cloud's seeded stream), so in-process scenarios stay replayable.

* Password hashes are PBKDF2-HMAC-SHA256 (``pbkdf2_sha256$<iterations>$<salt>$<hash>``).
* Tokens are 40 lowercase hex characters like Particle's. An access token lives ``expires_in``
  seconds (default 7776000, 90 days; 0 means never); a refresh token lives 14 days and is used
  once (``refresh_token`` grant hands out a new pair).
* Well-known public clients are registered on every store (a fresh one, or a persistent one
  from an older version when the cloud opens it): ``particle``/``particle`` (the developer client
  of the docs), ``particle-api``/``particle-api`` (particle-api-js's default),
  ``CLI2``/``client_secret_here`` (particle-cli's ``login``) and ``user``/``client_secret_here``
  (particle-cli's ``token create``, ``src/cmd/token.js``).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass

from .model import OAuthClient, Principal, Token, TokenKind
from .store import CloudStore

DEFAULT_TOKEN_DURATION_S = 7_776_000
REFRESH_TOKEN_DURATION_S = 14 * 24 * 3600
PBKDF2_ITERATIONS = 10_000

PUBLIC_CLIENTS = (
    OAuthClient("particle", "particle", "Particle developer client"),
    OAuthClient("particle-api", "particle-api", "particle-api-js default client"),
    OAuthClient("CLI2", "client_secret_here", "particle-cli"),
    OAuthClient("user", "client_secret_here", "particle-cli token create"),
)


def random_hex(rng: random.Random, nbytes: int) -> str:
    return rng.randbytes(nbytes).hex()


def _utf8(text: str) -> bytes:
    """The bytes of ``text``; a lone surrogate (which the API refuses before it gets here) is
    kept as its WTF-8 bytes rather than raising."""
    return text.encode("utf-8", "surrogatepass")


def hash_password(password: str, rng: random.Random,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = random_hex(rng, 16)
    digest = hashlib.pbkdf2_hmac("sha256", _utf8(password), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, expected = encoded.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256" or not 1 <= rounds <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", _utf8(password), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)


def ensure_public_clients(store: CloudStore) -> None:
    for client in PUBLIC_CLIENTS:
        if store.get_client(client.id) is None:
            store.add_client(client)


def authenticate_client(store: CloudStore, client_id: str, secret: str) -> OAuthClient | None:
    client = store.get_client(client_id)
    if client is None or not hmac.compare_digest(_utf8(client.secret), _utf8(secret)):
        return None
    return client


@dataclass(frozen=True)
class IssuedTokens:
    access: Token
    refresh: Token | None

    def as_json(self, now_us: int) -> dict[str, object]:
        """The token object of ``POST /oauth/token`` (cloud.md A5)."""
        body: dict[str, object] = {
            "token_type": "bearer",
            "access_token": self.access.token,
            "expires_in": (0 if self.access.expires_us is None
                           else max(0, (self.access.expires_us - now_us) // 1_000_000)),
        }
        if self.refresh is not None:
            body["refresh_token"] = self.refresh.token
        if self.access.scope:
            body["scope"] = self.access.scope
        return body


def _new_token_value(store: CloudStore, rng: random.Random) -> str:
    while True:
        value = random_hex(rng, 20)
        if store.get_token(value) is None:
            return value


def issue_tokens(store: CloudStore, rng: random.Random, principal: Principal, client_id: str,
                 now_us: int, *, expires_in_s: int = DEFAULT_TOKEN_DURATION_S,
                 scope: str = "", with_refresh: bool = True) -> IssuedTokens:
    """Create and store an access token (and a refresh token) for ``principal``."""
    access = Token(_new_token_value(store, rng), TokenKind.ACCESS, principal, client_id, now_us,
                   None if expires_in_s == 0 else now_us + expires_in_s * 1_000_000, scope)
    store.add_token(access)
    refresh = None
    if with_refresh:
        refresh = Token(_new_token_value(store, rng), TokenKind.REFRESH, principal, client_id,
                        now_us, now_us + REFRESH_TOKEN_DURATION_S * 1_000_000, scope)
        store.add_token(refresh)
    return IssuedTokens(access, refresh)


def revoke_tokens_of(store: CloudStore, principal: Principal) -> int:
    tokens = store.tokens_of(principal)
    for token in tokens:
        store.delete_token(token.token)
    return len(tokens)
