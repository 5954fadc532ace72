"""Discrimination and calibration per model version over the rolling window.

A version with fewer than ``min_outcomes`` labelled predictions (or with no event, or no non-event)
gets status ``insufficient_data``: its figures are not computed and it can never raise an alarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinops_monitor.core.calibration import Calibration, calibration
from clinops_monitor.core.discrimination import Auroc, auroc

Status = Literal["ok", "insufficient_data"]


@dataclass(frozen=True)
class VersionPerformance:
    model_version: str
    status: Status
    labelled: int
    events: int
    auroc: Auroc | None = None
    calibration: Calibration | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_performance(version: str, labels: np.ndarray, scores: np.ndarray, min_outcomes: int) -> VersionPerformance:
    n, events = len(labels), int(np.sum(labels))
    if n < min_outcomes or events in (0, n):
        return VersionPerformance(version, "insufficient_data", n, events)
    return VersionPerformance(version, "ok", n, events, auroc(labels, scores), calibration(labels, scores))


def performance_by_version(labelled: pd.DataFrame, min_outcomes: int) -> dict[str, VersionPerformance]:
    """``labelled``: one row per labelled prediction in the window (model_version, score, label)."""
    out: dict[str, VersionPerformance] = {}
    for version, group in labelled.groupby("model_version", sort=True, observed=True):
        out[str(version)] = version_performance(
            str(version), group["label"].to_numpy(), group["score"].to_numpy(), min_outcomes
        )
    return out
