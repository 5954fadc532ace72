"""The stroke cohort: five source tables -> one feature view per source, the computed-risk view
``stroke_risk`` and the label view ``stroke_label``, every value as of its row's time; verified.

Each source view holds the source's rows, its event time taken from the source's own timestamp
column (``registration_date``, ``visit_date``, ``admission_date``, ``survey_date``, ``recorded_at``).
``stroke_risk`` has one row per patient at each clinic visit and at the run's as-of date; each of
its values comes from the latest source rows at or before that time and within the source view's
TTL, so a visit after the row's time is invisible to it.

risk_score (0-100, clipped) = 0.4 x age (capped at 100) + 15 hypertension + 15 heart disease
+ 10 diabetes + 10 if avg glucose > 200 mg/dL (5 if > 140) + 5 if BMI >= 30 + 10 if smoking now
(5 if formerly). risk_category: low < 30 <= moderate < 60 <= high.

Training rows (``stroke_label``): one per clinic visit before the patient's stroke, label 1 if the
stroke follows within STROKE_HORIZON. Rows with a null patient id or time, a duplicated key or a
value of the wrong type are quarantined with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from clinops_common.features.definitions import (
    CREATED_TIMESTAMP,
    EVENT_TIMESTAMP,
    STROKE_HORIZON,
    STROKE_LABEL_VIEW,
    STROKE_SOURCE_VIEWS,
    STROKE_VIEW,
)
from clinops_common.lake import BATCH_TIMESTAMPS, BatchTable
from clinops_featurizer.sources import BAD_TYPE

KEY = "patient_id"
T = "_t"
# Tables with one row per patient (the others have one per visit, admission, survey or record).
ONE_PER_PATIENT: frozenset[BatchTable] = frozenset({"demographics"})
# hospital_admin rows without an admission date say "never admitted": dropped, not quarantined.
OPTIONAL_TIME: frozenset[BatchTable] = frozenset({"hospital_admin"})
CASTS = {"float64": "double", "int64": "bigint", "bool": "boolean", "string": "string"}


class StrokeVerificationError(ValueError):
    """The stroke features broke a row-count, key, null or range check; the message lists every failure."""


@dataclass(frozen=True)
class Cleaned:
    """A source's usable rows, its quarantined rows (with ``reason``) and the counts."""

    rows: DataFrame
    quarantine: DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def clean(table: BatchTable, df: DataFrame) -> Cleaned:
    """Quarantine rows with a null patient id or time, a duplicated key or a wrong-typed value."""
    ts = BATCH_TIMESTAMPS[table]
    key = [KEY] if table in ONE_PER_PATIENT else [KEY, ts]
    if BAD_TYPE not in df.columns:
        df = df.withColumn(BAD_TYPE, F.lit(""))
    dup = F.count(F.lit(1)).over(Window.partitionBy(*key)) > 1
    no_time = F.col(ts).isNull()
    skipped = no_time if table in OPTIONAL_TIME else F.lit(False)
    reason = (
        F.when(F.col(KEY).isNull(), F.lit("null patient_id"))
        .when(no_time & ~skipped, F.lit(f"null {ts}"))
        .when(F.col(BAD_TYPE) != "", F.concat(F.lit("wrong type: "), F.col(BAD_TYPE)))
        .when(dup, F.lit(f"duplicate ({', '.join(key)})"))
    )
    marked = df.withColumn("reason", F.when(~skipped | F.col(KEY).isNull(), reason)).cache()
    counts_row = marked.agg(
        F.count(F.lit(1)).alias("read"),
        F.sum(F.col("reason").isNotNull().cast("int")).alias("quarantined"),
        F.sum((F.col("reason").isNull() & skipped).cast("int")).alias("skipped"),
    ).first()
    assert counts_row is not None
    counts = {k: int(v or 0) for k, v in counts_row.asDict().items()}
    counts["kept"] = counts["read"] - counts["quarantined"] - counts["skipped"]
    good = marked.filter(F.col("reason").isNull() & ~skipped).drop("reason", BAD_TYPE)
    bad = marked.filter(F.col("reason").isNotNull()).select(
        F.lit(table).alias("source"),
        "reason",
        F.col(KEY),
        F.to_json(F.struct(*[c for c in df.columns if c != BAD_TYPE])).alias("row"),
    )
    return Cleaned(good, bad, counts)


def _ts(col: str) -> Column:
    return F.col(col).cast("timestamp")


def source_view(table: BatchTable, df: DataFrame) -> DataFrame:
    """A source's rows as its feature view: patient_id, event/created timestamp = the source's time, features."""
    view = STROKE_SOURCE_VIEWS[table]
    ts = _ts(BATCH_TIMESTAMPS[table])
    return df.select(
        KEY,
        ts.alias(EVENT_TIMESTAMP),
        ts.alias(CREATED_TIMESTAMP),
        *[F.col(f.name).cast(CASTS[f.dtype]).alias(f.name) for f in view.features],
    )


