"""Storage of runs, sessions and decisions on SQLAlchemy 2 (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.db.base import BaseDb

SUPPORTED_URLS = "sqlite:///path.db, postgresql://user@host:5432/db or postgresql+psycopg://…"
_POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")


class UnsupportedDatabaseUrlError(ValueError):
    """A database URL of a kind the engine does not store runs in."""


def database_kind(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a URL ``db_from_url`` accepts; raises
    ``UnsupportedDatabaseUrlError`` (saying what is accepted) for any other."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise UnsupportedDatabaseUrlError(f"{url!r} is not a URL: use {SUPPORTED_URLS}")
    if scheme == "sqlite" and (rest == "" or rest.startswith("/")):
        return "sqlite"
    if scheme in _POSTGRES_SCHEMES and rest:
        return "postgresql"
    shown = f"{scheme}://…" if scheme else repr(url)
    raise UnsupportedDatabaseUrlError(f"unsupported database URL {shown}: use {SUPPORTED_URLS}")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def db_from_url(url: str, **kwargs: Any) -> BaseDb:
    """``sqlite:///path.db`` (or a plain file path) → SqliteDb; ``postgresql://…``,
    ``postgresql+psycopg://…`` → PostgresDb. Any other URL is refused with
    ``UnsupportedDatabaseUrlError``, never taken for a file name."""
    if "://" not in url:
        from engine.db.sqlite import SqliteDb

        return SqliteDb(db_file=url, **kwargs)
    if database_kind(url) == "postgresql":
        from engine.db.postgres import PostgresDb

        return PostgresDb(db_url=url, **kwargs)
    from engine.db.sqlite import SqliteDb

    return SqliteDb(db_url=url, **kwargs)
