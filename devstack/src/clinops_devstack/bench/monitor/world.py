"""A scenario world end to end, small enough for a test: generated history, hourly features, a model,
batch predictions of past hours in ``predictions``, outcomes in silver.

- History: the generator (``GeneratorConfig.scenario`` switches the world at a chosen hour), vitals
  hourly and outcomes, no wire faults.
- Features: per patient and hour mark ``t``, for each vital its mean over ``(t - 1h, t]`` and its mean,
  minimum and maximum over ``(t - 6h, t]`` (the featurizer's names and window rule,
  ``<vital>_<stat>_<window>``; a 28-feature subset of ``adverse_event_v1`` computed with pandas
  here so that four worlds fit in a test's time budget).
- Model: a logistic regression (standardised features, training-mean imputation) fitted on the
  first part of the history; its validation rows give the training reference (sample and decile bins).
- Predictions: the model applied to every later hour's row, written as batch rows of ``predictions``
  (feature order, compact feature vector), the same rows batch scoring writes.
- Outcomes: silver ``outcomes`` Parquet per event date, received 0-3 hours after they happened.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from clinops_common.lake import key
from clinops_common.settings import Connections
from clinops_common.storage import s3_filesystem
from clinops_common.synthetic import FaultRates, GeneratorConfig, Scenario, generate
from clinops_common.synthetic.config import ScenarioKind
from clinops_common.vocabulary import VITALS
from clinops_monitor.core.drift import quantile_bins
from clinops_monitor.core.evaluation import Reference

START = datetime(2026, 3, 1, tzinfo=UTC)
STATS = (("mean", "1h"), ("mean", "6h"), ("min", "6h"), ("max", "6h"))
FEATURES = tuple(f"{v}_{stat}_{w}" for v in VITALS for stat, w in STATS)


@dataclass(frozen=True)
class WorldConfig:
    kind: ScenarioKind = "stable"
    seed: int = 11
    patients: int = 400
    vitals_interval_min: float = 240
    days: int = 21
    change_day: float = 14.0
    train_days: tuple[float, float] = (0.25, 8.0)
    validation_days: tuple[float, float] = (9.0, 11.0)  # one horizon of purge after training
    predict_from_day: float = 11.0


@dataclass
class World:
    config: WorldConfig
    rows: pd.DataFrame  # patient_id, time, features..., label, oracle
    reference: Reference
    reference_auroc: float
    predictions: pd.DataFrame  # id, patient_id, predicted_at, score, risk_level, features...
    outcomes: pd.DataFrame  # silver outcomes rows

    @property
    def change_at(self) -> datetime:
        return START + timedelta(days=self.config.change_day)


def _generate(cfg: WorldConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    gen = GeneratorConfig(
        seed=cfg.seed,
        patients=cfg.patients,
        days=cfg.days,
        start=START,
        vitals_interval_min=cfg.vitals_interval_min,
        topics=("vitals", "outcomes"),
        faults=FaultRates.none(),
        scenario=Scenario(kind=cfg.kind, at_hours=cfg.change_day * 24),
    )
    ds = generate(gen)
    vitals, outcomes = [], []
    for m in ds.messages:
        ev = json.loads(m.value)
        if m.topic == "vitals":
            vitals.append((ev["patient_id"], ev["event_time"], ev["measurement"], ev["value"]))
        else:
            outcomes.append(ev)
    v = pd.DataFrame(vitals, columns=["patient_id", "event_time", "measurement", "value"])
    v["event_time"] = pd.to_datetime(v["event_time"], utc=True)
    o = pd.DataFrame(outcomes)
    o["event_time"] = pd.to_datetime(o["event_time"], utc=True)
    oracle = pd.DataFrame(ds.oracle)[["patient_id", "time", "p_adverse_event_24h"]]
    oracle["time"] = pd.to_datetime(oracle["time"], utc=True)
    return v, o, oracle


def features(vitals: pd.DataFrame) -> pd.DataFrame:
    """Hourly rows (patient_id, time) with the FEATURES: windows (t - w, t] over the readings."""
    v = vitals.assign(time=vitals["event_time"].dt.ceil("h"))
    hourly = v.pivot_table(index=["patient_id", "time"], columns="measurement", values="value", aggfunc="mean")
    out = []
    for pid, per in hourly.groupby(level=0):
        flat = per.droplevel(0)
        grid = pd.date_range(flat.index.min(), flat.index.max(), freq="h")
        g = flat.reindex(grid)
        cols = {}
        for m in VITALS:
            s = g[m]
            r = s.rolling(6, min_periods=1)
            cols[f"{m}_mean_1h"], cols[f"{m}_mean_6h"] = s, r.mean()
            cols[f"{m}_min_6h"], cols[f"{m}_max_6h"] = r.min(), r.max()
        frame = pd.DataFrame(cols, index=grid)
        frame.insert(0, "patient_id", pid)
        out.append(frame.rename_axis("time").reset_index())
    return pd.concat(out, ignore_index=True)[["patient_id", "time", *FEATURES]]


def _ns(times: pd.Series) -> np.ndarray:
    return np.asarray(pd.to_datetime(times, utc=True).dt.tz_convert(None).astype("datetime64[ns]").astype(np.int64))


def labels(rows: pd.DataFrame, outcomes: pd.DataFrame, horizon: timedelta = timedelta(hours=24)) -> np.ndarray:
    events = outcomes.loc[outcomes["outcome_type"] == "adverse_event"]
    by = {pid: np.sort(_ns(g["event_time"])) for pid, g in events.groupby("patient_id")}
    times = _ns(rows["time"])
    out = np.zeros(len(rows), dtype=np.int8)
    for pid, idx in rows.groupby("patient_id").indices.items():
        ev = by.get(pid)
        if ev is None:
            continue
        t = times[idx]
        lo = np.searchsorted(ev, t, side="right")  # first event > t
        hi = np.searchsorted(ev, t + int(horizon.total_seconds() * 1e9), side="right")  # events <= t + h
        out[idx] = (hi > lo).astype(np.int8)
    return out


@dataclass(frozen=True)
class Logistic:
    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray  # intercept first

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = np.where(np.isnan(x), self.mean, x)
        z = (z - self.mean) / self.std
        return np.asarray(1 / (1 + np.exp(-(self.coef[0] + z @ self.coef[1:]))))


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-2, iterations: int = 30) -> Logistic:
    mean = np.nanmean(x, axis=0)
    std = np.nanstd(x, axis=0)
    std[std == 0] = 1.0
    z = (np.where(np.isnan(x), mean, x) - mean) / std
    a = np.column_stack([np.ones(len(z)), z])
    beta = np.zeros(a.shape[1])
    beta[0] = np.log(y.mean() / (1 - y.mean()))
    penalty = ridge * np.eye(a.shape[1])
    penalty[0, 0] = 0
    for _ in range(iterations):
        mu = 1 / (1 + np.exp(-(a @ beta)))
        w = mu * (1 - mu)
        step = np.linalg.solve((a * w[:, None]).T @ a + penalty, a.T @ (y - mu) - penalty @ beta)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    return Logistic(mean, std, beta)


def _days(rows: pd.DataFrame, lo: float, hi: float) -> pd.Series:
    h = (rows["time"] - pd.Timestamp(START)).dt.total_seconds() / 86400
    return (h >= lo) & (h < hi)


def build(cfg: WorldConfig) -> World:
    vitals, outcomes, oracle = _generate(cfg)
    rows = features(vitals)
    rows = rows.merge(oracle.rename(columns={"p_adverse_event_24h": "oracle"}), on=["patient_id", "time"], how="left")
    rows["label"] = labels(rows, outcomes)
    rows = rows.loc[rows["time"] <= pd.Timestamp(START + timedelta(days=cfg.days - 1))].reset_index(drop=True)
    train = rows.loc[_days(rows, *cfg.train_days)]
    model = fit_logistic(train[list(FEATURES)].to_numpy(), train["label"].to_numpy().astype(float))
    val = rows.loc[_days(rows, *cfg.validation_days)]
    val_p = model.predict_proba(val[list(FEATURES)].to_numpy())
    sample = {f: val[f].to_numpy(dtype=np.float64) for f in FEATURES} | {"probability": val_p}
    reference = Reference(FEATURES, sample, {c: quantile_bins(v) for c, v in sample.items()})
    from clinops_monitor.core.discrimination import auroc

    ref_auc = auroc(val["label"].to_numpy(), val_p).value
    medium, high = np.quantile(val_p, [0.8, 0.95])
    later = rows.loc[_days(rows, cfg.predict_from_day, cfg.days + 1)].copy()
    later["score"] = model.predict_proba(later[list(FEATURES)].to_numpy())
    later["risk_level"] = np.where(later["score"] >= high, "HIGH", np.where(later["score"] >= medium, "MEDIUM", "LOW"))
    rng = np.random.default_rng(cfg.seed)
    later["id"] = [str(uuid.uuid4()) for _ in range(len(later))]
    silver = outcomes.assign(
        ingested_at=outcomes["event_time"] + pd.to_timedelta(rng.uniform(0, 3 * 3600, len(outcomes)), unit="s"),
        prediction_id=None,
        severity=outcomes.get("severity"),
    )[["event_id", "patient_id", "event_time", "source", "outcome_type", "severity", "prediction_id", "ingested_at"]]
    return World(cfg, rows, reference, ref_auc, later.rename(columns={"time": "predicted_at"}), silver)


def write_predictions(database_url: str, world: World, model_name: str, version: str = "1") -> int:
    """The world's predictions as batch rows of ``predictions`` (one feature order)."""
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    order_id = f"scenario-{len(FEATURES)}"
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO feature_orders (feature_order_id, feature_service, feature_names, view_names)"
                    " VALUES (:id, 'adverse_event_v1', :names, ARRAY['vitals']) ON CONFLICT DO NOTHING"
                ),
                {"id": order_id, "names": list(FEATURES)},
            )
        p = world.predictions
        values = p[list(FEATURES)].to_numpy(dtype=np.float32)
        vec = ["{" + ",".join("NaN" if np.isnan(x) else repr(float(x)) for x in row) + "}" for row in values]
        out = pd.DataFrame(
            {
                "id": p["id"],
                "patient_id": p["patient_id"],
                "predicted_at": p["predicted_at"].map(lambda t: t.isoformat()),
                "score": p["score"],
                "risk_level": p["risk_level"],
                "model_name": model_name,
                "model_version": version,
                "source": "batch",
                "batch_id": f"scenario-{world.config.kind}",
                "feature_order_id": order_id,
                "feature_values": vec,
            }
        )
        buf = io.StringIO()
        out.to_csv(buf, index=False, header=False)
        raw = engine.raw_connection()
        try:
            with _pg(raw).cursor() as cur:
                cols = ", ".join(out.columns)
                with cur.copy(f"COPY predictions ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buf.getvalue())
            raw.commit()
        finally:
            raw.close()
        return len(out)
    finally:
        engine.dispose()


def write_outcomes(conns: Connections, world: World) -> int:
    """Silver outcomes, one Parquet file per event date, in ``conns.lake_bucket``."""
    fs = s3_filesystem(conns)
    o = world.outcomes
    for day, g in o.groupby(o["event_time"].dt.strftime("%Y-%m-%d")):
        path = f"{conns.lake_bucket}/{key('silver', 'outcomes', f'date={day}', 'part-00000.parquet')}"
        table = pa.Table.from_pandas(g.reset_index(drop=True), preserve_index=False)
        with fs.open_output_stream(path) as out:
            pq.write_table(table, out)
    return len(o)


def _pg(raw: Any) -> Any:
    """The psycopg connection under a pooled SQLAlchemy connection (for COPY)."""
    conn = raw.driver_connection
    if conn is None:
        raise RuntimeError("no driver connection")
    return conn
