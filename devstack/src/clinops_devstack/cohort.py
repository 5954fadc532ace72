"""A training cohort in the lake, fast (for the benchmark and the tests; needs pyspark and the featurizer).

The generator's fault-free events are written as silver directly (no Kafka, ingest or processor:
those have their own tests and benchmark), then featurized by the featurizer's own Spark code into an
offline-store snapshot; the oracle and the batch tables go to the lake as the generator's ``--upload``
puts them, and the stroke cohort's ``stroke_risk`` view is built from those tables. ``ingested_at`` is
the event time plus ``ingest_delay`` (so the created-timestamp guard sees realistic arrival times).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from clinops_common.settings import Connections
from clinops_common.synthetic import GeneratorConfig
from clinops_common.synthetic.generator import Dataset, clean_history

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SILVER_COLUMNS = {
    "measurements": ("measurement", "value", "unit"),
    "medications": ("drug", "dose", "dose_unit", "route"),
    "admissions": ("event_type", "hospital_id", "department", "discharge_status", "trial_arm"),
    "outcomes": ("outcome_type", "severity", "prediction_id"),
}
TOPIC_TABLE = {
    "vitals": "measurements",
    "labs": "measurements",
    "medications": "medications",
    "admissions": "admissions",
    "outcomes": "outcomes",
}


@dataclass(frozen=True)
class Cohort:
    snapshot_id: str
    stroke_snapshot_id: str | None
    silver_rows: dict[str, int]
    patients: int
    hours: int
    adverse_events: int


def generate_silver(cfg: GeneratorConfig, ingest_delay: timedelta) -> tuple[Dataset, dict[str, pd.DataFrame]]:
    """The generator's clean events as silver frames (the same random streams as ``generate``)."""
    ds, clean, _ = clean_history(cfg)
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in SILVER_COLUMNS}
    for c in clean:
        table = TOPIC_TABLE[c.topic]
        e = c.event
        row = {
            "event_id": e["event_id"],
            "patient_id": e["patient_id"],
            "source": e["source"],
            "event_ms": c.event_ms,
        }
        if table == "measurements":
            row["kind"] = c.topic
        for k in SILVER_COLUMNS[table]:
            row[k] = e.get(k)
        rows[table].append(row)
    frames = {}
    for table, items in rows.items():
        frame = pd.DataFrame(items)
        if frame.empty:
            continue
        frame["event_time"] = pd.to_datetime(frame.pop("event_ms"), unit="ms", utc=True)
        frame["ingested_at"] = frame["event_time"] + ingest_delay
        frames[table] = frame
    return ds, frames


def _spark_frame(spark: SparkSession, frame: pd.DataFrame, ddl: str, folder: Path, name: str) -> Any:
    """pandas -> local Parquet -> Spark, with the silver table's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clinops_common.lake import ddl_columns

    cols = [c for c, _, _ in ddl_columns(ddl)]
    out = frame.reindex(columns=cols)
    for ts in ("event_time", "ingested_at"):
        if ts in out:
            out[ts] = out[ts].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pandas(out, preserve_index=False), path)
    return spark.read.schema(ddl.replace(" NOT NULL", "")).parquet(str(path))


def build_cohort(
    conns: Connections,
    spark: SparkSession,
    cfg: GeneratorConfig,
    *,
    ingest_delay: timedelta = timedelta(seconds=5),
    stroke: bool = True,
    stroke_as_of: date | None = None,
) -> Cohort:
    """Generate, write silver-equivalent frames, featurize into a snapshot; upload oracle and batch
    tables; optionally build the ``stroke_risk`` view (a second snapshot)."""
    from clinops_common.features.offline import OfflineStore
    from clinops_common.lake import BATCH_SCHEMAS, BATCH_TABLES, SILVER_SCHEMAS
    from clinops_common.synthetic.sinks import upload
    from clinops_featurizer import adapters, core
    from clinops_featurizer.config import FeaturizerSettings
    from clinops_featurizer.session import sql_conf
    from clinops_featurizer.stroke import clean, stroke_views

    ds, frames = generate_silver(cfg, ingest_delay)
    upload(ds, conns)
    store = OfflineStore.for_lake(conns)
    with tempfile.TemporaryDirectory(prefix="clinops-cohort-") as tmp:
        folder = Path(tmp)
        silver = {
            t: _spark_frame(spark, frames.get(t, pd.DataFrame()), SILVER_SCHEMAS[t], folder, t)  # type: ignore[index]
            for t in SILVER_COLUMNS
        }
        batch = {t: spark.createDataFrame(ds.batch[t], BATCH_SCHEMAS[t].replace(" NOT NULL", "")) for t in BATCH_TABLES}
        views = core.streaming_features(
            silver["measurements"],
            silver["medications"],
            silver["admissions"],
            silver["outcomes"],
            batch["demographics"].select("patient_id", "date_of_birth", "gender"),
        )
        with sql_conf(spark, FeaturizerSettings().sql_conf()):  # the featurize job's plan settings
            snap = adapters.write_views(store, views)
        stroke_id = None
        if stroke:
            as_of = stroke_as_of or (cfg.start + timedelta(hours=cfg.hours)).date()
            tables = {t: clean(t, df).rows for t, df in batch.items()}
            stroke_id = adapters.write_views(store, stroke_views(tables, as_of=as_of), whole=True)
    return Cohort(
        snapshot_id=snap.snapshot_id,
        stroke_snapshot_id=stroke_id.snapshot_id if stroke_id else None,
        silver_rows={t: len(f) for t, f in frames.items()},
        patients=cfg.patients,
        hours=cfg.hours,
        adverse_events=ds.ledger.adverse_events,
    )
