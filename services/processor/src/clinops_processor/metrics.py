"""Prometheus metrics of one processor run (a batch job: written once at its end, never served).

Labels: none but ``result``; never a patient, an object key or a date.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile


@dataclass
class ProcessorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.new_objects = Gauge("clinops_processor_new_objects", "New bronze objects found by the run.", registry=r)
        self.objects_read = Gauge("clinops_processor_objects_read", "Bronze objects read by the run.", registry=r)
        self.dates = Gauge("clinops_processor_dates_recomputed", "Silver event dates replaced by the run.", registry=r)
        self.duration = Gauge("clinops_processor_run_duration_seconds", "Wall time of the run.", registry=r)
        self.finished = Gauge(
            "clinops_processor_last_run_timestamp_seconds", "When the run ended, by result.", ["result"], registry=r
        )

    def record(self, *, new_objects: int, objects_read: int, dates: int, seconds: float) -> None:
        self.new_objects.set(new_objects)
        self.objects_read.set(objects_read)
        self.dates.set(dates)
        self.duration.set(seconds)
        self.finished.labels("success").set(time.time())

    def record_failure(self, seconds: float) -> None:
        self.duration.set(seconds)
        self.finished.labels("failure").set(time.time())

    def write(self, path: Path) -> None:
        """Write atomically (a collector never reads half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)
