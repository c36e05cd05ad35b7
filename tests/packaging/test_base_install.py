"""The base install (``pip install .``, no extras) in a fresh virtual environment.

It runs the README's main job - ``fwsim scenario run --all``, every scenario of both clouds -
and every command that needs an optional dependency answers with one line naming the extra
(``install fwsim[...] for this``), never an internal error or a traceback. The package is built
from a copy of the sources (so the shared checkout gets no ``build/``); pip uses its configured
index (and cache), bounded by a timeout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("firmware_sim", "control_requests", "transports", "cloud_sim")
INSTALL_TIMEOUT_S = 420

pytestmark = pytest.mark.slow

#: commands that need an extra, and the extra their one-line answer names
NEEDS_EXTRA = [
    (["up", "--for", "1", "--http", "0", "--coap", "0", "--db", ":memory:"], "cloud"),
    (["cloud", "serve", "--for", "1", "--http", "0", "--coap", "0", "--db", ":memory:"],
     "cloud"),
    (["up", "--cloud", "thingsboard", "--for", "1"], "thingsboard"),
    (["ble", "scan", "--in-process"], "ble"),
    (["ble", "provision", "--in-process", "--secret", "ABCDEFGHJKLMNPQ", "--ssid", "HomeNet",
      "--password", "home-pass-1"], "ble"),
    (["serve", "--for", "1", "--quiet", "--ble", "bumble:tcp-server:127.0.0.1:0"], "bumble"),
]


def _copy_sources(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
    for package in PACKAGES:
        shutil.copytree(REPO / package, target / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, target / name)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the fwsim wheel and its base dependencies only. The wheel is built
    by this (test) environment's setuptools; the venv is made without pip and this
    environment's pip installs into it (``pip --python``): the same packages as ``pip install
    .`` in a new venv, without bootstrapping pip and an isolated build environment (~12 s)."""
    root = tmp_path_factory.mktemp("base-install")
    source = root / "src"
    _copy_sources(source)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    wheels = root / "wheels"

    def pip(*argv: str) -> None:
        done = subprocess.run([sys.executable, "-m", "pip", *argv], capture_output=True,
                              text=True, timeout=INSTALL_TIMEOUT_S, env=env, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source),
        "--wheel-dir", str(wheels))
    pip("--python", str(venv / "bin" / "python"), "install", "--quiet", "--no-compile",
        *map(str, wheels.glob("fwsim-*.whl")))
    return venv


def _fwsim(venv: Path, *argv: str, cwd: Path, timeout: float = 120
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([str(venv / "bin" / "fwsim"), *argv], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout, check=False)


def test_no_extra_is_installed(base_venv: Path) -> None:
    done = subprocess.run([str(base_venv / "bin" / "python"), "-c",
                           "import importlib.util as u; print([m for m in ('uvicorn', 'bleak', "
                           "'bumble', 'serial', 'pytest') if u.find_spec(m)])"],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_the_main_job_runs_on_the_base_install(base_venv: Path, tmp_path: Path) -> None:
    done = _fwsim(base_venv, "scenario", "run", "--all", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    from firmware_sim.scenarios import CATALOG

    summary = done.stdout.strip().splitlines()[-1]
    assert summary == (f"{len(CATALOG)}/{len(CATALOG)} scenarios reproduced their expected "
                       "behaviour")
    assert "SKIP" not in done.stdout


@pytest.mark.parametrize("argv,extra", NEEDS_EXTRA, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_a_command_needing_an_extra_says_which(base_venv: Path, tmp_path: Path,
                                               argv: list[str], extra: str) -> None:
    done = _fwsim(base_venv, *argv, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("fwsim: error:")]
    assert len(errors) == 1, done.stderr
    assert f"install fwsim[{extra}]" in errors[0]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
