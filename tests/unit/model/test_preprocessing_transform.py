"""Preprocessing's whole-matrix transform gives exactly what the per-feature definition gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinops_common.model.preprocessing import Preprocessing, fit_preprocessing


def per_feature(pre: Preprocessing, raw: np.ndarray) -> np.ndarray:
    """The transform as the module docstring defines it, one feature at a time (the reference)."""
    n = raw.shape[0]
    cols: list[np.ndarray] = []
    for j, f in enumerate(pre.features):
        x = raw[:, j].astype(np.float64)
        missing = np.isnan(x)
        if f.kind == "numeric":
            cols.append((np.where(missing, f.median, x) - f.mean) / f.std)
        else:
            onehot = np.zeros((n, len(f.categories)))
            codes = np.where(missing, -1, x).astype(np.int64)
            ok = (codes >= 0) & (codes < len(f.categories))
            onehot[np.nonzero(ok)[0], codes[ok]] = 1.0
            cols.extend(onehot.T)
        if f.indicator:
            cols.append(missing.astype(np.float64))
    return np.column_stack(cols).astype(np.float32) if cols else np.zeros((n, 0), dtype=np.float32)


def _training(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for k in range(12):
        col = rng.normal(50 * k, 3 + k, n)
        if k % 3:
            col[rng.random(n) < 0.15] = np.nan
        data[f"num{k}"] = col
    data["const"] = np.full(n, 7.0)  # std 0 -> 1
    data["flag"] = rng.random(n) < 0.4
    data["gender"] = rng.choice(np.array(["F", "M", None], dtype=object), n)
    data["arm"] = rng.choice(["A", "B", "C"], n)
    return pd.DataFrame(data)


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_transform_equals_the_per_feature_definition(rows: int) -> None:
    train = _training(500, seed=1)
    order = list(train.columns)
    pre = fit_preprocessing(train, order)
    rng = np.random.default_rng(rows)
    raw = rng.normal(60, 40, (rows, len(order)))
    raw[rng.random(raw.shape) < 0.2] = np.nan
    for name in ("gender", "arm"):  # category codes, some unseen (3, 9, -2) or missing
        raw[:, order.index(name)] = rng.choice([0, 1, 2, 3, 9, -2, np.nan], rows)
    got = pre.transform(raw.astype(np.float32))
    want = per_feature(pre, raw.astype(np.float32))
    assert got.dtype == np.float32
    assert got.shape == (rows, pre.width)
    np.testing.assert_array_equal(got, want)


def test_transform_of_no_features_and_of_no_rows() -> None:
    empty = Preprocessing(())
    assert empty.transform(np.zeros((3, 0), dtype=np.float32)).shape == (3, 0)
    pre = fit_preprocessing(_training(50, seed=2), list(_training(50, seed=2).columns))
    assert pre.transform(np.zeros((0, len(pre.features)), dtype=np.float32)).shape == (0, pre.width)
