"""Fixtures shared by every test package: a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

# The local server: trust auth, a maintenance database to create throwaway ones from.
PG_ADMIN_DSN = os.environ.get(
    "SIGNOFF_TEST_PG_ADMIN_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL_TEMPLATE = os.environ.get(
    "SIGNOFF_TEST_PG_URL_TEMPLATE", "postgresql://postgres@127.0.0.1:5432/{dbname}"
)


def _admin_connect() -> object:
    import psycopg

    return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Creates uniquely named PostgreSQL databases (so parallel runs never collide) and
    drops them all when the session ends. Skips if the server cannot be reached."""
    try:
        admin = _admin_connect()
    except Exception as exc:  # any failure to connect means: no server here
        pytest.skip(f"PostgreSQL not reachable with {PG_ADMIN_DSN!r}: {exc}")
    created: list[str] = []

    def create() -> str:
        name = f"signoff_test_{os.getpid()}_{uuid.uuid4().hex[:10]}"
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
        created.append(name)
        return PG_URL_TEMPLATE.format(dbname=name)

    yield create
    for name in created:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
    admin.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pg_url(pg_database_factory: Callable[[], str]) -> str:
    """URL of a PostgreSQL database private to this test session (and xdist worker)."""
    return pg_database_factory()
