"""The stages of a run, as executor-neutral tasks: what to run, with which arguments, under which name.

A stage's arguments are its contract model (``clinops_common.contracts``), built here from the
pipeline's spec and the results of the run's earlier stages, and rendered to the command line its
CLI parses back. A ``StageTask`` says nothing about Kubernetes: the Kubernetes executor renders it
into a SparkApplication or a Job (``render``); a local executor can run the same command as a
process with the same environment (secret references resolved from its own configuration).
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from clinops_common.contracts import (
    FeaturizeArgs,
    FeaturizeResult,
    IngestArgs,
    MaterializeArgs,
    ProcessArgs,
    Split,
    StageArgs,
    StageName,
    StageResult,
    StrokeArgs,
    StrokeResult,
    TrainArgs,
    render,
)
from clinops_common.features.definitions import LABEL_HORIZON_HOURS, STROKE_LABEL, WINDOWS
from clinops_common.lake import TOPICS
from clinops_common.sources import (
    MANIFEST_TABLES,
    BatchSource,
    SourceConfigError,
    credentials_env_name,
    from_manifest,
)
from clinops_operator.core.spec import Pipeline
from clinops_operator.errors import InvalidSpecError

MANAGED_BY = "clinops-operator"
LABEL_PIPELINE = "clinops.io/pipeline"
LABEL_RUN = "clinops.io/run-id"
LABEL_STAGE = "clinops.io/stage"
MAX_NAME = 63
BATCH_SERVICE = "stroke_risk_v1"


class Stage(enum.StrEnum):
    """A stage as the operator runs it; ``contract`` names its arguments and result models."""

    INGEST = "ingest"
    PROCESSOR = "processor"
    FEATURIZER = "featurizer"
    MATERIALIZER = "materializer"
    STROKE = "stroke"
    TRAINER = "trainer"

    @property
    def contract(self) -> StageName:
        return _CONTRACT[self]

    @property
    def short(self) -> str:
        """The stage's part of its child's name."""
        return _SHORT[self]

    @property
    def engine(self) -> str:
        """``spark`` (a SparkApplication on a cluster) or ``job`` (a batch Job)."""
        return "spark" if self in (Stage.PROCESSOR, Stage.FEATURIZER, Stage.STROKE) else "job"

    @property
    def package(self) -> str:
        """The Python package whose ``__main__`` is the stage's entry point."""
        return _PACKAGE[self]

    @property
    def phase(self) -> str:
        """The pipeline's phase while this stage runs."""
        return _PHASE[self]


_CONTRACT = {
    Stage.INGEST: StageName.INGEST,
    Stage.PROCESSOR: StageName.PROCESS,
    Stage.FEATURIZER: StageName.FEATURIZE,
    Stage.MATERIALIZER: StageName.MATERIALIZE,
    Stage.STROKE: StageName.STROKE,
    Stage.TRAINER: StageName.TRAIN,
}
_SHORT = {
    Stage.INGEST: "ing",
    Stage.PROCESSOR: "proc",
    Stage.FEATURIZER: "feat",
    Stage.MATERIALIZER: "mat",
    Stage.STROKE: "stroke",
    Stage.TRAINER: "train",
}
_PACKAGE = {
    Stage.INGEST: "clinops_ingest",
    Stage.PROCESSOR: "clinops_processor",
    Stage.FEATURIZER: "clinops_featurizer",
    Stage.MATERIALIZER: "clinops_featurizer",
    Stage.STROKE: "clinops_featurizer",
    Stage.TRAINER: "clinops_trainer",
}
_PHASE = {
    Stage.INGEST: "Ingesting",
    Stage.PROCESSOR: "Processing",
    Stage.FEATURIZER: "Featurizing",
    Stage.MATERIALIZER: "Materializing",
    Stage.STROKE: "Featurizing",
    Stage.TRAINER: "Training",
}


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable whose value comes from a Secret's key."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class StageTask:
    """One stage of one run of one pipeline."""

    stage: Stage
    run_id: str
    name: str
    namespace: str
    pipeline: str
    image: str
    arguments: StageArgs
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def args(self) -> tuple[str, ...]:
        """The command line the stage's CLI parses (``clinops_common.contracts.render``)."""
        return tuple(render(self.arguments))


def run_stages(p: Pipeline) -> tuple[Stage, ...]:
    """Every stage of a full run: the streaming path, or the batch (stroke) path."""
    if p.spec.features.service == BATCH_SERVICE:
        return (Stage.STROKE, Stage.TRAINER)
    return (Stage.PROCESSOR, Stage.FEATURIZER, Stage.MATERIALIZER, Stage.TRAINER)


