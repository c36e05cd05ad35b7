"""Any bytes where the CLI expects a file of its own (a trace, a scenario file, a device log):
a one-line error (exit status 2) or a result, never an internal error."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_sim.cli import main

COMMANDS = [
    ["trace", "show", "{f}"],
    ["trace", "show", "{f}", "--log"],
    ["trace", "diagram", "{f}", "--out", "{d}/out"],
    ["logdiff", "{f}", "--trace", "{f}"],
    ["scenario", "run", "--file", "{f}", "--quiet"],
    ["explore", "--file", "{f}", "--runs", "1", "--no-progress"],
]

TEXTISH = st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=300) | TEXTISH,
       command=st.sampled_from(COMMANDS))
@example(data=b"\xff\xfe\x00garbage", command=COMMANDS[0])
@example(data=b'{"kind": "x"}\n\xe9\n', command=COMMANDS[2])
@example(data="[scenario]\nname = '\udc80'\n".encode("utf-8", "surrogatepass"),
         command=COMMANDS[4])
def test_any_bytes_give_a_result_or_a_one_line_error(data: bytes, command: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input"
        path.write_bytes(data)
        argv = [part.format(f=path, d=folder) for part in command]
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = int(exc.code or 0)
    assert status in (0, 1, 2), (argv, err.getvalue())
    assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue(), (
        argv, data, err.getvalue())
    if status == 2:
        assert err.getvalue().strip().count("\n") <= 1, err.getvalue()
