"""The dashboard's guard: token for session, session lifetime and cap, failed-login limit, CSRF
tokens, the cookie's attributes, and the same-origin rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_sim.http.guard import HostPolicy
from firmware_sim.dashboard.security import (
    MAX_FAILED_LOGINS_PER_MINUTE,
    SameOrigin,
    Sessions,
    cookie_name,
    session_cookie,
)

TOKEN = "a3f1" * 10


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_token_buys_a_session_with_its_own_csrf_token() -> None:
    sessions = Sessions(TOKEN)
    assert sessions.login("wrong") is None and sessions.login("") is None
    first, second = sessions.login(TOKEN), sessions.login(f"  {TOKEN}\n")
    assert first is not None and second is not None and first.id != second.id
    assert first.csrf != second.csrf and len(first.id) >= 40
    assert sessions.get(first.id) == first and sessions.get("nope") is None
    assert sessions.get(None) is None and sessions.get("x" * 500) is None
    assert Sessions.csrf_ok(first, first.csrf) and not Sessions.csrf_ok(first, second.csrf)
    assert not Sessions.csrf_ok(first, None) and not Sessions.csrf_ok(first, "")
    sessions.logout(first.id)
    assert sessions.get(first.id) is None and sessions.get(second.id) == second


def test_sessions_expire_and_the_oldest_goes_beyond_the_cap() -> None:
    clock = Clock()
    sessions = Sessions(TOKEN, clock=clock, max_sessions=3, lifetime_s=60)
    made = [sessions.login(TOKEN) for _ in range(4)]
    assert all(made) and len(sessions) == 3
    assert sessions.get(made[0].id) is None  # type: ignore[union-attr]
    clock.now += 61
    assert sessions.get(made[3].id) is None and len(sessions) == 2  # type: ignore[union-attr]


def test_wrong_tokens_are_limited_per_minute() -> None:
    clock = Clock()
    sessions = Sessions(TOKEN, clock=clock)
    for _ in range(MAX_FAILED_LOGINS_PER_MINUTE):
        assert not sessions.login_blocked()
        assert sessions.login("guess") is None
    assert sessions.login_blocked()
    clock.now += 61
    assert not sessions.login_blocked()


@given(st.text(max_size=80))
def test_no_other_text_is_the_token(offered: str) -> None:
    sessions = Sessions(TOKEN)
    assert sessions.token_matches(offered) == (offered.strip() == TOKEN)


def test_an_empty_token_guards_nothing_so_it_is_refused() -> None:
    with pytest.raises(ValueError):
        Sessions("")


def test_the_cookie_is_http_only_strict_and_per_port() -> None:
    cookie = session_cookie(cookie_name(8080), "abc", max_age=60)
    assert cookie == "fwsim_ui_8080=abc; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60"
    assert cookie_name(8080) != cookie_name(8081)


@pytest.mark.parametrize(("headers", "status"), [
    ({"host": "127.0.0.1:8080"}, None),
    ({"host": "localhost:8080", "origin": "http://localhost:8080"}, None),
    ({"host": "127.0.0.1:8080", "sec-fetch-site": "same-origin"}, None),
    ({"host": "evil.example:8080"}, 400),
    ({"host": "127.0.0.1:9999"}, 400),
    ({}, 400),
    ({"host": "127.0.0.1:8080", "origin": "http://evil.example"}, 403),
    ({"host": "127.0.0.1:8080", "origin": "null"}, 403),
    ({"host": "127.0.0.1:8080", "sec-fetch-site": "cross-site"}, 403),
    ({"host": "127.0.0.1:8080", "sec-fetch-site": "same-site"}, 403),
])
def test_same_origin_only(headers: dict[str, str], status: int | None) -> None:
    refusal = SameOrigin(HostPolicy.for_bound("127.0.0.1", 8080)).refusal(headers)
    assert (refusal[0] if refusal else None) == status
