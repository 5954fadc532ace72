"""Settings of the featurizer, read once at start-up from ``CLINOPS_FEATURIZER_*`` variables.

Endpoints come from ``clinops_common.settings.Connections``, where Spark runs from
``clinops_common.spark.SparkSettings``; what a run computes is its stage arguments
(``clinops_common.contracts``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# C1 only (no C2 compiler threads: the JIT was ~40% of a small run's CPU) and a single-threaded
# collector (short-lived, small heaps); measured by ``make bench-featurize``
JIT_LIGHT_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


class FeaturizerSettings(BaseSettings):
    """How the featurizer's Spark jobs are tuned."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_FEATURIZER_", extra="ignore")

    shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions of the featurizer's jobs.")

    driver_java_options: str = Field(
        JIT_LIGHT_JAVA_OPTIONS,
        description="spark.driver.extraJavaOptions: JVM flags of the driver when the stage's own process starts "
        "it (locally, the local executor). Default: the client compiler only and the serial collector, since a "
        "featurizer JVM lives minutes and its JIT was the largest CPU cost (README: the featurizer's CPU). "
        "Empty: the JVM's defaults.",
    )

    whole_stage_codegen: bool = Field(
        False,
        description="spark.sql.codegen.wholeStage. Off by default: the featurizer's plans are hundreds of columns "
        "wide, and compiling their generated code (then JIT-compiling it) cost more than it saved on the data "
        "sizes measured (README: the featurizer's CPU).",
    )
    adaptive_execution: bool = Field(
        False,
        description="spark.sql.adaptive.enabled. Off by default: re-planning the wide plans after every stage cost "
        "more than it saved at these sizes; shuffle_partitions then sizes every shuffle.",
    )

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
        """The stage session's settings."""
        conf = {
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
        }
        if self.driver_java_options:
            conf["spark.driver.extraJavaOptions"] = self.driver_java_options
        if self.event_log_dir is not None:
            conf |= {
                "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": self.event_log_dir.resolve().as_uri(),
                "spark.eventLog.compress": "false",  # plain JSON lines, readable without a history server
            }
        return conf | self.extra_spark_conf

    def sql_conf(self) -> dict[str, str]:
        """The runtime SQL settings the featurize job plans under, in whatever session it is given
        (``session.sql_conf``; the stroke job keeps Spark's): code generation and adaptive execution,
        ``extra_spark_conf`` winning for the same keys."""
        conf = {
            "spark.sql.codegen.wholeStage": str(self.whole_stage_codegen).lower(),
            "spark.sql.adaptive.enabled": str(self.adaptive_execution).lower(),
        }
        return conf | {k: v for k, v in self.extra_spark_conf.items() if k in conf}
