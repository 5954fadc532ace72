"""One evaluation of one pipeline as of a time: read, label, compute, record, request, publish.

The steps, each through its adapter:
1. the champion version and its training reference (MLflow);
2. silver outcomes (the lake) and their watermark;
3. ground truth for the window's predictions whose horizon has closed, written once to
   ``prediction_outcomes`` in one statement (PostgreSQL joins; the window stays in the database);
4. the window's counts, its labelled (version, score, label) rows and a seeded sample of the champion's
   predictions (PostgreSQL); performance per version, drift of the sample, the decision;
5. the evaluation and its numbers to ``monitor_evaluations``; the annotation when it asks; gauges.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd
import structlog

from clinops_common.settings import Connections
from clinops_monitor.adapters.outcomes import read_outcomes
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitorSettings, PipelineView, policy
from clinops_monitor.core import groundtruth
from clinops_monitor.core.decision import annotation_value, rfc3339
from clinops_monitor.core.evaluation import Evaluation, Reference, evaluate, window_start

log = structlog.get_logger("clinops.monitor")
NO_LABELS = pd.DataFrame({"model_version": pd.Series(dtype=str), "score": pd.Series(dtype=float), "label": []})


class ReferenceSource(Protocol):
    def champion(self, model_name: str) -> str | None: ...

    def reference(self, model_name: str, version: str) -> Reference: ...


class PipelinePatcher(Protocol):
    def request_retraining(self, namespace: str, name: str, value: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    evaluation: Evaluation
    request: str | None
    labels_written: int
    seconds: float
    steps: dict[str, float]  # seconds per step (reference, read_outcomes, label, read_labelled, ...)


def drift_sample(
    db: Database, model_name: str, version: str, *, start: datetime, end: datetime, rows: int, size: int
) -> dict[str, np.ndarray] | None:
    """At most ``size`` of the champion's ``rows`` window predictions (seeded): features and probability."""
    if rows == 0:
        return None
    sample = db.drift_sample(model_name, version, start, end, rows=rows, size=size)
    out = {name: sample.features[:, j].astype(np.float64) for j, name in enumerate(sample.feature_names)}
    out["probability"] = sample.scores
    return out


def run_evaluation(
    pipeline: PipelineView,
    as_of: datetime,
    *,
    settings: MonitorSettings,
    conns: Connections,
    db: Database,
    references: ReferenceSource,
    patcher: PipelinePatcher | None,
    training_in_flight: Callable[[PipelineView, str | None], bool] = lambda _p, _r: False,
    read_outcomes_fn: Callable[[Connections, datetime, datetime], pd.DataFrame] = read_outcomes,
) -> Outcome:
    started = time.perf_counter()
    as_of = as_of.astimezone(UTC)
    spec = pipeline.monitoring
    horizon = timedelta(hours=pipeline.horizon_hours)
    start = window_start(as_of, spec.window_days)
    steps: dict[str, float] = {}
    tick = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal tick
        now = time.perf_counter()
        steps[name] = round(now - tick, 3)
        tick = now

    champion = references.champion(pipeline.model_name)
    reference = references.reference(pipeline.model_name, champion) if champion else None
    lap("reference")
    outcomes = read_outcomes_fn(conns, start, as_of)
    mark = groundtruth.watermark(outcomes, as_of, timedelta(hours=settings.allowed_lateness_hours))
    closed_by = groundtruth.closed_by(mark, horizon) if mark is not None else None
    lap("read_outcomes")
    written = 0
    if mark is not None and closed_by is not None and closed_by > start:
        events = groundtruth.received_outcomes(outcomes, as_of)
        written = db.label_window(
            pipeline.model_name,
            start,
            as_of,
            horizon_hours=pipeline.horizon_hours,
            watermark=mark,
            closed_by=closed_by,
            events=events.loc[events["event_time"] > start],
        )
    lap("label")
    counts = db.window_counts(pipeline.model_name, start, as_of, closed_by)
    labelled = db.labelled(pipeline.model_name, start, closed_by) if closed_by is not None else None
    lap("read_labelled")
    current = None
    if champion and reference:
        rows = counts.made.get(champion, 0)
        current = drift_sample(
            db, pipeline.model_name, champion, start=start, end=as_of, rows=rows, size=settings.drift_sample
        )
    lap("read_drift_sample")
    history = db.history(pipeline.namespace, pipeline.name, as_of)
    last_request = rfc3339(history.last_request_at) if history.last_request_at else None
    evaluation = evaluate(
        evaluation_id=str(uuid.uuid4()),
        as_of=as_of,
        window_days=spec.window_days,
        model_name=pipeline.model_name,
        champion_version=champion,
        labelled=labelled if labelled is not None else NO_LABELS,
        pending=counts.pending(),
        watermark=mark,
        current=current,
        reference=reference,
        min_outcomes=spec.min_outcomes,
        psi_threshold=spec.psi_threshold,
        ks_p_value=spec.ks_p_value,
        policy=policy(settings, spec),
        previous_drift_flags=history.drift_flags,
        last_request_at=history.last_request_at,
        training_in_flight=training_in_flight(pipeline, last_request),
        volume=counts.volume(champion),
    )
    lap("compute")
    request = None
    if evaluation.decision.request:
        request = annotation_value(evaluation.decision.reasons, as_of, evaluation.id)
    db.record(pipeline.namespace, pipeline.name, evaluation, request)
    if request and patcher is not None:
        patcher.request_retraining(pipeline.namespace, pipeline.name, request)
    lap("record")
    seconds = time.perf_counter() - started
    log.info(
        "evaluated",
        pipeline=pipeline.name,
        namespace=pipeline.namespace,
        evaluation=evaluation.id,
        as_of=as_of.isoformat(),
        champion=champion,
        labelled=evaluation.champion.labelled if evaluation.champion else 0,
        pending=counts.pending(),
        reasons=list(evaluation.decision.reasons),
        requested=evaluation.decision.request,
        suppressed=evaluation.decision.suppressed,
        seconds=round(seconds, 3),
        steps=steps,
    )
    return Outcome(evaluation, request, written, seconds, steps)
