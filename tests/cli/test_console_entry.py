"""The console script's entry point (``firmware_sim.console``): a Ctrl-C while Python still
imports the command line ends the command with one line and status 130, not a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_ctrl_c_while_importing_is_one_line_and_status_130() -> None:
    script = textwrap.dedent("""
        import sys

        class InterruptTheImport:
            def find_spec(self, name, path=None, target=None):
                if name == "firmware_sim.cli":
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, InterruptTheImport())
        from firmware_sim.console import main
        sys.exit(main())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130
    assert done.stderr == "fwsim: interrupted\n"


def test_the_entry_point_runs_the_command_line() -> None:
    done = subprocess.run([sys.executable, "-c",
                           "import sys; from firmware_sim.console import main; "
                           "sys.argv = ['fwsim', '--version']; sys.exit(main())"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("fwsim ")
