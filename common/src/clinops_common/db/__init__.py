"""The clinops database: the audited ``predictions`` table, its schema managed by Alembic."""

from clinops_common.db.migrate import current_revision, downgrade, head_revision, upgrade
from clinops_common.db.monitoring import monitor_evaluations, prediction_outcomes
from clinops_common.db.tables import AUDIT_VIEW, feature_orders, metadata, predictions

__all__ = [
    "AUDIT_VIEW",
    "current_revision",
    "downgrade",
    "feature_orders",
    "head_revision",
    "metadata",
    "monitor_evaluations",
    "prediction_outcomes",
    "predictions",
    "upgrade",
]