def manual_run_id(token: str) -> str:
    """Run id for a ``clinops.io/run-now`` annotation value: the same value always gives the same id."""
    return "m" + hashlib.sha256(token.encode()).hexdigest()[:8]


def retrain_run_id(request: str) -> str:
    """Run id for a ``clinops.io/retrain-requested`` value: one value, one run, across restarts."""
    return "r" + hashlib.sha256(request.encode()).hexdigest()[:8]


def scheduled_run_id(slot: datetime) -> str:
    """Run id for a cron slot (UTC), e.g. ``s2611231800``."""
    return "s" + slot.strftime("%y%m%d%H%M")


def child_name(pipeline: str, stage: Stage, run_id: str) -> str:
    """Deterministic name of a stage's child: a restarted operator finds, never duplicates, it."""
    name = f"{pipeline}-{stage.short}-{run_id}"
    if len(name) > MAX_NAME:
        raise InvalidSpecError(f"child name {name!r} is longer than {MAX_NAME} characters: shorten the pipeline's name")
    return name


def spec_problems(p: Pipeline) -> list[str]:
    """What in the spec cannot run as written (the CRD's schema cannot say it)."""
    f = p.spec.features
    problems = []
    if f.service != BATCH_SERVICE and set(f.windows) != set(WINDOWS):
        problems.append(
            f"features.windows {sorted(f.windows)} must be the feature service's windows {sorted(WINDOWS)}: "
            "other windows need a new feature service version"
        )
    if f.label_horizon_hours != LABEL_HORIZON_HOURS:
        problems.append(f"features.labelHorizonHours must be {LABEL_HORIZON_HOURS} (the label view's horizon)")
    longest = max(run_stages(p), key=lambda s: len(s.short))
    if len(f"{p.name}-{longest.short}-s0000000000") > MAX_NAME:
        problems.append(f"metadata.name {p.name!r} is too long for its children's names ({MAX_NAME} characters)")
    return problems


def labels(pipeline: Pipeline, stage: Stage, run_id: str) -> dict[str, str]:
    """The pipeline's own labels, then the standard ones (which win)."""
    return {
        **pipeline.labels,
        "app.kubernetes.io/name": "clinops",
        "app.kubernetes.io/instance": pipeline.name,
        "app.kubernetes.io/component": stage.value,
        "app.kubernetes.io/part-of": "clinops",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_PIPELINE: pipeline.name,
        LABEL_RUN: run_id,
        LABEL_STAGE: stage.value,
    }


def connection_env(
    p: Pipeline, stage: Stage | None = None
) -> tuple[tuple[tuple[str, str], ...], tuple[SecretEnv, ...]]:
    """The ``CLINOPS_*`` variables every stage reads (the names ``clinops_common.settings.Connections`` uses);
    the lake's keys are the stage's own where ``spec.lake.stageCredentialsSecretRefs`` names its Secret."""
    s = p.spec
    env = (
        # a batch pipeline has no Kafka: its stages (stroke, trainer) never connect to one
        ("CLINOPS_KAFKA_BOOTSTRAP_SERVERS", s.sources.kafka.bootstrap_servers if s.sources.kafka else ""),
        ("CLINOPS_S3_ENDPOINT_URL", s.lake.endpoint),
        ("CLINOPS_S3_REGION", s.lake.region),
        ("CLINOPS_LAKE_BUCKET", s.lake.bucket),
        ("CLINOPS_MLFLOW_TRACKING_URI", s.stores.mlflow.tracking_uri),
    )
    creds = s.lake.stage_credentials_secret_refs.get(stage.value if stage else "", s.lake.credentials_secret_ref)
    secrets = (
        SecretEnv("CLINOPS_S3_ACCESS_KEY", creds.name, creds.access_key_id_key),
        SecretEnv("CLINOPS_S3_SECRET_KEY", creds.name, creds.secret_access_key_key),
        SecretEnv("CLINOPS_REDIS_URL", s.stores.redis.secret_ref.name, s.stores.redis.secret_ref.key),
        SecretEnv("CLINOPS_DATABASE_URL", s.stores.postgres.secret_ref.name, s.stores.postgres.secret_ref.key),
    )
    return env, secrets


