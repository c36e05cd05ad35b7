"""Small synchronous clients of the REST API, for scenarios and tools.

:class:`HttpApiClient` talks to a cloud in another process (httpx over loopback).
:class:`AsgiApiClient` calls an app in this process through its full ASGI stack (parsing,
authentication, JSON errors) on a private event loop, with no socket and no thread - so an
in-process scenario on virtual time exercises exactly the code a real client reaches. Both
return ``(status, parsed JSON body)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
from starlette.types import ASGIApp

_T = TypeVar("_T")


class ApiClient(Protocol):
    def request(self, method: str, path: str, *, token: str | None = None,
                json: Any = None, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]: ...

    def close(self) -> None: ...


def _headers(token: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(extra or {})
    return headers


def _decode(response: httpx.Response) -> tuple[int, Any]:
    if not response.content:
        return response.status_code, None
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


class HttpApiClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0, *,
                 admin_token: str | None = None) -> None:
        """``admin_token``: sent with every request (the ``/fwsim`` namespace needs it)."""
        headers = {"X-Fwsim-Admin-Token": admin_token} if admin_token else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                    headers=headers)

    def request(self, method: str, path: str, *, token: str | None = None,
                json: Any = None, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return _decode(self._client.request(method, path, headers=_headers(token, headers),
                                            json=json, data=form))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpApiClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class AsgiApiClient:
    def __init__(self, app: ASGIApp) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://fwsim.invalid")

    def request(self, method: str, path: str, *, token: str | None = None,
                json: Any = None, form: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        response = self._run(self._client.request(
            method, path, headers=_headers(token, headers), json=json, data=form))
        return _decode(response)

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._loop.run_until_complete(coroutine)
        with ThreadPoolExecutor(1) as helper:
            return helper.submit(self._loop.run_until_complete, coroutine).result()

    def request_raw(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                    content: bytes | list[bytes] = b"") -> httpx.Response:
        """Send exact bytes; a list of chunks is sent as a chunked (streamed) body."""
        if isinstance(content, list):
            chunks = list(content)

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk
            body: bytes | AsyncIterator[bytes] = stream()
        else:
            body = content
        return self._run(self._client.request(method, path, headers=headers, content=body))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.aclose())
            self._loop.close()

    def __enter__(self) -> AsgiApiClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