# What the computed-risk view takes from each source's latest row.
RISK_INPUTS: dict[BatchTable, tuple[str, ...]] = {
    "demographics": ("date_of_birth",),
    "clinical_measurements": ("avg_glucose_level", "bmi"),
    "hospital_admin": ("admission_date", "discharge_status"),
    "lifestyle": ("smoking_status",),
    "conditions": ("hypertension", "heart_disease", "diabetes", "stroke_occurred", "stroke_date"),
}


def _as_of_rows(anchors: DataFrame, tables: dict[BatchTable, DataFrame]) -> DataFrame:
    """For each anchor (patient_id, _t): per source, its latest row with time in [_t - ttl, _t], as
    the columns of RISK_INPUTS. One shuffle: anchors and source rows in one frame, one window per patient."""
    rows = anchors.select(KEY, T, F.lit(1).alias("_anchor"))
    for table, cols in RISK_INPUTS.items():
        ts = _ts(BATCH_TIMESTAMPS[table])
        packed = F.struct(ts.alias("ts"), *[F.col(c) for c in cols]).alias(f"_s_{table}")
        rows = rows.unionByName(
            tables[table].select(KEY, ts.alias(T), F.lit(0).alias("_anchor"), packed), allowMissingColumns=True
        )
    # source rows at an anchor's time come first: "at or before" includes them
    win = Window.partitionBy(KEY).orderBy(T, "_anchor").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    latest = rows.select(
        KEY, T, "_anchor", *[F.last(f"_s_{t}", ignorenulls=True).over(win).alias(f"_s_{t}") for t in RISK_INPUTS]
    ).filter("_anchor = 1")
    out = []
    for table, cols in RISK_INPUTS.items():
        ttl_s = int(STROKE_SOURCE_VIEWS[table].ttl.total_seconds())
        st = F.col(f"_s_{table}")
        fresh = st.isNotNull() & (st["ts"] >= F.col(T) - F.expr(f"INTERVAL {ttl_s} SECONDS"))
        out += [F.when(fresh, st[c]).alias(c) for c in cols]
    return latest.select(KEY, T, *out)


def _flag(c: str) -> Column:
    return F.coalesce(F.col(c).cast("int"), F.lit(0))


def registered_visits(visits: DataFrame, demographics: DataFrame) -> DataFrame:
    """Visits (patient_id, _t) on or after the patient's registration: before it nothing about the
    patient (age, gender) is on record, so such visits make no row."""
    reg = demographics.select(KEY, _ts("registration_date").alias("_reg"))
    return visits.join(reg, KEY).filter(F.col(T) >= F.col("_reg")).drop("_reg")


