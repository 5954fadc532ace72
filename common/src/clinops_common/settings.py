"""The one place for ports, endpoints and credentials.

Two layers:

* ``Connections`` is what every service reads: endpoints and credentials of Kafka, S3, Redis,
  PostgreSQL and MLflow, from ``CLINOPS_*`` environment variables (on a cluster these come from
  Secrets). Nothing else in the code base hard-codes an address or a password.
* ``StackSettings`` describes the local stack (``make up``, the test harness): which loopback ports
  and dev credentials to use. ``StackSettings.connections()`` derives the ``Connections`` that point
  at it, and ``Connections.as_env()`` exports them for child processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]


class Connections(BaseSettings):
    """Endpoints and credentials of the external systems, read from ``CLINOPS_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_", extra="ignore")

    kafka_bootstrap_servers: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma separated.")
    s3_endpoint_url: str = Field("http://127.0.0.1:19000", description="S3 API endpoint (MinIO locally).")
    s3_access_key: SecretStr = Field(SecretStr("clinops"), description="S3 access key id.")
    s3_secret_key: SecretStr = Field(SecretStr("clinops-dev-secret"), description="S3 secret key.")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    lake_bucket: str = Field("lake", description="Bucket holding bronze, silver and the feature stores.")
    mlflow_bucket: str = Field("mlflow", description="Bucket holding MLflow artifacts.")
    redis_url: SecretStr = Field(
        SecretStr("redis://:clinops-dev-secret@127.0.0.1:16379/0"),
        description="Redis URL of the online feature store (may carry a password).",
    )
    database_url: SecretStr = Field(
        SecretStr("postgresql+psycopg://clinops:clinops-dev-secret@127.0.0.1:15432/clinops"),
        description="SQLAlchemy URL of the clinops database (predictions, audit).",
    )
    mlflow_tracking_uri: str = Field("http://127.0.0.1:15000", description="MLflow tracking server URL.")

    def as_env(self) -> dict[str, str]:
        """The ``CLINOPS_*`` variables that reproduce these connections in a child process."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value: Any = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"CLINOPS_{name.upper()}"] = str(value)
        return env


class Ports(BaseModel):
    """Loopback ports of the local stack."""

    kafka: int = 19092
    kafka_controller: int = 19093
    minio: int = 19000
    minio_console: int = 19001
    redis: int = 16379
    postgres: int = 15432
    mlflow: int = 15000
    prometheus: int = 19090
    # The local Kubernetes control plane (`make cluster-up`).
    etcd: int = 12379
    etcd_peer: int = 12380
    kube_apiserver: int = 16443
    kube_controller_manager: int = 20257
    kube_scheduler: int = 20259
    kwok: int = 20247


class StackSettings(BaseSettings):
    """The local stack started by ``make up`` and by the test harness.

    Every field can be overridden from the environment, for example ``CLINOPS_STACK_PORTS__KAFKA=29092``
    or ``CLINOPS_STACK_HOME=/tmp/stack``.
    """

    model_config = SettingsConfigDict(env_prefix="CLINOPS_STACK_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(REPO_ROOT / ".local", description="Data, logs and pid files of the local stack.")
    cache: Path = Field(Path.home() / ".cache" / "clinops", description="Pinned binaries built by make setup.")
    host: str = "127.0.0.1"
    ports: Ports = Field(default_factory=Ports)
    user: str = Field("clinops", description="User name for PostgreSQL and the S3 access key.")
    password: SecretStr = Field(SecretStr("clinops-dev-secret"), description="Dev password for every component.")
    lake_bucket: str = "lake"
    mlflow_bucket: str = "mlflow"
    database: str = "clinops"
    mlflow_database: str = "mlflow"
    scrape_interval: str = Field("15s", description="Prometheus scrape interval.")
    start_timeout_s: float = Field(120.0, description="How long a component may take to become ready.")

    def url(self, port: int, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{port}"

    def postgres_url(self, database: str) -> str:
        pw = self.password.get_secret_value()
        return f"postgresql+psycopg://{self.user}:{pw}@{self.host}:{self.ports.postgres}/{database}"

    def connections(self) -> Connections:
        """``Connections`` pointing at this stack."""
        pw = self.password.get_secret_value()
        return Connections(
            kafka_bootstrap_servers=f"{self.host}:{self.ports.kafka}",
            s3_endpoint_url=self.url(self.ports.minio),
            s3_access_key=SecretStr(self.user),
            s3_secret_key=self.password,
            lake_bucket=self.lake_bucket,
            mlflow_bucket=self.mlflow_bucket,
            redis_url=SecretStr(f"redis://:{pw}@{self.host}:{self.ports.redis}/0"),
            database_url=SecretStr(self.postgres_url(self.database)),
            mlflow_tracking_uri=self.url(self.ports.mlflow),
        )
