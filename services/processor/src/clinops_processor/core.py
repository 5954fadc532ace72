"""Bronze to silver as pure functions of DataFrames (no session, no I/O).

``parse_bronze`` turns bronze lines into one row per event; each ``*_tables`` function deduplicates
its topic's events on the silver key (keeping the first ingested copy and its ``ingested_at``),
applies the rules of ``rules.py`` and returns ``(silver, quarantine)`` with the columns of
``lake.SILVER_SCHEMAS`` plus the partition column ``date`` (the UTC date of ``event_time``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

from clinops_common.lake import SILVER_SCHEMAS, SilverTable, ddl_columns
from clinops_common.vocabulary import MEASUREMENTS
from clinops_processor import rules

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ENVELOPE = (
    "topic STRING, `partition` INT, `offset` BIGINT, `timestamp` STRING, key STRING, ingested_at STRING, event STRING"
)
EVENT = (
    "event_id STRING, patient_id STRING, event_time STRING, source STRING, measurement STRING, value DOUBLE, "
    "unit STRING, drug STRING, dose DOUBLE, dose_unit STRING, route STRING, event_type STRING, hospital_id STRING, "
    "department STRING, discharge_status STRING, trial_arm STRING, outcome_type STRING, severity STRING, "
    "prediction_id STRING"
)
DEDUP_KEYS = rules.DEDUP_KEYS
REQUIRED: dict[str, tuple[str, ...]] = {
    "measurements": ("event_id", "patient_id", "event_time", "source", "measurement", "value", "unit"),
    "medications": ("event_id", "patient_id", "event_time", "source", "drug", "dose", "dose_unit", "route"),
    "admissions": ("event_id", "patient_id", "event_time", "source", "event_type"),
    "outcomes": ("event_id", "patient_id", "event_time", "source", "outcome_type"),
}


def parse_bronze(lines: DataFrame) -> DataFrame:
    """``lines`` (columns ``value``: one bronze line, ``file``) → one row per event with the envelope,
    the event's fields, ``raw`` (the event as received), ``event_time`` and ``date``."""
    env = F.from_json("value", ENVELOPE)
    df = lines.select(env.alias("env"), "file").select("env.*", "file").withColumnRenamed("event", "raw")
    df = df.select("*", F.from_json("raw", EVENT).alias("ev")).select(
        "topic",
        "partition",
        "offset",
        F.try_to_timestamp("ingested_at").alias("ingested_at"),
        "raw",
        "file",
        *[F.col(f"ev.{name}").alias(name) for name, _, _ in ddl_columns(EVENT) if name != "event_time"],
        # try_: an unparseable time (e.g. Unix seconds, which the event schema accepts) is NULL, so the
        # row goes to quarantine as invalid_record instead of failing the whole run.
        F.try_to_timestamp("ev.event_time").alias("event_time"),
    )
    return df.withColumn("date", F.to_date("event_time"))


