"""AUROC with DeLong's interval and the calibration figures, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from clinops_monitor.core.calibration import calibration
from clinops_monitor.core.discrimination import auroc
from clinops_monitor.core.performance import performance_by_version


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=60),
    seed=st.integers(0, 10_000),
)
def test_auroc_equals_sklearn_with_ties(labels: list[int], seed: int) -> None:
    y = np.array(labels)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    scores = np.random.default_rng(seed).integers(0, 5, len(y)) / 4  # many ties
    got = auroc(y, scores)
    assert got.value == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert got.lower <= got.value <= got.upper


def test_delong_interval_covers_the_truth_about_95_percent() -> None:
    rng = np.random.default_rng(3)
    hits = 0
    true_auc = 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # binormal, mean gap sqrt(2): Phi(1)
    for _ in range(400):
        y = rng.random(600) < 0.2
        s = rng.normal(size=600) + y * math.sqrt(2)
        a = auroc(y, s)
        hits += a.lower <= true_auc <= a.upper
    assert 0.92 <= hits / 400 <= 0.98


def test_delong_variance_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(80) < 0.3
    s = rng.normal(size=80) + y
    pos, neg = s[y], s[~y]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert auroc(y, s).se == pytest.approx(math.sqrt(var), rel=1e-10)


def test_auroc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="event"):
        auroc(np.zeros(5), np.linspace(0, 1, 5))


def test_calibration_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(1, 12, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    c = calibration(y, p)
    assert c.oe_lower <= 1.0 <= c.oe_upper
    assert abs(c.intercept) < 0.05
    assert c.slope_lower <= 1.0 <= c.slope_upper
    assert c.brier == pytest.approx(np.mean((p - y) ** 2))


def test_calibration_slope_and_intercept_match_a_logistic_regression() -> None:
    rng = np.random.default_rng(2)
    p = rng.beta(1, 8, 5000)
    lp = np.log(p / (1 - p))
    y = (rng.random(len(p)) < 1 / (1 + np.exp(-(0.4 + 0.6 * lp)))).astype(int)
    c = calibration(y, p)
    lr = LogisticRegression(C=1e12, tol=1e-10, max_iter=1000).fit(lp[:, None], y)
    assert c.slope == pytest.approx(lr.coef_[0][0], rel=1e-4)
    assert c.slope_upper < 1.0  # over-fitted predictions: a slope clearly below 1
    doubled = calibration((rng.random(len(p)) < np.minimum(1, 2 * p)).astype(int), p)
    assert doubled.oe_lower > 1.25
    assert doubled.intercept > 0.4


def test_insufficient_data_below_min_outcomes_and_per_version() -> None:
    rng = np.random.default_rng(4)
    n = 500
    frame = pd.DataFrame(
        {
            "model_version": ["3"] * n + ["4"] * 50,
            "score": rng.random(n + 50),
            "label": (rng.random(n + 50) < 0.2).astype(int),
        }
    )
    got = performance_by_version(frame, min_outcomes=200)
    assert got["3"].status == "ok"
    assert got["3"].labelled == n
    assert got["3"].auroc is not None
    assert got["4"].status == "insufficient_data"
    assert got["4"].auroc is None
