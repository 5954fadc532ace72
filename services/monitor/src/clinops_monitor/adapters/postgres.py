"""PostgreSQL: the window's predictions, their labels (``prediction_outcomes``) and the evaluations.

Set-based: the window's rows never travel to Python one by one. Labels are one ``INSERT ... SELECT``
joining the window with the received adverse events (copied into a temporary table); counts are a
``GROUP BY``; only the labelled rows' (version, score, label) and the drift sample's vectors are
read, through ``COPY``. The predictions table is only read.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from clinops_common.db import monitor_evaluations
from clinops_monitor.core.evaluation import Evaluation

# The window: predictions of one model made in (start, end]. ``closed_by`` is the watermark minus the
# horizon (core.groundtruth.closed_by): a prediction made at or before it can be labelled.
# Ground truth, set-based: every closed window prediction without a label gets one, from the first
# received adverse event of its patient after t, a hit when it is at or before t + horizon (the rule
# of core.groundtruth.label). One sort: predictions and events of a patient in descending time (a
# prediction before an event at the same instant), the running minimum of event times above each
# prediction is its next event. Rows go in in id order (the key's index is then written in order).
LABEL_SQL = """
INSERT INTO prediction_outcomes (prediction_id, predicted_at, label, outcome_at, horizon_hours, watermark)
SELECT id, t, coalesce(nxt <= t + make_interval(hours => %(horizon)s), false),
       CASE WHEN nxt <= t + make_interval(hours => %(horizon)s) THEN nxt END, %(horizon)s, %(watermark)s
