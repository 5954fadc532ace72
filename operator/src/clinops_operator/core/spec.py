"""A typed, read-only view of a FeaturePipeline, with the CRD's defaults.

The API server has already validated the object against the CRD's schema (and applied its
defaults); these models only give the operator names and types to work with. Unknown fields are
ignored so that an older operator keeps working with a newer CRD.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GROUP = "clinops.io"
VERSION = "v1alpha1"
PLURAL = "featurepipelines"
KIND = "FeaturePipeline"
API_VERSION = f"{GROUP}/{VERSION}"
APP_VERSION = "0.1.0"  # the chart's appVersion: the images' tag
IMAGE = "ghcr.io/clinops/clinops"  # every component and stage but the trainer
TRAINER_IMAGE = "ghcr.io/clinops/clinops-trainer"  # the same plus torch


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class SecretRef(_Model):
    name: str
    key: str = "url"


class LakeCredentialsRef(_Model):
    name: str
    access_key_id_key: str = Field("accessKeyId", alias="accessKeyIdKey")
    secret_access_key_key: str = Field("secretAccessKey", alias="secretAccessKeyKey")


class Kafka(_Model):
    bootstrap_servers: str = Field(alias="bootstrapServers")
    topics: tuple[str, ...]
    consumer_group: str | None = Field(None, alias="consumerGroup")
    topic_prefix: str = Field("", alias="topicPrefix")


class BatchSource(_Model):
    name: str
    uri: str
    format: str
    timestamp_column: str = Field(alias="timestampColumn")
    credentials_secret_ref: SecretRef | None = Field(None, alias="credentialsSecretRef")


class Sources(_Model):
    kafka: Kafka | None = None  # the CRD requires it unless the pipeline is a batch one (stroke_risk_v1)
    batch: tuple[BatchSource, ...] = ()


class Lake(_Model):
    endpoint: str
    bucket: str
    region: str = "us-east-1"
    credentials_secret_ref: LakeCredentialsRef = Field(alias="credentialsSecretRef")
    # a stage's own lake credentials (stage name -> Secret); a stage not named uses credentialsSecretRef
    stage_credentials_secret_refs: dict[str, LakeCredentialsRef] = Field(
        default_factory=dict, alias="stageCredentialsSecretRefs"
    )


class Redis(_Model):
    secret_ref: SecretRef = Field(alias="secretRef")
    ttl_hours: int = Field(48, alias="ttlHours")


class Postgres(_Model):
    secret_ref: SecretRef = Field(alias="secretRef")


class Mlflow(_Model):
    tracking_uri: str = Field("http://mlflow:5000", alias="trackingUri")


class Stores(_Model):
    redis: Redis
    postgres: Postgres
    mlflow: Mlflow = Mlflow()


class Schedules(_Model):
    processing: str = "0 * * * *"
    featurization: str = "15 * * * *"
    training: str = "0 3 * * *"
    monitoring: str = "0 */6 * * *"


class Features(_Model):
    service: str = "adverse_event_v1"
    windows: tuple[str, ...] = ("1h", "6h", "24h")
    label_horizon_hours: int = Field(24, alias="labelHorizonHours")


class Split(_Model):
    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15


class PromotionGate(_Model):
    min_auroc: float = Field(0.75, alias="minAuroc")
    must_beat_champion: bool = Field(True, alias="mustBeatChampion")


class Training(_Model):
    model_family: Literal["pytorch-mlp", "gradient-boosted-trees"] = Field("pytorch-mlp", alias="modelFamily")
    registered_model_name: str | None = Field(None, alias="registeredModelName")
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    lookback_days: int = Field(90, alias="lookbackDays")
    split: Split = Split()
    promotion_gate: PromotionGate = Field(PromotionGate(), alias="promotionGate")
    backoff_limit: int = Field(1, alias="backoffLimit")
    active_deadline_seconds: int = Field(7200, alias="activeDeadlineSeconds")


class Images(_Model):
    """Two images (the chart's ``image`` and ``trainerImage``): every stage but the trainer runs the
    platform image; the trainer's adds torch."""

    ingest: str = f"{IMAGE}:{APP_VERSION}"
    processor: str = f"{IMAGE}:{APP_VERSION}"
    featurizer: str = f"{IMAGE}:{APP_VERSION}"
    trainer: str = f"{TRAINER_IMAGE}:{APP_VERSION}"
    monitor: str = f"{IMAGE}:{APP_VERSION}"
    pull_policy: str = Field("IfNotPresent", alias="pullPolicy")


class Spark(_Model):
    spark_version: str = Field("4.1.4", alias="sparkVersion")
    service_account: str = Field("clinops-spark", alias="serviceAccount")
    driver_cores: int = Field(1, alias="driverCores")
    driver_memory: str = Field("1g", alias="driverMemory")
    executor_instances: int = Field(2, alias="executorInstances")
    executor_cores: int = Field(1, alias="executorCores")
    executor_memory: str = Field("2g", alias="executorMemory")
    spark_conf: dict[str, str] = Field(default_factory=dict, alias="sparkConf")
    kubernetes_master: str = Field("", alias="kubernetesMaster")


class Pods(_Model):
    """Where the stages' pods run and what they request (Jobs' pods, Spark drivers and executors)."""

    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: tuple[dict[str, Any], ...] = ()
    host_network: bool = Field(False, alias="hostNetwork")
    cpu_request: str = Field("", alias="cpuRequest")
    memory_request: str = Field("", alias="memoryRequest")


class PipelineSpec(_Model):
    suspend: bool = False
    sources: Sources
    lake: Lake
    stores: Stores
    schedules: Schedules = Schedules()
    features: Features = Features()
    training: Training = Training()
    images: Images = Images()
    spark: Spark = Spark()
    pods: Pods = Pods()


class Pipeline(_Model):
    """The identity of a FeaturePipeline plus its spec: everything a render function needs."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    labels: dict[str, str] = Field(default_factory=dict)
    spec: PipelineSpec

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Pipeline:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta["uid"],
            generation=meta.get("generation", 1),
            labels=dict(meta.get("labels") or {}),
            spec=PipelineSpec.model_validate(body["spec"]),
        )
