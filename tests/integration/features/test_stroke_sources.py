"""The stroke cohort from its real sources: the generator writes demographics to FerretDB (MongoDB
wire), clinical measurements and hospital administration to PostgreSQL (the latter through the JDBC
path SQL Server uses), lifestyle and conditions as Parquet to MinIO; the stroke job reads each through
Spark, and a training set built by the point-in-time join sees only what was known at each visit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from pyspark.sql import SparkSession

from clinops_common.contracts import StrokeArgs
from clinops_common.features.definitions import STROKE_LABEL_VIEW
from clinops_common.features.offline import OfflineStore
from clinops_common.features.training import build_training_set
from clinops_common.settings import Connections
from clinops_common.sources import BatchSource
from clinops_common.storage import s3_client
from clinops_common.synthetic.config import FaultRates, GeneratorConfig
from clinops_common.synthetic.generator import generate
from clinops_common.synthetic.source_sinks import upload_sources
from clinops_featurizer import job
from clinops_featurizer.session import Stop
from clinops_featurizer.sources import SourceError

COHORT = 60


@pytest.fixture(scope="module")
def world(
    s3: Connections, database_url: str, mongodb_url: str, stack: Any, monkeypatch_module: pytest.MonkeyPatch
) -> dict[str, Any]:
    s = stack.settings
    run = uuid.uuid4().hex[:8]
    pg = f"{s.host}:{s.ports.postgres}"
    auth = f"{s.user}:{s.password.get_secret_value()}"
    monkeypatch_module.setenv(
        "CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL", f"postgresql://{auth}@{pg}/cohort?table=clinical_{run}"
    )
    monkeypatch_module.setenv(
        "CLINOPS_SOURCE_HOSPITAL_ADMIN_URL", f"postgresql://{auth}@{pg}/hospital?table=admin_{run}"
    )
    sources = (
        BatchSource(
            table="demographics",
            uri=f"{mongodb_url.rstrip('/')}/cohort_{run}/demographics",
            format="mongodb",
            timestamp_column="registration_date",
        ),
        BatchSource(
            table="clinical_measurements",
            uri=f"postgresql://{pg}/cohort?table=clinical_{run}",
            format="postgres",
            timestamp_column="visit_date",
            credentials_env="CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL",
        ),
        BatchSource(
            table="hospital_admin",
            uri=f"postgresql://{pg}/hospital?table=admin_{run}",
            format="postgres",
            timestamp_column="admission_date",
            credentials_env="CLINOPS_SOURCE_HOSPITAL_ADMIN_URL",
        ),
        BatchSource(
            table="lifestyle",
            uri=f"s3a://{s3.lake_bucket}/it-{run}/lifestyle/",
            format="parquet",
            timestamp_column="survey_date",
        ),
        BatchSource(
            table="conditions",
            uri=f"s3a://{s3.lake_bucket}/it-{run}/conditions/",
            format="parquet",
            timestamp_column="recorded_at",
        ),
    )
    ds = generate(GeneratorConfig(patients=2, cohort=COHORT, days=1, seed=11, faults=FaultRates.none()))
    lines = upload_sources(ds.batch, sources, s3)
    return {"ds": ds, "sources": sources, "lines": lines, "run": run, "pg": pg, "auth": auth}


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_generator_to_each_source_to_the_stroke_job_with_verified_counts(
    spark: SparkSession, s3: Connections, world: dict[str, Any]
) -> None:
    ds = world["ds"]
    assert [line.split(" ", 1)[0] for line in world["lines"]] == [str(len(ds.batch[s.table])) for s in world["sources"]]
    args = StrokeArgs(pipeline="it", run_id=f"src-{world['run']}", sources=world["sources"], sample_rows=10)
    result = job.stroke(spark, s3, args, Stop())
    for table, rows in ds.batch.items():
        counts = result.sources[table]
        assert counts["read"] == len(rows), table
        assert counts["quarantined"] == 0, table
    never_admitted = sum(1 for r in ds.batch["hospital_admin"] if r["admission_date"] is None)
    assert result.sources["hospital_admin"]["skipped"] == never_admitted
    assert result.patients == COHORT
    visits = ds.batch["clinical_measurements"]
    assert len(visits) > COHORT  # some patients have earlier visits
    strokes = {r["patient_id"]: r["stroke_date"] for r in ds.batch["conditions"] if r["stroke_occurred"]}
    before_stroke = [v for v in visits if v["patient_id"] not in strokes or v["visit_date"] < strokes[v["patient_id"]]]
    assert result.training_rows == len(before_stroke)
    folder = result.output.removeprefix(f"s3a://{s3.lake_bucket}/")
    assert folder.startswith(f"features/stroke/it/run={args.run_id}/write=")  # the run's own folder
    keys = {o["Key"] for o in s3_client(s3).list_objects_v2(Bucket=s3.lake_bucket, Prefix=folder)["Contents"]}
    assert any(k.startswith(f"{folder}parquet/") and k.endswith(".parquet") for k in keys)
    assert any(k.startswith(f"{folder}sample_csv/") and k.endswith(".csv") for k in keys)

    # the point-in-time training set: each visit sees its own glucose, never a later visit's
    store = OfflineStore.for_lake(s3)
    snap = store.snapshot(result.snapshot_id)
    entities = store.read(STROKE_LABEL_VIEW, snap, [])
    entities = entities[entities["patient_id"].isin({v["patient_id"] for v in visits})]
    ts = build_training_set(
        entities[["patient_id", "event_timestamp"]], "stroke_risk_v1", result.snapshot_id, store=store
    ).frame
    expected = pd.DataFrame(visits)[["patient_id", "visit_date", "avg_glucose_level"]]
    expected["event_timestamp"] = pd.to_datetime(expected["visit_date"]).dt.tz_localize("UTC")
    merged = ts.merge(expected, on=["patient_id", "event_timestamp"], suffixes=("", "_visit"))
    assert len(merged) == len(ts) == result.training_rows
    assert (merged["avg_glucose_level"] == merged["avg_glucose_level_visit"]).all()
    repeat = merged.groupby("patient_id")["avg_glucose_level"].nunique()
    assert (repeat > 1).any()  # a later visit changed glucose, and the earlier row kept the old value
    assert ts["age"].notna().all()
    assert ts["gender"].notna().all()


def test_an_unreachable_source_is_named_without_its_credentials(
    spark: SparkSession, s3: Connections, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = "postgresql://127.0.0.1:9/cohort?table=clinical"
    monkeypatch.setenv(
        "CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL", f"postgresql://{world['auth']}@127.0.0.1:9/cohort?table=clinical"
    )
    sources = tuple(
        s.model_copy(update={"uri": dead}) if s.table == "clinical_measurements" else s for s in world["sources"]
    )
    store = OfflineStore.for_lake(s3)
    before = store.latest_id()
    with pytest.raises(SourceError) as err:
        job.stroke(spark, s3, StrokeArgs(pipeline="it", run_id="dead", sources=sources), Stop())
    message = str(err.value)
    assert message.startswith(f"source clinical_measurements ({dead}) could not be read (postgres)")
    assert world["auth"].split(":")[1] not in message
    assert store.latest_id() == before  # nothing half-written became a snapshot


def test_a_missing_timestamp_column_is_a_clear_error(
    spark: SparkSession, s3: Connections, world: dict[str, Any]
) -> None:
    sources = tuple(
        s.model_copy(update={"timestamp_column": "surveyed_on"}) if s.table == "lifestyle" else s
        for s in world["sources"]
    )
    with pytest.raises(SourceError, match=r"source lifestyle \(s3a://.*\): missing timestamp column 'surveyed_on'"):
        job.stroke(spark, s3, StrokeArgs(pipeline="it", run_id="nots", sources=sources), Stop())


def test_duplicate_null_and_wrong_typed_rows_are_quarantined_with_counts(
    spark: SparkSession, s3: Connections, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clinical table whose bmi column is text: 'abc' is the wrong type; a duplicated visit and a
    visit without a patient id are quarantined too; everything else goes through."""
    run, auth, pg = world["run"], world["auth"], world["pg"]
    name = f"clinical_bad_{run}"
    engine = sa.create_engine(f"postgresql+psycopg://{auth}@{pg}/cohort", poolclass=sa.NullPool)
    visits = world["ds"].batch["clinical_measurements"]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f'CREATE TABLE "{name}" (patient_id TEXT, visit_date DATE, avg_glucose_level DOUBLE PRECISION, '
                "bmi TEXT, blood_pressure_systolic DOUBLE PRECISION, heart_rate DOUBLE PRECISION, "
                "cholesterol_level DOUBLE PRECISION)"
            )
        )
        rows = [{**v, "bmi": str(v["bmi"])} for v in visits]
        rows += [
            {**rows[0]},
            {**rows[1], "patient_id": None},
            {**rows[2], "visit_date": pd.Timestamp("2020-01-01").date(), "bmi": "abc"},
        ]
        conn.execute(
            sa.text(
                f'INSERT INTO "{name}" VALUES (:patient_id, :visit_date, :avg_glucose_level, :bmi, '  # noqa: S608
                ":blood_pressure_systolic, :heart_rate, :cholesterol_level)"
            ),
            rows,
        )
    engine.dispose()
    monkeypatch.setenv("CLINOPS_SOURCE_CLINICAL_MEASUREMENTS_URL", f"postgresql://{auth}@{pg}/cohort?table={name}")
    sources = tuple(
        s.model_copy(update={"uri": f"postgresql://{pg}/cohort?table={name}"})
        if s.table == "clinical_measurements"
        else s
        for s in world["sources"]
    )
    result = job.stroke(spark, s3, StrokeArgs(pipeline="it", run_id=f"bad-{run}", sources=sources), Stop())
    counts = result.sources["clinical_measurements"]
    assert counts == {"read": len(visits) + 3, "quarantined": 4, "skipped": 0, "kept": len(visits) - 1}
    q = spark.read.parquet(f"{result.output}quarantine").collect()
    reasons = sorted(r["reason"] for r in q)
    assert reasons == sorted(["duplicate (patient_id, visit_date)"] * 2 + ["null patient_id", "wrong type: bmi"])
