"""Settings of the featurizer, read once at start-up from ``CLINOPS_FEATURIZER_*`` variables.

Endpoints come from ``clinops_common.settings.Connections``, where Spark runs from
``clinops_common.spark.SparkSettings``; what a run computes is its stage arguments
(``clinops_common.contracts``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeaturizerSettings(BaseSettings):
    """How the featurizer's Spark jobs are tuned."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_FEATURIZER_", extra="ignore")

    shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions of the featurizer's jobs.")

    event_log_dir: Path | None = Field(
        None,
        description="Write Spark's event log (jobs, stages, tasks, SQL plans: what the history server shows) "
        "into this folder; unset: none.",
    )

    extra_spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="More Spark settings as a JSON object of strings "
        '(`{"spark.sql.adaptive.enabled": "false"}`); they override the above.',
    )

    def spark_conf(self) -> dict[str, str]:
        conf = {
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
        }
        if self.event_log_dir is not None:
            conf |= {
                "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": self.event_log_dir.resolve().as_uri(),
                "spark.eventLog.compress": "false",  # plain JSON lines, readable without a history server
            }
        return conf | self.extra_spark_conf
