"""The decision: does this evaluation ask the operator to retrain?

Degradation signals, each on the champion version only, each silent on ``insufficient_data``:

- ``auroc_below_floor``: the **upper** end of AUROC's 95% interval is below ``aurocFloor``. The
  interval, not the point estimate: a model whose true AUROC sits at the floor would trip a
  point-estimate rule on about half of all evaluations by sampling noise alone (a 7-day window of a
  few thousand labelled predictions has an interval roughly +/-0.02 wide); requiring the whole
  interval below the floor bounds that false-alarm rate at 2.5% per evaluation while a real drop
  of a few points is still caught within a window.
- ``calibration_out_of_bounds``: with at least ``min_calibration_events`` events, O/E's interval lies
  wholly outside ``[oe_min, oe_max]`` or the slope's interval wholly outside ``[slope_min, slope_max]``
  (Riley et al. 2024: alert on intervals and minimum event counts, never on point estimates of a
  slope estimated from few events).
- ``drift_persistent``: the prediction distribution drifted, or at least ``drift_share`` of the
  features did, in each of the last ``drift_evaluations`` evaluations (this one included).

One degradation gives one request: no request within ``cooldown`` of the previous one, and none while
a training run for the pipeline is in flight (a request already made and not yet acted on counts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clinops_monitor.core.drift import DriftReport
from clinops_monitor.core.performance import VersionPerformance

ANNOTATION = "clinops.io/retrain-requested"


@dataclass(frozen=True)
class Policy:
    auroc_floor: float
    oe_min: float = 0.8
    oe_max: float = 1.25
    slope_min: float = 0.7
    slope_max: float = 1.3
    min_calibration_events: int = 20
    drift_share: float = 0.3
    drift_evaluations: int = 3
    cooldown: timedelta = timedelta(hours=24)
    check_auroc: bool = True
    check_calibration: bool = True
    check_prediction_drift: bool = True
    check_feature_drift: bool = True


@dataclass(frozen=True)
class Decision:
    request: bool
    reasons: tuple[str, ...]
    suppressed: str | None = None  # why a degradation did not become a request
    drift_flag: bool = False
    details: dict[str, float] = field(default_factory=dict)


def auroc_below_floor(perf: VersionPerformance | None, policy: Policy) -> bool:
    return bool(perf and perf.status == "ok" and perf.auroc and perf.auroc.upper < policy.auroc_floor)


def calibration_out_of_bounds(perf: VersionPerformance | None, policy: Policy) -> bool:
    if not (perf and perf.status == "ok" and perf.calibration) or perf.events < policy.min_calibration_events:
        return False
    c = perf.calibration
    oe_out = c.oe_upper < policy.oe_min or c.oe_lower > policy.oe_max
    slope_out = c.slope_upper < policy.slope_min or c.slope_lower > policy.slope_max
    return oe_out or slope_out


def drift_flag(report: DriftReport | None, policy: Policy) -> bool:
    if report is None:
        return False
    prediction = bool(policy.check_prediction_drift and report.prediction and report.prediction.drifted)
    features = bool(policy.check_feature_drift and report.features and report.share >= policy.drift_share)
    return prediction or features


def decide(
    champion: VersionPerformance | None,
    drift: DriftReport | None,
    previous_drift_flags: Sequence[bool],
    *,
    policy: Policy,
    now: datetime,
    last_request_at: datetime | None,
    training_in_flight: bool,
) -> Decision:
    """``previous_drift_flags``: the drift flags of the pipeline's earlier evaluations, oldest first."""
    flag = drift_flag(drift, policy)
    reasons: list[str] = []
    if policy.check_auroc and auroc_below_floor(champion, policy):
        reasons.append("auroc_below_floor")
    if policy.check_calibration and calibration_out_of_bounds(champion, policy):
        reasons.append("calibration_out_of_bounds")
    k = policy.drift_evaluations
    recent = [*previous_drift_flags[-(k - 1) :], flag] if k > 1 else [flag]
    if flag and len(recent) >= k and all(recent):
        reasons.append("drift_persistent")
    if not reasons:
        return Decision(False, (), None, flag)
    if training_in_flight:
        return Decision(False, tuple(reasons), "training_in_flight", flag)
    if last_request_at is not None and now - last_request_at < policy.cooldown:
        return Decision(False, tuple(reasons), "cooldown", flag)
    return Decision(True, tuple(reasons), None, flag)


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def annotation_value(reasons: Sequence[str], at: datetime, evaluation_id: str) -> str:
    """The annotation's value: ``{"reason": ..., "at": RFC3339 UTC, "evaluation": <id>}``."""
    return json.dumps({"reason": ",".join(reasons), "at": rfc3339(at), "evaluation": evaluation_id}, sort_keys=True)
