"""Fixtures of the engine tests: real databases (SQLite files in tmp_path, PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from engine import ManualClock
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from engine.db.sqlite import SqliteDb
from tests.engine.engine_flows import child_command, child_env

Race = Callable[[Mapping[str, tuple[str, ...]]], list[dict[str, Any]]]


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "workflow.db"


@pytest.fixture
def sqlite_db(db_file: Path) -> Iterator[SqliteDb]:
    db = SqliteDb(db_file=db_file)
    yield db
    db.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[PostgresDb]:
    db = PostgresDb(db_url=pg_url, pool_size=4)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, db_file: Path) -> str:
    """The URL of a real database: a SQLite file, then the session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{db_file}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_db(db_url: str) -> Iterator[BaseDb]:
    from engine import db_from_url

    db = db_from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def race(tmp_path: Path) -> Race:
    """Start one child process (``tests.engine.engine_flows``) per entry — name: the
    child's arguments; each also gets a ready file and the shared go file — wait until
    every child is ready, let them all go at once, and return their JSON results in
    the order given."""

    def start_all(children: Mapping[str, tuple[str, ...]]) -> list[dict[str, Any]]:
        go = tmp_path / "go"
        ready = {name: tmp_path / f"ready-{name}" for name in children}
        procs = [
            subprocess.Popen(
                child_command(*args, str(ready[name]), str(go)),
                env=child_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in children.items()
        ]
        deadline = time.monotonic() + 60
        # Polling files the children write: the only signal across processes here.
        while not all(path.exists() for path in ready.values()):
            assert time.monotonic() < deadline, "children did not get ready"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.005)
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    return start_all
