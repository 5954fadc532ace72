"""Table definitions; Alembic migrations in ``migrations/versions`` create and evolve them.

The ``prediction_audit`` view (migration 0002) shows each prediction with its features and feature
event times as JSON: ``SELECT * FROM prediction_audit WHERE patient_id = ... ORDER BY predicted_at``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL, UUID

metadata = sa.MetaData()

# One row per feature order of a model package: what the positions of ``predictions.feature_values``
# and ``predictions.feature_event_times`` mean. Written once per order (by the scorer, on load).
feature_orders = sa.Table(
    "feature_orders",
    metadata,
    sa.Column("feature_order_id", sa.String(64), primary_key=True),
    sa.Column("feature_service", sa.String(128), nullable=False),
    sa.Column("feature_names", ARRAY(sa.Text), nullable=False),
    sa.Column("view_names", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# One row per prediction: the audit trail. It holds PHI (a patient key and features): access to
# this table is access to PHI. Insert-only (revision 0004: the scorer's role may only INSERT).
# Partitioned by month of ``predicted_at`` (revision 0004), so the primary key is (id, predicted_at).
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    # when the prediction applies: the request time online, the historical hour for batch rows
    sa.Column("predicted_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("risk_level", sa.String(8), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),  # request to committed row; null for batch rows
    sa.Column("features", JSONB, nullable=True),  # rows written before revision 0002 only
    sa.Column("feature_snapshot_at", sa.DateTime(timezone=True), nullable=True),
    # revision 0002
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("source", sa.String(8), nullable=False, server_default="online"),  # online | batch
    sa.Column("batch_id", sa.String(64), nullable=True),  # the batch run that wrote the row
    sa.Column("snapshot_id", sa.String(64), nullable=True),  # offline snapshot read by a batch run
    sa.Column(
        "feature_order_id",
        sa.String(64),
        sa.ForeignKey("feature_orders.feature_order_id", name="fk_predictions_feature_order"),
        nullable=True,
    ),
    sa.Column("feature_values", ARRAY(REAL), nullable=True),  # the model's input, NaN = missing
    sa.Column("feature_event_times", ARRAY(sa.DateTime(timezone=True)), nullable=True),  # per view
    sa.Column("degraded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("stale_views", ARRAY(sa.Text), nullable=True),
    sa.Column("missing_views", ARRAY(sa.Text), nullable=True),
    sa.CheckConstraint("score >= 0 AND score <= 1", name="ck_predictions_score_unit"),
    sa.CheckConstraint("risk_level IN ('LOW', 'MEDIUM', 'HIGH')", name="ck_predictions_risk_level"),
    sa.CheckConstraint("source IN ('online', 'batch')", name="ck_predictions_source"),
    sa.CheckConstraint(
        "features IS NOT NULL OR (feature_values IS NOT NULL AND feature_order_id IS NOT NULL)",
        name="ck_predictions_features_present",
    ),
    sa.Index("ix_predictions_patient_time", "patient_id", "predicted_at"),
    sa.Index("ix_predictions_time", "predicted_at"),
    sa.Index("ix_predictions_model_time", "model_name", "model_version", "predicted_at"),
    sa.Index("ix_predictions_batch", "batch_id", postgresql_where=sa.text("batch_id IS NOT NULL")),
    postgresql_partition_by="RANGE (predicted_at)",
)

AUDIT_VIEW = "prediction_audit"
