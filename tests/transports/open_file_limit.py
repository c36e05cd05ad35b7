"""A stand-in for the open-file limit: the running loop's ``sock_accept`` fails with EMFILE a
given number of times, then accepts again (what a listener sees when a flood used every file
handle and then let go)."""

from __future__ import annotations

import asyncio
import errno
import socket


class FailingAccepts:
    """Installed on the running loop; ``left`` counts the failures still to come."""

    def __init__(self, failures: int) -> None:
        self.left = failures
        loop = asyncio.get_running_loop()
        self._accept = loop.sock_accept
        loop.sock_accept = self._fail_first  # type: ignore[method-assign]

    async def _fail_first(self, sock: socket.socket) -> tuple[socket.socket, object]:
        if self.left:
            self.left -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return await self._accept(sock)
