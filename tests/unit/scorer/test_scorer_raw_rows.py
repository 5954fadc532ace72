"""The scorer's raw row straight from packed online rows equals the model package's ``vectorize`` of
the decoded values, for both feature services (floats, ints, bools, categories, nulls, unseen
categories, stale and missing views)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinops_common.features.definitions import feature_service, feature_view
from clinops_common.features.online import Freshness, StoredRow, encode_rows, row_features, unpack
from clinops_common.model import ModelPackage, Thresholds, fit_preprocessing, service_schema_ids
from clinops_common.model.onnx_graphs import logistic_graph
from clinops_scorer import core

T = pd.Timestamp("2026-03-01T10:00:00Z")
CATEGORY_POOL = ["a", "b", "c", None]


def view_frame(view_name: str, n: int, seed: int, categories: list[str | None]) -> pd.DataFrame:
    view = feature_view(view_name)
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {"patient_id": [f"P{i}" for i in range(n)], "event_timestamp": T, "created_timestamp": T}
    for f in view.features:
        if f.dtype == "string":
            data[f.name] = pd.array(rng.choice(np.array(categories, dtype=object), n), dtype=object)
        elif f.dtype == "bool":
            vals = rng.random(n) < 0.5
            data[f.name] = pd.array([None if rng.random() < 0.2 else bool(v) for v in vals], dtype="boolean")
        elif f.dtype == "int64":
            data[f.name] = pd.array([None if rng.random() < 0.2 else int(v) for v in rng.integers(0, 99, n)], "Int64")
        else:
            col = rng.normal(40, 12, n)
            col[rng.random(n) < 0.15] = np.nan
            data[f.name] = col
    return pd.DataFrame(data)


def package_for(service: str) -> ModelPackage:
    svc = feature_service(service)
    frame = pd.concat(
        [view_frame(v, 300, 1, ["a", "b", None]).drop(columns=["patient_id"]) for v in svc.views_used], axis=1
    )
    order = list(svc.feature_names)
    pre = fit_preprocessing(frame, order)
    return ModelPackage(
        name="m",
        feature_service=service,
        schema_ids=service_schema_ids(service),
        preprocessing=pre,
        thresholds=Thresholds(0.3, 0.7),
        onnx_model=logistic_graph([0.0] * pre.width, 0.0),
    )


@pytest.mark.parametrize("service", ["adverse_event_v1", "stroke_risk_v1"])
def test_raw_rows_from_packed_values_equal_vectorize_of_decoded_values(service: str) -> None:
    pkg = package_for(service)
    champ = core.champion(pkg, "1")
    assert champ.layout is not None
    svc = feature_service(service)
    n = 60
    packed = {}
    for i, v in enumerate(svc.views_used):
        frame = view_frame(v, n, 10 + i, ["a", "b", "c", None])  # "c" was never seen in training
        packed[v] = [unpack(feature_view(v), blob) for blob in encode_rows(feature_view(v), frame)]
    fresh = Freshness(T.to_pydatetime(), 60.0, stale=False, missing=False)
    nulls = 0
    for p in range(n):
        rows = {v: StoredRow(fresh, packed[v][p]) for v in svc.views_used}
        if p % 7 == 3:  # a stale or missing view: no values
            first = svc.views_used[0]
            rows[first] = StoredRow(Freshness(None, None, stale=False, missing=True), None)
        got = core.raw_row(champ, rows)
        want = pkg.vectorize(row_features(svc, rows))
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
        nulls += int(np.isnan(got).sum())
    assert nulls > 0  # missing values took part


def test_a_package_that_encodes_a_view_s_number_as_a_category_falls_back_to_decoded_values() -> None:
    pkg = package_for("adverse_event_v1")
    first = pkg.preprocessing.features[0]
    specs = (type(first)(first.name, "categorical", categories=("40.0",)), *pkg.preprocessing.features[1:])
    odd = ModelPackage(
        name="odd",
        feature_service="adverse_event_v1",
        schema_ids=pkg.schema_ids,
        preprocessing=type(pkg.preprocessing)(specs),
        thresholds=pkg.thresholds,
        onnx_model=pkg.onnx_model,
    )
    champ = core.champion(odd, "1")
    assert champ.layout is None
    fresh = Freshness(T.to_pydatetime(), 1.0, stale=False, missing=False)
    frame = view_frame("vitals", 1, 3, ["a"])
    rows = {"vitals": StoredRow(fresh, unpack(feature_view("vitals"), encode_rows(feature_view("vitals"), frame)[0]))}
    got = core.raw_row(champ, rows)
    np.testing.assert_array_equal(got, odd.vectorize(row_features(feature_service("adverse_event_v1"), rows)))
