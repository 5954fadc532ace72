"""Silver -> feature views, as pure functions of Spark DataFrames (no session, no I/O here).

Every output row is one patient at one hourly step ``t`` (``event_timestamp``); a window of length
w covers (t - w, t]. ``created_timestamp`` is the latest ``ingested_at`` among the inputs behind the
row (the step itself when there are none): the time the row's values became knowable.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from clinops_common.features.definitions import (
    ADMISSION_EVENTS,
    ADVERSE_EVENT_TYPES,
    CONTEXT_VIEW,
    CREATED_TIMESTAMP,
    DRUG_CLASSES,
    EVENT_TIMESTAMP,
    LABEL_VIEW,
    LABS_VIEW,
    MEDICATIONS_VIEW,
    STATS,
    VITALS_VIEW,
    WINDOWS,
    FeatureView,
)
from clinops_common.vocabulary import LABS, MEASUREMENTS, VITALS

KEY = "patient_id"
HOUR_US = 3_600_000_000
SLOPE_ORIGIN_US = 1_577_836_800_000_000  # 2020-01-01: keeps the slope's x small


def us(td: timedelta) -> int:
    return int(td.total_seconds() * 1_000_000)


def hourly_grid(*events: DataFrame, start: str | None = None, end: str | None = None) -> DataFrame:
    """One row per patient per hour step, from the hour after its first event to the hour after its
    last (``event_time`` of every given table). ``start``/``end`` (ISO times) keep steps in [start, end)."""
    times = None
    for df in events:
        part = df.select(KEY, F.col("event_time"))
        times = part if times is None else times.unionByName(part)
    assert times is not None
    bounds = times.groupBy(KEY).agg(F.min("event_time").alias("lo"), F.max("event_time").alias("hi"))
    one_hour = F.expr("INTERVAL 1 HOUR")
    grid = bounds.select(
        KEY,
        F.explode(
            F.sequence(F.date_trunc("hour", "lo") + one_hour, F.date_trunc("hour", "hi") + one_hour, one_hour)
        ).alias(EVENT_TIMESTAMP),
    )
    if start:
        grid = grid.filter(F.col(EVENT_TIMESTAMP) >= F.lit(start).cast("timestamp"))
    if end:
        grid = grid.filter(F.col(EVENT_TIMESTAMP) < F.lit(end).cast("timestamp"))
    return grid


def _latest(value: str | Column, *order: str) -> Column:
    """The value of the latest non-null input in the frame (ties: later ingested, then larger)."""
    v = F.col(value) if isinstance(value, str) else value
    return F.max_by(v, F.when(v.isNotNull() & ~F.col("is_step"), F.struct(*order, v)))


def _abnormal(measurement: Column, value: Column) -> Column:
    expr = F.lit(0)
    for name, m in MEASUREMENTS.items():
        lo, hi = m.normal
        expr = F.when((measurement == name) & ((value < lo) | (value > hi)), 1).otherwise(expr)
    return expr


def measurement_windows(measurements: DataFrame, grid: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """Wide: per (patient, step) ``<m>_<stat>_<w>`` for every measurement in ``names``, plus
    ``<m>_created`` and ``<m>_abnormal_24h`` helpers."""
    events = measurements.filter(F.col("measurement").isin(list(names))).select(
        KEY,
        "measurement",
        F.col("event_time").alias("ts"),
        F.col("value").cast("double").alias("value"),
        "ingested_at",
        _abnormal(F.col("measurement"), F.col("value")).alias("abnormal"),
        F.lit(False).alias("is_step"),
    )
    markers = grid.select(
        KEY,
        F.explode(F.array(*[F.lit(m) for m in names])).alias("measurement"),
        F.col(EVENT_TIMESTAMP).alias("ts"),
        F.lit(None).cast("double").alias("value"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(None).cast("int").alias("abnormal"),
        F.lit(True).alias("is_step"),
    )
    # partitioned by patient only: the window (patient, measurement) and the regrouping per step
    # (patient, step) both find their rows in place, one shuffle instead of two
    rows = (
        events.unionByName(markers)
        .repartition(KEY)
        .withColumns(
            {"t_us": F.unix_micros("ts"), "x_h": (F.unix_micros("ts") - F.lit(SLOPE_ORIGIN_US)) / F.lit(HOUR_US)}
        )
    )
    base = Window.partitionBy(KEY, "measurement").orderBy("t_us")
    cols: list[Column] = []
    for w, td in WINDOWS.items():
        win = base.rangeBetween(-us(td) + 1, 0)
        per_stat = {
            "mean": F.avg("value"),
            "std": F.stddev_samp("value"),
            "min": F.min("value"),
            "max": F.max("value"),
            "last": _latest("value", "t_us", "ingested_at"),
            "count": F.count("value"),
            "slope": F.regr_slope("value", "x_h"),
        }
        assert set(per_stat) == set(STATS)
        cols += [per_stat[s].over(win).cast("double").alias(f"{s}_{w}") for s in STATS]
    day = base.rangeBetween(-us(WINDOWS["24h"]) + 1, 0)
    cols += [F.max("ingested_at").over(day).alias("created"), F.sum("abnormal").over(day).alias("abnormal_24h")]
    stats = [*(f"{s}_{w}" for w in WINDOWS for s in STATS), "created", "abnormal_24h"]
    position = F.array_position(F.array(*[F.lit(m) for m in names]), F.col("measurement"))
    steps = rows.select(KEY, F.col("ts").alias(EVENT_TIMESTAMP), "is_step", position.alias("position"), *cols)
    # A step has exactly one marker row per measurement (the grid holds each (patient, step) once), so
    # its markers sorted by position are the measurements in ``names`` order: one small aggregate
    # buffer instead of a pivot's two per statistic and measurement (646 for 14 x 23).
    per_step = (
        steps.filter("is_step")
        .groupBy(KEY, EVENT_TIMESTAMP)
        .agg(F.sort_array(F.collect_list(F.struct("position", *stats))).alias("m"))
    )
    return per_step.select(
        KEY,
        EVENT_TIMESTAMP,
        *[F.col("m")[i][c].alias(f"{m}_{c}") for i, m in enumerate(names) for c in stats],
    )


def _created(*cols: str | Column) -> Column:
    cs = [F.col(c) if isinstance(c, str) else c for c in cols]
    latest = F.greatest(*cs) if len(cs) > 1 else cs[0]
    return F.coalesce(latest, F.col(EVENT_TIMESTAMP))


def _select_view(df: DataFrame, view: FeatureView) -> DataFrame:
    casts = {"float64": "double", "int64": "bigint", "bool": "boolean", "string": "string"}
    return df.select(
        KEY,
        F.col(EVENT_TIMESTAMP),
        F.col(CREATED_TIMESTAMP),
        *[F.col(f.name).cast(casts[f.dtype]).alias(f.name) for f in view.features],
    )


def vitals_view(wide: DataFrame) -> DataFrame:
    def last(m: str) -> Column:
        return F.col(f"{m}_last_1h")

    derived = {
        "pulse_pressure": last("systolic_bp") - last("diastolic_bp"),
        "mean_arterial_pressure": (last("systolic_bp") + 2 * last("diastolic_bp")) / 3,
        "shock_index": F.when(last("systolic_bp") > 0, last("heart_rate") / last("systolic_bp")),
        "hr_x_temperature": last("heart_rate") * last("temperature"),
        **{f"{v}_trend_1h_24h": F.col(f"{v}_mean_1h") - F.col(f"{v}_mean_24h") for v in VITALS},
        CREATED_TIMESTAMP: _created(*(f"{v}_created" for v in VITALS)),
    }
    return _select_view(wide.withColumns(derived), VITALS_VIEW)


def labs_view(wide: DataFrame) -> DataFrame:
    return _select_view(wide.withColumn(CREATED_TIMESTAMP, _created(*(f"{m}_created" for m in LABS))), LABS_VIEW)


def medications_view(medications: DataFrame, grid: DataFrame) -> DataFrame:
    drug = F.lower(F.col("drug"))
    events = medications.select(
        KEY,
        F.col("event_time").alias("ts"),
        drug.alias("drug"),
        "ingested_at",
        *[F.when(drug.isin(list(ds)), 1).otherwise(0).alias(f"is_{c}") for c, ds in DRUG_CLASSES.items()],
        F.lit(False).alias("is_step"),
    )
    markers = grid.select(
        KEY,
        F.col(EVENT_TIMESTAMP).alias("ts"),
        F.lit(None).cast("string").alias("drug"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        *[F.lit(None).cast("int").alias(f"is_{c}") for c in DRUG_CLASSES],
        F.lit(True).alias("is_step"),
    )
    win = Window.partitionBy(KEY).orderBy("t_us").rangeBetween(-us(WINDOWS["24h"]) + 1, 0)
    rows = events.unionByName(markers).withColumn("t_us", F.unix_micros("ts"))
    out = rows.select(
        KEY,
        F.col("ts").alias(EVENT_TIMESTAMP),
        "is_step",
        F.count("drug").over(win).cast("double").alias("medications_24h"),
        F.size(F.collect_set("drug").over(win)).cast("double").alias("distinct_drugs_24h"),
        *[F.coalesce(F.max(f"is_{c}").over(win), F.lit(0)).cast("double").alias(f"on_{c}_24h") for c in DRUG_CLASSES],
        F.max("ingested_at").over(win).alias("created"),
    ).filter("is_step")
    out = out.withColumns(
        {
            "bleeding_risk_interaction_24h": F.col("on_anticoagulant_24h") * F.col("on_antiplatelet_24h"),
            CREATED_TIMESTAMP: _created("created"),
        }
    )
    return _select_view(out, MEDICATIONS_VIEW)


def context_view(
    admissions: DataFrame, demographics: DataFrame | None, measurements: DataFrame, wide: DataFrame, grid: DataFrame
) -> DataFrame:
    etype = F.lower(F.col("event_type"))
    events = admissions.select(
        KEY,
        F.col("event_time").alias("ts"),
        F.when(etype.isin(list(ADMISSION_EVENTS)), etype).alias("event_type"),
        "trial_arm",
        "department",
        "ingested_at",
        F.lit(False).alias("is_step"),
    )
    markers = grid.select(
        KEY,
        F.col(EVENT_TIMESTAMP).alias("ts"),
        *[F.lit(None).cast("string").alias(c) for c in ("event_type", "trial_arm", "department")],
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(True).alias("is_step"),
    )
    win = Window.partitionBy(KEY).orderBy("t_us").rangeBetween(Window.unboundedPreceding, 0)
    rows = events.unionByName(markers).withColumn("t_us", F.unix_micros("ts"))
    adm = rows.select(
        KEY,
        F.col("ts").alias(EVENT_TIMESTAMP),
        "is_step",
        _latest("event_type", "t_us", "ingested_at").over(win).alias("latest_event"),
        _latest("trial_arm", "t_us", "ingested_at").over(win).alias("trial_arm"),
        _latest("department", "t_us", "ingested_at").over(win).alias("department"),
        F.max(F.when((F.col("event_type") == "admit") & ~F.col("is_step"), F.col("ts"))).over(win).alias("admit_ts"),
        F.max("ingested_at").over(win).alias("adm_created"),
    ).filter("is_step")
    first_seen = measurements.groupBy(KEY).agg(F.min("event_time").alias("first_ts"))
    counts = wide.select(
        KEY,
        EVENT_TIMESTAMP,
        sum((F.coalesce(F.col(f"{m}_count_24h"), F.lit(0.0)) for m in (*VITALS, *LABS)), F.lit(0.0)).alias(
            "measurements_24h"
        ),
        sum((F.coalesce(F.col(f"{m}_abnormal_24h"), F.lit(0)) for m in VITALS), F.lit(0)).alias("abnormal_vitals_24h"),
        sum((F.coalesce(F.col(f"{m}_abnormal_24h"), F.lit(0)) for m in LABS), F.lit(0)).alias("abnormal_labs_24h"),
        F.greatest(*(F.col(f"{m}_created") for m in (*VITALS, *LABS))).alias("meas_created"),
    )
    df = adm.join(counts, [KEY, EVENT_TIMESTAMP], "left").join(first_seen, KEY, "left")
    if demographics is not None:
        df = df.join(demographics.select(KEY, "date_of_birth", "gender").dropDuplicates([KEY]), KEY, "left")
    else:
        df = df.withColumns({"date_of_birth": F.lit(None).cast("date"), "gender": F.lit(None).cast("string")})
    admitted = F.col("latest_event").isNotNull() & (F.col("latest_event") != "discharge")
    hours = (F.unix_micros(EVENT_TIMESTAMP) - F.unix_micros("admit_ts")) / F.lit(HOUR_US)
    df = df.withColumns(
        {
            "age_years": F.datediff(F.to_date(EVENT_TIMESTAMP), F.col("date_of_birth")) / F.lit(365.25),
            "is_admitted": F.when(admitted, 1.0).otherwise(0.0),
            "hours_since_admission": F.when(admitted & F.col("admit_ts").isNotNull(), hours),
            "hours_observed": (F.unix_micros(EVENT_TIMESTAMP) - F.unix_micros("first_ts")) / F.lit(HOUR_US),
            CREATED_TIMESTAMP: _created("adm_created", "meas_created"),
        }
    )
    return _select_view(df, CONTEXT_VIEW)


def label_view(outcomes: DataFrame, grid: DataFrame) -> DataFrame:
    """``adverse_event_24h`` = an adverse event in (t, t + 24h]."""
    events = outcomes.select(
        KEY,
        F.col("event_time").alias("ts"),
        F.when(F.lower("outcome_type").isin(list(ADVERSE_EVENT_TYPES)), 1).otherwise(0).alias("adverse"),
        F.col("ingested_at"),
        F.lit(False).alias("is_step"),
    )
    markers = grid.select(
        KEY,
        F.col(EVENT_TIMESTAMP).alias("ts"),
        F.lit(None).cast("int").alias("adverse"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(True).alias("is_step"),
    )
    win = Window.partitionBy(KEY).orderBy("t_us").rangeBetween(1, us(WINDOWS["24h"]))
    rows = events.unionByName(markers).withColumn("t_us", F.unix_micros("ts"))
    out = rows.select(
        KEY,
        F.col("ts").alias(EVENT_TIMESTAMP),
        "is_step",
        F.when(F.coalesce(F.max("adverse").over(win), F.lit(0)) > 0, 1.0).otherwise(0.0).alias("adverse_event_24h"),
        F.max(F.when(F.col("adverse") == 1, F.col("ingested_at"))).over(win).alias("created"),
    ).filter("is_step")
    return _select_view(out.withColumn(CREATED_TIMESTAMP, _created("created")), LABEL_VIEW)


def streaming_features(
    measurements: DataFrame,
    medications: DataFrame,
    admissions: DataFrame,
    outcomes: DataFrame,
    demographics: DataFrame | None = None,
    *,
    start: str | None = None,
    end: str | None = None,
    all_measurements: DataFrame | None = None,
) -> dict[str, DataFrame]:
    """Every streaming view (and the label) from the silver tables, keyed by view name.

    ``all_measurements`` (default: ``measurements``) is where a patient's first measurement is
    looked up, when ``measurements`` holds only the days a partial run needs."""
    grid = hourly_grid(measurements, medications, admissions, start=start, end=end)
    grid = grid.cache()
    names = (*VITALS, *LABS)
    wide = measurement_windows(measurements, grid, names).cache()
    return {
        VITALS_VIEW.name: vitals_view(wide),
        LABS_VIEW.name: labs_view(wide),
        MEDICATIONS_VIEW.name: medications_view(medications, grid),
        CONTEXT_VIEW.name: context_view(
            admissions, demographics, all_measurements if all_measurements is not None else measurements, wide, grid
        ),
        LABEL_VIEW.name: label_view(outcomes, grid),
    }
