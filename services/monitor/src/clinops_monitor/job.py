"""One evaluation of one pipeline as of a time: read, label, compute, record, request, publish.

The steps, each through its adapter:
1. the champion version and its training reference (MLflow);
2. the window's predictions of the pipeline's model (PostgreSQL) and silver outcomes (the lake);
3. ground truth for predictions whose horizon has closed, written once to ``prediction_outcomes``;
4. performance per version, drift of a sample of the champion's window predictions, the decision;
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


def drift_sample(
    db: Database, window: pd.DataFrame, version: str, size: int, seed: int = 0
) -> dict[str, np.ndarray] | None:
    """At most ``size`` of the champion's window predictions, features and probability (seeded)."""
    mine = window.loc[window["model_version"] == version]
    if mine.empty:
        return None
    rng = np.random.default_rng(seed)
    pick = mine.iloc[np.sort(rng.choice(len(mine), size=min(size, len(mine)), replace=False))]
    names, matrix = db.features(pick["id"].tolist())
    if matrix.shape[0] != len(pick):  # rows without a compact vector (pre-0002) are left out of feature drift
        return {"probability": pick["score"].to_numpy()}
    out = {name: matrix[:, j].astype(np.float64) for j, name in enumerate(names)}
    out["probability"] = pick["score"].to_numpy()
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
    window = db.window(pipeline.model_name, start, as_of)
    lap("read_window")
    outcomes = read_outcomes_fn(conns, start, as_of)
    lap("read_outcomes")
    labelled = groundtruth.label(
        window,
        outcomes,
        as_of=as_of,
        horizon=horizon,
        allowed_lateness=timedelta(hours=settings.allowed_lateness_hours),
    )
    new = labelled.labels
    written = 0
    if not new.empty and labelled.watermark is not None:
        stored = set(window.loc[window["stored_label"].notna(), "id"])
        fresh = new.loc[~new["prediction_id"].isin(stored)]
        written = db.write_labels(fresh, pipeline.horizon_hours, labelled.watermark)
    lap("label")
    # the stored label is the record; a fresh one is used where none is stored yet
    merged = window.merge(new[["prediction_id", "label"]], left_on="id", right_on="prediction_id", how="inner")
    merged["label"] = merged["stored_label"].fillna(merged["label"]).astype(int)
    current = drift_sample(db, window, champion, settings.drift_sample) if champion and reference else None
    lap("read_drift_sample")
    history = db.history(pipeline.namespace, pipeline.name, as_of)
    last_request = rfc3339(history.last_request_at) if history.last_request_at else None
    mine = window.loc[window["model_version"] == champion] if champion else window.iloc[0:0]
    evaluation = evaluate(
        evaluation_id=str(uuid.uuid4()),
        as_of=as_of,
        window_days=spec.window_days,
        model_name=pipeline.model_name,
        champion_version=champion,
        labelled=merged[["model_version", "score", "label"]],
        pending=labelled.pending,
        watermark=labelled.watermark,
        current=current,
        reference=reference,
        min_outcomes=spec.min_outcomes,
        psi_threshold=spec.psi_threshold,
        ks_p_value=spec.ks_p_value,
        policy=policy(settings, spec),
        previous_drift_flags=history.drift_flags,
        last_request_at=history.last_request_at,
        training_in_flight=training_in_flight(pipeline, last_request),
        volume={str(k): int(v) for k, v in mine["risk_level"].value_counts().items()},
    )
    lap("compute")
    request = None
    if evaluation.decision.request:
        request = annotation_value(evaluation.decision.reasons, as_of, evaluation.id)
    db.record(pipeline.namespace, pipeline.name, evaluation, request)
    if request and patcher is not None:
        patcher.request_retraining(pipeline.namespace, pipeline.name, request)
    seconds = time.perf_counter() - started
    log.info(
        "evaluated",
        pipeline=pipeline.name,
        namespace=pipeline.namespace,
        evaluation=evaluation.id,
        as_of=as_of.isoformat(),
        champion=champion,
        labelled=evaluation.champion.labelled if evaluation.champion else 0,
        pending=labelled.pending,
        reasons=list(evaluation.decision.reasons),
        requested=evaluation.decision.request,
        suppressed=evaluation.decision.suppressed,
        seconds=round(seconds, 3),
        steps=steps,
    )
    return Outcome(evaluation, request, written, seconds)
