"""Risk-level thresholds, set on the validation part (pure).

The rule: HIGH starts at the predicted probability above which the highest-scored validation rows
hold half of the validation events (sensitivity 0.5); MEDIUM at the one that catches 80 % of them
(sensitivity 0.8). So on validation data, HIGH flags catch half the events and HIGH or MEDIUM flags
catch four in five.
"""

from __future__ import annotations

import numpy as np

from clinops_common.model import Thresholds

HIGH_SENSITIVITY = 0.5
MEDIUM_SENSITIVITY = 0.8
RULE = (
    f"set on validation: HIGH at the probability whose top-scored rows catch {HIGH_SENSITIVITY:.0%} of events, "
    f"MEDIUM at the one catching {MEDIUM_SENSITIVITY:.0%}"
)


def cut_for_sensitivity(y: np.ndarray, p: np.ndarray, sensitivity: float) -> float:
    """The largest probability t such that rows with p >= t hold at least ``sensitivity`` of the events."""
    pos = np.sort(np.asarray(p, dtype=np.float64)[np.asarray(y) == 1])[::-1]
    if len(pos) == 0:
        return 1.0
    k = max(1, int(np.ceil(sensitivity * len(pos))))
    return float(pos[k - 1])


def set_thresholds(y: np.ndarray, p: np.ndarray) -> Thresholds:
    high = cut_for_sensitivity(y, p, HIGH_SENSITIVITY)
    medium = min(cut_for_sensitivity(y, p, MEDIUM_SENSITIVITY), high)
    return Thresholds(medium=medium, high=high, rule=RULE)


def confusion(y: np.ndarray, p: np.ndarray, thresholds: Thresholds) -> dict[str, dict[str, int]]:
    """Rows per (risk level, label) at the thresholds."""
    levels = np.where(p >= thresholds.high, "HIGH", np.where(p >= thresholds.medium, "MEDIUM", "LOW"))
    return {
        level: {
            "events": int(np.sum((levels == level) & (y == 1))),
            "non_events": int(np.sum((levels == level) & (y == 0))),
        }
        for level in ("LOW", "MEDIUM", "HIGH")
    }
