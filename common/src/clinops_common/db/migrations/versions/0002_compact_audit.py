"""predictions: a compact audit row (typed feature vector, feature order, event times, degraded and
batch markers), readable as JSON through the ``prediction_audit`` view.

The feature vector is a ``real[]`` in the model package's feature order; the order itself (names,
views) is stored once per ``feature_order_id`` in ``feature_orders``. 325 features cost 1.3 kB per
row instead of several kB of JSON text. ``NaN`` in the vector is a missing value (JSON null in the
view).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FEATURES_JSON = """
CREATE FUNCTION prediction_features_json(order_id text, vals real[]) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_object_agg(u.name, CASE WHEN u.value = 'NaN'::real THEN NULL ELSE to_jsonb(u.value) END)
    FROM feature_orders o, unnest(o.feature_names, vals) AS u(name, value)
    WHERE o.feature_order_id = order_id AND u.name IS NOT NULL
$$
"""

EVENT_TIMES_JSON = """
CREATE FUNCTION prediction_event_times_json(order_id text, times timestamptz[]) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_object_agg(u.view, u.t)
    FROM feature_orders o, unnest(o.view_names, times) AS u(view, t)
    WHERE o.feature_order_id = order_id AND u.view IS NOT NULL
$$
"""

AUDIT_VIEW = """
CREATE VIEW prediction_audit AS
SELECT
    p.id, p.patient_id, p.predicted_at, p.recorded_at, p.source, p.batch_id, p.score, p.risk_level,
    p.model_name, p.model_version, p.latency_ms, p.degraded, p.stale_views, p.missing_views,
    p.feature_order_id, p.feature_snapshot_at, p.snapshot_id,
    COALESCE(p.features, prediction_features_json(p.feature_order_id, p.feature_values)) AS features,
    prediction_event_times_json(p.feature_order_id, p.feature_event_times) AS feature_event_times
FROM predictions p
"""


def upgrade() -> None:
    op.create_table(
        "feature_orders",
        sa.Column("feature_order_id", sa.String(64), primary_key=True),
        sa.Column("feature_service", sa.String(128), nullable=False),
        sa.Column("feature_names", ARRAY(sa.Text), nullable=False),
        sa.Column("view_names", ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    # Rows written before 0002 keep their JSON features; new rows carry the vector instead.
    op.alter_column("predictions", "features", existing_type=JSONB, nullable=True)
    op.alter_column("predictions", "latency_ms", existing_type=sa.Float, nullable=True)  # null for batch rows
    op.add_column(
        "predictions",
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("predictions", sa.Column("source", sa.String(8), nullable=False, server_default="online"))
    op.add_column("predictions", sa.Column("batch_id", sa.String(64), nullable=True))
    op.add_column("predictions", sa.Column("snapshot_id", sa.String(64), nullable=True))
    op.add_column(
        "predictions",
        sa.Column(
            "feature_order_id",
            sa.String(64),
            sa.ForeignKey("feature_orders.feature_order_id", name="fk_predictions_feature_order"),
            nullable=True,
        ),
    )
    op.add_column("predictions", sa.Column("feature_values", ARRAY(REAL), nullable=True))
    op.add_column("predictions", sa.Column("feature_event_times", ARRAY(sa.DateTime(timezone=True)), nullable=True))
    op.add_column("predictions", sa.Column("degraded", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("predictions", sa.Column("stale_views", ARRAY(sa.Text), nullable=True))
    op.add_column("predictions", sa.Column("missing_views", ARRAY(sa.Text), nullable=True))
    op.create_check_constraint("ck_predictions_source", "predictions", "source IN ('online', 'batch')")
    op.create_check_constraint(
        "ck_predictions_features_present",
        "predictions",
        "features IS NOT NULL OR (feature_values IS NOT NULL AND feature_order_id IS NOT NULL)",
    )
    op.create_index("ix_predictions_model_time", "predictions", ["model_name", "model_version", "predicted_at"])
    op.create_index(
        "ix_predictions_batch", "predictions", ["batch_id"], postgresql_where=sa.text("batch_id IS NOT NULL")
    )
    op.execute(FEATURES_JSON)
    op.execute(EVENT_TIMES_JSON)
    op.execute(AUDIT_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW prediction_audit")
    # Back to JSON features (nothing is lost) and a latency on every row.
    op.execute(
        "UPDATE predictions SET features = COALESCE(prediction_features_json(feature_order_id, feature_values),"
        " '{}'::jsonb) WHERE features IS NULL"
    )
    op.execute("UPDATE predictions SET latency_ms = 0 WHERE latency_ms IS NULL")
    op.execute("DROP FUNCTION prediction_event_times_json(text, timestamptz[])")
    op.execute("DROP FUNCTION prediction_features_json(text, real[])")
    op.drop_index("ix_predictions_batch", table_name="predictions")
    op.drop_index("ix_predictions_model_time", table_name="predictions")
    op.drop_constraint("ck_predictions_features_present", "predictions", type_="check")
    op.drop_constraint("ck_predictions_source", "predictions", type_="check")
    for col in (
        "missing_views",
        "stale_views",
        "degraded",
        "feature_event_times",
        "feature_values",
        "feature_order_id",
        "snapshot_id",
        "batch_id",
        "source",
        "recorded_at",
    ):
        op.drop_column("predictions", col)
    op.alter_column("predictions", "latency_ms", existing_type=sa.Float, nullable=False)
    op.alter_column("predictions", "features", existing_type=JSONB, nullable=False)
    op.drop_table("feature_orders")