def risk_view(tables: dict[BatchTable, DataFrame], *, as_of: date) -> DataFrame:
    """The computed-risk view: one row per patient at each visit and at ``as_of``, values as of then."""
    demo = tables["demographics"]
    visits = tables["clinical_measurements"].select(KEY, _ts("visit_date").alias(T))
    anchors = (
        demo.select(KEY, F.lit(as_of).cast("timestamp").alias(T))
        .unionByName(registered_visits(visits, demo))
        .filter(F.col(T) <= F.lit(as_of).cast("timestamp"))
        .distinct()
    )
    df = _as_of_rows(anchors, tables).withColumnRenamed("admission_date", "_admitted")
    ref = F.to_date(F.col(T))
    age = F.floor(F.months_between(ref, F.col("date_of_birth")) / 12).cast("double")
    smoking = F.lower(F.coalesce(F.col("smoking_status"), F.lit("")))
    glucose, bmi = F.col("avg_glucose_level"), F.col("bmi")
    df = df.withColumn("age", age)
    score = (
        F.least(F.col("age"), F.lit(100)) * 0.4
        + _flag("hypertension") * 15
        + _flag("heart_disease") * 15
        + _flag("diabetes") * 10
        + F.when(glucose > 200, 10).when(glucose > 140, 5).otherwise(0)
        + F.when(bmi >= 30, 5).otherwise(0)
        + F.when(smoking.isin("smokes", "current"), 10).when(smoking.isin("formerly smoked", "former"), 5).otherwise(0)
    )
    stroke_known = F.col("stroke_occurred") & F.col("stroke_date").isNotNull() & (F.col("stroke_date") <= ref)
    df = df.withColumns(
        {
            "age_group": F.when(F.col("age") < 18, "0-17")
            .when(F.col("age") < 40, "18-39")
            .when(F.col("age") < 60, "40-59")
            .when(F.col("age") < 80, "60-79")
            .otherwise("80+"),
            "condition_count": (_flag("hypertension") + _flag("heart_disease") + _flag("diabetes")).cast("bigint"),
            "risk_score": F.greatest(F.lit(0.0), F.least(F.lit(100.0), score.cast("double"))),
            "days_since_stroke": F.when(stroke_known, F.datediff(ref, F.col("stroke_date"))).cast("double"),
            "was_hospitalized": F.col("_admitted").isNotNull(),
            "days_since_admission": F.datediff(ref, F.col("_admitted")).cast("double"),
            "is_currently_admitted": F.col("_admitted").isNotNull() & F.col("discharge_status").isNull(),
            EVENT_TIMESTAMP: F.col(T),
            CREATED_TIMESTAMP: F.col(T),
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
    return df.select(
        KEY,
        EVENT_TIMESTAMP,
        CREATED_TIMESTAMP,
        *[F.col(f.name).cast(CASTS[f.dtype]).alias(f.name) for f in STROKE_VIEW.features],
    )


def label_view(clinical: DataFrame, conditions: DataFrame, demographics: DataFrame, *, as_of: date) -> DataFrame:
    """Training rows: one per visit on or after registration and before the patient's stroke (and at
    or before ``as_of``), labelled 1 if the stroke falls in (visit, visit + STROKE_HORIZON]. Patients
    without a conditions record get no rows."""
    strokes = conditions.groupBy(KEY).agg(
        F.min(F.when(F.col("stroke_occurred"), F.col("stroke_date"))).alias("_stroke"),
    )
    horizon = STROKE_HORIZON.days
    seen = registered_visits(clinical.select(KEY, _ts("visit_date").alias(T)), demographics)
    visits = seen.select(KEY, F.to_date(T).alias("visit_date")).distinct().join(strokes, KEY)
    visits = visits.filter(F.col("visit_date") <= F.lit(as_of))
    visits = visits.filter(F.col("_stroke").isNull() | (F.col("visit_date") < F.col("_stroke")))
    label = F.when(F.col("_stroke").isNotNull() & (F.datediff("_stroke", "visit_date") <= horizon), 1.0).otherwise(0.0)
    ts = _ts("visit_date")
    return visits.select(
        KEY, ts.alias(EVENT_TIMESTAMP), ts.alias(CREATED_TIMESTAMP), label.alias(STROKE_LABEL_VIEW.features[0].name)
    )


def stroke_views(tables: dict[BatchTable, DataFrame], *, as_of: date) -> dict[str, DataFrame]:
    """Every stroke view from clean source tables: the five source views, stroke_risk, stroke_label."""
    out = {STROKE_SOURCE_VIEWS[t].name: source_view(t, df) for t, df in tables.items()}
    out[STROKE_VIEW.name] = risk_view(tables, as_of=as_of)
    out[STROKE_LABEL_VIEW.name] = label_view(
        tables["clinical_measurements"], tables["conditions"], tables["demographics"], as_of=as_of
    )
    return out


@dataclass(frozen=True)
class Check:
    name: str
    failures: int


RANGES: dict[str, tuple[float, float]] = {
    "age": (0, 120),
    "risk_score": (0, 100),
    "condition_count": (0, 3),
    "days_since_stroke": (0, 365 * 120),
    "days_since_admission": (0, 365 * 120),
}
SOURCE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "stroke_clinical": {"bmi": (10, 100), "avg_glucose_level": (20, 1000), "heart_rate": (20, 300)},
}
NOT_NULL = (KEY, EVENT_TIMESTAMP, "age", "age_group", "risk_score", "risk_category", "condition_count")


def _range_checks(df: DataFrame, ranges: dict[str, tuple[float, float]], prefix: str) -> list[Column]:
    return [
        F.sum(((F.col(c) < lo) | (F.col(c) > hi)).cast("int")).alias(f"{prefix}range:{c}")
        for c, (lo, hi) in ranges.items()
    ]


def verify_stroke(views: dict[str, DataFrame], expected_patients: int) -> list[Check]:
    """Counts, key uniqueness, nulls and ranges of the risk view and the source views; raises with
    every failure listed."""
    risk = views[STROKE_VIEW.name]
    aggs = [
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(KEY, EVENT_TIMESTAMP).alias("keys"),
        F.countDistinct(KEY).alias("patients"),
    ]
    aggs += [F.sum(F.col(c).isNull().cast("int")).alias(f"null:{c}") for c in NOT_NULL]
    aggs += _range_checks(risk, RANGES, "")
    row = risk.agg(*aggs).first()
    assert row is not None
    r = row.asDict()
    checks = [
        Check(f"patients == {expected_patients} demographics patients", abs(int(r["patients"]) - expected_patients)),
        Check("one stroke_risk row per (patient_id, event_timestamp)", int(r["rows"]) - int(r["keys"])),
        *(Check(f"stroke_risk: no null {c}", int(r[f"null:{c}"] or 0)) for c in NOT_NULL),
        *(Check(f"stroke_risk: {c} in [{lo}, {hi}]", int(r[f"range:{c}"] or 0)) for c, (lo, hi) in RANGES.items()),
    ]
    for name, ranges in SOURCE_RANGES.items():
        srow = views[name].agg(*_range_checks(views[name], ranges, "")).first()
        assert srow is not None
        s = srow.asDict()
        checks += [Check(f"{name}: {c} in [{lo}, {hi}]", int(s[f"range:{c}"] or 0)) for c, (lo, hi) in ranges.items()]
    failed = [c for c in checks if c.failures]
    if failed:
        raise StrokeVerificationError(
            "stroke features failed verification: " + "; ".join(f"{c.name}: {c.failures} rows" for c in failed)
        )
    return checks
