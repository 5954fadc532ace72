"""The retraining decision: AUROC interval below the floor, calibration out of bounds, persistent
drift; insufficient data never alarms; one request per degradation (cooldown, training in flight)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from clinops_monitor.core.decision import Decision, Policy, annotation_value, decide
from clinops_monitor.core.drift import ColumnDrift, DriftReport
from clinops_monitor.core.performance import VersionPerformance, version_performance

NOW = datetime(2026, 3, 10, tzinfo=UTC)
POLICY = Policy(auroc_floor=0.7, drift_evaluations=3, cooldown=timedelta(hours=24))


def _perf(strength: float, rate_factor: float = 1.0, n: int = 20_000, seed: int = 0) -> VersionPerformance:
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(-2.5 + risk)))
    truth = 1 / (1 + np.exp(-(-2.5 + strength * risk)))
    y = (rng.random(n) < np.minimum(1, truth * rate_factor)).astype(int)
    return version_performance("1", y, p, min_outcomes=200)


def _drift(share_drifted: int, prediction: bool = False) -> DriftReport:
    def col(name: str, drifted: bool) -> ColumnDrift:
        size, p = (0.3, 0.0) if drifted else (0.01, 0.5)
        return ColumnDrift(name, size, p, size, drifted, 100, 0.0)

    return DriftReport(col("probability", prediction), tuple(col(f"f{i}", i < share_drifted) for i in range(10)))


def _decide(
    perf: VersionPerformance | None, drift: DriftReport | None = None, previous: list[bool] | None = None, **kw: Any
) -> Decision:
    args: dict[str, Any] = {"policy": POLICY, "now": NOW, "last_request_at": None, "training_in_flight": False} | kw
    return decide(perf, drift, previous or [], **args)


def test_a_healthy_model_asks_for_nothing() -> None:
    got = _decide(_perf(1.0), _drift(0))
    assert not got.request
    assert got.reasons == ()


def test_auroc_interval_below_floor_asks_for_retraining() -> None:
    weak = _perf(0.2)
    assert weak.auroc is not None
    assert weak.auroc.upper < 0.7
    got = _decide(weak)
    assert got.request
    assert "auroc_below_floor" in got.reasons


def test_a_point_estimate_below_floor_with_the_interval_across_it_does_not_alarm() -> None:
    perf = _perf(1.0, n=400, seed=5)
    assert perf.auroc is not None
    policy = Policy(auroc_floor=perf.auroc.value + 0.01)
    assert perf.auroc.upper > policy.auroc_floor
    assert not _decide(perf, policy=policy).request


def test_doubled_base_rate_is_a_calibration_alarm() -> None:
    got = _decide(_perf(1.0, rate_factor=2.0))
    assert got.request
    assert got.reasons == ("calibration_out_of_bounds",)


def test_insufficient_data_never_alarms() -> None:
    perf = version_performance("1", np.array([0, 1, 0]), np.array([0.9, 0.1, 0.9]), min_outcomes=200)
    assert perf.status == "insufficient_data"
    assert not _decide(perf).request


def test_drift_must_persist_k_evaluations() -> None:
    assert not _decide(None, _drift(5), [True]).request
    assert not _decide(None, _drift(5), [False, True]).request
    got = _decide(None, _drift(5), [True, True])
    assert got.request
    assert got.reasons == ("drift_persistent",)
    assert not _decide(None, _drift(1), [True, True]).request  # 10% of features is below drift_share
    assert _decide(None, _drift(0, prediction=True), [True, True]).request


def test_cooldown_and_training_in_flight_suppress_a_repeat() -> None:
    weak = _perf(0.2)
    got = _decide(weak, last_request_at=NOW - timedelta(hours=3))
    assert not got.request
    assert got.suppressed == "cooldown"
    assert _decide(weak, last_request_at=NOW - timedelta(hours=25)).request
    busy = _decide(weak, training_in_flight=True)
    assert not busy.request
    assert busy.suppressed == "training_in_flight"


def test_annotation_value_is_the_agreed_json() -> None:
    value = json.loads(annotation_value(["auroc_below_floor"], NOW, "e-1"))
    assert value == {"reason": "auroc_below_floor", "at": "2026-03-10T00:00:00Z", "evaluation": "e-1"}


@pytest.mark.parametrize("flags", [[True, False, True], [False, False]])
def test_interrupted_drift_does_not_persist(flags: list[bool]) -> None:
    assert not _decide(None, _drift(5), flags).request
