"""The scenario worlds through the product's own stages: silver, the batch featurizer, the trainer,
batch scoring; then the monitor along a simulated clock (``scenarios.run``).

Each scenario is a world of its own: its own lake (a bucket of the same MinIO) and its own PostgreSQL
database (its predictions, labels and evaluations), like a hospital of its own running the same
registered model. With one seed the four worlds hold the same patients and, before the change, the
same events.

1. History: the generator with the scenario switch (``GeneratorConfig.scenario``), fault-free, its
   events written to silver as the processor keeps them (``clinops_devstack.cohort.generate_silver``,
   partitioned by event date), the oracle and the batch tables as the generator's ``--upload`` puts
   them.
2. Features: the featurizer's batch job (``clinops_featurizer.job.featurize``, the function behind
   ``python -m clinops_featurizer featurize``) into the world's offline store; all four worlds share
   one SparkSession.
3. The model: the trainer's job (``clinops_trainer.job.train``, behind ``python -m clinops_trainer
   train``) on a snapshot of the stable world's days ``[0, train_end_day)`` only (its own featurizer
   run, ``end`` = that day), registered in MLflow and made champion by the promotion gate. Its
   validation rows are the training reference the monitor reads from MLflow.
4. Predictions: ``clinops_scorer.batch.run`` (behind ``python -m clinops_scorer batch``) with the
   champion over every hour of ``[score_from_day, days)`` of each world's snapshot.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from clinops_common import db
from clinops_common.contracts import FeaturizeArgs, TrainArgs, TrainResult
from clinops_common.lake import SILVER_SCHEMAS, ddl_columns, silver_path
from clinops_common.settings import Connections
from clinops_common.synthetic import FaultRates, GeneratorConfig, Scenario
from clinops_common.synthetic.config import ScenarioKind
from clinops_devstack.bench.monitor.scenarios import SCENARIOS, lake_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from clinops_scorer.batch import BatchResult
    from clinops_scorer.core import Champion

START = datetime(2026, 3, 1, tzinfo=UTC)
Say = Callable[[str], None]


@dataclass(frozen=True)
class PathConfig:
    seed: int = 11
    patients: int = 200
    days: int = 15
    change_day: float = 10.0
    # Vitals every hour: at every 4 hours the trainer's model reached test AUROC 0.525 beside the
    # oracle's 0.686 (no signal to lose under concept drift); hourly, 0.650 beside 0.772, for the
    # same featurizer time (the run's cost is Spark's, not the rows').
    vitals_interval_min: float = 60
    topics: tuple[str, ...] = ("vitals", "admissions", "outcomes")
    ingest_delay_min: float = 5
    train_end_day: int = 7  # the model's snapshot: days [0, 7) of the stable world
    score_from_day: int = 7  # batch scoring: every hour of [7, days)
    evaluate_days: tuple[float, float] = (8.0, 15.0)  # the monitor as of every 24 h from, to
    model_family: str = "gradient-boosted-trees"
    # Shallow, strongly regularised trees for 13,400 rows of 626 columns from about 60 distinct events:
    # calibration slope 1.05 on the test rows (the defaults, capped at 80 trees: 3.27).
    hyperparameters: dict[str, Any] = field(
        default_factory=lambda: {
            "max_depth": 2,
            "min_child_weight": 50.0,
            "learning_rate": 0.03,
            "colsample_bytree": 0.3,
            "seed": 0,
        }
    )
    bootstrap_samples: int = 200

    def generator(self, kind: ScenarioKind) -> GeneratorConfig:
        return GeneratorConfig(
            seed=self.seed,
            patients=self.patients,
            days=self.days,
            start=START,
            vitals_interval_min=self.vitals_interval_min,
            topics=self.topics,
            faults=FaultRates.none(),
            scenario=Scenario(kind=kind, at_hours=self.change_day * 24),
        )

    def day(self, d: float) -> datetime:
        return START + timedelta(days=d)


@dataclass
class PathWorld:
    kind: ScenarioKind
    lake: Connections  # the world's bucket
    database_url: str  # the world's database
    oracle: pd.DataFrame  # patient_id, time, p_adverse_event_24h (the generator's truth)
    change_at: datetime
    snapshot_id: str = ""
    scoring: BatchResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class PathModel:
    name: str
    result: TrainResult

    @property
    def version(self) -> str:
        assert self.result.model_version is not None
        return self.result.model_version


def world_database(database_url: str, name: str) -> str:
    """A database of its own on the same server (created if missing), migrated to the head revision."""
    url = sa.engine.make_url(database_url)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    own = url.set(database=name).render_as_string(hide_password=False)
    db.upgrade(own)
    return own


ARROW_TYPES = {"STRING": pa.string(), "DOUBLE": pa.float64(), "TIMESTAMP": pa.timestamp("us", tz="UTC")}


def silver_table(frame: pd.DataFrame, ddl: str) -> pa.Table:
    """A silver frame with the table's columns and types (``ddl``: ``SILVER_SCHEMAS``)."""
    columns = ddl_columns(ddl)
    schema = pa.schema([pa.field(name, ARROW_TYPES[kind], nullable) for name, kind, nullable in columns])
    out = frame.reindex(columns=[name for name, _, _ in columns])
    for name, kind, _ in columns:
        if kind == "TIMESTAMP":
            out[name] = pd.to_datetime(out[name], utc=True).astype("datetime64[us, UTC]")
    return pa.Table.from_pandas(out, schema=schema, preserve_index=False)


