"""The one place for endpoints and credentials at run time.

``Connections`` is what every service reads: endpoints and credentials of Kafka, S3, Redis,
PostgreSQL and MLflow, from ``CLINOPS_*`` environment variables (on a cluster these come from
Secrets). None has a default: a missing variable is an error at start-up that names it. The local
stack's ports and dev credentials are ``clinops_devstack.settings.StackSettings``, which derives the
``Connections`` pointing at it; ``Connections.as_env()`` exports them for child processes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingSettingsError(ValueError):
    """Required ``CLINOPS_*`` variables are not set; the message names each one."""

    def __init__(self, variables: list[str]) -> None:
        self.variables = variables
        super().__init__(
            f"missing setting(s): {', '.join(variables)} (on a cluster they come from the chart's Secrets; "
            'locally `eval "$(make env)"` sets them for the dev stack)'
        )


class _Required(BaseSettings):
    """Settings whose missing fields are reported as the ``CLINOPS_*`` variables to set."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_", extra="ignore")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            prefix = str(self.model_config.get("env_prefix", ""))
            missing = [f"{prefix}{str(e['loc'][0]).upper()}" for e in err.errors() if e["type"] == "missing"]
            if missing:
                raise MissingSettingsError(missing) from None
            raise


class LakeConnection(_Required):
    """Where the lake is and how to sign in: what reading and writing ``s3://<lake bucket>/`` needs."""

    s3_endpoint_url: str = Field(description="S3 API endpoint, e.g. http://minio.clinops:9000.")
    s3_access_key: SecretStr = Field(description="S3 access key id.")
    s3_secret_key: SecretStr = Field(description="S3 secret key.")
    s3_region: str = Field("us-east-1", description="S3 region name.")
    lake_bucket: str = Field("lake", description="Bucket holding bronze, silver, the feature stores and run results.")


class RegistryConnection(_Required):
    """Where the model registry is."""

    mlflow_tracking_uri: str = Field(description="MLflow tracking server URL.")


class TrainingConnections(RegistryConnection, LakeConnection):
    """What training needs: the lake (offline store, oracle, run results) and the model registry."""


class ServingConnections(RegistryConnection):
    """What online scoring needs: the online store, the audit database and the model registry."""

    redis_url: SecretStr = Field(description="Redis URL of the online feature store (may carry a password).")
    database_url: SecretStr = Field(description="SQLAlchemy URL of the clinops database (predictions, audit).")


class Connections(ServingConnections, TrainingConnections):
    """Endpoints and credentials of every external system, read from ``CLINOPS_*`` variables.

    No endpoint or credential has a default: a missing one is an error naming its variable
    (``MissingSettingsError``), never a silent connection to a dev stack."""

    kafka_bootstrap_servers: str = Field(description="Kafka bootstrap servers, comma separated.")
    mlflow_bucket: str = Field("mlflow", description="Bucket holding MLflow artifacts.")

    def as_env(self) -> dict[str, str]:
        """The ``CLINOPS_*`` variables that reproduce these connections in a child process."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value: Any = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"CLINOPS_{name.upper()}"] = str(value)
        return env
