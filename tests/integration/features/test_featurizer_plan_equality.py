"""The featurizer's cheaper plan computes exactly the values of the plan it replaced.

``core.measurement_windows`` regroups each step's per-measurement window rows with one sorted
``collect_list`` (its markers, one per measurement) instead of a pivot, on rows partitioned by patient
only, and the featurize job runs its plans under the featurizer's SQL settings (whole-stage code
generation and adaptive execution as ``FeaturizerSettings`` says). Either could change a value the
hand-built rows of ``test_featurizer_core.py`` do not reach, so here the generator's silver (every
topic, vitals every 10 minutes, several days, so every window fills and empties) goes through both:
the pivot formulation under Spark's defaults, and the featurizer's own code under its settings; every
view must be equal row for row and bit for bit (nulls included).
"""

from __future__ import annotations

import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from clinops_common.features.definitions import EVENT_TIMESTAMP, STATS, WINDOWS
from clinops_common.lake import SILVER_SCHEMAS, ddl_columns
from clinops_common.synthetic import FaultRates, GeneratorConfig
from clinops_devstack.cohort import SILVER_COLUMNS, generate_silver
from clinops_featurizer import core, session
from clinops_featurizer.config import FeaturizerSettings


def pivot_windows(measurements: DataFrame, grid: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """The formulation ``measurement_windows`` replaced: the same window rows, regrouped by a pivot
    of ``first`` per statistic and measurement."""
    events = measurements.filter(F.col("measurement").isin(list(names))).select(
        core.KEY,
        "measurement",
        F.col("event_time").alias("ts"),
        F.col("value").cast("double").alias("value"),
        "ingested_at",
        core._abnormal(F.col("measurement"), F.col("value")).alias("abnormal"),
        F.lit(False).alias("is_step"),
    )
    markers = grid.select(
        core.KEY,
        F.explode(F.array(*[F.lit(m) for m in names])).alias("measurement"),
        F.col(EVENT_TIMESTAMP).alias("ts"),
        F.lit(None).cast("double").alias("value"),
        F.lit(None).cast("timestamp").alias("ingested_at"),
        F.lit(None).cast("int").alias("abnormal"),
        F.lit(True).alias("is_step"),
    )
    rows = events.unionByName(markers).withColumns(
        {
            "t_us": F.unix_micros("ts"),
            "x_h": (F.unix_micros("ts") - F.lit(core.SLOPE_ORIGIN_US)) / F.lit(core.HOUR_US),
        }
    )
    base = Window.partitionBy(core.KEY, "measurement").orderBy("t_us")
    cols = []
    for w, td in WINDOWS.items():
        win = base.rangeBetween(-core.us(td) + 1, 0)
        per_stat = {
            "mean": F.avg("value"),
            "std": F.stddev_samp("value"),
            "min": F.min("value"),
            "max": F.max("value"),
            "last": core._latest("value", "t_us", "ingested_at"),
            "count": F.count("value"),
            "slope": F.regr_slope("value", "x_h"),
        }
        cols += [per_stat[s].over(win).cast("double").alias(f"{s}_{w}") for s in STATS]
    day = base.rangeBetween(-core.us(WINDOWS["24h"]) + 1, 0)
    cols += [F.max("ingested_at").over(day).alias("created"), F.sum("abnormal").over(day).alias("abnormal_24h")]
    steps = rows.select(core.KEY, "measurement", F.col("ts").alias(EVENT_TIMESTAMP), "is_step", *cols).filter("is_step")
    aggs = [F.first(c).alias(c) for c in [*(f"{s}_{w}" for w in WINDOWS for s in STATS), "created", "abnormal_24h"]]
    return steps.groupBy(core.KEY, EVENT_TIMESTAMP).pivot("measurement", list(names)).agg(*aggs)


def silver(spark: SparkSession, folder: Path) -> dict[str, DataFrame]:
    cfg = GeneratorConfig(patients=8, days=3, seed=21, vitals_interval_min=10, faults=FaultRates.none())
    _, frames = generate_silver(cfg, timedelta(minutes=5))
    out = {}
    for table in SILVER_COLUMNS:
        ddl = SILVER_SCHEMAS[table]  # type: ignore[index]
        cols = [c for c, _, _ in ddl_columns(ddl)]
        frame = frames[table].reindex(columns=cols)
        for ts in ("event_time", "ingested_at"):
            frame[ts] = frame[ts].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]")
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{table}.parquet")
        out[table] = spark.read.schema(ddl.replace(" NOT NULL", "")).parquet(str(folder / f"{table}.parquet"))
    return out


def rows(views: dict[str, DataFrame]) -> dict[str, dict[tuple[Any, Any], dict[str, Any]]]:
    return {name: {(r[core.KEY], r[EVENT_TIMESTAMP]): r.asDict() for r in df.collect()} for name, df in views.items()}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


@pytest.fixture(scope="module")
def both(spark: SparkSession) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="clinops-plan-equality-") as tmp:
        t = silver(spark, Path(tmp))
        args = (t["measurements"], t["medications"], t["admissions"], t["outcomes"])
        defaults = {"spark.sql.codegen.wholeStage": "true", "spark.sql.adaptive.enabled": "true"}
        with session.sql_conf(spark, defaults), pytest.MonkeyPatch.context() as m:
            m.setattr(core, "measurement_windows", pivot_windows)
            before = rows(core.streaming_features(*args))
        with session.sql_conf(spark, FeaturizerSettings().sql_conf()):
            after = rows(core.streaming_features(*args))
    return before, after


def test_every_view_has_the_same_rows(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, after = both
    assert set(before) == set(after)
    for name in before:
        assert before[name], name
        assert set(before[name]) == set(after[name]), name


def test_every_value_is_bit_for_bit_the_same(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    before, after = both
    differ = [
        (name, key, col, value, after[name][key][col])
        for name, view in before.items()
        for key, row in view.items()
        for col, value in row.items()
        if not same(value, after[name][key][col])
    ]
    assert differ == [], differ[:5]
    filled = sum(v is not None for row in before["vitals"].values() for v in row.values())
    assert filled > 0.5 * sum(len(r) for r in before["vitals"].values())  # the windows are mostly non-null
