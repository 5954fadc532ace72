"""The benchmark's window: ``N_PATIENTS`` x ``HOURS`` hourly batch predictions of one model version.

Scores ~ Beta(1, 9) and outcomes drawn from them (an event within the horizon with the score's
probability); each prediction's 28-feature vector (the scenario worlds' feature order) is drawn
N(0, 1) by PostgreSQL itself while the rows go in (formatting 28,000,000 floats as text in Python
took minutes), the reference N(0, 1) too: the drift tests then find nothing, as they should.
"""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from clinops_devstack.bench.monitor.world import FEATURES, START, World, WorldConfig
from clinops_monitor.core.drift import quantile_bins
from clinops_monitor.core.evaluation import Reference

ORDER_ID = f"bench-{len(FEATURES)}"

# ruff: noqa: S608 (the SQL below is built from this module's constants only)

# Box-Muller per element; the subquery names the row (``s.id``) so it is evaluated per row, not once
INSERT_SQL = f"""
INSERT INTO predictions (id, patient_id, predicted_at, score, risk_level, model_name, model_version, source,
                         batch_id, feature_order_id, feature_values)
SELECT s.id, s.patient_id, s.predicted_at, s.score, s.risk_level, %(model)s, %(version)s, 'batch', 'bench',
       %(order)s,
       ARRAY(SELECT (sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::real
             FROM generate_series(1, {len(FEATURES)} + 0 * length(s.id::text)))
FROM bench_window s
"""


def world(rng: np.random.Generator, patients: int, hours: int) -> World:
    """The window's predictions (no feature columns: the database draws them), outcomes and reference."""
    n = patients * hours
    pid = np.repeat([f"PT{i:06d}" for i in range(patients)], hours)
    t = pd.Timestamp(START) + pd.to_timedelta(np.tile(np.arange(hours), patients), unit="h")
    score = rng.beta(1, 9, n)
    frame = pd.DataFrame({"patient_id": pid, "predicted_at": t, "score": score})
    frame["risk_level"] = np.where(score > 0.3, "HIGH", np.where(score > 0.15, "MEDIUM", "LOW"))
    frame["id"] = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]
    hit = rng.random(n) < score  # an event within the horizon of this prediction
    ev_t = frame.loc[hit, "predicted_at"] + pd.to_timedelta(rng.uniform(1, 86_000, int(hit.sum())), unit="s")
    outcomes = pd.DataFrame(
        {
            "event_id": [f"ev-{i}" for i in range(len(ev_t))],
            "patient_id": frame.loc[hit, "patient_id"].to_numpy(),
            "event_time": ev_t.to_numpy(),
            "source": "ehr-outcomes",
            "outcome_type": "adverse_event",
            "severity": "mild",
            "prediction_id": None,
        }
    )
    outcomes["ingested_at"] = outcomes["event_time"]
    # a late heartbeat outcome moves the watermark past every horizon
    last = pd.Timestamp(START) + timedelta(hours=hours + 40)
    outcomes.loc[len(outcomes)] = ["hb", "PT-none", last, "ehr-outcomes", "discharge_check", None, None, last]
    ref = {f: rng.normal(0, 1, 20_000) for f in FEATURES} | {"probability": rng.beta(1, 9, 20_000)}
    reference = Reference(FEATURES, ref, {c: quantile_bins(v) for c, v in ref.items()})
    return World(WorldConfig(), frame, reference, float("nan"), frame, outcomes)


def write(database_url: str, w: World, model_name: str, version: str = "1") -> int:
    """The window's predictions as batch rows of ``predictions``; their vectors drawn by the server."""
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            # the window's months get their partitions (as maintenance makes them for the current months)
            conn.execute(sa.text("SELECT clinops_create_prediction_partitions(0, :m)"), {"m": START.date()})
            conn.execute(
                sa.text(
                    "INSERT INTO feature_orders (feature_order_id, feature_service, feature_names, view_names)"
                    " VALUES (:id, 'adverse_event_v1', :names, ARRAY['vitals']) ON CONFLICT DO NOTHING"
                ),
                {"id": ORDER_ID, "names": list(FEATURES)},
            )
        p = w.predictions
        buf = io.StringIO()
        p.assign(predicted_at=p["predicted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))[
            ["id", "patient_id", "predicted_at", "score", "risk_level"]
        ].to_csv(buf, index=False, header=False)
        raw = engine.raw_connection()
        try:
            with _pg(raw).cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE bench_window (id uuid, patient_id text, predicted_at timestamptz,"
                    " score float8, risk_level text) ON COMMIT DROP"
                )
                with cur.copy("COPY bench_window FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buf.getvalue())
                cur.execute(INSERT_SQL, {"model": model_name, "version": version, "order": ORDER_ID})
                written = int(cur.rowcount)
            raw.commit()
        finally:
            raw.close()
        return written
    finally:
        engine.dispose()


def _pg(raw: Any) -> Any:
    conn = raw.driver_connection
    if conn is None:
        raise RuntimeError("no driver connection")
    return conn
