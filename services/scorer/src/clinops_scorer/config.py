"""The scorer's settings: one pydantic-settings class, from ``CLINOPS_SCORER_*`` variables.

Endpoints and credentials of Redis, PostgreSQL and MLflow come from ``clinops_common.settings.ServingConnections``
(``CLINOPS_REDIS_URL``, ``CLINOPS_DATABASE_URL``, ``CLINOPS_MLFLOW_TRACKING_URI``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

FeaturePolicy = Literal["refuse", "degrade"]


class ScorerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINOPS_SCORER_", extra="ignore")

    # ---- the model ----
    model_name: str = Field("adverse-event", description="Registered model served (models:/<name>@<alias>).")
    model_alias: str = Field("champion", description="Alias followed: a new version is loaded when it moves.")
    poll_interval_s: float = Field(10.0, gt=0, description="How often the alias is checked.")
    model_cache_dir: Path | None = Field(
        None, description="Downloaded versions (default $CLINOPS_MODEL_CACHE or ~/.cache/clinops/models)."
    )

    # ---- features ----
    online_prefix: str = Field("clinops:fs", description="Key prefix of the online store in Redis.")
    feature_policy: FeaturePolicy = Field(
        "refuse",
        description=(
            "A view the model needs is stale (older than its TTL) or missing: 'refuse' answers 409 naming the views; "
            "'degrade' predicts with the training imputation and flags the response and the audit row as degraded."
        ),
    )
    max_batch: int = Field(64, ge=1, le=1000, description="Most patients in one /predict/batch request.")
    redis_timeout_s: float = Field(1.0, gt=0, description="Socket timeout of a Redis read.")

    # ---- the audit ----
    audit_linger_ms: float = Field(
        0.0,
        ge=0,
        le=50,
        description=(
            "After the first row of a group arrives, wait this long for more before committing. 0: commit what is "
            "queued at once; rows that arrive during a commit go together in the next one."
        ),
    )
    audit_writer: Literal["loop", "thread"] = Field(
        "loop",
        description=(
            "Where /predict's group commits run: 'loop', on the worker's event loop (an async PostgreSQL "
            "connection, no thread hop); 'thread', a writer thread of its own."
        ),
    )
    audit_max_rows: int = Field(256, ge=1, description="Most rows in one group commit.")
    audit_timeout_s: float = Field(5.0, gt=0, description="A request waits this long for its row's commit, then 503.")
    postgres_connect_timeout_s: int = Field(2, ge=1, description="Connect timeout to PostgreSQL.")

    # ---- the HTTP server (bentoml serve) ----
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(3000, ge=1, le=65535, description="HTTP port.")
    workers: int = Field(1, ge=1, description="Worker processes.")
    threads: int = Field(16, ge=1, description="Threads per worker serving requests (the APIs are synchronous).")
    graceful_shutdown_s: float = Field(20.0, gt=0, description="On SIGTERM, how long in-flight requests may take.")
    log_level: str = Field("INFO", description="Log level of the scorer's JSON logs.")
    gil_switch_interval_ms: float = Field(
        5.0,
        gt=0,
        le=100,
        description=(
            "sys.setswitchinterval of each worker: how long a thread waiting for the GIL (the audit writer, back "
            "from a commit) waits for the running one to let go. CPython's default is 5 ms."
        ),
    )
    gc_threshold0: int | None = Field(
        None, ge=1, description="Allocations between young-generation collections (CPython's default: 700)."
    )
    tracing: bool = Field(
        False,
        description=(
            "OpenTelemetry spans per HTTP request (BentoML's tracing configuration: exporter, sample rate). Off: "
            "BentoML's tracing middleware passes every request through (it builds five spans a request otherwise, "
            "even at sample rate 0)."
        ),
    )
