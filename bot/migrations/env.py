"""Alembic's environment for the bot's tables: always the caller's connection, with the bot's own
version table."""

from __future__ import annotations

from alembic import context

from bot.migrations import VERSION_TABLE
from bot.store import metadata

# Always run on the caller's connection: it holds the schema lock and its transaction.
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
