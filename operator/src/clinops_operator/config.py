"""The operator's settings, read once at start-up from ``CLINOPS_OPERATOR_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "clinops.io"
FINALIZER = "clinops.io/featurepipeline-cleanup"


class OperatorSettings(BaseSettings):
    """How the operator reconciles; every field can be set as ``CLINOPS_OPERATOR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_OPERATOR_", extra="ignore")

    reconcile_interval_s: float = Field(5.0, gt=0, description="Seconds between reconciles of each pipeline.")
    backoff_s: float = Field(10.0, gt=0, description="Seconds before a failed handler is retried.")
    retry_delay_s: float = Field(5.0, gt=0, description="Delay after a retryable error (API server unavailable).")
    request_timeout_s: float = Field(30.0, gt=0, description="Timeout of each Kubernetes API request.")
    peering_name: str = Field("clinops", description="kopf peering object shared by the replicas (HA).")
    finalizer: str = Field(FINALIZER, description="Finalizer that makes deletion wait for the cleanup handler.")
    storage_prefix: str = Field(PREFIX, description="Prefix of the annotations kopf keeps its progress in.")
    executor: Literal["kubernetes", "local"] = Field(
        "kubernetes", description="Where stages run: SparkApplications and Jobs, or local processes."
    )
    local_state_dir: Path = Field(
        Path(".local/operator"), description="Local executor: one directory per stage it started (claims, exit status)."
    )
    local_log_dir: Path = Field(Path(".local/logs"), description="Local executor: one log file per stage.")
    local_start_grace_s: float = Field(
        30.0, gt=0, description="Local executor: a claimed stage without a recorder after this long is ProcessLost."
    )
