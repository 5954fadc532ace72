"""Alembic environment: online migrations against the URL set by ``clinops_common.db.migrate``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from clinops_common.db.tables import metadata

config = context.config
engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
