"""Subprocess helpers shared by the tests that start ``fwsim`` servers."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
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


class ReadyServer:
    """A server command started as a user would (``argv``, or a shell command line), read
    until it prints its ready line; :meth:`value` finds what it printed, :meth:`stop` is
    Ctrl-C."""

    def __init__(self, argv: list[str] | str, cwd: Path, env: dict[str, str], *,
                 ready: str = r"\bready\b", timeout_s: float = 40) -> None:
        self.command = argv if isinstance(argv, str) else shlex.join(argv)
        self.proc = subprocess.Popen(["bash", "-c", f"exec {self.command}"], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.output: list[str] = []
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line.rstrip("\n"))
            if re.search(ready, line):
                return
        self.stop()
        raise AssertionError(f"{self.command} never became ready:\n" + "\n".join(self.output))

    def value(self, pattern: str) -> str:
        """Group 1 of the first output line matching ``pattern``."""
        for line in self.output:
            match = re.search(pattern, line)
            if match:
                return match.group(1)
        raise AssertionError(f"{self.command}: no {pattern!r} in its output:\n"
                             + "\n".join(self.output))

    def stop(self) -> int:
        return stop_process(self.proc, self.proc.stdout, grace_s=20)
