"""Alembic migrations of the bot's own tables (``bot/store.py``), versioned apart from the
engine's: their own script location and version table, so the engine never knows of them.

``BotStore.ensure_schema`` runs them under the engine's schema lock on first use, and
``signoff migrate`` runs them after the engine's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

HERE = Path(__file__).parent
VERSION_TABLE = "signoff_bot_alembic_version"
#: What the release before these migrations made with ``create_all``: a database holding
#: those tables without a version row is stamped with this revision, then upgraded.
BASELINE_REVISION = "0001_bot_tables"
_BASELINE_TABLES = ("slack_runs", "slack_pauses", "slack_outbox", "slack_seen_requests")


def alembic_config(connection: Connection) -> Config:
    """An Alembic ``Config`` for the bot's migrations, run on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The bot's schema revision in this database, or None if it has none."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def head_revision() -> str:
    """The newest of the bot's migrations."""
    head = ScriptDirectory(str(HERE)).get_current_head()
    assert head is not None, "bot/migrations has no revisions"
    return head


def upgrade(connection: Connection, revision: str = "head") -> list[str]:
    """Bring the bot's tables on ``connection`` (inside its transaction) to ``revision``;
    returns the revisions applied, oldest first."""
    config = alembic_config(connection)
    before = current_revision(connection)
    if before is None and inspect(connection).has_table(_BASELINE_TABLES[0]):
        # Made by the previous release's create_all: adopt them as the baseline.
        missing = [t for t in _BASELINE_TABLES if not inspect(connection).has_table(t)]
        if missing:
            raise RuntimeError(
                f"database has some of the bot's tables but not {', '.join(missing)} and no "
                f"{VERSION_TABLE}: it was not made by Signoff; repair it before use"
            )
        command.stamp(config, BASELINE_REVISION)
        before = BASELINE_REVISION
    script = ScriptDirectory.from_config(config)
    target = script.get_revision(revision)
    if target is None or target.revision == before:
        return []
    applied = [r.revision for r in script.iterate_revisions(target.revision, before)]
    command.upgrade(config, revision)
    return list(reversed(applied))
