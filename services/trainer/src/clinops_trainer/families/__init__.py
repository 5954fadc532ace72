"""The model families: each fits on the preprocessed training part, stops early on validation AUROC
and exports an ONNX graph (with the validation Platt scaling folded into its last layer)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Progress = Callable[[int, dict[str, float]], None]


@dataclass
class Fitted:
    family: str
    params: dict[str, Any]  # the effective hyperparameters
    history: list[dict[str, float]]  # per epoch (MLP) or boosting round (trees)
    margin: Callable[[np.ndarray], np.ndarray]  # model matrix -> logit, native (torch / XGBoost)
    onnx: Callable[[float, float], bytes]  # Platt (a, c) -> the ONNX graph of sigmoid(a * margin + c)
    native_proba: Callable[[np.ndarray, float, float], np.ndarray]  # sigmoid(a * margin + c), natively
    gain: dict[int, float] = field(default_factory=dict)  # trees: gain per model column
    best_iteration: int = 0


# The module each family trains with: the clinops image has no torch (clinops-trainer adds it).
LIBRARY = {"pytorch-mlp": "torch", "gradient-boosted-trees": "xgboost"}


def available(family: str) -> bool:
    """Whether ``family``'s library is installed here (without importing it)."""
    return importlib.util.find_spec(LIBRARY[family]) is not None


def fit(  # noqa: PLR0917 - the four parts read best positionally
    family: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    hyperparameters: dict[str, Any],
    *,
    threads: int,
    progress: Progress | None = None,
) -> Fitted:
    if family == "pytorch-mlp":
        from clinops_trainer.families import mlp

        return mlp.fit(x_train, y_train, x_val, y_val, hyperparameters, threads=threads, progress=progress)
    if family == "gradient-boosted-trees":
        from clinops_trainer.families import trees

        return trees.fit(x_train, y_train, x_val, y_val, hyperparameters, threads=threads, progress=progress)
    raise ValueError(f"unknown model family {family!r}")
