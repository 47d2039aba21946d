"""Fixtures of the engine tests: real databases (SQLite files in tmp_path, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import ManualClock
from engine.db.base import BaseDb
from engine.db.postgres import PostgresDb
from engine.db.sqlite import SqliteDb


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
