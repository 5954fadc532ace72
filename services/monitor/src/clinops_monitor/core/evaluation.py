"""One evaluation of a pipeline, assembled from its parts: performance per version, drift of the
champion's window against its training reference, and the decision. Pure: the job feeds it frames."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from clinops_monitor.core.decision import Decision, Policy, decide
from clinops_monitor.core.drift import Bins, DriftReport, drift_report
from clinops_monitor.core.performance import VersionPerformance, performance_by_version


@dataclass(frozen=True)
class Reference:
    """The champion's training reference: validation features and probabilities, and their bins."""

    features: tuple[str, ...]
    sample: dict[str, np.ndarray]  # column -> values (features and "probability")
    bins: dict[str, Bins]


@dataclass(frozen=True)
class Evaluation:
    id: str
    as_of: datetime
    window_start: datetime
    model_name: str
    champion_version: str | None
    performance: dict[str, VersionPerformance]
    pending: int
    watermark: datetime | None
    drift: DriftReport | None
    drift_sample: int
    decision: Decision
    volume: dict[str, int] = field(default_factory=dict)  # window predictions of the champion per risk level

    @property
    def champion(self) -> VersionPerformance | None:
        return self.performance.get(self.champion_version or "")

    def numbers(self) -> dict[str, Any]:
        """Every figure behind the decision, JSON-ready (NaN and infinities as null)."""
        drift = None
        if self.drift is not None:
            drift = {
                "prediction": asdict(self.drift.prediction) if self.drift.prediction else None,
                "features": [asdict(c) for c in self.drift.features],
                "drifted_features": self.drift.drifted_features,
                "share": self.drift.share,
                "sample": self.drift_sample,
            }
        out: dict[str, Any] = _clean(
            {
                "watermark": self.watermark.isoformat() if self.watermark else None,
                "pending": self.pending,
                "performance": {v: p.to_dict() for v, p in self.performance.items()},
                "drift": drift,
                "decision": asdict(self.decision),
                "volume": self.volume,
            }
        )
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def window_start(as_of: datetime, window_days: int) -> datetime:
    return as_of - timedelta(days=window_days)


def evaluate(
    *,
    evaluation_id: str,
    as_of: datetime,
    window_days: int,
    model_name: str,
    champion_version: str | None,
    labelled: pd.DataFrame,
    pending: int,
    watermark: datetime | None,
    current: dict[str, np.ndarray] | None,
    reference: Reference | None,
    min_outcomes: int,
    psi_threshold: float,
    ks_p_value: float,
    policy: Policy,
    previous_drift_flags: list[bool],
    last_request_at: datetime | None,
    training_in_flight: bool,
    volume: dict[str, int] | None = None,
) -> Evaluation:
    """``labelled``: the window's labelled predictions (model_version, score, label); ``current``: the
    champion's window sample (features and ``probability``)."""
    perf = performance_by_version(labelled, min_outcomes)
    drift = None
    sample = 0
    if current is not None and reference is not None and len(current.get("probability", ())) > 0:
        sample = len(current["probability"])
        drift = drift_report(
            reference.sample,
            current,
            reference.features,
            reference.bins,
            psi_threshold=psi_threshold,
            ks_p_value=ks_p_value,
        )
    champion = perf.get(champion_version or "")
    decision = decide(
        champion,
        drift,
        previous_drift_flags,
        policy=policy,
        now=as_of,
        last_request_at=last_request_at,
        training_in_flight=training_in_flight,
    )
    return Evaluation(
        id=evaluation_id,
        as_of=as_of,
        window_start=window_start(as_of, window_days),
        model_name=model_name,
        champion_version=champion_version,
        performance=perf,
        pending=pending,
        watermark=watermark,
        drift=drift,
        drift_sample=sample,
        decision=decision,
        volume=volume or {},
    )
