"""Evaluation metrics (pure numpy): discrimination with bootstrap intervals, calibration, the gap to
the oracle.

* AUROC (ties count one half) with a 95 % percentile bootstrap interval over resampled rows;
* AUPRC (average precision), Brier score;
* calibration slope: ``b`` of the logistic fit ``logit P(y) = a + b logit(p)``; calibration
  intercept (calibration-in-the-large): ``a`` of ``logit P(y) = a + logit(p)`` (slope fixed at 1);
  observed / expected = ``sum(y) / sum(p)`` (Van Calster et al. 2019);
* the paired bootstrap of an AUROC difference (candidate minus champion on the same resampled rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-7


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUROC with average ranks for ties; NaN when a class is absent."""
    y = np.asarray(y, dtype=np.int8)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ps = np.asarray(p)[order]
    ranks = np.empty(len(ps), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(ps, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - y) ** 2))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(q / (1 - q))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def logistic_fit(x: np.ndarray | None, y: np.ndarray, offset: np.ndarray, iters: int = 50) -> np.ndarray:
    """Unpenalized logistic regression ``logit P(y) = offset + c0 + c1 x`` by Newton's method
    (``x=None``: intercept only). Returns the coefficients."""
    y = np.asarray(y, dtype=np.float64)
    design = np.ones((len(y), 1)) if x is None else np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iters):
        mu = sigmoid(offset + design @ beta)
        w = np.clip(mu * (1 - mu), 1e-12, None)
        grad = design.T @ (y - mu)
        hess = design.T @ (design * w[:, None]) + 1e-9 * np.eye(design.shape[1])
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    z = logit(p)
    slope = logistic_fit(z, y, np.zeros(len(y)))[1]
    intercept = logistic_fit(None, y, z)[0]
    expected = float(np.sum(p))
    return {
        "calibration_slope": float(slope),
        "calibration_intercept": float(intercept),
        "oe_ratio": float(np.sum(y) / expected) if expected > 0 else float("nan"),
    }


def platt(y: np.ndarray, p_or_margin: np.ndarray, *, margin: bool = True) -> tuple[float, float]:
    """Platt scaling fitted on validation: ``p' = sigmoid(a * z + c)``; returns (a, c)."""
    z = np.asarray(p_or_margin, dtype=np.float64) if margin else logit(p_or_margin)
    c, a = logistic_fit(z, y, np.zeros(len(y)))
    return float(a), float(c)


def bootstrap_auroc(
    y: np.ndarray, p: np.ndarray, samples: int, seed: int = 0, other: np.ndarray | None = None
) -> tuple[float, float]:
    """95 % percentile interval of AUROC(p), or of AUROC(p) - AUROC(other) on the same resamples."""
    rng = np.random.default_rng(seed)
    n = len(y)
    stats = []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        a = auroc(y[idx], p[idx])
        if other is not None:
            a -= auroc(y[idx], other[idx])
        if not np.isnan(a):
            stats.append(a)
    if not stats:
        return float("nan"), float("nan")
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]


def evaluate(y: np.ndarray, p: np.ndarray, *, samples: int, seed: int = 0) -> dict[str, float]:
    y = np.asarray(y, dtype=np.int8)
    p = np.asarray(p, dtype=np.float64)
    lo, hi = bootstrap_auroc(y, p, samples, seed)
    return {
        "auroc": auroc(y, p),
        "auroc_ci_low": lo,
        "auroc_ci_high": hi,
        "auprc": auprc(y, p),
        "brier": brier(y, p),
        **calibration(y, p),
        "rows": float(len(y)),
        "positives": float(y.sum()),
    }


def oracle_comparison(y: np.ndarray, p: np.ndarray, oracle: np.ndarray) -> dict[str, float]:
    """The oracle's AUROC and Brier on exactly the rows it covers, and the model's gap to it there."""
    covered = ~np.isnan(oracle)
    if covered.sum() == 0 or len(np.unique(y[covered])) < 2:
        return {}
    yc, pc, oc = y[covered], p[covered], oracle[covered]
    model_auroc, oracle_auroc = auroc(yc, pc), auroc(yc, oc)
    return {
        "oracle_rows": float(covered.sum()),
        "oracle_auroc": oracle_auroc,
        "oracle_brier": brier(yc, oc),
        "model_auroc_on_oracle_rows": model_auroc,
        "auroc_gap_to_oracle": oracle_auroc - model_auroc,
        "brier_gap_to_oracle": brier(yc, pc) - brier(yc, oc),
    }


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted and observed rate per decile of the predictions."""
    order = np.argsort(p, kind="mergesort")
    groups = np.array_split(order, bins)
    pred = np.array([p[g].mean() for g in groups if len(g)])
    obs = np.array([y[g].mean() for g in groups if len(g)])
    return pred, obs
