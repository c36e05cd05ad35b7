"""Subprocess helpers shared by the tests that start ``fwsim`` servers."""

from __future__ import annotations

import signal
import subprocess
from typing import IO, Any


def stop_process(proc: subprocess.Popen[Any], *streams: IO[Any] | None,
                 grace_s: float = 15) -> int:
    """Stop a server as a user would (Ctrl-C), kill it if it has not exited after ``grace_s``,
    close ``streams`` (its pipes, the file its stderr went to) and return its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in streams:
        if stream is not None:
            stream.close()
    return proc.returncode
