"""The model package: save/load round trip, ONNX scoring equal to the arithmetic, and input refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinops_common.model import (
    ModelInputError,
    ModelPackage,
    ModelPackageError,
    Thresholds,
    build_reference,
    fit_preprocessing,
    load,
    save,
    service_schema_ids,
)
from clinops_common.model.onnx_graphs import logistic_graph, mlp_graph, tree_ensemble_graph


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hr = rng.normal(80, 10, n)
    hr[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "heart_rate": hr,
            "age": rng.integers(20, 90, n).astype("float64"),
            "gender": rng.choice(["F", "M", None], n),
            "flag": rng.random(n) < 0.3,
        }
    )


def _package(frame: pd.DataFrame, graph: bytes | None = None) -> ModelPackage:
    pre = fit_preprocessing(frame, list(frame.columns))
    coef = np.linspace(-1, 1, pre.width)
    return ModelPackage(
        name="tiny",
        feature_service="stroke_risk_v1",
        schema_ids={"stroke_risk": "abcd1234"},
        preprocessing=pre,
        thresholds=Thresholds(0.2, 0.6, "test"),
        onnx_model=graph or logistic_graph(coef, 0.1),
        model_family="logistic",
    )


def test_preprocessing_is_fitted_on_the_given_rows_only() -> None:
    frame = _frame()
    pre = fit_preprocessing(frame, list(frame.columns))
    names = pre.output_names
    assert "heart_rate__missing" in names  # heart rate has nulls
    assert "age__missing" not in names  # age has none
    assert {"gender=F", "gender=M", "gender__missing"} <= set(names)
    hr = pre.features[0]
    assert hr.median == pytest.approx(float(np.nanmedian(frame["heart_rate"])))


def test_onnx_scores_equal_the_arithmetic_and_survive_save_and_load(tmp_path: Path) -> None:
    frame = _frame()
    pkg = _package(frame)
    raw = pkg.vectorize_frame(frame)
    x = pkg.preprocessing.transform(raw).astype(np.float64)
    expected = 1 / (1 + np.exp(-(x @ np.linspace(-1, 1, x.shape[1]) + 0.1)))
    got = pkg.predict_proba(raw)
    np.testing.assert_allclose(got, expected, atol=1e-6)

    loaded = load(save(pkg, tmp_path / "pkg"))
    assert loaded.feature_order == pkg.feature_order
    assert loaded.feature_order_id == pkg.feature_order_id
    assert loaded.schema_ids == pkg.schema_ids
    assert loaded.thresholds == pkg.thresholds
    np.testing.assert_array_equal(loaded.predict_proba(raw), got)
    np.testing.assert_array_equal(loaded.predict_frame(frame), got)


def test_vectorize_matches_vectorize_frame_and_imputes_missing() -> None:
    frame = _frame()
    pkg = _package(frame)
    row = {"heart_rate": None, "age": 70.0, "gender": "M", "flag": True}
    v = pkg.vectorize(row)
    assert v.dtype == np.float32
    assert np.isnan(v[0])
    np.testing.assert_array_equal(v, pkg.vectorize_frame(pd.DataFrame([row]))[0])
    p = pkg.predict_proba(v)
    assert p.shape == (1,)
    assert 0 < p[0] < 1
    unseen = pkg.vectorize({**row, "gender": "X"})  # an unseen category counts as missing
    assert np.isnan(unseen[2])


def test_bad_input_is_refused_with_a_clear_error() -> None:
    frame = _frame()
    pkg = _package(frame)
    good = {"heart_rate": 80.0, "age": 70.0, "gender": "M", "flag": False}
    with pytest.raises(ModelInputError, match="unknown features \\['spo2'\\]"):
        pkg.vectorize({**good, "spo2": 97.0})
    with pytest.raises(ModelInputError, match="missing features \\['age'\\]"):
        pkg.vectorize({k: v for k, v in good.items() if k != "age"})
    with pytest.raises(ModelInputError, match="schema id mismatch"):
        pkg.vectorize(good, schema_ids={"stroke_risk": "00000000"})
    pkg.vectorize(good, schema_ids={"stroke_risk": "abcd1234"})
    with pytest.raises(ModelInputError, match="is numeric"):
        pkg.vectorize({**good, "age": "old"})
    with pytest.raises(ModelInputError, match=r"shape \(n, 4\)"):
        pkg.predict_proba(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ModelInputError, match="lacks features"):
        pkg.vectorize_frame(frame.drop(columns=["age"]))


def test_risk_levels_follow_the_thresholds() -> None:
    pkg = _package(_frame())
    assert [pkg.risk_level(p) for p in (0.0, 0.19, 0.2, 0.59, 0.6, 1.0)] == [
        "LOW",
        "LOW",
        "MEDIUM",
        "MEDIUM",
        "HIGH",
        "HIGH",
    ]
    with pytest.raises(ValueError, match="thresholds"):
        Thresholds(0.7, 0.3)


def test_mlp_and_tree_graphs_compute_what_they_say() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    w0, b0 = rng.normal(size=(4, 3)), rng.normal(size=4)
    w1, b1 = rng.normal(size=(1, 4)), rng.normal(size=1)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    pkg = _package(frame, mlp_graph([(w0, b0), (w1, b1)]))
    z = pkg.preprocessing.transform(x).astype(np.float64)
    expected = 1 / (1 + np.exp(-(np.maximum(z @ w0.T + b0, 0) @ w1.T + b1)))
    np.testing.assert_allclose(pkg.predict_proba(x), expected.ravel(), atol=1e-6)

    # one stump on feature 0 (after preprocessing): x < 0 -> -1, else +2; base margin 0.5
    tree = {"nodeid": [0, 1, 2], "split": [0, -1, -1], "threshold": [0.0, 0, 0], "yes": [1, 0, 0],
            "no": [2, 0, 0], "missing": [1, 0, 0], "leaf": [0.0, -1.0, 2.0]}  # fmt: skip
    pkg = _package(frame, tree_ensemble_graph([tree], 0.5, 3))
    margin = np.where(z[:, 0] < 0, -1.0, 2.0) + 0.5
    np.testing.assert_allclose(pkg.predict_proba(x), 1 / (1 + np.exp(-margin)), atol=1e-6)


def test_a_folder_without_a_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="not a clinops model package"):
        load(tmp_path)


def test_reference_sample_and_bins() -> None:
    frame = _frame(n=500)
    prob = np.linspace(0, 1, 500)
    ref = build_reference(frame, prob, np.zeros(500), max_rows=100, seed=3)
    assert len(ref.sample) == 100
    assert {"probability", "label", "heart_rate"} <= set(ref.sample.columns)
    hr = ref.bins["heart_rate"]
    assert hr["kind"] == "numeric"
    assert sum(hr["proportions"]) == pytest.approx(1.0)
    assert 0.05 < hr["null_share"] < 0.4
    assert ref.bins["gender"]["kind"] == "categorical"
    assert set(ref.bins["gender"]["categories"]) == {"F", "M"}
    assert set(ref.bins["probability"]["quantiles"]) == {"p01", "p05", "p25", "p50", "p75", "p95", "p99"}


def test_schema_ids_of_a_service() -> None:
    ids = service_schema_ids("adverse_event_v1")
    assert set(ids) == {"vitals", "labs", "medications", "context"}


def test_the_model_package_never_imports_torch() -> None:
    code = (
        "import sys, clinops_common.model, clinops_common.model.onnx_graphs;"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
