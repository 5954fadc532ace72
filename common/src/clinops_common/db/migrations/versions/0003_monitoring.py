"""monitoring: ``prediction_outcomes`` (labels of past predictions) and ``monitor_evaluations``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_outcomes",
        sa.Column(
            "prediction_id",
            UUID(as_uuid=True),
            sa.ForeignKey("predictions.id", name="fk_prediction_outcomes_prediction", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("label", sa.Boolean, nullable=False),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("horizon_hours", sa.SmallInteger, nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("outcome_at IS NULL OR label", name="ck_prediction_outcomes_outcome_is_event"),
    )
    op.create_table(
        "monitor_evaluations",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("pipeline", sa.String(253), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("champion_version", sa.String(32), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("labelled", sa.Integer, nullable=False),
        sa.Column("pending", sa.Integer, nullable=False),
        sa.Column("drift_flag", sa.Boolean, nullable=False),
        sa.Column("requested", sa.Boolean, nullable=False),
        sa.Column("reasons", sa.ARRAY(sa.Text), nullable=False),
        sa.Column("suppressed", sa.String(32), nullable=True),
        sa.Column("request", sa.Text, nullable=True),
        sa.Column("numbers", JSONB, nullable=False),
    )
    op.create_index("ix_monitor_evaluations_pipeline_time", "monitor_evaluations", ["namespace", "pipeline", "as_of"])


def downgrade() -> None:
    op.drop_table("monitor_evaluations")
    op.drop_table("prediction_outcomes")
