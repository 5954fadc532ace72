"""Preprocessing of a clinops model: raw feature vector -> the matrix the model was trained on.

Plain numpy, fitted on the training part only and stored as JSON with the model. For each raw feature
(in the package's feature order):

* numeric (float, int, bool): impute the training median; a missing-value indicator column
  (``<name>__missing``) where the feature had nulls in training; then ``(x - mean) / std`` with the
  training mean and standard deviation of the imputed column (std 0 -> 1);
* categorical (string): the raw vector carries the category's index in ``categories`` (``vectorize``
  does that); one-hot columns ``<name>=<category>``; a missing or unseen category is all zeros, plus
  ``<name>__missing`` where training had nulls.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Kind
    median: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    indicator: bool = False
    categories: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "median": self.median,
            "mean": self.mean,
            "std": self.std,
            "indicator": self.indicator,
            "categories": list(self.categories),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FeatureSpec:
        return cls(
            name=str(raw["name"]),
            kind=raw["kind"],
            median=float(raw["median"]),
            mean=float(raw["mean"]),
            std=float(raw["std"]),
            indicator=bool(raw["indicator"]),
            categories=tuple(str(c) for c in raw.get("categories", ())),
        )


@dataclass(frozen=True)
class Preprocessing:
    features: tuple[FeatureSpec, ...]

    @functools.cached_property
    def feature_order(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def output_names(self) -> tuple[str, ...]:
        out: list[str] = []
        for f in self.features:
            if f.kind == "numeric":
                out.append(f.name)
            else:
                out.extend(f"{f.name}={c}" for c in f.categories)
            if f.indicator:
                out.append(f"{f.name}__missing")
        return tuple(out)

    @property
    def width(self) -> int:
        return len(self.output_names)

    @functools.cached_property
    def _plan(self) -> _Plan:  # once per instance (cached_property writes __dict__: frozen is fine)
        return _make_plan(self.features)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw matrix (n, len(feature_order)), NaN = missing -> model matrix (n, width), float32.

        Whole-matrix numpy operations along a plan made once per instance: no Python work per
        feature, so one row costs tens of microseconds."""
        plan = self._plan
        n = raw.shape[0]
        x = raw.astype(np.float64)
        missing = np.isnan(x)
        out = np.zeros((n, plan.width), dtype=np.float64)
        if plan.num_src.size:
            filled = np.where(missing[:, plan.num_src], plan.median, x[:, plan.num_src])
            out[:, plan.num_dst] = (filled - plan.mean) / plan.std
        if plan.cat_src.size:
            codes = np.where(missing[:, plan.cat_src], -1, x[:, plan.cat_src]).astype(np.int64)
            ok = (codes >= 0) & (codes < plan.cat_size)
            rows, cols = np.nonzero(ok)
            out[rows, plan.cat_base[cols] + codes[rows, cols]] = 1.0
        if plan.ind_src.size:
            out[:, plan.ind_dst] = missing[:, plan.ind_src]
        return out.astype(np.float32)

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.features]

    @classmethod
    def from_json(cls, raw: Sequence[dict[str, Any]]) -> Preprocessing:
        return cls(tuple(FeatureSpec.from_json(r) for r in raw))


@dataclass(frozen=True)
class _Plan:
    """Where each raw column goes in the model matrix, and the constants it needs (see ``transform``)."""

    width: int
    num_src: np.ndarray  # raw column of each numeric feature
    num_dst: np.ndarray  # its output column
    median: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    cat_src: np.ndarray  # raw column of each categorical feature
    cat_base: np.ndarray  # output column of its first category
    cat_size: np.ndarray  # its number of categories
    ind_src: np.ndarray  # raw column of each feature with a missing-value indicator
    ind_dst: np.ndarray  # the indicator's output column


def _make_plan(features: Sequence[FeatureSpec]) -> _Plan:
    cols: dict[str, list[Any]] = {k: [] for k in _Plan.__dataclass_fields__ if k != "width"}
    pos = 0
    for j, f in enumerate(features):
        if f.kind == "numeric":
            for key, value in (
                ("num_src", j),
                ("num_dst", pos),
                ("median", f.median),
                ("mean", f.mean),
                ("std", f.std),
            ):
                cols[key].append(value)
            pos += 1
        else:
            for key, value in (("cat_src", j), ("cat_base", pos), ("cat_size", len(f.categories))):
                cols[key].append(value)
            pos += len(f.categories)
        if f.indicator:
            cols["ind_src"].append(j)
            cols["ind_dst"].append(pos)
            pos += 1
    floats = {"median", "mean", "std"}
    arrays = {k: np.asarray(v, dtype=np.float64 if k in floats else np.int64) for k, v in cols.items()}
    return _Plan(width=pos, **arrays)


def _is_categorical(series: pd.Series) -> bool:
    return bool(series.dtype == object or pd.api.types.is_string_dtype(series.dtype)) and not (
        pd.api.types.is_bool_dtype(series.dtype)
    )


def fit_preprocessing(train: pd.DataFrame, feature_order: Sequence[str]) -> Preprocessing:
    """Fit on the training part only: medians, indicators, means and stds, category lists."""
    specs: list[FeatureSpec] = []
    for name in feature_order:
        col = train[name]
        has_null = bool(col.isna().any())
        if _is_categorical(col):
            cats = tuple(sorted({str(v) for v in col.dropna().unique()}))
            specs.append(FeatureSpec(name, "categorical", indicator=has_null, categories=cats))
            continue
        x = pd.to_numeric(col.astype("float64"), errors="coerce").to_numpy(dtype=np.float64)
        present = x[~np.isnan(x)]
        median = float(np.median(present)) if present.size else 0.0
        filled = np.where(np.isnan(x), median, x)
        mean = float(filled.mean()) if filled.size else 0.0
        std = float(filled.std()) if filled.size else 1.0
        specs.append(FeatureSpec(name, "numeric", median, mean, std if std > 1e-12 else 1.0, has_null))
    return Preprocessing(tuple(specs))
