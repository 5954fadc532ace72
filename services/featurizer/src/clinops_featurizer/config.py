"""Settings of the featurizer, read once at start-up from ``CLINOPS_FEATURIZER_*`` variables.

Endpoints come from ``clinops_common.settings.Connections``, where Spark runs from
``clinops_common.spark.SparkSettings``; what a run computes is its stage arguments
(``clinops_common.contracts``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeaturizerSettings(BaseSettings):
    """How the featurizer's Spark jobs are tuned."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_FEATURIZER_", extra="ignore")

    shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions of the featurizer's jobs.")

    def spark_conf(self) -> dict[str, str]:
        return {
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
        }