def write_history(cfg: PathConfig, kind: ScenarioKind, lake: Connections) -> pd.DataFrame:
    """The world's fault-free events to silver, one Parquet file per table and event date (the
    processor's layout and schema); the oracle and batch tables to the lake. Returns the oracle."""
    from clinops_common.storage import s3_filesystem
    from clinops_common.synthetic.sinks import upload
    from clinops_devstack.cohort import SILVER_COLUMNS, generate_silver

    ds, frames = generate_silver(cfg.generator(kind), timedelta(minutes=cfg.ingest_delay_min))
    upload(ds, lake)
    fs = s3_filesystem(lake)
    for table in SILVER_COLUMNS:
        frame = frames.get(table)
        if frame is None:  # a topic the world does not emit: no silver table (the featurizer reads none)
            continue
        root = silver_path(lake.lake_bucket, table).removeprefix("s3a://")  # type: ignore[arg-type]
        for day, part in frame.groupby(frame["event_time"].dt.strftime("%Y-%m-%d")):
            with fs.open_output_stream(f"{root}/date={day}/part-00000.parquet") as out:
                pq.write_table(silver_table(part, SILVER_SCHEMAS[table]), out)  # type: ignore[index]
    oracle = pd.DataFrame(ds.oracle)[["patient_id", "time", "p_adverse_event_24h"]]
    oracle["time"] = pd.to_datetime(oracle["time"], utc=True)
    return oracle


def featurize(
    spark: SparkSession, lake: Connections, pipeline: str, run_id: str, *, start: datetime | None, end: datetime | None
) -> str:
    """The featurizer's batch job over the world's silver; the snapshot id."""
    from clinops_featurizer import job
    from clinops_featurizer.session import Stop

    args = FeaturizeArgs(pipeline=pipeline, run_id=run_id, start=start, end=end)
    return job.featurize(spark, lake, args, Stop()).snapshot_id


def train(cfg: PathConfig, lake: Connections, snapshot_id: str, model_name: str, *, cache: Path, say: Say) -> PathModel:
    """The trainer's job on the snapshot; the version must be registered and promoted."""
    from clinops_trainer import job
    from clinops_trainer.config import TrainerSettings

    args = TrainArgs(
        pipeline=model_name,
        run_id=f"train-{snapshot_id}",
        model_family=cfg.model_family,
        registered_model_name=model_name,
        snapshot_id=snapshot_id,
        lookback_days=cfg.train_end_day,
        min_auroc=0.5,
        hyperparameters=cfg.hyperparameters,
    )
    settings = TrainerSettings(bootstrap_samples=cfg.bootstrap_samples, threads=2, model_cache_dir=cache)
    result = job.train(args, lake, settings, say=say)
    if result.model_version is None or not result.promoted:
        raise RuntimeError(f"the scenario model was not promoted: {result.gate_reasons}")
    return PathModel(model_name, result)


def champion(lake: Connections, model: PathModel, cache: Path) -> Champion:
    from clinops_scorer.registry import load_champion

    return load_champion(lake.mlflow_tracking_uri, model.name, model.version, cache)


