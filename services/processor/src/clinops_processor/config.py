"""Settings of the processor, read once at start-up from ``CLINOPS_PROCESSOR_*`` variables.

Endpoints come from ``clinops_common.settings.Connections``, where Spark runs from
``clinops_common.spark.SparkSettings``; what a run processes is its stage arguments
(``clinops_common.contracts.ProcessArgs``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ProcessorSettings(BaseSettings):
    """How the processor's Spark job is tuned and where it reports."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_PROCESSOR_", extra="ignore")

    shuffle_partitions: int | None = Field(
        None, ge=1, description="spark.sql.shuffle.partitions of the job (unset: Spark's or the cluster's)."
    )
    partition_discovery_threshold: int = Field(
        1024, ge=1, description="Listed bronze folders above which Spark lists them in a distributed job."
    )
    metrics_file: Path | None = Field(
        None,
        description="Write the run's Prometheus metrics to this file (text format, for a node-exporter "
        "textfile collector or a sidecar that pushes them); unset: not written.",
    )

    def spark_conf(self) -> dict[str, str]:
        conf = {
            # tasks commit their files straight into place: no second rename pass over S3
            "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
            "spark.sql.sources.parallelPartitionDiscovery.threshold": str(self.partition_discovery_threshold),
        }
        if self.shuffle_partitions is not None:
            conf["spark.sql.shuffle.partitions"] = str(self.shuffle_partitions)
        return conf
