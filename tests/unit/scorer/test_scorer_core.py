"""The scorer's pure parts: freshness judgement and policy, audit rows, batch steps and ids, the
binary real[] encoding, the documented 400 shape, and request validation."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from clinops_common.features.online import Freshness
from clinops_scorer import core
from clinops_scorer.audit import Float4ArrayDumper, libpq_dsn
from clinops_scorer.batch import hourly_steps
from clinops_scorer.schemas import MAX_BATCH, BatchRequest, PredictRequest
from clinops_scorer.service import _documented_400

T = datetime(2026, 3, 1, 12, tzinfo=UTC)
VIEWS = ("vitals", "labs", "medications", "context")


def fresh(age_s: float = 60.0) -> Freshness:
    return Freshness(T - timedelta(seconds=age_s), age_s, stale=False, missing=False)


def test_every_view_fresh_is_served() -> None:
    a = core.assess({v: fresh() for v in VIEWS}, VIEWS)
    assert a.degraded_views == ()
    assert core.decide(a, "refuse") == "serve"
    assert core.decide(a, "degrade") == "serve"


def test_stale_or_missing_is_refused_or_degraded_by_policy() -> None:
    got = {
        "vitals": fresh(),
        "labs": Freshness(T - timedelta(hours=5), 5 * 3600.0, stale=True, missing=False),
        "medications": Freshness(None, None, stale=False, missing=True),
    }  # context: absent altogether
    a = core.assess(got, VIEWS)
    assert a.stale == ("labs",)
    assert a.missing == ("medications", "context")
    assert a.degraded_views == ("labs", "medications", "context")
    assert core.decide(a, "refuse") == "refuse"
    assert core.decide(a, "degrade") == "degraded"


def test_a_patient_missing_from_every_view_is_unknown_under_both_policies() -> None:
    a = core.assess({}, VIEWS)
    assert a.unknown
    assert core.decide(a, "refuse") == core.decide(a, "degrade") == "unknown"


def test_batch_ids_are_stable_and_distinct() -> None:
    a = core.batch_prediction_id("m", "3", "PT1", T)
    assert a == core.batch_prediction_id("m", "3", "PT1", T)
    assert a != core.batch_prediction_id("m", "4", "PT1", T)
    assert a != core.batch_prediction_id("m", "3", "PT1", T + timedelta(hours=1))


def test_hourly_steps_are_whole_hours_in_a_half_open_window() -> None:
    steps = hourly_steps(T - timedelta(minutes=30), T + timedelta(hours=2))
    assert [s.to_pydatetime() for s in steps] == [T, T + timedelta(hours=1)]
    assert len(hourly_steps(T, T)) == 0
    assert len(hourly_steps(T.replace(tzinfo=None), T.replace(tzinfo=None) + timedelta(hours=1))) == 1


def test_float4_arrays_travel_in_postgres_binary_format() -> None:
    raw = Float4ArrayDumper(np.ndarray).dump(np.array([1.5, np.nan, -2.0], dtype=np.float32))
    ndim, flags, oid, n, lbound = struct.unpack_from(">iiIii", raw)
    assert (ndim, flags, oid, n, lbound) == (1, 0, 700, 3, 1)
    cells = np.frombuffer(raw[20:], dtype=[("len", ">i4"), ("v", ">f4")])
    assert cells["len"].tolist() == [4, 4, 4]
    assert cells["v"][0] == 1.5
    assert np.isnan(cells["v"][1])


def test_libpq_dsn_from_the_sqlalchemy_url() -> None:
    dsn = libpq_dsn("postgresql+psycopg://u:p%40ss@127.0.0.1:5432/clinops")
    assert dsn == "postgresql://u:p%40ss@127.0.0.1:5432/clinops"


def test_bentoml_validation_errors_get_the_documented_string_detail() -> None:
    body = {"error": "1 validation error for Input", "detail": [{"loc": ["patient_ids"], "msg": "List too long"}]}
    out = json.loads(_documented_400(json.dumps(body).encode()))
    assert out == {"error": "1 validation error for Input", "detail": "patient_ids: List too long"}
    assert _documented_400(b"not json") == b"not json"


def test_requests_refuse_extra_fields_bad_ids_and_oversized_batches() -> None:
    assert PredictRequest(patient_id="PT00042").patient_id == "PT00042"
    for bad in ({"patient_id": "PT1", "x": 1}, {"patient_id": ""}, {"patient_id": "a b"}, {"patient_id": "x" * 65}):
        with pytest.raises(ValidationError):
            PredictRequest.model_validate(bad)
    with pytest.raises(ValidationError, match="patient_ids"):
        BatchRequest(patient_ids=[])
    with pytest.raises(ValidationError, match="patient_ids"):
        BatchRequest(patient_ids=[f"PT{i}" for i in range(MAX_BATCH + 1)])


def test_audit_row_places_event_times_in_the_order_s_view_order() -> None:
    class Pkg:
        name = "m"

        @staticmethod
        def risk_level(p: float) -> str:
            return "HIGH" if p > 0.5 else "LOW"

    order = core.FeatureOrder("o1", "svc", ("a", "b"), ("labs", "vitals"))
    champ = core.Champion(Pkg(), "7", order)  # type: ignore[arg-type]
    a = core.assess({"vitals": fresh(10)}, ("vitals", "labs"))
    row = core.audit_row(uuid.uuid4(), "PT1", T, 0.9, champ, np.zeros(2, np.float32), a, latency_ms=1.0)
    assert row.feature_event_times == [None, T - timedelta(seconds=10)]
    assert row.risk_level == "HIGH"
    assert row.degraded
    assert row.missing_views == ("labs",)
