"""Feature importance per raw feature (pure): permutation on validation for the MLP (drop in AUROC
when one feature's column is shuffled), total gain for trees (summed over a feature's model columns)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from clinops_common.model import Preprocessing
from clinops_trainer.evaluation import auroc


def permutation_importance(
    predict_raw: Callable[[np.ndarray], np.ndarray],
    raw: np.ndarray,
    y: np.ndarray,
    names: Sequence[str],
    *,
    rows: int,
    seed: int = 0,
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    if len(raw) > rows:
        keep = np.sort(rng.choice(len(raw), rows, replace=False))
        raw, y = raw[keep], y[keep]
    base = auroc(y, predict_raw(raw))
    out = {}
    for j, name in enumerate(names):
        shuffled = raw.copy()
        shuffled[:, j] = rng.permutation(shuffled[:, j])
        out[name] = float(base - auroc(y, predict_raw(shuffled)))
    return out


def gain_importance(gain: dict[int, float], pre: Preprocessing) -> dict[str, float]:
    """Trees: a raw feature's importance is the total gain of its model columns (one-hot, indicator)."""
    owner: list[str] = []
    for f in pre.features:
        n = (1 if f.kind == "numeric" else len(f.categories)) + (1 if f.indicator else 0)
        owner += [f.name] * n
    out = dict.fromkeys(pre.feature_order, 0.0)
    for col, g in gain.items():
        out[owner[col]] += g
    return out
