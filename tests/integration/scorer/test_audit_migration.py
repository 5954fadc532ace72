"""Revision 0002: the compact audit row, readable as JSON, and a lossless way back to 0001."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from clinops_common import db


@pytest.fixture
def fresh_db(database_url: str) -> Iterator[str]:
    """An empty database of its own on the harness's PostgreSQL (migrations go up and down here)."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_downgrade_upgrade_keeps_every_row_readable(fresh_db: str) -> None:
    db.upgrade(fresh_db, "0001")
    engine = sa.create_engine(fresh_db, poolclass=sa.NullPool)
    legacy = uuid.uuid4()
    t = datetime(2026, 3, 1, 12, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name,"
                    " model_version, latency_ms, features) VALUES (:id, 'PT1', :t, 0.2, 'LOW', 'm', '1', 3.5,"
                    " '{\"heart_rate\": 72.0}')"
                ),
                {"id": legacy, "t": t},
            )
        db.upgrade(fresh_db, "0002")
        assert db.current_revision(fresh_db) == "0002"
        compact = uuid.uuid4()
        with engine.begin() as conn:
            conn.execute(
                db.feature_orders.insert().values(
                    feature_order_id="order1",
                    feature_service="svc",
                    feature_names=["a", "b", "c"],
                    view_names=["vitals", "labs"],
                )
            )
            conn.execute(
                db.predictions.insert().values(
                    id=compact,
                    patient_id="PT2",
                    predicted_at=t,
                    score=0.7,
                    risk_level="HIGH",
                    model_name="m",
                    model_version="2",
                    latency_ms=None,
                    source="batch",
                    batch_id="b1",
                    feature_order_id="order1",
                    feature_values=[1.5, math.nan, -2.25],
                    feature_event_times=[t, None],
                    degraded=True,
                    missing_views=["labs"],
                )
            )
            rows = {
                r.id: r for r in conn.execute(sa.text("SELECT * FROM prediction_audit ORDER BY patient_id")).mappings()
            }
            # neither vector nor JSON: refused
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(
                    db.predictions.insert().values(
                        id=uuid.uuid4(),
                        patient_id="X",
                        predicted_at=t,
                        score=0.1,
                        risk_level="LOW",
                        model_name="m",
                        model_version="2",
                    )
                )
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(
                    db.predictions.insert().values(
                        id=uuid.uuid4(),
                        patient_id="X",
                        predicted_at=t,
                        score=0.1,
                        risk_level="LOW",
                        model_name="m",
                        model_version="2",
                        features={},
                        source="replay",
                    )
                )
        assert rows[legacy]["features"] == {"heart_rate": 72.0}
        assert rows[legacy]["source"] == "online"
        assert rows[legacy]["degraded"] is False
        assert rows[compact]["features"] == {"a": 1.5, "b": None, "c": -2.25}
        assert rows[compact]["feature_event_times"] == {"vitals": "2026-03-01T12:00:00+00:00", "labs": None}
        assert rows[compact]["missing_views"] == ["labs"]
        indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("predictions")}
        assert indexes["ix_predictions_patient_time"] == ["patient_id", "predicted_at"]
        assert indexes["ix_predictions_time"] == ["predicted_at"]

        db.downgrade(fresh_db, "0001")
        assert db.current_revision(fresh_db) == "0001"
        with engine.connect() as conn:
            back = {r.id: r for r in conn.execute(sa.text("SELECT id, features, latency_ms FROM predictions"))}
            assert "feature_orders" not in sa.inspect(conn).get_table_names()
        assert back[compact].features == {"a": 1.5, "b": None, "c": -2.25}
        assert back[compact].latency_ms == 0
        assert back[legacy].features == {"heart_rate": 72.0}

        db.upgrade(fresh_db, "0002")
        assert db.current_revision(fresh_db) == "0002"
    finally:
        engine.dispose()
