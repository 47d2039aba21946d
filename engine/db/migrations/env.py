"""Alembic's environment: runs the migrations on the engine or connection that ``alembic_config``
put in the config's attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from engine.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


# A caller holding the schema lock passes its connection, so the upgrade runs under it.
given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    with context.config.attributes["engine"].begin() as connection:
        _run(connection)
