"""Drift of the prediction distribution and of every served feature against the training reference.

Two tests, chosen deliberately and applied to every numeric column (features and ``probability``):

- **Kolmogorov-Smirnov** (two-sample, ``scipy.stats.ks_2samp``, exact below 10,000 x 10,000 rows and
  asymptotic above) of the current sample against the reference *sample* (<= 20,000 validation rows):
  statistic D and p-value;
- **PSI** (population stability index) on the reference's own bins: ``sum((r - c) * ln(r / c))`` over
  the bins, empty bins filled as Evidently fills them (1e-4, or a millionth of the smallest non-empty
  share when that is below 1e-4), so the figures compare.
  Values outside the reference's range fall into its first or last bin.

A column *drifts* only when both agree: ``PSI >= psi_threshold`` (an effect size that does not grow
with the sample) **and** ``KS p < ks_p_value`` (the shift is not sampling noise). KS alone flags
trivial shifts on large samples (which is why Evidently switches to a normed Wasserstein distance
above 1,000 reference rows); PSI alone is noisy on small ones. Missing values (NaN) are left out of
both tests and reported as the column's missing share. Values are compared at float32 precision,
the precision the predictions table stores feature vectors in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import ks_2samp  # type: ignore[import-untyped,unused-ignore]

PSI_FLOOR = 1e-4
PREDICTION = "probability"


@dataclass(frozen=True)
class Bins:
    """Bin edges (k + 1 increasing values) and the reference's proportion in each of the k bins."""

    edges: np.ndarray
    proportions: np.ndarray


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    ks_statistic: float
    ks_p_value: float
    psi: float
    drifted: bool
    current_rows: int
    missing_share: float


@dataclass(frozen=True)
class DriftReport:
    prediction: ColumnDrift | None
    features: tuple[ColumnDrift, ...]

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.features if c.drifted]

    @property
    def share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0


def quantile_bins(reference: np.ndarray, n_bins: int = 10) -> Bins:
    """Decile bins of a reference column (used when the reference carries no bins for it)."""
    ref = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1))) if len(ref) else np.array([0.0, 1.0])
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return Bins(edges, proportions(ref, edges))


def proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin; values outside the edges count in the first or last bin."""
    k = len(edges) - 1
    idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, k - 1)
    counts = np.bincount(idx, minlength=k).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Evidently's rule: an empty bin counts as 1e-4, or as a millionth of the smallest non-empty
    share when that is itself at most 1e-4."""
    nonzero = shares[shares != 0]
    if len(nonzero) == 0:
        return np.full_like(shares, PSI_FLOOR)
    smallest = float(nonzero.min())
    return np.where(shares == 0, smallest / 1e6 if smallest <= PSI_FLOOR else PSI_FLOOR, shares)


def psi_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    r = _fill_zeroes(np.asarray(reference, dtype=np.float64))
    c = _fill_zeroes(np.asarray(current, dtype=np.float64))
    return float(np.sum((r - c) * np.log(r / c)))


def psi(bins: Bins, current: np.ndarray) -> float:
    return psi_from_proportions(bins.proportions, proportions(current, bins.edges))


def _f32(values: np.ndarray) -> np.ndarray:
    """At float32 precision (that of ``predictions.feature_values``): a reading of 36.9 stored as a
    real must fall in the same bin as the reference's 36.9, even when a bin edge is exactly 36.9."""
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def column_drift(
    column: str,
    reference: np.ndarray,
    current: np.ndarray,
    bins: Bins | None,
    *,
    psi_threshold: float,
    ks_p_value: float,
) -> ColumnDrift:
    ref = _f32(reference)
    cur_all = _f32(current)
    cur = cur_all[~np.isnan(cur_all)]
    ref = ref[~np.isnan(ref)]
    missing = 1.0 - len(cur) / len(cur_all) if len(cur_all) else 0.0
    if len(cur) == 0 or len(ref) == 0:
        return ColumnDrift(column, float("nan"), float("nan"), float("nan"), False, len(cur), missing)
    ks = ks_2samp(ref, cur)
    b = Bins(_f32(bins.edges), bins.proportions) if bins is not None else quantile_bins(ref)
    value = psi(b, cur)
    stat, p = float(ks.statistic), float(ks.pvalue)
    return ColumnDrift(column, stat, p, value, bool(value >= psi_threshold and p < ks_p_value), len(cur), missing)


def drift_report(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    features: Sequence[str],
    bins: Mapping[str, Bins],
    *,
    psi_threshold: float,
    ks_p_value: float,
) -> DriftReport:
    """Drift of ``probability`` (when both sides have it) and of each feature in ``features``."""

    def one(name: str) -> ColumnDrift:
        return column_drift(
            name, reference[name], current[name], bins.get(name), psi_threshold=psi_threshold, ks_p_value=ks_p_value
        )

    prediction = one(PREDICTION) if PREDICTION in reference and PREDICTION in current else None
    return DriftReport(prediction, tuple(one(f) for f in features if f in reference and f in current))
