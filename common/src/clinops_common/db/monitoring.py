"""The monitor's tables (migration 0003): labels of past predictions, and every evaluation.

``predictions`` stays insert-only: a prediction's ground truth, once known, is a row of
``prediction_outcomes`` (written once, never changed). ``monitor_evaluations`` records each
evaluation of a pipeline with the numbers that led to its decision.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from clinops_common.db.tables import metadata

prediction_outcomes = sa.Table(
    "prediction_outcomes",
    metadata,
    sa.Column("prediction_id", UUID(as_uuid=True), primary_key=True),
    # revision 0004: the prediction's partition key; (prediction_id, predicted_at) names a prediction,
    # checked once per statement by a trigger (revision 0005; it was a per-row foreign key)
    sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("label", sa.Boolean, nullable=False),  # an adverse event in (predicted_at, predicted_at + horizon]
    sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),  # the first such event
    sa.Column("horizon_hours", sa.SmallInteger, nullable=False),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),  # outcomes complete up to here
    sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("outcome_at IS NULL OR label", name="ck_prediction_outcomes_outcome_is_event"),
    sa.Index("ix_prediction_outcomes_predicted_at", "predicted_at"),
)

monitor_evaluations = sa.Table(
    "monitor_evaluations",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("pipeline", sa.String(253), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("champion_version", sa.String(32), nullable=True),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("labelled", sa.Integer, nullable=False),  # champion's labelled predictions in the window
    sa.Column("pending", sa.Integer, nullable=False),
    sa.Column("drift_flag", sa.Boolean, nullable=False),
    sa.Column("requested", sa.Boolean, nullable=False),  # this evaluation asked for retraining
    sa.Column("reasons", sa.ARRAY(sa.Text), nullable=False),  # degradations seen (requested or not)
    sa.Column("suppressed", sa.String(32), nullable=True),  # cooldown | training_in_flight
    sa.Column("request", sa.Text, nullable=True),  # the annotation value written, when requested
    sa.Column("numbers", JSONB, nullable=False),  # per version performance, drift per column, settings
    sa.Index("ix_monitor_evaluations_pipeline_time", "namespace", "pipeline", "as_of"),
)
