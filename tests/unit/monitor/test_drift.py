"""KS and PSI on the reference: what drifts, what does not, and the share."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from clinops_monitor.core.drift import Bins, drift_report, proportions, psi, psi_from_proportions, quantile_bins


def test_psi_of_identical_proportions_is_zero_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    bins = quantile_bins(ref)
    assert bins.proportions == pytest.approx(np.full(10, 0.1), abs=1e-3)
    assert psi(bins, rng.normal(size=20_000)) < 0.01
    assert psi(bins, rng.normal(0.5, 1, 20_000)) > psi(bins, rng.normal(0.2, 1, 20_000)) > 0.02


def test_values_outside_the_reference_range_fall_in_the_edge_bins() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    assert proportions(np.array([-5.0, 0.5, 1.5, 99.0]), edges).tolist() == [0.5, 0.5]


def test_psi_formula_with_empty_bins() -> None:
    ref = np.array([0.5, 0.5, 0.0])
    cur = np.array([0.5, 0.25, 0.25])
    r = np.array([0.5, 0.5, 1e-4])
    expected = float(np.sum((r - cur) * np.log(r / cur)))
    assert psi_from_proportions(ref, cur) == pytest.approx(expected)


def test_report_flags_only_the_shifted_feature_and_counts_the_share() -> None:
    rng = np.random.default_rng(1)
    names = [f"f{i}" for i in range(10)]
    reference = {n: rng.normal(size=5000) for n in names} | {"probability": rng.beta(1, 9, 5000)}
    current = {n: rng.normal(size=3000) for n in names} | {"probability": rng.beta(1, 9, 3000)}
    current["f3"] = current["f3"] + 1.0
    current["f7"][:300] = np.nan
    bins = {n: quantile_bins(reference[n]) for n in reference}
    report = drift_report(reference, current, names, bins, psi_threshold=0.2, ks_p_value=0.01)
    assert report.drifted_features == ["f3"]
    assert report.share == pytest.approx(0.1)
    assert report.prediction is not None
    assert not report.prediction.drifted
    f3 = next(c for c in report.features if c.column == "f3")
    assert f3.ks_statistic == pytest.approx(ks_2samp(reference["f3"], current["f3"]).statistic)
    f7 = next(c for c in report.features if c.column == "f7")
    assert f7.missing_share == pytest.approx(0.1)
    assert f7.current_rows == 2700


def test_a_tiny_shift_on_a_big_sample_is_significant_but_not_drift() -> None:
    rng = np.random.default_rng(2)
    ref = {"x": rng.normal(size=20_000)}
    cur = {"x": rng.normal(0.08, 1, 50_000)}
    report = drift_report(ref, cur, ["x"], {"x": Bins(*_bins(ref["x"]))}, psi_threshold=0.2, ks_p_value=0.01)
    (x,) = report.features
    assert x.ks_p_value < 0.01
    assert not x.drifted


def _bins(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    b = quantile_bins(values)
    return b.edges, b.proportions


def test_float32_storage_does_not_move_values_across_a_bin_edge() -> None:
    rng = np.random.default_rng(3)
    ref = np.round(rng.normal(36.9, 0.3, 20_000), 1)  # readings with 0.1 degC resolution: edges on values
    cur = np.round(rng.normal(36.9, 0.3, 20_000), 1).astype(np.float32)  # as read back from a real[]
    report = drift_report({"t": ref}, {"t": cur}, ["t"], {"t": quantile_bins(ref)}, psi_threshold=0.2, ks_p_value=0.01)
    assert report.features[0].psi < 0.01