FROM (
    SELECT id, t, min(t) FILTER (WHERE id IS NULL) OVER (
        PARTITION BY patient_id ORDER BY t DESC, id IS NULL ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS nxt
    FROM (
        SELECT p.id, p.patient_id::text COLLATE "C" AS patient_id, p.predicted_at AS t FROM predictions p
        WHERE p.model_name = %(model)s AND p.predicted_at > %(start)s AND p.predicted_at <= %(end)s
          AND p.predicted_at <= %(closed_by)s
          AND NOT EXISTS (SELECT 1 FROM prediction_outcomes o WHERE o.prediction_id = p.id)
        UNION ALL
        SELECT NULL, w.patient_id COLLATE "C", w.event_time FROM window_events w
    ) AS timeline
) AS labelled
WHERE id IS NOT NULL
ORDER BY id
ON CONFLICT (prediction_id) DO NOTHING
"""

COUNTS_SQL = """
SELECT p.model_version, p.risk_level, p.predicted_at <= %(closed_by)s AS closed, count(*)
FROM predictions p
WHERE p.model_name = %(model)s AND p.predicted_at > %(start)s AND p.predicted_at <= %(end)s
GROUP BY 1, 2, 3
"""

# COPY takes no bind parameters: the values are quoted by _literal
LABELLED_SQL = """
COPY (
    SELECT p.model_version, p.score, o.label::int
    FROM predictions p JOIN prediction_outcomes o ON o.prediction_id = p.id AND o.predicted_at = p.predicted_at
    WHERE p.model_name = {model} AND p.predicted_at > {start} AND p.predicted_at <= {closed_by}
) TO STDOUT WITH (FORMAT csv)
"""

# A seeded sample of one version's window predictions: each row is kept when a seeded hash of its id
# falls below the share wanted (one pass, no sort; the same rows for the same window and seed).
SAMPLE_SQL = """
COPY (
    SELECT p.score, p.feature_order_id, array_to_string(p.feature_values, ',', 'NaN')
    FROM predictions p
    WHERE p.model_name = {model} AND p.model_version = {version}
      AND p.predicted_at > {start} AND p.predicted_at <= {end}
      AND (hashtextextended(p.id::text, {seed}) & 1048575) < {cut}
    LIMIT {size}
) TO STDOUT WITH (FORMAT csv)
"""
SAMPLE_BUCKETS = 1 << 20
LABEL_WORK_MEM = "256MB"


@dataclass(frozen=True)
class WindowCounts:
    """The window's predictions: per version, how many there are and how many are closed (labellable),
    and the champion's per risk level."""

    made: dict[str, int]
    closed: dict[str, int]
    by_risk_level: dict[tuple[str, str], int]

    def pending(self) -> int:
        return sum(self.made.values()) - sum(self.closed.values())

    def volume(self, version: str | None) -> dict[str, int]:
        return {level: n for (v, level), n in sorted(self.by_risk_level.items()) if v == version}


@dataclass(frozen=True)
class DriftSample:
    """Scores of the sampled predictions, and the feature matrix of those with the commonest feature order."""

    scores: np.ndarray
    feature_names: list[str]
    features: np.ndarray  # rows: the sampled predictions that carry a vector in that order


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

    def _params(self, model_name: str, start: datetime, end: datetime, closed_by: datetime | None) -> dict[str, Any]:
        # nothing is closed while no outcome has arrived: a bound below every window's start
        return {"model": model_name, "start": start, "end": end, "closed_by": closed_by or start}

    def label_window(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        *,
        horizon_hours: int,
        watermark: datetime,
        closed_by: datetime,
        events: pd.DataFrame,
    ) -> int:
        """Label every closed, unlabelled window prediction in one statement; returns labels written.

        ``events``: the received adverse events (``patient_id``, ``event_time``), copied into a
        temporary table the join reads; labels already stored are kept (written once)."""
        params = self._params(model_name, start, end, closed_by) | {"horizon": horizon_hours, "watermark": watermark}
        buf = io.StringIO()
        events[["patient_id", "event_time"]].to_csv(
            buf, index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z"
        )
        raw = self.engine.raw_connection()
        try:
            with _pg(raw).cursor() as cur:
                cur.execute("CREATE TEMP TABLE window_events (patient_id text, event_time timestamptz) ON COMMIT DROP")
                with cur.copy("COPY window_events FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buf.getvalue())
                # the timeline's two sorts (by patient and time, then by id) in memory: at 64MB those
                # of a 1,000,000-prediction window spill about 110 MB to disk (EXPLAIN ANALYZE)
                cur.execute(f"SET LOCAL work_mem = '{LABEL_WORK_MEM}'")
                cur.execute(LABEL_SQL, params)
                inserted = int(cur.rowcount)
            raw.commit()
            return inserted
        finally:
            raw.close()

    def window_counts(
        self, model_name: str, start: datetime, end: datetime, closed_by: datetime | None
    ) -> WindowCounts:
        made: dict[str, int] = {}
        closed: dict[str, int] = {}
        levels: dict[tuple[str, str], int] = {}
        raw = self.engine.raw_connection()
        try:
            with _pg(raw).cursor() as cur:
                cur.execute(COUNTS_SQL, self._params(model_name, start, end, closed_by))
                for version, level, is_closed, n in cur.fetchall():
                    made[version] = made.get(version, 0) + n
                    if is_closed:
                        closed[version] = closed.get(version, 0) + n
                    levels[(version, level)] = levels.get((version, level), 0) + n
            raw.commit()
        finally:
            raw.close()
        return WindowCounts(made, closed, levels)

    def labelled(self, model_name: str, start: datetime, closed_by: datetime) -> pd.DataFrame:
        """The closed window predictions with their stored labels (``model_version``, ``score``, ``label``)."""
        sql = LABELLED_SQL.format(
            model=_literal(model_name), start=_literal(start.isoformat()), closed_by=_literal(closed_by.isoformat())
        )
        return pd.read_csv(
            io.BytesIO(self._copy_out(sql)),
            names=["model_version", "score", "label"],
            dtype={"model_version": "category", "score": np.float64, "label": np.int8},
        )

    def drift_sample(
        self, model_name: str, version: str, start: datetime, end: datetime, *, rows: int, size: int, seed: int = 0
    ) -> DriftSample:
        """At most ``size`` of the ``rows`` window predictions of ``version``, seeded; scores and features."""
        share = min(1.0, 1.02 * size / max(rows, 1))  # a little over: the hash keeps a binomial count
        sql = SAMPLE_SQL.format(
            model=_literal(model_name),
            version=_literal(version),
            start=_literal(start.isoformat()),
            end=_literal(end.isoformat()),
            seed=int(seed),
            cut=int(np.ceil(share * SAMPLE_BUCKETS)),
            size=int(size),
        )
        frame = pd.read_csv(
            io.BytesIO(self._copy_out(sql)),
            names=["score", "order", "values"],
            dtype={"score": np.float64, "order": str, "values": str},
            keep_default_na=False,
        )
        scores = frame["score"].to_numpy()
        with_vector = frame.loc[frame["order"] != ""]
        if with_vector.empty:  # rows without a compact vector (pre-0002) are left out of feature drift
            return DriftSample(scores, [], np.empty((0, 0), dtype=np.float32))
        order = with_vector["order"].mode().iloc[0]
        mine = with_vector.loc[with_vector["order"] == order, "values"]
        with self.engine.connect() as conn:
            names = conn.execute(
                sa.text("SELECT feature_names FROM feature_orders WHERE feature_order_id = :id"), {"id": order}
            ).scalar_one()
        matrix = np.array(",".join(mine).split(","), dtype=np.float32).reshape(len(mine), len(names))
        return DriftSample(scores, list(names), matrix)

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
