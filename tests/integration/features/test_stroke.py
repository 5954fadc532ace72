"""The stroke views from clean source tables: one view per source, the computed-risk view as of each
row's time, the training rows, quarantine of bad rows and a verification that fails loudly."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from clinops_common.features.definitions import FEATURE_SERVICES, STROKE_EXCLUDED, STROKE_SOURCE_VIEWS, STROKE_VIEW
from clinops_common.lake import BATCH_SCHEMAS, BATCH_TABLES
from clinops_featurizer import sample
from clinops_featurizer.stroke import StrokeVerificationError, clean, stroke_views, verify_stroke

AS_OF = date(2026, 3, 1)


def tables(spark: SparkSession, override: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, DataFrame]:
    rows = {**sample.batch_tables(), **(override or {})}
    return {t: spark.createDataFrame(rows[t], BATCH_SCHEMAS[t].replace(" NOT NULL", "")) for t in BATCH_TABLES}  # type: ignore[type-var]


def at(df: DataFrame, when: date) -> dict[str, dict[str, Any]]:
    ts = datetime(when.year, when.month, when.day)
    return {r["patient_id"]: r.asDict() for r in df.collect() if r["event_timestamp"] == ts}


def test_stroke_views_one_per_source_and_the_risk_view_as_of_the_run(spark: SparkSession) -> None:
    views = stroke_views(tables(spark), as_of=AS_OF)  # type: ignore[arg-type]
    assert set(views) == {*(v.name for v in STROKE_SOURCE_VIEWS.values()), "stroke_risk", "stroke_label"}
    for table, view in STROKE_SOURCE_VIEWS.items():
        assert tuple(views[view.name].columns) == view.columns, table
    assert tuple(views["stroke_risk"].columns) == STROKE_VIEW.columns
    rows = at(views["stroke_risk"], AS_OF)
    s1, s2, s3 = rows["S1"], rows["S2"], rows["S3"]
    assert (s1["age"], s1["age_group"], s1["condition_count"], s1["has_multiple_conditions"]) == (81, "80+", 3, True)
    # 0.4*81 + 15 + 15 + 10 + 10 (glucose 230) + 5 (bmi 32) + 10 (smokes) = 97.4
    assert s1["risk_score"] == pytest.approx(97.4)
    assert s1["risk_category"] == "high"
    assert (s1["was_hospitalized"], s1["is_currently_admitted"], s1["days_since_admission"]) == (True, True, 9)
    assert s2["risk_score"] == pytest.approx(0.4 * 31)
    assert (s2["risk_category"], s2["was_hospitalized"], s2["days_since_admission"]) == ("low", False, None)
    assert s3["days_since_stroke"] == 273
    assert s3["is_currently_admitted"] is False
    checks = verify_stroke(views, expected_patients=3)
    assert all(c.failures == 0 for c in checks)


def test_a_later_visit_is_invisible_to_the_row_of_an_earlier_one(spark: SparkSession) -> None:
    batch = sample.batch_tables()
    first = batch["clinical_measurements"][0]  # S1 on 2026-02-01, glucose 230
    batch["clinical_measurements"].append({**first, "visit_date": date(2026, 2, 25), "avg_glucose_level": 100.0})
    views = stroke_views(tables(spark, batch), as_of=AS_OF)  # type: ignore[arg-type]
    risk = views["stroke_risk"]
    early, late = at(risk, date(2026, 2, 1))["S1"], at(risk, date(2026, 2, 25))["S1"]
    # on 2026-02-01 the admission of 2026-02-20 has not happened and glucose 230 counts 10 points
    assert (early["was_hospitalized"], late["was_hospitalized"]) == (False, True)
    assert early["risk_score"] - late["risk_score"] == pytest.approx(10.0)
    labels = {
        (r["patient_id"], r["event_timestamp"].date()): r["stroke_within_1y"] for r in views["stroke_label"].collect()
    }
    # S3's stroke (2025-06-01) precedes its only visit: no training row; S1 has one per visit
    assert labels == {("S1", date(2026, 2, 1)): 0.0, ("S1", date(2026, 2, 25)): 0.0, ("S2", date(2026, 2, 1)): 0.0}


def test_training_rows_are_labelled_by_a_stroke_within_a_year_and_stop_at_the_stroke(spark: SparkSession) -> None:
    batch = sample.batch_tables()
    s3 = batch["clinical_measurements"][2]
    batch["clinical_measurements"] += [
        {**s3, "visit_date": date(2024, 3, 1)},  # 457 days before the stroke: 0
        {**s3, "visit_date": date(2025, 1, 10)},  # 142 days before: 1
    ]
    views = stroke_views(tables(spark, batch), as_of=AS_OF)  # type: ignore[arg-type]
    got = {
        r["event_timestamp"].date(): r["stroke_within_1y"]
        for r in views["stroke_label"].collect()
        if r["patient_id"] == "S3"
    }
    assert got == {date(2024, 3, 1): 0.0, date(2025, 1, 10): 1.0}


def test_bad_rows_are_quarantined_with_the_reason_and_counted(spark: SparkSession) -> None:
    rows = sample.batch_tables()["clinical_measurements"]
    bad = [*rows, {**rows[0]}, {**rows[1], "patient_id": None}, {**rows[2], "visit_date": None}]
    df = spark.createDataFrame(bad, BATCH_SCHEMAS["clinical_measurements"].replace(" NOT NULL", ""))
    got = clean("clinical_measurements", df)
    assert got.counts == {"read": 6, "quarantined": 4, "skipped": 0, "kept": 2}  # both rows of S1's duplicate
    reasons = sorted(r["reason"] for r in got.quarantine.collect())
    dup = "duplicate (patient_id, visit_date)"
    assert reasons == [dup, dup, "null patient_id", "null visit_date"]
    assert sorted(r["patient_id"] for r in got.rows.collect()) == ["S2", "S3"]


def test_stroke_service_leaves_out_identifying_and_label_fields() -> None:
    svc = FEATURE_SERVICES["stroke_risk_v1"]
    assert set(svc.feature_names) == {
        "age",
        "gender",
        "avg_glucose_level",
        "bmi",
        "risk_score",
        "condition_count",
        "smoking_status",
        "hypertension",
    }
    assert set(svc.views_used) == {
        "stroke_risk",
        "stroke_demographics",
        "stroke_clinical",
        "stroke_lifestyle",
        "stroke_conditions",
    }
    every = {f for v in (*STROKE_SOURCE_VIEWS.values(), STROKE_VIEW) for f in v.feature_names}
    assert not set(STROKE_EXCLUDED) & every
    assert not {"stroke_date", "stroke_severity", "recovery_status", "stroke_probability", "days_since_stroke"} & set(
        svc.feature_names
    )


def test_verification_fails_loudly_on_bad_rows(spark: SparkSession) -> None:
    bad = sample.batch_tables()
    bad["clinical_measurements"][0]["bmi"] = 400.0  # a unit error
    bad["demographics"][1]["date_of_birth"] = date(1800, 1, 1)
    views = stroke_views(tables(spark, bad), as_of=AS_OF)  # type: ignore[arg-type]
    with pytest.raises(StrokeVerificationError) as err:
        verify_stroke(views, expected_patients=4)
    message = str(err.value)
    assert "patients == 4" in message
    assert "stroke_clinical: bmi in [10, 100]: 1 rows" in message
    assert "stroke_risk: age in [0, 120]: 2 rows" in message
