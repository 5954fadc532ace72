"""The set-based labelling in PostgreSQL gives exactly the labels of the pure rule (core.groundtruth.label).

Random predictions and adverse events for a few patients, with events placed on the edges on purpose
(exactly at a prediction's time: not its event; exactly at t + horizon: its event), labelled once in
SQL and once by the pure function; every label and outcome time must agree, a second pass writes
nothing, and the counts give the same pending figure.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from clinops_monitor.adapters.postgres import Database
from clinops_monitor.core import groundtruth

START = datetime(2026, 5, 1, tzinfo=UTC)
HORIZON = timedelta(hours=24)


def _world(model: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = [f"SQL{i:03d}" for i in range(40)]
    rows = []
    for pid in patients:
        for h in sorted(rng.choice(24 * 9, size=30, replace=False)):
            rows.append((str(uuid.uuid4()), pid, pd.Timestamp(START + timedelta(hours=int(h)))))
    pred = pd.DataFrame(rows, columns=["id", "patient_id", "predicted_at"])
    pred["model_name"] = model
    times = pd.to_timedelta(rng.uniform(0, 10 * 86400, 150), unit="s") + pd.Timestamp(START)
    events = pd.DataFrame({"patient_id": rng.choice(patients, 150), "event_time": times})
    edges = pred.sample(20, random_state=1)
    exact = pd.DataFrame({"patient_id": edges["patient_id"], "event_time": edges["predicted_at"]})
    at_end = pred.sample(20, random_state=2)
    closing = pd.DataFrame({"patient_id": at_end["patient_id"], "event_time": at_end["predicted_at"] + HORIZON})
    ev = pd.concat([events, exact, closing], ignore_index=True)
    ev["event_time"] = pd.to_datetime(ev["event_time"], utc=True).dt.floor("us")  # what PostgreSQL keeps
    outcomes = ev.assign(outcome_type="adverse_event", ingested_at=ev["event_time"] + pd.Timedelta(hours=1))
    # another outcome type moves the watermark, and is never an event
    beat = pd.DataFrame(
        {
            "patient_id": ["SQL000"],
            "event_time": [pd.Timestamp(START + timedelta(days=8))],
            "outcome_type": ["discharge_check"],
            "ingested_at": [pd.Timestamp(START + timedelta(days=8))],
        }
    )
    return pred, pd.concat([outcomes, beat], ignore_index=True)


def test_sql_labels_equal_the_pure_rule(monitor_db: str) -> None:
    model = f"sql-labels-{uuid.uuid4().hex[:6]}"
    pred, outcomes = _world(model, np.random.default_rng(5))
    engine = sa.create_engine(monitor_db)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name, model_version,"
                " features) VALUES (:id, :patient_id, :predicted_at, 0.1, 'LOW', :model_name, '1', '{}'::jsonb)"
            ),
            [{**r, "predicted_at": r["predicted_at"].to_pydatetime()} for r in pred.to_dict("records")],
        )
    as_of = START + timedelta(days=9)
    start = as_of - timedelta(days=7)
    lateness = timedelta(hours=6)
    pure = groundtruth.label(
        pred.loc[pred["predicted_at"] > pd.Timestamp(start)], outcomes, as_of=as_of, horizon=HORIZON,
        allowed_lateness=lateness,
    )  # fmt: skip
    mark = groundtruth.watermark(outcomes, as_of, lateness)
    assert mark is not None
    closed_by = groundtruth.closed_by(mark, HORIZON)
    db = Database(monitor_db)
    try:
        events = groundtruth.received_outcomes(outcomes, as_of)
        kw = {"horizon_hours": 24, "watermark": mark, "closed_by": closed_by, "events": events}
        written = db.label_window(model, start, as_of, **kw)
        assert written == len(pure.labels) > 100
        assert db.label_window(model, start, as_of, **kw) == 0
        assert db.window_counts(model, start, as_of, closed_by).pending() == pure.pending > 0
        stored = db.labelled(model, start, closed_by)
        assert len(stored) == len(pure.labels)
    finally:
        db.close()
    with engine.connect() as conn:
        got = pd.read_sql(
            sa.text(
                "SELECT o.prediction_id::text AS prediction_id, o.label::int AS label, o.outcome_at"
                " FROM prediction_outcomes o JOIN predictions p ON p.id = o.prediction_id WHERE p.model_name = :m"
            ),
            conn,
            params={"m": model},
        )
    engine.dispose()
    want = pure.labels.assign(label=pure.labels["label"].astype(int)).set_index("prediction_id").sort_index()
    got = got.set_index("prediction_id").sort_index()
    assert list(got.index) == list(want.index)
    assert (got["label"] == want["label"]).all()
    assert 0 < want["label"].sum() < len(want)
    pd.testing.assert_series_equal(
        pd.to_datetime(got["outcome_at"], utc=True), pd.to_datetime(want["outcome_at"], utc=True), check_names=False
    )
    # the edges were reached: some prediction's only event is at its own instant, some at t + horizon
    assert (want["outcome_at"] - pd.to_datetime(pred.set_index("id").loc[want.index, "predicted_at"]) == HORIZON).any()
