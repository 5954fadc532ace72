"""The local stack's settings: loopback ports, dev credentials, where data and the tool cache live.

``StackSettings`` describes the stack ``make up`` and the test harness start; ``connections()``
derives the runtime ``Connections`` that point at it (``make env`` prints them as variables).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinops_common.settings import Connections
from clinops_common.spark import SparkSettings

REPO_ROOT = Path(__file__).resolve().parents[3]


# The database role each component logs in as (revision 0004); the rest use the owner's URL.
COMPONENT_ROLES = {"scorer": "clinops_scorer", "monitor": "clinops_monitor"}


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
    ferretdb: int = 17017
    # The local Kubernetes control plane (`make cluster-up`).
    etcd: int = 12379
    etcd_peer: int = 12380
    kube_apiserver: int = 16443
    kube_controller_manager: int = 20257
    kube_scheduler: int = 20259
    kwok: int = 20247
    # The real node (`make cluster-up`): the kubelet's API and health ports (not the standard 10250/10248).
    kubelet: int = 20250
    kubelet_healthz: int = 20248
    # The local spark-operator (its webhook, served to the API server, and the two health endpoints).
    spark_operator_webhook: int = 20443
    spark_operator_health: int = 20281
    spark_operator_webhook_health: int = 20282


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
    cohort_database: str = Field("cohort", description="PostgreSQL database of the stroke cohort's clinical table.")
    hospital_database: str = Field(
        "hospital", description="PostgreSQL database standing in for SQL Server (hospital administration) locally."
    )
    scrape_interval: str = Field("15s", description="Prometheus scrape interval.")
    minio_scanner_speed: str = Field(
        "default",
        description="MinIO's scanner speed (fastest|fast|default|slow|slowest): how soon lifecycle rules act.",
    )
    start_timeout_s: float = Field(120.0, description="How long a component may take to become ready.")

    def url(self, port: int, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{port}"

    def postgres_url(self, database: str) -> str:
        pw = self.password.get_secret_value()
        return f"postgresql+psycopg://{self.user}:{pw}@{self.host}:{self.ports.postgres}/{database}"

    def mongodb_url(self) -> str:
        """The local document store (FerretDB; it runs without authentication on loopback)."""
        return f"mongodb://{self.host}:{self.ports.ferretdb}/"

    def role_password(self, role: str) -> SecretStr:
        """The dev password of a database role of revision 0004 (its own per component)."""
        return SecretStr(f"{self.password.get_secret_value()}-{role.removeprefix('clinops_')}")

    def component_database_url(self, component: str) -> str:
        """The database URL a component uses: the scorer and the monitor have their own roles (insert-only
        audit trail); everything else (migrations, maintenance) runs as the owner, the dev user."""
        role = COMPONENT_ROLES.get(component)
        if role is None:
            return self.postgres_url(self.database)
        pw = self.role_password(role).get_secret_value()
        return f"postgresql+psycopg://{role}:{pw}@{self.host}:{self.ports.postgres}/{self.database}"

    def s3_keys(self, component: str) -> tuple[str, SecretStr]:
        """A component's own lake user (``clinops_common.lifecycle.access``): access key and dev secret."""
        return f"clinops-{component}", SecretStr(f"{self.password.get_secret_value()}-s3-{component}")

    def component_connections(self, component: str) -> Connections:
        """``connections()`` with a component's own credentials: its lake user (every component of
        ``access.COMPONENTS``) and its database role (the scorer's and the monitor's)."""
        from clinops_common.lifecycle.access import COMPONENTS

        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
        access_key, secret_key = self.s3_keys(component)
        return self.connections().model_copy(
            update={
                "s3_access_key": SecretStr(access_key),
                "s3_secret_key": secret_key,
                "database_url": SecretStr(self.component_database_url(component)),
            }
        )

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

    def spark_jars_dir(self) -> Path:
        """Where ``make setup`` put the Spark s3a jars (``CLINOPS_SPARK_JARS_DIR`` for local runs)."""
        from clinops_devstack import toolchain

        return toolchain.SPARK_S3A.home(self.cache)

    def spark_connectors_dir(self) -> Path | None:
        """Where ``make setup`` put the batch-source connector jars, if it did."""
        from clinops_devstack import toolchain

        tool = toolchain.SPARK_SOURCES
        return tool.home(self.cache) if tool.ready(self.cache) else None

    def spark(self, master: str = "local[2]") -> SparkSettings:
        """Spark settings for a local session on this machine."""
        return SparkSettings(master=master, jars_dir=self.spark_jars_dir(), connectors_dir=self.spark_connectors_dir())

    def env(self, master: str = "local[2]", component: str | None = None) -> dict[str, str]:
        """Every variable a service needs to run against this stack (what ``make env`` prints: the
        admin's credentials); with ``component``, that component's own lake user and database role
        (``make env C=ingest``)."""
        connectors = self.spark_connectors_dir()
        conns = self.connections() if component is None else self.component_connections(component)
        return {
            **conns.as_env(),
            "CLINOPS_SPARK_MASTER": master,
            "CLINOPS_SPARK_JARS_DIR": str(self.spark_jars_dir()),
            **({"CLINOPS_SPARK_CONNECTORS_DIR": str(connectors)} if connectors else {}),
            **self.source_env(),
        }

    def source_env(self) -> dict[str, str]:
        """The stroke cohort's database URLs with credentials (``CLINOPS_SOURCE_<TABLE>_URL``), as
        ``manifests/stroke-risk.yaml``'s credentialsSecretRefs give them on a cluster."""
        pw = self.password.get_secret_value()
        pg = f"postgresql://{self.user}:{pw}@{self.host}:{self.ports.postgres}"
        return {
            "CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL": f"{pg}/{self.cohort_database}?table=clinical_measurements",
            "CLINOPS_SOURCE_HOSPITAL_ADMIN_URL": f"{pg}/{self.hospital_database}?table=administration",
        }
