"""One pydantic model per stage for its arguments (``*Args``) and one for its result (``*Result``).

The operator renders an ``*Args`` to the stage's command line (``argv.render``); the stage's CLI
parses exactly that model back (``argv.stage_command``); the stage writes its ``*Result`` to the
lake (``results.write_result``) and the operator reads it (``results.read_result``). Fields are
snake_case here and ``--kebab-case`` on the command line.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from clinops_common.lake import TOPICS
from clinops_common.sources import BatchSource


class StageName(enum.StrEnum):
    """A stage of a run; the value is also the stage's CLI command and its result's file name."""

    INGEST = "ingest"
    PROCESS = "process"
    FEATURIZE = "featurize"
    MATERIALIZE = "materialize"
    STROKE = "stroke"
    TRAIN = "train"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageArgs(_Contract):
    """What every stage is told: which pipeline and which run it works for."""

    stage: ClassVar[StageName]

    pipeline: str = Field(min_length=1, description="The FeaturePipeline this run belongs to.")
    run_id: str = Field(min_length=1, description="The run's id (the same run always has the same id).")


class StageResult(_Contract):
    """What every stage reports when it succeeded."""

    stage: ClassVar[StageName]

    pipeline: str
    run_id: str
    finished_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


# ---- ingest: Kafka -> bronze, until the topics are idle ----


class IngestArgs(StageArgs):
    """Consume the topics into bronze until none has a message for ``idle_exit_s`` (a batch drain)."""

    stage: ClassVar[StageName] = StageName.INGEST

    topics: tuple[str, ...] = Field(TOPICS, description="Logical topics to consume.")
    topic_prefix: str = Field("", description="Prefix of the Kafka topic names.")
    group_id: str = Field("clinops-ingest", description="Kafka consumer group.")
    idle_exit_s: float = Field(5.0, gt=0, description="Finish after this many seconds without messages.")
    max_messages: int = Field(0, ge=0, description="Finish after this many messages (0: no limit).")


class IngestResult(StageResult):
    stage: ClassVar[StageName] = StageName.INGEST

    messages: int = Field(ge=0, description="Messages consumed (valid and dead-lettered).")


# ---- process: bronze -> silver ----


class ProcessArgs(StageArgs):
    """Process bronze objects not yet processed (and ``dates`` again) into silver and quarantine."""

    stage: ClassVar[StageName] = StageName.PROCESS

    dates: tuple[date, ...] = Field((), description="Event dates to recompute as well (JSON list of ISO dates).")
    full: bool = Field(False, description="Ignore the state: recompute every date from all of bronze.")


class ProcessResult(StageResult):
    stage: ClassVar[StageName] = StageName.PROCESS

    new_objects: int = Field(ge=0, description="Bronze objects not seen before.")
    objects_read: int = Field(ge=0, description="Bronze objects read (new ones and those sharing a date).")
    dates: tuple[str, ...] = Field(description="Event dates whose silver partitions were replaced.")


# ---- featurize: silver -> offline-store snapshot ----


class FeaturizeArgs(StageArgs):
    """Silver -> the streaming feature views and the label -> a new offline-store snapshot."""

    stage: ClassVar[StageName] = StageName.FEATURIZE

    feature_service: str = Field("adverse_event_v1", description="The feature service whose views to compute.")
    windows: tuple[str, ...] = Field(
        ("1h", "6h", "24h"), description="Rolling windows; must be those of the feature definitions."
    )
    label_horizon_hours: int = Field(24, gt=0, description="Label horizon; must be that of the feature definitions.")
    start: datetime | None = Field(None, description="First day to featurize (whole days; default: all of silver).")
    end: datetime | None = Field(None, description="Featurize up to this day, exclusive (rounded up to a day).")
    recompute: bool = Field(
        False, description="Compute a new snapshot even when the latest one was made from the same inputs."
    )


class FeaturizeResult(StageResult):
    stage: ClassVar[StageName] = StageName.FEATURIZE

    snapshot_id: str = Field(description="The offline-store snapshot committed (what training reads).")
    files: dict[str, int] = Field(description="Parquet files per feature view in the snapshot.")
    bytes: int = Field(ge=0, description="Size of those files.")
    reused: bool = Field(
        False,
        description="The latest snapshot was made from the same inputs (silver, arguments, code): "
        "it is the result, and nothing was computed.",
    )


# ---- materialize: offline snapshot -> Redis ----


class MaterializeArgs(StageArgs):
    """Offline store -> Redis: the latest row per patient and online view, each key expiring after ``key_ttl_hours``."""

    stage: ClassVar[StageName] = StageName.MATERIALIZE

    snapshot_id: str | None = Field(None, description="Offline snapshot to materialize (default: the latest).")
    end: datetime | Literal["data"] | None = Field(
        None, description="As-of time (ISO); 'data' = the latest step in the snapshot; default: now."
    )
    incremental: bool = Field(False, description="Only files added since the last materialization.")
    key_ttl_hours: int = Field(
        48, gt=0, description="Redis key expiry: how long a patient's vector stays in Redis after its last write."
    )


class MaterializeResult(StageResult):
    stage: ClassVar[StageName] = StageName.MATERIALIZE

    snapshot_id: str
    as_of: datetime = Field(description="Rows created after this time were not written.")
    rows: int = Field(ge=0, description="(patient, view) rows written.")
    patients: int = Field(ge=0)
    key_ttl_hours: int = Field(gt=0, description="The expiry set on every key written.")
    incremental: bool


# ---- stroke: the five batch tables -> stroke_risk snapshot ----


class StrokeArgs(StageArgs):
    """The stroke cohort: read the five sources, build one view per source, the computed-risk view and
    the training rows, verify, write Parquet, a sample and a snapshot."""

    stage: ClassVar[StageName] = StageName.STROKE

    as_of: date | None = Field(None, description="Reference date for ages and day counts (default: today).")
    sample_rows: int = Field(100, ge=0, description="Rows in the CSV sample.")
    sources: tuple[BatchSource, ...] = Field(
        (),
        description="Where each table lives (JSON list of {table, uri, format, timestamp_column, credentials_env}); "
        "default: the generator's files in the lake's batch/ folder.",
    )


class StrokeResult(StageResult):
    stage: ClassVar[StageName] = StageName.STROKE

    snapshot_id: str
    output: str = Field(
        "",
        description="The run's own output folder (s3a://<lake>/features/stroke/<pipeline>/run=<run id>/write=<id>/): "
        "parquet/ (the rows as of the run's date), sample_csv/, quarantine/.",
    )
    patients: int = Field(ge=0)
    high_risk: int = Field(ge=0)
    checks: int = Field(ge=0, description="Verification checks passed.")
    sources: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per source table: rows read, kept, quarantined, skipped."
    )
    training_rows: int = Field(0, ge=0, description="Rows of the stroke_label view (one per visit before a stroke).")


# ---- train: snapshot -> model version behind the promotion gate ----

ModelFamily = Literal["pytorch-mlp", "gradient-boosted-trees"]


class Split(_Contract):
    """Train, validation and test fractions (they sum to 1)."""

    train: float = Field(0.7, gt=0, lt=1)
    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Split:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-6:
            raise ValueError(f"split fractions must sum to 1, got {self.train + self.validation + self.test:g}")
        return self


class TrainArgs(StageArgs):
    """Train on a snapshot, evaluate, register, and move the champion alias only through the promotion gate."""

    stage: ClassVar[StageName] = StageName.TRAIN

    model_family: ModelFamily = Field("pytorch-mlp", description="pytorch-mlp or gradient-boosted-trees.")
    registered_model_name: str = Field(min_length=1, description="MLflow registered model name.")
    feature_service: str = Field("adverse_event_v1", description="The feature service the model consumes.")
    label: str = Field("adverse_event_24h", description="The label column.")
    snapshot_id: str | None = Field(None, description="Offline snapshot to train on (default: the latest).")
    lookback_days: int = Field(90, gt=0, description="Days of history to train on.")
    split: Split = Field(default_factory=Split, description='Fractions as JSON, e.g. {"train":0.7,...}.')
    min_auroc: float = Field(0.75, ge=0, le=1, description="Test AUROC the gate requires.")
    must_beat_champion: bool = Field(True, description="The gate also requires beating the current champion.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="Model hyperparameters (JSON object).")


class TrainResult(StageResult):
    stage: ClassVar[StageName] = StageName.TRAIN

    model_name: str
    model_version: str | None = Field(description="The version registered; None when nothing was registered.")
    mlflow_run_id: str | None
    test_auroc: float | None
    promoted: bool = Field(description="Whether the champion alias now points at this version.")
    gate_reasons: tuple[str, ...] = Field((), description="Why the gate passed or refused.")
    snapshot_id: str
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Test metrics of candidate and baseline, the oracle's on the same rows, row and positive counts.",
    )


ARGS: dict[StageName, type[StageArgs]] = {
    m.stage: m for m in (IngestArgs, ProcessArgs, FeaturizeArgs, MaterializeArgs, StrokeArgs, TrainArgs)
}
RESULTS: dict[StageName, type[StageResult]] = {
    m.stage: m for m in (IngestResult, ProcessResult, FeaturizeResult, MaterializeResult, StrokeResult, TrainResult)
}
