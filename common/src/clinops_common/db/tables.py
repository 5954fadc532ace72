"""Table definitions; Alembic migrations in ``migrations/versions`` create and evolve them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

# One row per prediction: the audit trail. It holds PHI (a patient key and features): access to
# this table is access to PHI.
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("risk_level", sa.String(8), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("features", JSONB, nullable=False),
    sa.Column("feature_snapshot_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("score >= 0 AND score <= 1", name="ck_predictions_score_unit"),
    sa.CheckConstraint("risk_level IN ('LOW', 'MEDIUM', 'HIGH')", name="ck_predictions_risk_level"),
    sa.Index("ix_predictions_patient_time", "patient_id", "predicted_at"),
    sa.Index("ix_predictions_time", "predicted_at"),
)
