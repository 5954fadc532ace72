"""The one SparkSession builder: ``s3a://`` wired to the lake from ``Connections``.

Only stage entry points call this; transformations stay pure functions of DataFrames. Where Spark
runs and where its s3a jars are is ``SparkSettings`` (``CLINOPS_SPARK_*``): in an image the jars sit
at the fixed path ``/opt/clinops/jars``; locally ``make env`` points ``CLINOPS_SPARK_JARS_DIR`` at
the jars ``make setup`` fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinops_common.settings import Connections

IMAGE_JARS_DIR = Path("/opt/clinops/jars")

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkSettings(BaseSettings):
    """Where a stage's Spark runs, read from ``CLINOPS_SPARK_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_SPARK_", extra="ignore")

    master: str | None = Field(
        None, description="Spark master, e.g. local[2]; unset: spark-submit decides (a SparkApplication's driver)."
    )
    jars_dir: Path = Field(IMAGE_JARS_DIR, description="Folder of the s3a jars (hadoop-aws and the AWS SDK bundle).")
    connectors_dir: Path | None = Field(
        None,
        description="Folder of the batch-source connectors (MongoDB Spark connector, PostgreSQL and SQL Server "
        "JDBC drivers) when they are not in jars_dir; `make env` sets it locally.",
    )

    def jars(self) -> list[Path]:
        """The jars, or an error naming the setting when a folder holds none."""
        found = sorted(self.jars_dir.glob("*.jar")) if self.jars_dir.is_dir() else []
        if not found:
            raise FileNotFoundError(
                f"no Spark s3a jars in {self.jars_dir} (set CLINOPS_SPARK_JARS_DIR; locally `make env` sets it)"
            )
        if self.connectors_dir is not None:
            connectors = sorted(self.connectors_dir.glob("*.jar")) if self.connectors_dir.is_dir() else []
            if not connectors:
                raise FileNotFoundError(
                    f"no Spark connector jars in {self.connectors_dir} (CLINOPS_SPARK_CONNECTORS_DIR; `make setup`)"
                )
            found += connectors
        return found


def s3a_conf(conns: Connections) -> dict[str, str]:
    """Hadoop s3a settings for the lake (MinIO needs path-style access)."""
    return {
        "spark.hadoop.fs.s3a.endpoint": conns.s3_endpoint_url,
        "spark.hadoop.fs.s3a.endpoint.region": conns.s3_region,
        "spark.hadoop.fs.s3a.access.key": conns.s3_access_key.get_secret_value(),
        "spark.hadoop.fs.s3a.secret.key": conns.s3_secret_key.get_secret_value(),
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(conns.s3_endpoint_url.startswith("https")).lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    }


def spark_session(
    app_name: str,
    conns: Connections,
    *,
    settings: SparkSettings | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """A SparkSession that reads and writes ``s3a://<lake>/...`` (``settings`` default: from the environment)."""
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    jars = settings.jars()
    master = settings.master
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    conf = {
        # Without a master this is a SparkApplication's driver: every pod of it runs the image, which
        # holds the jars at the same path, so `local:` URIs (executors do not fetch them from the driver).
        "spark.jars": ",".join(f"{'' if master else 'local://'}{j}" for j in jars),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "8",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        **s3a_conf(conns),
        **(extra_conf or {}),
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
