"""Prometheus metrics of the streaming featurizer (labels: topic, outcome, view; never a patient id)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class StreamMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "clinops_stream_events",
            "Events consumed, by outcome (accepted, duplicate, too_late, or the rule that rejected it).",
            ["topic", "outcome"],
            registry=r,
        )
        self.rows = Counter(
            "clinops_stream_rows_written", "Online rows written (not older than stored).", ["view"], registry=r
        )
        self.write_seconds = Histogram(
            "clinops_stream_write_seconds",
            "Time to compute and write the pending rows of one poll.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.watermark_lag = Gauge(
            "clinops_stream_watermark_lag_seconds", "Wall clock minus the watermark (event time).", registry=r
        )
        self.patients = Gauge("clinops_stream_patients", "Patients with readings in the windows.", registry=r)
