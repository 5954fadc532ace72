"""The scorer's Prometheus metrics (``clinops_scorer_*``), beside BentoML's own ``bentoml_service_*``.

Created by ``build()`` inside the worker process, after BentoML has set ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client picks its storage when first imported). Labels are model versions, risk levels,
views and reasons: never a patient id or anything derived from one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

# Latency buckets fine enough for a millisecond SLO (seconds): 0.1 ms .. 2.5 s.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.0025,
    0.003,
    0.004,
    0.005,
    0.006,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Metrics:
    predictions: Any
    refusals: Any
    views_not_fresh: Any
    feature_read_seconds: Any
    model_seconds: Any
    audit_commit_seconds: Any
    audit_batch_rows: Any
    request_seconds: Any
    model_info: Any
    gc_pause_seconds: Any
    audit_wait_seconds: Any
    model_swaps: Any
    model_load_failures: Any

    def on_commit(self, rows: int, seconds: float) -> None:
        self.audit_commit_seconds.observe(seconds)
        self.audit_batch_rows.observe(rows)


def build(registry: Any = None) -> Metrics:
    """The metrics, in ``registry`` (default: prometheus_client's global one, which BentoML exports)."""
    from prometheus_client import REGISTRY
    from prometheus_client import Counter as _Counter
    from prometheus_client import Gauge as _Gauge
    from prometheus_client import Histogram as _Histogram

    reg = REGISTRY if registry is None else registry

    counter: Any = functools.partial(_Counter, registry=reg)
    gauge: Any = functools.partial(_Gauge, registry=reg)
    histogram: Any = functools.partial(_Histogram, registry=reg)

    return Metrics(
        predictions=counter(
            "clinops_scorer_predictions_total",
            "Predictions returned (each with its committed audit row).",
            ["model_version", "risk_level", "degraded"],
        ),
        refusals=counter(
            "clinops_scorer_refusals_total",
            "Requests answered without a prediction, by reason.",
            ["reason"],
        ),
        views_not_fresh=counter(
            "clinops_scorer_feature_views_not_fresh_total",
            "Feature views found stale (older than their TTL) or missing at read time.",
            ["view", "status"],
        ),
        feature_read_seconds=histogram(
            "clinops_scorer_feature_read_seconds",
            "One online-store read (Redis round trip and decoding).",
            buckets=LATENCY_BUCKETS,
        ),
        model_seconds=histogram(
            "clinops_scorer_model_seconds", "Vectorizing and scoring (preprocessing and ONNX).", buckets=LATENCY_BUCKETS
        ),
        audit_commit_seconds=histogram(
            "clinops_scorer_audit_commit_seconds", "One group commit of audit rows.", buckets=LATENCY_BUCKETS
        ),
        audit_batch_rows=histogram(
            "clinops_scorer_audit_batch_rows", "Audit rows per group commit.", buckets=BATCH_BUCKETS
        ),
        request_seconds=histogram(
            "clinops_scorer_request_seconds",
            "Handler time from parsed request to committed audit row, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
        ),
        gc_pause_seconds=histogram(
            "clinops_scorer_gc_pause_seconds",
            "Pauses of Python's cyclic garbage collector in the worker, by generation.",
            ["generation"],
            buckets=LATENCY_BUCKETS,
        ),
        audit_wait_seconds=histogram(
            "clinops_scorer_audit_wait_seconds",
            "A request's wait for its audit rows: handed to the writer until resumed with them committed.",
            buckets=LATENCY_BUCKETS,
        ),
        model_info=gauge(
            "clinops_scorer_model_info",
            "1 for the model version being served.",
            ["model_name", "model_version"],
            multiprocess_mode="livemax",
        ),
        model_swaps=counter("clinops_scorer_model_swaps_total", "Model versions loaded and swapped in."),
        model_load_failures=counter(
            "clinops_scorer_model_load_failures_total", "Failed attempts to resolve or load the champion."
        ),
    )
