"""The stroke cohort: five batch tables joined on patient_id -> the ``stroke_risk`` view, verified.

risk_score (0-100, clipped) = 0.4 x age (capped at 100) + 15 hypertension + 15 heart disease
+ 10 diabetes + 10 if avg glucose > 200 mg/dL (5 if > 140) + 5 if BMI >= 30 + 10 if smoking now
(5 if formerly). risk_category: low < 30 <= moderate < 60 <= high.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from clinops_common.features.definitions import CREATED_TIMESTAMP, EVENT_TIMESTAMP, STROKE_VIEW
from clinops_common.lake import BATCH_TIMESTAMPS, BatchTable

KEY = "patient_id"
ADMITTED_STATUSES = ("", "admitted", "inpatient", "in_hospital")


class StrokeVerificationError(ValueError):
    """The stroke features broke a row-count, null or range check; the message lists every failure."""


def _latest_per_patient(df: DataFrame, table: BatchTable) -> DataFrame:
    ts = BATCH_TIMESTAMPS[table]
    win = Window.partitionBy(KEY).orderBy(F.col(ts).desc_nulls_last())
    return df.withColumn("_rn", F.row_number().over(win)).filter("_rn = 1").drop("_rn")


def _flag(c: str) -> Column:
    return F.coalesce(F.col(c).cast("int"), F.lit(0))


def stroke_features(tables: dict[BatchTable, DataFrame], *, as_of: date) -> DataFrame:
    """One row per patient of ``demographics``; the other tables may lack a patient (nulls)."""
    latest = {name: _latest_per_patient(df, name) for name, df in tables.items()}
    df = latest["demographics"].select(KEY, "date_of_birth", "gender", "registration_date")
    df = df.join(latest["clinical_measurements"].select(KEY, "visit_date", "avg_glucose_level", "bmi"), KEY, "left")
    df = df.join(latest["hospital_admin"].select(KEY, "admission_date", "discharge_status"), KEY, "left")
    df = df.join(latest["lifestyle"].select(KEY, "survey_date", "smoking_status"), KEY, "left")
    df = df.join(
        latest["conditions"].select(
            KEY, "recorded_at", "hypertension", "heart_disease", "diabetes", "stroke_occurred", "stroke_date"
        ),
        KEY,
        "left",
    )
    ref = F.lit(as_of).cast("date")
    age = F.floor(F.months_between(ref, F.col("date_of_birth")) / 12)
    smoking = F.lower(F.coalesce(F.col("smoking_status"), F.lit("")))
    glucose, bmi = F.col("avg_glucose_level"), F.col("bmi")
    score = (
        F.least(F.col("age"), F.lit(100)) * 0.4
        + _flag("hypertension") * 15
        + _flag("heart_disease") * 15
        + _flag("diabetes") * 10
        + F.when(glucose > 200, 10).when(glucose > 140, 5).otherwise(0)
        + F.when(bmi >= 30, 5).otherwise(0)
        + F.when(smoking == "smokes", 10).when(smoking == "formerly smoked", 5).otherwise(0)
    )
    status = F.lower(F.coalesce(F.col("discharge_status"), F.lit("")))
    event = F.greatest(*(F.col(c) for c in BATCH_TIMESTAMPS.values())).cast("timestamp")
    df = df.withColumn("age", age.cast("double"))
    df = df.withColumns(
        {
            "age_group": F.when(F.col("age") < 18, "0-17")
            .when(F.col("age") < 40, "18-39")
            .when(F.col("age") < 60, "40-59")
            .when(F.col("age") < 80, "60-79")
            .otherwise("80+"),
            "condition_count": (_flag("hypertension") + _flag("heart_disease") + _flag("diabetes")).cast("bigint"),
            "risk_score": F.greatest(F.lit(0.0), F.least(F.lit(100.0), score.cast("double"))),
            "days_since_stroke": F.when(
                F.col("stroke_occurred") & F.col("stroke_date").isNotNull(), F.datediff(ref, F.col("stroke_date"))
            ).cast("double"),
            "was_hospitalized": F.col("admission_date").isNotNull(),
            "days_since_admission": F.datediff(ref, F.col("admission_date")).cast("double"),
            "is_currently_admitted": F.col("admission_date").isNotNull() & status.isin(list(ADMITTED_STATUSES)),
            EVENT_TIMESTAMP: event,
            CREATED_TIMESTAMP: event,
        }
    )
    df = df.withColumns(
        {
            "has_multiple_conditions": F.col("condition_count") >= 2,
            "risk_category": F.when(F.col("risk_score") < 30, "low")
            .when(F.col("risk_score") < 60, "moderate")
            .otherwise("high"),
        }
    )
    casts = {"float64": "double", "int64": "bigint", "bool": "boolean", "string": "string"}
    return df.select(
        KEY,
        EVENT_TIMESTAMP,
        CREATED_TIMESTAMP,
        *[F.col(f.name).cast(casts[f.dtype]).alias(f.name) for f in STROKE_VIEW.features],
    )


@dataclass(frozen=True)
class Check:
    name: str
    failures: int


RANGES: dict[str, tuple[float, float]] = {
    "age": (0, 120),
    "risk_score": (0, 100),
    "bmi": (10, 100),
    "avg_glucose_level": (20, 1000),
    "condition_count": (0, 3),
    "days_since_stroke": (0, 365 * 120),
    "days_since_admission": (0, 365 * 120),
}
NOT_NULL = (KEY, EVENT_TIMESTAMP, "age", "age_group", "risk_score", "risk_category", "condition_count")


def verify_stroke(features: DataFrame, expected_patients: int) -> list[Check]:
    """Row count, uniqueness, nulls and ranges in one pass; raises with every failure listed."""
    aggs = [F.count(F.lit(1)).alias("rows"), F.countDistinct(KEY).alias("patients")]
    aggs += [F.sum(F.col(c).isNull().cast("int")).alias(f"null:{c}") for c in NOT_NULL]
    aggs += [
        F.sum(((F.col(c) < lo) | (F.col(c) > hi)).cast("int")).alias(f"range:{c}") for c, (lo, hi) in RANGES.items()
    ]
    row = features.agg(*aggs).first()
    assert row is not None
    r = row.asDict()
    checks = [
        Check(f"rows == {expected_patients} demographics patients", abs(int(r["rows"]) - expected_patients)),
        Check("one row per patient", int(r["rows"]) - int(r["patients"])),
        *(Check(f"no null {c}", int(r[f"null:{c}"] or 0)) for c in NOT_NULL),
        *(Check(f"{c} in [{lo}, {hi}]", int(r[f"range:{c}"] or 0)) for c, (lo, hi) in RANGES.items()),
    ]
    failed = [c for c in checks if c.failures]
    if failed:
        raise StrokeVerificationError(
            "stroke features failed verification: " + "; ".join(f"{c.name}: {c.failures} rows" for c in failed)
        )
    return checks
