"""The training reference the monitor compares live traffic with.

Logged with each model version's run under ``reference/``:

* ``sample.parquet``: at most 20,000 validation rows: the model's raw features, ``probability``
  (the model's prediction) and ``label``;
* ``bins.json``: for every feature and for ``probability``: ``kind``; for numeric columns
  ``edges`` (decile edges of the sample, deduplicated; values below the first or above the last fall
  in the outer bins), ``proportions`` (share of non-null sample values per bin) and ``quantiles``
  (p01 p05 p25 p50 p75 p95 p99); for categorical ones ``categories`` and ``proportions``; and
  ``null_share`` for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

REFERENCE_DIR = "reference"
SAMPLE_FILE = "sample.parquet"
BINS_FILE = "bins.json"
MAX_REFERENCE_ROWS = 20_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PROBABILITY = "probability"
LABEL = "label"


@dataclass(frozen=True)
class Reference:
    sample: pd.DataFrame
    bins: dict[str, dict[str, Any]]


def bin_indices(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """The bin of each value for ``edges`` of ``len(edges) - 1`` bins (outer bins open-ended)."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, values, side="right")


def numeric_bins(values: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    x = values[~np.isnan(values)]
    null_share = float(1 - len(x) / len(values)) if len(values) else 0.0
    if len(x) == 0:
        return {"kind": "numeric", "edges": [], "proportions": [], "quantiles": {}, "null_share": null_share}
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    counts = np.bincount(bin_indices(x, edges), minlength=len(edges) - 1)
    return {
        "kind": "numeric",
        "edges": [float(e) for e in edges],
        "proportions": [float(c) / len(x) for c in counts],
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(x, q)) for q in QUANTILES},
        "null_share": null_share,
    }


def categorical_bins(values: pd.Series) -> dict[str, Any]:
    present = values.dropna().astype(str)
    counts = present.value_counts().sort_index()
    return {
        "kind": "categorical",
        "categories": [str(c) for c in counts.index],
        "proportions": [float(c) / max(len(present), 1) for c in counts.to_numpy()],
        "null_share": float(1 - len(present) / len(values)) if len(values) else 0.0,
    }


def build_reference(
    features: pd.DataFrame,
    probability: np.ndarray,
    label: np.ndarray,
    *,
    max_rows: int = MAX_REFERENCE_ROWS,
    seed: int = 0,
) -> Reference:
    """A reproducible random sample (at most ``max_rows``) of the rows, and the bins of each column."""
    frame = features.reset_index(drop=True).copy()
    frame[PROBABILITY] = np.asarray(probability, dtype=np.float64)
    frame[LABEL] = np.asarray(label, dtype=np.float64)
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)
    bins: dict[str, dict[str, Any]] = {}
    for col in [*features.columns, PROBABILITY]:
        series = frame[col]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            bins[col] = categorical_bins(series)
        else:
            bins[col] = numeric_bins(pd.to_numeric(series.astype("float64")).to_numpy(dtype=np.float64))
    return Reference(frame, bins)
