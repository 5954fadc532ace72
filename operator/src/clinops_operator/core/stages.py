"""The stages of a run, as executor-neutral tasks: what to run, with which settings, under which name.

A ``StageTask`` says nothing about Kubernetes: the Kubernetes executor renders it into a
SparkApplication or a Job (``render``); a local executor can run the same command as a process with
the same environment (secret references resolved from its own configuration).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from clinops_operator.core.spec import Pipeline

MANAGED_BY = "clinops-operator"
LABEL_PIPELINE = "clinops.io/pipeline"
LABEL_RUN = "clinops.io/run-id"
LABEL_STAGE = "clinops.io/stage"
MAX_NAME = 63


class Stage(enum.StrEnum):
    PROCESSOR = "processor"
    FEATURIZER = "featurizer"
    TRAINER = "trainer"

    @property
    def short(self) -> str:
        return {"processor": "proc", "featurizer": "feat", "trainer": "train"}[self.value]

    @property
    def engine(self) -> str:
        """``spark`` (a SparkApplication on a cluster) or ``job`` (a batch Job)."""
        return "job" if self is Stage.TRAINER else "spark"

    @property
    def phase(self) -> str:
        """The pipeline's phase while this stage runs."""
        return {"processor": "Processing", "featurizer": "Featurizing", "trainer": "Training"}[self.value]


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
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[SecretEnv, ...]
    labels: dict[str, str] = field(default_factory=dict)


def manual_run_id(token: str) -> str:
    """Run id for a ``clinops.io/run-now`` annotation value: the same value always gives the same id."""
    return "m" + hashlib.sha256(token.encode()).hexdigest()[:8]


def scheduled_run_id(slot: datetime) -> str:
    """Run id for a cron slot (UTC), e.g. ``s2611231800``."""
    return "s" + slot.strftime("%y%m%d%H%M")


def child_name(pipeline: str, stage: Stage, run_id: str) -> str:
    """Deterministic name of a stage's child: a restarted operator finds, never duplicates, it."""
    name = f"{pipeline}-{stage.short}-{run_id}"
    if len(name) > MAX_NAME:
        raise ValueError(f"child name {name!r} is longer than {MAX_NAME} characters")
    return name


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


def _connection_env(p: Pipeline) -> tuple[tuple[tuple[str, str], ...], tuple[SecretEnv, ...]]:
    """The ``CLINOPS_*`` variables every stage reads (the names ``clinops_common.settings.Connections`` uses)."""
    s = p.spec
    env = (
        ("CLINOPS_KAFKA_BOOTSTRAP_SERVERS", s.sources.kafka.bootstrap_servers),
        ("CLINOPS_S3_ENDPOINT_URL", s.lake.endpoint),
        ("CLINOPS_S3_REGION", s.lake.region),
        ("CLINOPS_LAKE_BUCKET", s.lake.bucket),
        ("CLINOPS_MLFLOW_TRACKING_URI", s.stores.mlflow.tracking_uri),
    )
    creds = s.lake.credentials_secret_ref
    secrets = (
        SecretEnv("CLINOPS_S3_ACCESS_KEY", creds.name, creds.access_key_id_key),
        SecretEnv("CLINOPS_S3_SECRET_KEY", creds.name, creds.secret_access_key_key),
        SecretEnv("CLINOPS_REDIS_URL", s.stores.redis.secret_ref.name, s.stores.redis.secret_ref.key),
        SecretEnv("CLINOPS_DATABASE_URL", s.stores.postgres.secret_ref.name, s.stores.postgres.secret_ref.key),
    )
    return env, secrets


def _args(p: Pipeline, stage: Stage, run_id: str) -> tuple[str, ...]:
    s = p.spec
    common = ("--pipeline", p.name, "--run-id", run_id)
    if stage is Stage.PROCESSOR:
        return ("process", *common)
    if stage is Stage.FEATURIZER:
        return (
            "featurize",
            *common,
            "--feature-service",
            s.features.service,
            "--windows",
            ",".join(s.features.windows),
            "--label-horizon-hours",
            str(s.features.label_horizon_hours),
        )
    t = s.training
    return (
        "train",
        *common,
        "--model-family",
        t.model_family,
        "--registered-model-name",
        t.registered_model_name or p.name,
        "--feature-service",
        s.features.service,
        "--lookback-days",
        str(t.lookback_days),
        "--split",
        f"{t.split.train},{t.split.validation},{t.split.test}",
        "--min-auroc",
        str(t.promotion_gate.min_auroc),
        "--must-beat-champion" if t.promotion_gate.must_beat_champion else "--no-must-beat-champion",
        "--hyperparameters",
        json.dumps(t.hyperparameters, sort_keys=True, separators=(",", ":")),
    )


def task(p: Pipeline, stage: Stage, run_id: str) -> StageTask:
    """The task for one stage of one run (pure: the same inputs always give the same task)."""
    env, secrets = _connection_env(p)
    images = p.spec.images
    image = {Stage.PROCESSOR: images.processor, Stage.FEATURIZER: images.featurizer, Stage.TRAINER: images.trainer}
    return StageTask(
        stage=stage,
        run_id=run_id,
        name=child_name(p.name, stage, run_id),
        namespace=p.namespace,
        pipeline=p.name,
        image=image[stage],
        args=_args(p, stage, run_id),
        env=(*env, ("CLINOPS_PIPELINE", p.name), ("CLINOPS_RUN_ID", run_id)),
        secret_env=secrets,
        labels=labels(p, stage, run_id),
    )
