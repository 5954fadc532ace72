"""``gradient-boosted-trees``: XGBoost (hist), early stopping on validation AUROC.

Why XGBoost: the seed's stroke flow used it; ``hist`` is deterministic on CPU for a seed and a
thread count; the CPU-only ``xgboost-cpu`` wheel is 5 MB (the plain one pulls NVIDIA NCCL); and its
JSON model (exact float32 split values) converts to an ONNX ``TreeEnsembleRegressor`` here without
another converter package.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from clinops_common.model.onnx_graphs import tree_ensemble_graph
from clinops_trainer.families import Fitted, Progress

DEFAULTS: dict[str, Any] = {
    "n_estimators": 400,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5.0,
    "reg_lambda": 1.0,
    "scale_pos_weight": 1.0,
    "early_stopping_rounds": 30,
    "seed": 0,
}


def params(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(hyperparameters) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown gradient-boosted-trees hyperparameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **hyperparameters}


def _base_margin(model: dict[str, Any]) -> float:
    raw = str(model["learner"]["learner_model_param"]["base_score"]).strip("[]")
    p = float(raw.split(",")[0])
    return math.log(p / (1 - p))


def _trees(model: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        left, right = tree["left_children"], tree["right_children"]
        leaf = [lc == -1 for lc in left]
        out.append(
            {
                "nodeid": list(range(len(left))),
                "split": [-1 if leaf[i] else int(tree["split_indices"][i]) for i in range(len(left))],
                "threshold": [float(v) for v in tree["split_conditions"]],
                "yes": left,
                "no": right,
                "missing": [left[i] if tree["default_left"][i] else right[i] for i in range(len(left))],
                "leaf": [float(tree["split_conditions"][i]) if leaf[i] else 0.0 for i in range(len(left))],
            }
        )
    return out


def fit(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    hyperparameters: dict[str, Any],
    *,
    threads: int,
    progress: Progress | None = None,
) -> Fitted:
    import xgboost as xgb

    hp = params(hyperparameters)
    dtrain = xgb.DMatrix(x_train, label=y_train, nthread=threads)
    dval = xgb.DMatrix(x_val, label=y_val, nthread=threads)
    booster_params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "tree_method": "hist",
        "max_depth": int(hp["max_depth"]),
        "eta": float(hp["learning_rate"]),
        "subsample": float(hp["subsample"]),
        "colsample_bytree": float(hp["colsample_bytree"]),
        "min_child_weight": float(hp["min_child_weight"]),
        "lambda": float(hp["reg_lambda"]),
        "scale_pos_weight": float(hp["scale_pos_weight"]),
        "seed": int(hp["seed"]),
        "nthread": threads,
    }
    evals: dict[str, dict[str, list[float]]] = {}

    class Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if progress and (epoch + 1) % 25 == 0:
                progress(epoch + 1, {"val_auroc": float(evals_log["validation"]["auc"][-1])})
            return False

    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=int(hp["n_estimators"]),
        evals=[(dtrain, "train"), (dval, "validation")],
        evals_result=evals,
        early_stopping_rounds=int(hp["early_stopping_rounds"]),
        verbose_eval=False,
        callbacks=[Report()],
    )
    best = int(booster.best_iteration)
    booster = booster[: best + 1]
    history = [
        {"train_loss": float(tl), "val_auroc": float(va)}
        for tl, va in zip(evals["train"]["logloss"], evals["validation"]["auc"], strict=True)
    ]
    model = json.loads(bytes(booster.save_raw("json")))
    trees, base = _trees(model), _base_margin(model)
    scores: dict[str, Any] = booster.get_score(importance_type="total_gain")
    gain = {int(k.lstrip("f")): float(v) for k, v in scores.items()}
    width = x_train.shape[1]

    def margin(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(xgb.DMatrix(x, nthread=threads), output_margin=True), dtype=np.float64)

    def native_proba(x: np.ndarray, a: float, c: float) -> np.ndarray:
        z = margin(x)
        return np.asarray(1 / (1 + np.exp(-(a * z + c))), dtype=np.float32)

    def onnx(a: float, c: float) -> bytes:
        scaled = [{**t, "leaf": [a * v for v in t["leaf"]]} for t in trees]
        return tree_ensemble_graph(scaled, a * base + c, width)

    return Fitted("gradient-boosted-trees", hp, history, margin, onnx, native_proba, gain=gain, best_iteration=best + 1)