def stroke_sources(p: Pipeline) -> tuple[BatchSource, ...]:
    """``spec.sources.batch`` as the stroke stage's sources (none: the lake's batch/ tables)."""
    entries = [
        {
            "name": b.name,
            "uri": b.uri,
            "format": b.format,
            "timestampColumn": b.timestamp_column,
            **({"credentialsSecretRef": {"name": b.credentials_secret_ref.name}} if b.credentials_secret_ref else {}),
        }
        for b in p.spec.sources.batch
    ]
    try:
        return from_manifest(entries)
    except SourceConfigError as err:
        raise InvalidSpecError(str(err)) from None


def _source_secrets(p: Pipeline) -> tuple[SecretEnv, ...]:
    """``CLINOPS_SOURCE_<TABLE>_URL`` from each batch source's Secret (the stroke stage only)."""
    return tuple(
        SecretEnv(credentials_env_name(MANIFEST_TABLES[b.name]), ref.name, ref.key)
        for b in p.spec.sources.batch
        if (ref := b.credentials_secret_ref) is not None and b.name in MANIFEST_TABLES
    )


def stage_args(p: Pipeline, stage: Stage, run_id: str, upstream: Mapping[Stage, StageResult]) -> StageArgs:
    """The stage's contract arguments, from the spec and the results of the run's earlier stages."""
    s = p.spec
    common = {"pipeline": p.name, "run_id": run_id}
    if stage is Stage.INGEST:
        if s.sources.kafka is None:
            raise InvalidSpecError("sources.kafka is required to ingest")
        topics = tuple(t for t in s.sources.kafka.topics if t in TOPICS)
        group = s.sources.kafka.consumer_group or f"clinops-{p.name}"
        return IngestArgs(**common, topics=topics, group_id=group)
    if stage is Stage.PROCESSOR:
        return ProcessArgs(**common)
    if stage is Stage.FEATURIZER:
        f = s.features
        return FeaturizeArgs(
            **common,
            feature_service=f.service,
            windows=tuple(w for w in WINDOWS if w in f.windows),
            label_horizon_hours=f.label_horizon_hours,
        )
    if stage is Stage.MATERIALIZER:
        feat = upstream.get(Stage.FEATURIZER)
        snapshot = feat.snapshot_id if isinstance(feat, FeaturizeResult) else None
        return MaterializeArgs(**common, snapshot_id=snapshot, key_ttl_hours=s.stores.redis.ttl_hours)
    if stage is Stage.STROKE:
        return StrokeArgs(**common, sources=stroke_sources(p))
    t = s.training
    made = upstream.get(Stage.STROKE) or upstream.get(Stage.FEATURIZER)
    return TrainArgs(
        **common,
        model_family=t.model_family,
        registered_model_name=t.registered_model_name or p.name,
        feature_service=s.features.service,
        **({"label": STROKE_LABEL} if s.features.service == BATCH_SERVICE else {}),
        snapshot_id=made.snapshot_id if isinstance(made, FeaturizeResult | StrokeResult) else None,
        lookback_days=t.lookback_days,
        split=Split(train=t.split.train, validation=t.split.validation, test=t.split.test),
        min_auroc=t.promotion_gate.min_auroc,
        must_beat_champion=t.promotion_gate.must_beat_champion,
        hyperparameters={snake_case(k): v for k, v in t.hyperparameters.items()},
    )


def snake_case(name: str) -> str:
    """A spec key (``learningRate``, the CRD's camelCase) as the trainer's name (``learning_rate``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def image(p: Pipeline, stage: Stage) -> str:
    images = p.spec.images
    if stage is Stage.INGEST:
        return images.ingest
    if stage is Stage.PROCESSOR:
        return images.processor
    if stage is Stage.TRAINER:
        return images.trainer
    return images.featurizer  # featurize, materialize and stroke are commands of the featurizer


def task(p: Pipeline, stage: Stage, run_id: str, upstream: Mapping[Stage, StageResult] | None = None) -> StageTask:
    """The task for one stage of one run (pure: the same inputs always give the same task)."""
    env, secrets = connection_env(p, stage)
    return StageTask(
        stage=stage,
        run_id=run_id,
        name=child_name(p.name, stage, run_id),
        namespace=p.namespace,
        pipeline=p.name,
        image=image(p, stage),
        arguments=stage_args(p, stage, run_id, upstream or {}),
        env=env,
        secret_env=secrets + (_source_secrets(p) if stage is Stage.STROKE else ()),
        labels=labels(p, stage, run_id),
    )
