"""The featurizer's transformations on hand-built silver rows whose features are known by heart."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from clinops_common.features.definitions import FEATURE_VIEWS
from clinops_common.lake import BATCH_SCHEMAS, SILVER_SCHEMAS
from clinops_featurizer import core
from clinops_featurizer.sample import T0, demographics, tables


def frame(spark: SparkSession, rows: list[dict[str, Any]], ddl: str) -> DataFrame:
    return spark.createDataFrame(rows, schema=ddl.replace(" NOT NULL", ""))


@pytest.fixture(scope="module")
def views(spark: SparkSession) -> dict[str, dict[tuple[str, Any], dict[str, Any]]]:
    t = tables()
    out = core.streaming_features(
        frame(spark, t["measurements"], SILVER_SCHEMAS["measurements"]),
        frame(spark, t["medications"], SILVER_SCHEMAS["medications"]),
        frame(spark, t["admissions"], SILVER_SCHEMAS["admissions"]),
        frame(spark, t["outcomes"], SILVER_SCHEMAS["outcomes"]),
        frame(spark, demographics(), BATCH_SCHEMAS["demographics"]),
    )
    result = {}
    for name, df in out.items():
        assert tuple(df.columns) == FEATURE_VIEWS[name].columns
        result[name] = {(r["patient_id"], r["event_timestamp"]): r.asDict() for r in df.collect()}
    return result


def step(hours: int) -> Any:
    return (T0 + timedelta(hours=hours)).replace(tzinfo=None)


def test_one_row_per_patient_per_hour_step(views: dict[str, Any]) -> None:
    keys = set(views["vitals"])
    assert ("PT1", step(1)) in keys
    assert ("PT2", step(2)) in keys
    assert all(set(v) == keys for v in views.values())


def test_windows_of_heart_rate(views: dict[str, Any]) -> None:
    row = views["vitals"][("PT1", step(1))]
    assert row["heart_rate_mean_1h"] == pytest.approx(70.0)
    assert row["heart_rate_std_1h"] == pytest.approx(10.0)
    assert (row["heart_rate_min_1h"], row["heart_rate_max_1h"], row["heart_rate_last_1h"]) == (60, 80, 80)
    assert row["heart_rate_count_1h"] == 3
    assert row["heart_rate_slope_1h"] == pytest.approx(60.0)  # +10 bpm per 10 min
    later = views["vitals"][("PT1", step(2))]
    assert later["heart_rate_count_1h"] == 0
    assert later["heart_rate_mean_1h"] is None
    assert later["heart_rate_count_6h"] == 3
    assert later["heart_rate_last_24h"] == 80


def test_derived_vitals(views: dict[str, Any]) -> None:
    row = views["vitals"][("PT1", step(1))]
    assert row["pulse_pressure"] == 40
    assert row["mean_arterial_pressure"] == pytest.approx(280 / 3)
    assert row["shock_index"] == pytest.approx(80 / 120)
    assert row["hr_x_temperature"] == pytest.approx(80 * 37)
    assert row["heart_rate_trend_1h_24h"] == 0


def test_created_timestamp_is_when_the_inputs_became_known(views: dict[str, Any]) -> None:
    vit = views["vitals"][("PT1", step(1))]
    assert vit["created_timestamp"] == step(0) + timedelta(minutes=31)
    lab = views["labs"][("PT1", step(1))]
    assert lab["creatinine_last_1h"] == 2.5
    assert lab["created_timestamp"] == step(5) + timedelta(minutes=41)  # backfilled 5 hours late
    assert views["labs"][("PT2", step(2))]["created_timestamp"] == step(2)  # no inputs: the step itself


def test_medication_flags_and_interaction(views: dict[str, Any]) -> None:
    row = views["medications"][("PT1", step(1))]
    assert (row["medications_24h"], row["distinct_drugs_24h"]) == (2, 2)
    assert row["on_anticoagulant_24h"] == 1
    assert row["on_antiplatelet_24h"] == 1
    assert row["on_opioid_24h"] == 0
    assert row["bleeding_risk_interaction_24h"] == 1
    assert views["medications"][("PT2", step(2))]["medications_24h"] == 0


def test_context_and_label(views: dict[str, Any]) -> None:
    row = views["context"][("PT1", step(1))]
    assert (row["trial_arm"], row["department"], row["is_admitted"], row["gender"]) == ("treatment", "ICU", 1, "F")
    assert row["hours_since_admission"] == pytest.approx(55 / 60)
    assert row["age_years"] == pytest.approx(76, abs=0.01)
    assert row["measurements_24h"] == 7  # the creatinine counts: its event time is inside the window
    assert row["abnormal_labs_24h"] == 1
    assert row["hours_observed"] == pytest.approx(50 / 60)
    other = views["context"][("PT2", step(2))]
    assert other["is_admitted"] == 0
    assert other["trial_arm"] is None
    assert other["hours_since_admission"] is None
    assert math.isclose(other["hours_observed"], 0.5)
    labels = views["adverse_event_label"]
    assert labels[("PT1", step(1))]["adverse_event_24h"] == 1  # the event at 3h is in (1h, 25h]
    assert labels[("PT2", step(2))]["adverse_event_24h"] == 0


def test_partial_runs_keep_only_their_steps(spark: SparkSession) -> None:
    t = tables()
    meas = frame(spark, t["measurements"], SILVER_SCHEMAS["measurements"])
    grid = core.hourly_grid(meas, start="2026-03-01T10:00:00", end="2026-03-01T11:00:00")
    assert {(r["patient_id"], r["event_timestamp"]) for r in grid.collect()} == {("PT1", step(2)), ("PT2", step(2))}