def _first_ingested(df: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """One row per key: the first ingested copy, stamped with the earliest ``ingested_at``.

    A hash aggregate (``min_by``) rather than a sorted window: one shuffle, no sort."""
    others = [c for c in df.columns if c not in keys]
    order = F.struct("ingested_at", "partition", "offset")
    first = df.groupBy(*keys).agg(F.min_by(F.struct(*others), order).alias("_first"))
    return first.select(*keys, "_first.*")


def conform(df: DataFrame, table: SilverTable) -> DataFrame:
    """The table's columns, in contract order and types, plus ``date``."""
    return df.select(*[F.col(n).cast(t.lower()).alias(n) for n, t, _ in ddl_columns(SILVER_SCHEMAS[table])], "date")


def quarantine_rows(df: DataFrame, rule: Column | str, reason: Column | str, now: Column) -> DataFrame:
    def as_col(v: Column | str) -> Column:
        return F.lit(v) if isinstance(v, str) else v

    return conform(
        df.withColumn("rule", as_col(rule)).withColumn("reason", as_col(reason)).withColumn("quarantined_at", now),
        "quarantine",
    )


def _split_invalid(df: DataFrame, table: str, now: Column) -> tuple[DataFrame, DataFrame]:
    """Rows missing a required field (or with an unparseable time) go to quarantine as invalid_record."""
    missing = reduce(lambda a, b: a | b, [F.col(c).isNull() for c in REQUIRED[table]])
    bad = df.where(missing).dropDuplicates(["topic", "raw"])
    bad = bad.withColumn("date", F.coalesce("date", F.to_date("ingested_at")))
    return df.where(~missing), quarantine_rows(
        bad, rules.INVALID_RECORD, "a required field is missing or unparseable", now
    )


def canonical_value() -> Column:
    """The value in its canonical unit, or NULL when (measurement, unit) is not accepted."""
    expr: Column | None = None
    for r in rules.unit_rules():
        cond = (F.col("measurement") == r.measurement) & (F.col("unit") == r.unit)
        val = F.col("value") * F.lit(r.scale) + F.lit(r.offset) if (r.scale, r.offset) != (1.0, 0.0) else F.col("value")
        expr = F.when(cond, val) if expr is None else expr.when(cond, val)
    assert expr is not None
    return expr


def _lookup(values: dict[str, object]) -> Column:
    return F.create_map(*[x for k, v in values.items() for x in (F.lit(k), F.lit(v))])


def _same(df: DataFrame) -> DataFrame:
    return df


def measurement_tables(
    events: DataFrame, now: Column, cache: Callable[[DataFrame], DataFrame] = _same
) -> tuple[DataFrame, DataFrame]:
    """vitals and labs → silver measurements (canonical units) and quarantine.

    ``cache`` may persist the deduplicated, judged rows, which both outputs read."""
    df = events.where(F.col("topic").isin("vitals", "labs")).withColumn("kind", F.col("topic"))
    df, invalid = _split_invalid(df, "measurements", now)
    df = _first_ingested(df, DEDUP_KEYS["measurements"])
    kind_of = _lookup({n: m.kind for n, m in MEASUREMENTS.items()})
    unit_of = _lookup({n: m.unit for n, m in MEASUREMENTS.items()})
    lo_of = _lookup({n: float(m.valid[0]) for n, m in MEASUREMENTS.items()})
    hi_of = _lookup({n: float(m.valid[1]) for n, m in MEASUREMENTS.items()})
    df = df.withColumn("_canonical", canonical_value()).withColumn(
        "_rule",
        F.when(
            kind_of[F.col("measurement")].isNull() | (kind_of[F.col("measurement")] != F.col("kind")),
            F.lit(rules.UNKNOWN_MEASUREMENT),
        )
        .when(F.col("_canonical").isNull(), F.lit(rules.UNKNOWN_UNIT))
        .when(
            (F.col("_canonical") < lo_of[F.col("measurement")]) | (F.col("_canonical") > hi_of[F.col("measurement")]),
            F.lit(rules.OUT_OF_RANGE),
        ),
    )
    df = cache(df)
    reason = (
        F.when(
            F.col("_rule") == rules.UNKNOWN_MEASUREMENT,
            F.format_string("%s is not a known %s measurement", "measurement", "kind"),
        )
        .when(
            F.col("_rule") == rules.UNKNOWN_UNIT,
            F.format_string("unit %s is not accepted for %s", "unit", "measurement"),
        )
        .otherwise(
            F.format_string(
                "%s %s %s outside [%s, %s]",
                "measurement",
                F.round("_canonical", 4).cast("string"),
                unit_of[F.col("measurement")],
                lo_of[F.col("measurement")].cast("string"),
                hi_of[F.col("measurement")].cast("string"),
            )
        )
    )
    rejected = quarantine_rows(df.where(F.col("_rule").isNotNull()), F.col("_rule"), reason, now)
    silver = conform(
        df.where(F.col("_rule").isNull())
        .withColumn("value", F.col("_canonical"))
        .withColumn("unit", unit_of[F.col("measurement")]),
        "measurements",
    )
    return silver, invalid.unionByName(rejected)


def _simple_tables(
    topic: str,
    table: SilverTable,
    events: DataFrame,
    now: Column,
    check: Callable[[DataFrame], tuple[Column, str]] | None = None,
) -> tuple[DataFrame, DataFrame]:
    df = events.where(F.col("topic") == topic)
    df, invalid = _split_invalid(df, table, now)
    df = _first_ingested(df, DEDUP_KEYS[table])
    if check is None:
        return conform(df, table), invalid
    bad, rule = check(df)
    rejected = quarantine_rows(df.where(bad), rule, f"broke rule {rule}", now)
    return conform(df.where(~bad), table), invalid.unionByName(rejected)


def medication_tables(events: DataFrame, now: Column) -> tuple[DataFrame, DataFrame]:
    return _simple_tables(
        "medications", "medications", events, now, lambda df: (F.col("dose") <= 0, rules.DOSE_NOT_POSITIVE)
    )


def admission_tables(events: DataFrame, now: Column) -> tuple[DataFrame, DataFrame]:
    return _simple_tables("admissions", "admissions", events, now)


def outcome_tables(events: DataFrame, now: Column) -> tuple[DataFrame, DataFrame]:
    return _simple_tables("outcomes", "outcomes", events, now)


BUILDERS: dict[SilverTable, Callable[[DataFrame, Column], tuple[DataFrame, DataFrame]]] = {
    "measurements": measurement_tables,
    "medications": medication_tables,
    "admissions": admission_tables,
    "outcomes": outcome_tables,
}


def silver_tables(
    events: DataFrame, now: Column, cache: Callable[[DataFrame], DataFrame] = _same
) -> tuple[dict[SilverTable, DataFrame], DataFrame]:
    """Every silver table and the union of their quarantine rows."""
    silver: dict[SilverTable, DataFrame] = {}
    quarantined: list[DataFrame] = []
    for table, build in BUILDERS.items():
        s, q = measurement_tables(events, now, cache) if table == "measurements" else build(events, now)
        silver[table] = s
        quarantined.append(q)
    return silver, reduce(lambda a, b: a.unionByName(b), quarantined)
