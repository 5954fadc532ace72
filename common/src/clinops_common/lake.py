"""The lake's layout: where each layer lives and the columns of every silver table.

This is the contract between the stages: ingest writes bronze, the processor turns bronze into
silver (and quarantine), the featurizer reads silver. Paths are ``s3a://`` URIs for Spark; use
``key(...)`` for the same location as an S3 object key.

Layers (all under ``s3://<lake bucket>/``):

- ``bronze/<topic>/date=YYYY-MM-DD/hour=HH/<partition>-<first offset>-<last offset>.ndjson``:
  raw events as received, immutable, 90 days;
- ``deadletter/<topic>/date=YYYY-MM-DD/hour=HH/...``: messages that failed parsing or schema
  validation, each with its reason, partition and offset;
- ``silver/<table>/date=YYYY-MM-DD/``: Parquet, one partition per event date, 2 years;
- ``silver/quarantine/date=YYYY-MM-DD/``: rows that broke a validation rule, with the rule;
- ``batch/<table>/``: the stroke cohort's five source tables;
- ``features/offline/...``: the offline feature store.

Timestamps are UTC. ``event_time`` is when it happened; ``ingested_at`` is when clinops first
wrote it (the created timestamp of the point-in-time leakage guard).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

Topic = Literal["vitals", "labs", "medications", "admissions", "outcomes"]
TOPICS: tuple[Topic, ...] = ("vitals", "labs", "medications", "admissions", "outcomes")

SilverTable = Literal["measurements", "medications", "admissions", "outcomes", "quarantine"]
BatchTable = Literal["demographics", "clinical_measurements", "hospital_admin", "lifestyle", "conditions"]
BATCH_TABLES: tuple[BatchTable, ...] = (
    "demographics",
    "clinical_measurements",
    "hospital_admin",
    "lifestyle",
    "conditions",
)

# Spark DDL for every silver table (partition column ``date`` is added by the writer).
# ``measurements`` holds vitals and labs in long form, values in canonical units (vocabulary.py).
SILVER_SCHEMAS: dict[SilverTable, str] = {
    "measurements": (
        "event_id STRING NOT NULL, patient_id STRING NOT NULL, event_time TIMESTAMP NOT NULL, "
        "source STRING NOT NULL, kind STRING NOT NULL, measurement STRING NOT NULL, "
        "value DOUBLE NOT NULL, unit STRING NOT NULL, ingested_at TIMESTAMP NOT NULL"
    ),
    "medications": (
        "event_id STRING NOT NULL, patient_id STRING NOT NULL, event_time TIMESTAMP NOT NULL, "
        "source STRING NOT NULL, drug STRING NOT NULL, dose DOUBLE NOT NULL, dose_unit STRING NOT NULL, "
        "route STRING NOT NULL, ingested_at TIMESTAMP NOT NULL"
    ),
    "admissions": (
        "event_id STRING NOT NULL, patient_id STRING NOT NULL, event_time TIMESTAMP NOT NULL, "
        "source STRING NOT NULL, event_type STRING NOT NULL, hospital_id STRING, department STRING, "
        "discharge_status STRING, trial_arm STRING, ingested_at TIMESTAMP NOT NULL"
    ),
    "outcomes": (
        "event_id STRING NOT NULL, patient_id STRING NOT NULL, event_time TIMESTAMP NOT NULL, "
        "source STRING NOT NULL, outcome_type STRING NOT NULL, severity STRING, "
        "prediction_id STRING, ingested_at TIMESTAMP NOT NULL"
    ),
    # One row per rejected record: which rule it broke, why, and the record as received.
    "quarantine": (
        "topic STRING NOT NULL, rule STRING NOT NULL, reason STRING NOT NULL, event_id STRING, "
        "patient_id STRING, event_time TIMESTAMP, raw STRING NOT NULL, quarantined_at TIMESTAMP NOT NULL"
    ),
}

# The stroke cohort's source tables, one row per patient (latest record), keyed by patient_id, each
# with its own timestamp column (BATCH_TIMESTAMPS). ``demographics`` is newline-delimited JSON (a
# document-store export); the others are Parquet (PostgreSQL, SQL Server and S3 exports).
BATCH_SCHEMAS: dict[BatchTable, str] = {
    "demographics": (
        "patient_id STRING NOT NULL, date_of_birth DATE NOT NULL, gender STRING, blood_type STRING, "
        "province STRING, city STRING, postal_code STRING, healthcare_region STRING, insurance_type STRING, "
        "registration_date DATE NOT NULL"
    ),
    "clinical_measurements": (
        "patient_id STRING NOT NULL, visit_date DATE NOT NULL, avg_glucose_level DOUBLE, bmi DOUBLE, "
        "blood_pressure_systolic DOUBLE, heart_rate DOUBLE, cholesterol_level DOUBLE"
    ),
    "hospital_admin": (
        "patient_id STRING NOT NULL, hospital_id STRING, department STRING, admission_date DATE, "
        "discharge_status STRING, attending_physician STRING"
    ),
    "lifestyle": (
        "patient_id STRING NOT NULL, survey_date DATE NOT NULL, smoking_status STRING, "
        "exercise_frequency STRING, alcohol_consumption STRING, diet_type STRING"
    ),
    "conditions": (
        "patient_id STRING NOT NULL, recorded_at DATE NOT NULL, hypertension BOOLEAN, heart_disease BOOLEAN, "
        "diabetes BOOLEAN, stroke_occurred BOOLEAN, stroke_probability DOUBLE, stroke_severity STRING, "
        "stroke_date DATE, recovery_status STRING"
    ),
}
BATCH_TIMESTAMPS: dict[BatchTable, str] = {
    "demographics": "registration_date",
    "clinical_measurements": "visit_date",
    "hospital_admin": "admission_date",
    "lifestyle": "survey_date",
    "conditions": "recorded_at",
}

# Silver dedup key (PRODUCT: patient_id, event_time, source, measurement).
MEASUREMENT_KEY: tuple[str, ...] = ("patient_id", "event_time", "source", "measurement")


def key(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p)


def s3a(bucket: str, *parts: str) -> str:
    return f"s3a://{bucket}/{key(*parts)}"


def partition(ts: datetime, *, hourly: bool = False) -> str:
    """``date=YYYY-MM-DD`` (and ``/hour=HH``) for a UTC timestamp."""
    day = f"date={ts:%Y-%m-%d}"
    return f"{day}/hour={ts:%H}" if hourly else day


def bronze_object_key(topic: str, ts: datetime, partition_id: int, first_offset: int, last_offset: int) -> str:
    """Deterministic bronze object name: a replay after a crash rewrites the same object."""
    return key("bronze", topic, partition(ts, hourly=True), f"{partition_id}-{first_offset}-{last_offset}.ndjson")


def deadletter_object_key(topic: str, ts: datetime, partition_id: int, first_offset: int, last_offset: int) -> str:
    return key("deadletter", topic, partition(ts, hourly=True), f"{partition_id}-{first_offset}-{last_offset}.ndjson")


def silver_path(bucket: str, table: SilverTable) -> str:
    return s3a(bucket, "silver", table)


def batch_path(bucket: str, table: BatchTable) -> str:
    return s3a(bucket, "batch", table)


def features_path(bucket: str, *parts: str) -> str:
    return s3a(bucket, "features", *parts)


def synthetic_key(*parts: str) -> str:
    """Object key under ``synthetic/``: the generator's oracle and ledger (known truth, not patient data)."""
    return key("synthetic", *parts)


def batch_object_key(table: BatchTable) -> str:
    """The object the generator writes for a batch table (``batch_path`` is its folder)."""
    suffix = "ndjson" if table == "demographics" else "parquet"
    return key("batch", table, f"part-00000.{suffix}")


def state_key(component: str, name: str) -> str:
    """Durable bookkeeping of a stage (for example the bronze objects the processor has done)."""
    return key("state", component, name)


def ddl_columns(ddl: str) -> list[tuple[str, str, bool]]:
    """``[(name, TYPE, nullable)]`` of a flat DDL string such as those in SILVER_SCHEMAS."""
    out = []
    for column in ddl.split(","):
        name, kind, *rest = column.split()
        out.append((name, kind.upper(), "NOT" not in (r.upper() for r in rest)))
    return out
