"""Settings of the ingest consumer, read once at start-up from ``CLINOPS_INGEST_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clinops_common.lake import TOPICS


class IngestSettings(BaseSettings):
    """How the consumer batches and where it reports; endpoints come from ``Connections``."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_INGEST_", extra="ignore")

    group_id: str = Field("clinops-ingest", description="Kafka consumer group.")
    topics: tuple[str, ...] = Field(TOPICS, description="Logical topics to consume.")
    topic_prefix: str = Field("", description="Prefix of the Kafka topic names (isolates test runs).")
    max_batch_records: int = Field(20_000, ge=1, description="Flush a partition's batch at this many records.")
    max_batch_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="... or at this many bytes of values.")
    max_batch_age_s: float = Field(10.0, gt=0, description="... or when its oldest record waited this long.")
    max_buffer_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Bytes of values held at most: past half of it in batches every batch is flushed; past"
        " half of it being written to S3 consuming waits for the writes.",
    )
    max_poll_records: int = Field(10_000, ge=1, description="Records per poll.")
    metrics_port: int = Field(0, ge=0, description="Serve Prometheus metrics on this port (0: off).")
    idle_exit_s: float = Field(0.0, ge=0, description="Exit after this long without messages (0: run forever).")
    max_messages: int = Field(0, ge=0, description="Exit after this many messages (0: no limit); for benchmarks.")
    session_timeout_ms: int = Field(10_000, ge=1000, description="Kafka group session timeout.")
    s3_retry_s: float = Field(120.0, gt=0, description="Keep retrying a failed S3 write this long, then exit.")
    object_lock: bool = Field(
        True,
        description="Write bronze and dead letters under COMPLIANCE object lock for their retention"
        " (CLINOPS_RETENTION_BRONZE_DAYS, _DEADLETTER_DAYS); off only for a lake bucket without object lock.",
    )
