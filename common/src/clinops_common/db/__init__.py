"""The clinops database: the audited ``predictions`` table, its schema managed by Alembic."""

from clinops_common.db.migrate import current_revision, upgrade
from clinops_common.db.tables import metadata, predictions

__all__ = ["current_revision", "metadata", "predictions", "upgrade"]
