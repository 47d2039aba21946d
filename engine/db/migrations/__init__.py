"""Alembic migrations of the engine's (and the bot's) tables."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine

HERE = Path(__file__).parent


def alembic_config(engine: Engine, connection: Connection | None = None) -> object:
    """An Alembic ``Config`` for these migrations, run on ``engine`` (or an open ``connection``)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(
    engine: Engine, revision: str = "head", *, connection: Connection | None = None
) -> None:
    """Upgrade to ``revision``; on ``connection`` (inside its transaction) if given."""
    from alembic import command

    command.upgrade(alembic_config(engine, connection), revision)  # type: ignore[arg-type]


def pending_revisions(engine: Engine, revision: str = "head") -> list[str]:
    """The revisions an upgrade to ``revision`` would apply now, oldest first."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    script = ScriptDirectory(str(HERE))
    target = script.get_revision(revision)
    if target is None or target.revision == current:
        return []
    newer = [r.revision for r in script.iterate_revisions(target.revision, current or "base")]
    return list(reversed(newer))
