"""The stroke cohort job: five batch tables joined on patient_id, features known by heart, and a
verification step that fails loudly."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from clinops_common.features.definitions import FEATURE_SERVICES, STROKE_EXCLUDED, STROKE_VIEW
from clinops_common.lake import BATCH_SCHEMAS, BATCH_TABLES
from clinops_featurizer import sample
from clinops_featurizer.stroke import StrokeVerificationError, stroke_features, verify_stroke


def tables(spark: SparkSession, override: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, DataFrame]:
    rows = {**sample.batch_tables(), **(override or {})}
    return {t: spark.createDataFrame(rows[t], BATCH_SCHEMAS[t].replace(" NOT NULL", "")) for t in BATCH_TABLES}  # type: ignore[type-var]


def test_stroke_features_from_the_five_tables(spark: SparkSession) -> None:
    df = stroke_features(tables(spark), as_of=date(2026, 3, 1))  # type: ignore[arg-type]
    assert tuple(df.columns) == STROKE_VIEW.columns
    rows = {r["patient_id"]: r.asDict() for r in df.collect()}
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
    checks = verify_stroke(df, expected_patients=3)
    assert all(c.failures == 0 for c in checks)


def test_stroke_service_leaves_out_identifying_fields() -> None:
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
    assert not set(STROKE_EXCLUDED) & set(STROKE_VIEW.feature_names)


def test_verification_fails_loudly_on_bad_rows(spark: SparkSession) -> None:
    bad = sample.batch_tables()
    bad["clinical_measurements"][0]["bmi"] = 400.0  # a unit error
    bad["demographics"][1]["date_of_birth"] = date(1800, 1, 1)
    df = stroke_features(tables(spark, bad), as_of=date(2026, 3, 1))  # type: ignore[arg-type]
    with pytest.raises(StrokeVerificationError) as err:
        verify_stroke(df, expected_patients=4)
    message = str(err.value)
    assert "rows == 4" in message
    assert "bmi in [10, 100]: 1 rows" in message
    assert "age in [0, 120]: 1 rows" in message
