"""Settings of the streaming featurizer, read once at start-up from ``CLINOPS_STREAM_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StreamSettings(BaseSettings):
    """How the streaming featurizer consumes and writes; endpoints come from ``Connections``."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_STREAM_", extra="ignore")

    group_id: str = Field(
        "clinops-stream", description="Kafka consumer group (partition assignment only: no offsets are committed)."
    )
    topic_prefix: str = Field("", description="Prefix of the Kafka topic names (isolates test runs).")
    lateness_s: float = Field(
        2700.0, ge=0, description="Allowed lateness: older events (behind the watermark) are left to the batch."
    )
    replay_h: float = Field(
        25.0, ge=0, description="On start, re-read this many hours of each partition to rebuild the windows."
    )
    max_poll_records: int = Field(5000, ge=1, description="Records per poll.")
    poll_ms: int = Field(50, ge=1, description="Longest wait for records before writing what is pending.")
    key_ttl_hours: int = Field(48, ge=1, description="Online keys expire this long after their last write.")
    online_prefix: str = Field("clinops:fs", description="Key prefix of the online store.")
    metrics_port: int = Field(0, ge=0, description="Serve Prometheus metrics on this port (0: off).")
    idle_exit_s: float = Field(0.0, ge=0, description="Exit after this long without messages (0: run forever).")
