"""The model package through a real MLflow (PostgreSQL registry, MinIO artifacts): log, register,
alias, load through the cache, and the training reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinops_common.model import (
    ModelNotFound,
    ModelPackage,
    Thresholds,
    build_reference,
    fit_preprocessing,
    load_reference,
    load_registered,
    resolve_alias,
)
from clinops_common.model.mlflow_model import log_package, log_reference, scoring_requirements
from clinops_common.model.onnx_graphs import logistic_graph


def test_log_register_alias_and_load_through_the_cache(mlflow_url: str, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], 300)})
    frame.loc[::7, "a"] = np.nan
    pre = fit_preprocessing(frame, ["a", "b"])
    pkg = ModelPackage(
        "registry-test",
        "stroke_risk_v1",
        {"stroke_risk": "12345678"},
        pre,
        Thresholds(0.3, 0.7),
        logistic_graph([0.8, -0.5, 0.4, 0.2], -0.1),
    )
    name = "registry-test"
    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("model-package-test")
    assert resolve_alias(mlflow_url, name, "champion") is None
    with mlflow.start_run():
        info = log_package(pkg, frame, registered_model_name=name)
        log_reference(build_reference(frame, pkg.predict_frame(frame), np.zeros(len(frame))))
    version = str(info.registered_model_version)
    client = MlflowClient(mlflow_url)
    client.set_registered_model_alias(name, "champion", version)

    cache = tmp_path / "cache"
    loaded, got_version = load_registered(mlflow_url, name, cache_dir=cache)
    assert got_version == version
    assert loaded.feature_order_id == pkg.feature_order_id
    np.testing.assert_array_equal(loaded.predict_frame(frame), pkg.predict_frame(frame))
    assert (cache / name / version).is_dir()
    again, _ = load_registered(mlflow_url, name, cache_dir=cache)  # from the cache
    np.testing.assert_array_equal(again.predict_frame(frame), pkg.predict_frame(frame))

    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_allclose(np.asarray(pyfunc.predict(frame)), pkg.predict_frame(frame), atol=1e-7)
    reqs = (Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}")) / "requirements.txt").read_text()
    assert "torch" not in reqs
    assert all(r.split("==")[0] in reqs for r in scoring_requirements())

    ref = load_reference(mlflow_url, name, version, cache_dir=cache)
    assert len(ref.sample) == len(frame)
    assert set(ref.bins) == {"a", "b", "probability"}

    with pytest.raises(ModelNotFound, match="no alias 'nope'"):
        load_registered(mlflow_url, name, alias="nope", cache_dir=cache)
