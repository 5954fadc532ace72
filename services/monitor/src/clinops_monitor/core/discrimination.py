"""AUROC with a 95% confidence interval (DeLong's variance, the fast algorithm of Sun and Xu 2014).

The interval is computed on the logit scale (as pROC and most clinical papers do near 1) so it stays
inside (0, 1). Ties are handled with midranks, which is what makes the AUROC equal the Mann-Whitney
statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata  # type: ignore[import-untyped,unused-ignore]

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Auroc:
    value: float
    lower: float
    upper: float
    se: float


def auroc(labels: np.ndarray, scores: np.ndarray) -> Auroc:
    """AUROC of ``scores`` for binary ``labels`` with DeLong's 95% interval.

    Raises ValueError unless both classes are present."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("AUROC needs at least one event and one non-event")
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos = rankdata(pos)
    r_neg = rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n  # placement of each event among the non-events
    v01 = 1.0 - (r_all[m:] - r_neg) / m
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    se = math.sqrt(max(var, 0.0))
    if se == 0.0 or auc in (0.0, 1.0):
        return Auroc(auc, auc, auc, se)
    logit = math.log(auc / (1 - auc))
    se_logit = se / (auc * (1 - auc))
    lo, hi = logit - Z95 * se_logit, logit + Z95 * se_logit
    return Auroc(auc, 1 / (1 + math.exp(-lo)), 1 / (1 + math.exp(-hi)), se)
