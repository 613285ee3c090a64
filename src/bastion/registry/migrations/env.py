"""Alembic environment for the registry: always run on a connection Bastion hands over.

``bastion.registry.migrate.upgrade`` opens the connection, takes the migration lock and
passes it in ``config.attributes["connection"]``; there is no ini file and no offline mode.
To write a new revision, change ``tables.py`` and add a script under ``versions/`` whose
``down_revision`` is the current head; ``tests/registry/test_schema_migrations.py`` fails until the
migrated schema matches the ORM metadata again.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bastion.registry.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("registry migrations run only through bastion.registry.migrate.upgrade")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