def score(cfg: PathConfig, world: PathWorld, champ: Champion) -> BatchResult:
    """Batch scoring of every hour of ``[score_from_day, days)`` into the world's ``predictions``."""
    from clinops_common.features.offline import OfflineStore
    from clinops_scorer import batch
    from clinops_scorer.audit import libpq_dsn

    return batch.run(
        champ,
        OfflineStore.for_lake(world.lake),
        libpq_dsn(world.database_url),
        start=cfg.day(cfg.score_from_day),
        end=cfg.day(cfg.days),
        snapshot=world.snapshot_id,
        batch_id=f"scenario-{world.kind}",
    )


def build(
    spark: SparkSession,
    s3: Connections,
    database_url: str,
    mlflow_url: str,
    *,
    cfg: PathConfig | None = None,
    prefix: str = "scn",
    model_name: str = "scenario-risk",
    say: Say = print,
) -> tuple[PathModel, dict[ScenarioKind, PathWorld]]:
    """Every scenario world through silver, features and batch scoring, with one model trained on
    the stable world's first ``train_end_day`` days."""
    cfg = cfg or PathConfig()
    worlds: dict[ScenarioKind, PathWorld] = {}
    for kind in SCENARIOS:
        name = f"{prefix}-{kind.replace('_', '-')}"
        t0 = time.perf_counter()
        lake = lake_for(s3, name).model_copy(update={"mlflow_tracking_uri": mlflow_url})
        oracle = write_history(cfg, kind, lake)
        world = PathWorld(
            kind, lake, world_database(database_url, name.replace("-", "_")), oracle, cfg.day(cfg.change_day)
        )
        world.seconds["history"] = time.perf_counter() - t0
        worlds[kind] = world
        say(f"{name}: history to silver in {world.seconds['history']:.1f}s")
    stable = worlds["stable"]
    with tempfile.TemporaryDirectory(prefix="clinops-scenario-models-") as tmp:
        cache = Path(tmp)
        t0 = time.perf_counter()
        snap = featurize(spark, stable.lake, model_name, "train", start=None, end=cfg.day(cfg.train_end_day))
        say(f"training snapshot {snap} (days 0-{cfg.train_end_day}) in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        model = train(cfg, stable.lake, snap, model_name, cache=cache, say=lambda m: say(f"  trainer: {m}"))
        say(
            f"model {model.name} v{model.version}: test AUROC {model.result.test_auroc:.3f}, oracle "
            f"{model.result.metrics.get('oracle_auroc', float('nan')):.3f} on the same rows "
            f"({time.perf_counter() - t0:.1f}s)"
        )
        champ = champion(stable.lake, model, cache)
        for kind, world in worlds.items():
            t0 = time.perf_counter()
            world.snapshot_id = featurize(
                spark, world.lake, f"{prefix}-{kind}", "score", start=cfg.day(cfg.score_from_day - 1), end=None
            )
            world.seconds["featurize"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            world.scoring = score(cfg, world, champ)
            world.seconds["score"] = time.perf_counter() - t0
            say(
                f"{kind}: featurized in {world.seconds['featurize']:.1f}s, {world.scoring.scored} predictions "
                f"({world.scoring.refused} refused) in {world.seconds['score']:.1f}s"
            )
    return model, worlds


ORACLE_ROWS_SQL = """
SELECT p.patient_id, p.predicted_at, o.label::int AS label
FROM predictions p JOIN prediction_outcomes o ON o.prediction_id = p.id AND o.predicted_at = p.predicted_at
WHERE p.model_name = :model AND p.predicted_at > :start AND p.predicted_at <= :end
"""


def oracle_auroc(world: PathWorld, model_name: str, start: datetime, end: datetime) -> float | None:
    """The generator's true probability's AUROC on the window's labelled predictions (the same rows)."""
    from clinops_monitor.core.discrimination import auroc

    engine = sa.create_engine(world.database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = pd.read_sql(sa.text(ORACLE_ROWS_SQL), conn, params={"model": model_name, "start": start, "end": end})
    finally:
        engine.dispose()
    if rows.empty or rows["label"].nunique() < 2:
        return None
    rows["time"] = pd.to_datetime(rows["predicted_at"], utc=True)
    joined = rows.merge(world.oracle, on=["patient_id", "time"], how="inner")
    return float(auroc(joined["label"].to_numpy(), joined["p_adverse_event_24h"].to_numpy(np.float64)).value)
