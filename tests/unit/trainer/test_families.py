"""Both model families: they learn, are deterministic for a seed, and their ONNX export scores like
the native model (torch, XGBoost) within 1e-6."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from clinops_trainer.evaluation import auroc
from clinops_trainer.families import fit


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    z = 1.5 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] - 3.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    return x, y


def _onnx(graph: bytes, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(["probability"], {"features": x})[0]).reshape(-1)


@pytest.mark.parametrize(
    ("family", "hp"),
    [
        ("pytorch-mlp", {"epochs": 8, "hidden_units": [16, 8], "batch_size": 256}),
        ("gradient-boosted-trees", {"n_estimators": 60}),
    ],
)
def test_family_learns_exports_and_repeats(family: str, hp: dict[str, object]) -> None:
    xtr, ytr = _data(4000, 0)
    xva, yva = _data(1500, 1)
    xte, yte = _data(1500, 2)
    a = fit(family, xtr, ytr, xva, yva, hp, threads=1)
    assert auroc(yte, a.margin(xte)) > 0.75
    assert a.history
    assert "val_auroc" in a.history[0]
    onnx_p = _onnx(a.onnx(0.9, -0.2), xte)
    np.testing.assert_allclose(onnx_p, a.native_proba(xte, 0.9, -0.2), atol=1e-6, rtol=0)
    b = fit(family, xtr, ytr, xva, yva, hp, threads=1)
    np.testing.assert_array_equal(a.margin(xte), b.margin(xte))


def test_unknown_hyperparameters_are_refused() -> None:
    x, y = _data(200, 0)
    with pytest.raises(ValueError, match="unknown pytorch-mlp hyperparameters \\['hidden'\\]"):
        fit("pytorch-mlp", x, y, x, y, {"hidden": 3}, threads=1)
    with pytest.raises(ValueError, match="unknown gradient-boosted-trees"):
        fit("gradient-boosted-trees", x, y, x, y, {"depth": 3}, threads=1)
