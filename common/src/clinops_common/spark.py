"""The one SparkSession builder: ``s3a://`` wired to the lake from ``Connections``.

Only stage entry points call this; transformations stay pure functions of DataFrames.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from clinops_common.devstack import toolchain
from clinops_common.settings import Connections

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
    master: str | None = "local[2]",
    jars: list[Path] | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """A SparkSession that reads and writes ``s3a://<lake>/...``.

    ``jars`` defaults to the pinned hadoop-aws and AWS SDK jars from ``make setup``; on a cluster
    the image ships them and ``master`` is None (spark-submit decides).
    """
    from pyspark.sql import SparkSession

    if jars is None:
        from clinops_common.settings import StackSettings

        jars = toolchain.spark_s3a_jars(StackSettings().cache)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    conf = {
        "spark.jars": ",".join(str(j) for j in jars),
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
