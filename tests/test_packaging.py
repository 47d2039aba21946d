"""What ``pip install .`` promises, tried in a clean virtualenv from the built wheel.

The wheel is installed without extras — with the newest releases pyproject.toml allows, and
with the lowest (``constraints/lowest.txt``) — and must run ``signoff --help``, start the
local sandbox with no credentials up to ``/healthz``, and migrate a PostgreSQL database.
Installing needs the package index (PyPI); pip's cache makes repeats quick.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWEST = ROOT / "constraints" / "lowest.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
START_UP_LIMIT = 60.0  # seconds for a fresh install's first start (imports compile)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = run([*pip_wheel, "-q", "-w", str(dist), str(ROOT)], timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = dist.glob("signoff-*.whl")
    return path


@pytest.fixture(scope="module", params=["newest", "lowest"])
def venv(
    request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    where = tmp_path_factory.mktemp(f"venv-{request.param}")
    made = run([sys.executable, "-m", "venv", str(where)], timeout=120)
    assert made.returncode == 0, made.stderr
    constraints = ["-c", str(LOWEST)] if request.param == "lowest" else []
    installed = run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), *constraints],
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return where


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus every Signoff/Slack setting of the machine running the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "SIGNOFF_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lowest_constraints_pin_every_runtime_dependency_at_its_lower_bound() -> None:
    pins = {}
    for line in LOWEST.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.split("[")[0].lower()] = version
    declared = PYPROJECT["project"]["dependencies"]
    for requirement in declared:
        spec = requirement.split(";")[0].strip()
        name = spec.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        lower = spec.split(">=")[1].split(",")[0].strip()
        assert pins.get(name) == lower, (
            f"{name}: pyproject says >={lower}, lowest.txt {pins.get(name)}"
        )
        assert ",<" in spec, f"{name} has no major-version cap"


def test_the_wheel_ships_its_type_information(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"engine/py.typed", "bot/py.typed"} <= names


def test_signoff_help_runs_from_a_plain_install(venv: Path) -> None:
    result = run([str(venv / "bin" / "signoff"), "--help"], env=clean_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "migrate" in result.stdout


def test_postgresql_works_from_a_plain_install(
    venv: Path, tmp_path: Path, pg_database_factory: Callable[[], str]
) -> None:
    # engine/db/postgres.py imports psycopg: a runtime dependency, no extra to remember.
    url = pg_database_factory()
    result = run(
        [str(venv / "bin" / "signoff"), "migrate"],
        cwd=tmp_path,
        env=clean_env(SIGNOFF_DATABASE_URL=url),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "database schema is up to date" in result.stdout


@pytest.fixture
def served(venv: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [str(venv / "bin" / "signoff"), "serve"],
        cwd=tmp_path,
        env=clean_env(SIGNOFF_PORT=str(port), SIGNOFF_SANDBOX_PORT=str(free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_signoff_serve_without_credentials_starts_the_sandbox_up_to_healthz(
    served: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = served
    deadline = time.monotonic() + START_UP_LIMIT
    while True:
        # Waits for exactly this: the bot answering /healthz (or the process ending).
        assert process.poll() is None, process.communicate()[0]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
                break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "no /healthz within the start-up limit"
            time.sleep(0.2)
    assert (tmp_path / "signoff.db").is_file(), "the embedded default is a SQLite file here"
