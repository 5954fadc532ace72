"""Prometheus metrics of the ingest consumer (labels: topic, reason, layer; never a patient id)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("clinops_ingest_messages", "Messages consumed.", ["topic"], registry=r)
        self.bytes = Counter("clinops_ingest_bytes", "Bytes of message values consumed.", ["topic"], registry=r)
        self.deadletters = Counter(
            "clinops_ingest_deadletters", "Messages dead-lettered, by reason.", ["topic", "reason"], registry=r
        )
        self.objects = Counter("clinops_ingest_objects_written", "Objects written.", ["layer"], registry=r)
        self.flush_seconds = Histogram(
            "clinops_ingest_flush_seconds",
            "Time to write a batch's objects and commit its offsets.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.lag = Gauge("clinops_ingest_consumer_lag", "Messages behind the end of the log.", ["topic"], registry=r)
