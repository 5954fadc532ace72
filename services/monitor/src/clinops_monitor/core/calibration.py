"""Calibration of predicted probabilities against observed outcomes.

Following Van Calster et al. (BMC Med 2019) and Riley et al. (BMJ 2024):

- observed/expected ratio ``O/E = sum(y) / sum(p)`` (target 1), its 95% interval from the Poisson
  variance of O: ``exp(log(O/E) +/- 1.96 / sqrt(O))``;
- calibration intercept (calibration-in-the-large, target 0): ``a`` in ``logit P(y) = a + logit(p)``;
- calibration slope (target 1): ``b`` in ``logit P(y) = a + b * logit(p)``, with its Wald 95% interval;
- Brier score ``mean((p - y)^2)``.

Both logistic fits are a few Newton steps on sufficient statistics (no library round trip), so
1,000,000 predictions take well under a second. Hosmer-Lemeshow is deliberately absent.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit  # type: ignore[import-untyped,unused-ignore]

from clinops_monitor.core.discrimination import Z95

EPS = 1e-6


@dataclass(frozen=True)
class Calibration:
    observed: int
    expected: float
    oe: float
    oe_lower: float
    oe_upper: float
    intercept: float
    slope: float
    slope_lower: float
    slope_upper: float
    brier: float


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    out: np.ndarray = np.log(q / (1 - q))
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.asarray(expit(x), dtype=np.float64)
    return out


def calibration_intercept(y: np.ndarray, lp: np.ndarray, iterations: int = 25) -> float:
    """``a`` maximising the likelihood of ``logit P(y) = a + lp`` (lp used as an offset)."""
    a = 0.0
    for _ in range(iterations):
        mu = _sigmoid(a + lp)
        grad = float(np.sum(y - mu))
        hess = float(np.sum(mu * (1 - mu)))
        if hess <= 0:
            break
        step = grad / hess
        a += step
        if abs(step) < 1e-10:
            break
    return a


def calibration_slope(y: np.ndarray, lp: np.ndarray, iterations: int = 50) -> tuple[float, float, float]:
    """``(a, b, se_b)`` of the logistic fit ``logit P(y) = a + b * lp`` (Newton-Raphson)."""
    beta = np.array([0.0, 1.0])
    x = np.column_stack([np.ones_like(lp), lp])
    cov = np.full((2, 2), np.nan)
    for _ in range(iterations):
        mu = _sigmoid(x @ beta)
        w = mu * (1 - mu)
        hess = (x * w[:, None]).T @ x
        grad = x.T @ (y - mu)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            break
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    mu = _sigmoid(x @ beta)
    hess = (x * (mu * (1 - mu))[:, None]).T @ x
    with contextlib.suppress(np.linalg.LinAlgError):
        cov = np.linalg.inv(hess)
    se = float(math.sqrt(cov[1, 1])) if np.isfinite(cov[1, 1]) and cov[1, 1] > 0 else math.inf
    return float(beta[0]), float(beta[1]), se


def calibration(labels: np.ndarray, probabilities: np.ndarray) -> Calibration:
    """Every calibration figure of one set of labelled predictions (needs at least one row)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("calibration needs labelled predictions")
    observed = int(y.sum())
    expected = float(p.sum())
    oe = observed / expected if expected > 0 else math.inf
    if observed > 0 and expected > 0:
        half = Z95 / math.sqrt(observed)
        oe_lo, oe_hi = oe * math.exp(-half), oe * math.exp(half)
    else:
        oe_lo, oe_hi = 0.0, (3.0 / expected if expected > 0 else math.inf)  # rule of three for O = 0
    lp = _logit(p)
    intercept = calibration_intercept(y, lp) if 0 < observed < len(y) else math.nan
    if 0 < observed < len(y):
        _, slope, se = calibration_slope(y, lp)
    else:
        slope, se = math.nan, math.inf
    return Calibration(
        observed=observed,
        expected=expected,
        oe=oe,
        oe_lower=oe_lo,
        oe_upper=oe_hi,
        intercept=intercept,
        slope=slope,
        slope_lower=slope - Z95 * se,
        slope_upper=slope + Z95 * se,
        brier=float(np.mean((p - y) ** 2)),
    )
