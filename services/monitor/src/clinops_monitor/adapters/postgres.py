"""PostgreSQL: the window's predictions, their labels (``prediction_outcomes``) and the evaluations.

Bulk reads and writes go through ``COPY`` (a million window rows in a couple of seconds); the
predictions table is only read.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from clinops_common.db import monitor_evaluations
from clinops_monitor.core.evaluation import Evaluation

WINDOW_SQL = """
COPY (
    SELECT p.id, p.patient_id, p.predicted_at, p.score, p.model_version, p.risk_level,
           o.label AS stored_label
    FROM predictions p LEFT JOIN prediction_outcomes o ON o.prediction_id = p.id
    WHERE p.model_name = {model} AND p.predicted_at > {start} AND p.predicted_at <= {end}
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""

# COPY takes no bind parameters: ids are validated UUIDs, strings are quoted by _literal
FEATURES_SQL = """
COPY (
    SELECT id, array_to_string(feature_values, ',', 'NaN') FROM predictions
    WHERE id IN ({ids}) AND feature_order_id = {order}
) TO STDOUT
"""


@dataclass(frozen=True)
class History:
    drift_flags: list[bool]  # oldest first
    last_request_at: datetime | None


class Database:
    def __init__(self, database_url: str) -> None:
        self.engine = sa.create_engine(database_url, poolclass=sa.NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def _copy_out(self, sql: str) -> bytes:
        raw = self.engine.raw_connection()
        try:
            buf = io.BytesIO()
            with _pg(raw).cursor() as cur, cur.copy(sql) as copy:
                for chunk in copy:
                    buf.write(bytes(chunk))
            raw.commit()
            return buf.getvalue()
        finally:
            raw.close()

    def window(self, model_name: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Predictions of ``model_name`` made in (start, end], with the label already stored (if any)."""
        sql = WINDOW_SQL.format(
            model=_literal(model_name), start=_literal(start.isoformat()), end=_literal(end.isoformat())
        )
        data = self._copy_out(sql)
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype={"id": str, "patient_id": str, "model_version": str, "risk_level": str, "score": np.float64},
            parse_dates=["predicted_at"],
        )
        frame["predicted_at"] = pd.to_datetime(frame["predicted_at"], utc=True)
        frame["stored_label"] = frame["stored_label"].map({"t": 1, "f": 0})
        return frame

    def write_labels(self, labels: pd.DataFrame, horizon_hours: int, watermark: datetime) -> int:
        """Insert new labels (``prediction_id``, ``predicted_at``, ``label``, ``outcome_at``); existing
        ones are kept."""
        if labels.empty:
            return 0
        buf = io.StringIO()
        out = pd.DataFrame(
            {
                "prediction_id": labels["prediction_id"],
                "predicted_at": labels["predicted_at"].map(lambda t: t.isoformat()),  # partition key (0004)
                "label": labels["label"].map({1: "t", 0: "f"}),
                "outcome_at": labels["outcome_at"].map(lambda t: t.isoformat() if pd.notna(t) else ""),
                "horizon_hours": horizon_hours,
                "watermark": watermark.isoformat(),
            }
        )
        out.to_csv(buf, index=False, header=False)
        raw = self.engine.raw_connection()
        try:
            with _pg(raw).cursor() as cur:
                cur.execute(
                    "CREATE TEMP TABLE new_outcomes (prediction_id uuid, predicted_at timestamptz, label boolean,"
                    " outcome_at timestamptz,"
                    " horizon_hours smallint, watermark timestamptz) ON COMMIT DROP"
                )
                with cur.copy("COPY new_outcomes FROM STDIN WITH (FORMAT csv, NULL '')") as copy:
                    copy.write(buf.getvalue())
                cur.execute(
                    "INSERT INTO prediction_outcomes"
                    " (prediction_id, predicted_at, label, outcome_at, horizon_hours, watermark)"
                    " SELECT prediction_id, predicted_at, label, outcome_at, horizon_hours, watermark FROM new_outcomes"
                    " ON CONFLICT (prediction_id) DO NOTHING"
                )
                inserted = int(cur.rowcount)
            raw.commit()
            return inserted
        finally:
            raw.close()

    def features(self, prediction_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The feature names and the matrix of these predictions' feature vectors, in the order of
        ``prediction_ids`` (one feature order; ids without a vector are left out)."""
        if not len(prediction_ids):
            return [], np.empty((0, 0), dtype=np.float32)
        with self.engine.connect() as conn:
            orders = conn.execute(
                sa.text(
                    "SELECT DISTINCT p.feature_order_id, f.feature_names FROM predictions p"
                    " JOIN feature_orders f USING (feature_order_id) WHERE p.id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": list(prediction_ids)},
            ).all()
        if not orders:
            return [], np.empty((len(prediction_ids), 0), dtype=np.float32)
        order_id, names = orders[0]
        ids = ",".join(f"'{uuid.UUID(i)}'" for i in prediction_ids)  # validated UUIDs only
        sql = FEATURES_SQL.format(ids=ids, order=_literal(order_id))
        lines = self._copy_out(sql).decode().splitlines()
        position = {str(uuid.UUID(i)): n for n, i in enumerate(prediction_ids)}
        matrix = np.full((len(prediction_ids), len(names)), np.nan, dtype=np.float32)
        found = np.zeros(len(prediction_ids), dtype=bool)
        if lines:
            got, values = zip(*(line.split("\t", 1) for line in lines), strict=True)
            rows = np.array(",".join(values).split(","), dtype=np.float32).reshape(len(lines), len(names))
            where = np.array([position[i] for i in got])
            matrix[where] = rows
            found[where] = True
        return list(names), matrix[found] if not found.all() else matrix

    def history(self, namespace: str, pipeline: str, before: datetime, limit: int = 20) -> History:
        """Drift flags of the pipeline's evaluations before ``before`` and its last request's time."""
        t = monitor_evaluations
        with self.engine.connect() as conn:
            flags = [
                bool(r.drift_flag)
                for r in conn.execute(
                    sa.select(t.c.drift_flag)
                    .where(t.c.namespace == namespace, t.c.pipeline == pipeline, t.c.as_of < before)
                    .order_by(t.c.as_of.desc())
                    .limit(limit)
                )
            ][::-1]
            last = conn.execute(
                sa.select(sa.func.max(t.c.as_of)).where(
                    t.c.namespace == namespace, t.c.pipeline == pipeline, t.c.requested, t.c.as_of <= before
                )
            ).scalar()
        return History(flags, last)

    def last_evaluation(self, namespace: str, pipeline: str) -> datetime | None:
        t = monitor_evaluations
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.max(t.c.as_of)).where(t.c.namespace == namespace, t.c.pipeline == pipeline)
            ).scalar()

    def record(self, namespace: str, pipeline: str, ev: Evaluation, request: str | None) -> None:
        champion = ev.champion
        with self.engine.begin() as conn:
            conn.execute(
                monitor_evaluations.insert().values(
                    id=uuid.UUID(ev.id),
                    namespace=namespace,
                    pipeline=pipeline,
                    as_of=ev.as_of,
                    model_name=ev.model_name,
                    champion_version=ev.champion_version,
                    window_start=ev.window_start,
                    labelled=champion.labelled if champion else 0,
                    pending=ev.pending,
                    drift_flag=ev.decision.drift_flag,
                    requested=ev.decision.request,
                    reasons=list(ev.decision.reasons),
                    suppressed=ev.decision.suppressed,
                    request=request,
                    numbers=json.loads(json.dumps(ev.numbers())),
                )
            )


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pg(raw: Any) -> Any:
    """The psycopg connection under a pooled SQLAlchemy connection (for COPY)."""
    conn = raw.driver_connection
    if conn is None:
        raise RuntimeError("no driver connection")
    return conn
