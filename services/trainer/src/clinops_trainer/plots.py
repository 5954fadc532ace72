"""Figures logged with a run: ROC curve, calibration curve, confusion matrix at the thresholds,
feature importance (matplotlib, no display)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from clinops_trainer.evaluation import calibration_curve


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def roc_figure(y: np.ndarray, curves: Mapping[str, np.ndarray]) -> Any:
    from sklearn.metrics import roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test part")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(y: np.ndarray, curves: Mapping[str, np.ndarray]) -> Any:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    hi = 0.0
    for name, p in curves.items():
        pred, obs = calibration_curve(y, p)
        hi = max(hi, float(pred.max()), float(obs.max()))
        ax.plot(pred, obs, "o-", label=name)
    ax.plot([0, hi], [0, hi], "k:", lw=0.8)
    ax.set(xlabel="mean predicted probability (decile)", ylabel="observed rate", title="Calibration, test part")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def confusion_figure(table: Mapping[str, Mapping[str, int]]) -> Any:
    plt = _plt()
    levels = ["LOW", "MEDIUM", "HIGH"]
    grid = np.array([[table[lv]["non_events"], table[lv]["events"]] for lv in levels])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid, cmap="Blues")
    for i in range(3):
        for j in range(2):
            ax.text(j, i, str(grid[i, j]), ha="center", va="center")
    ax.set_xticks([0, 1], ["no event", "event"])
    ax.set_yticks([0, 1, 2], levels)
    ax.set(title="Test rows by risk level")
    return fig


def importance_figure(importance: Mapping[str, float], kind: str, top: int = 20) -> Any:
    plt = _plt()
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel=kind, title=f"Feature importance (top {len(items)})")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
