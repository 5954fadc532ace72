"""Each component of the stack is the real thing: data goes in through one client and is checked
through another."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from clinops_common import db
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_devstack import smoke


def test_kafka_round_trip_keeps_every_message_and_per_key_order(kafka: Connections) -> None:
    result = smoke.kafka_roundtrip(kafka, n=30)
    sent, received = result.facts["sent"], result.facts["received"]
    assert sorted(received, key=lambda m: m["seq"]) == sent
    for key in {m["patient_id"] for m in sent}:
        seqs = [m["seq"] for m in received if m["patient_id"] == key]
        assert seqs == sorted(seqs), "messages with one key must keep their order"


def test_minio_put_list_get(s3: Connections) -> None:
    result = smoke.s3_roundtrip(s3)
    assert result.facts["body"] == result.facts["sent"]
    assert result.facts["key"] in result.facts["listed"]
    head = s3_client(s3).head_object(Bucket=s3.lake_bucket, Key=result.facts["key"])
    assert head["ContentLength"] == len(result.facts["sent"])


def test_spark_writes_and_reads_partitioned_parquet_through_s3a(s3: Connections) -> None:
    result = smoke.spark_s3a_roundtrip(s3, rows=1000)
    assert result.facts["rows"] == 1000
    assert result.facts["sum"] == 2 * sum(range(1000))
    assert result.facts["partitions"] == 4
    prefix = result.facts["path"].removeprefix(f"s3a://{s3.lake_bucket}/") + "/"
    keys = [o["Key"] for o in s3_client(s3).list_objects_v2(Bucket=s3.lake_bucket, Prefix=prefix)["Contents"]]
    assert any("/part=3/" in k and k.endswith(".parquet") for k in keys), keys


def test_redis_hash_with_ttl(redis_url: str, stack: Any) -> None:
    result = smoke.redis_roundtrip(stack.ensure("redis"))
    assert result.facts["value"] == {"heart_rate": "72", "spo2": "98"}
    assert 0 < result.facts["ttl"] <= 60


def test_postgres_alembic_migration_creates_the_audited_predictions_table(database_url: str, stack: Any) -> None:
    result = smoke.postgres_migrate(stack.ensure("postgres"))
    assert result.facts["revision"] == db.head_revision()
    assert {"predictions", "alembic_version"} <= set(result.facts["tables"])
    assert result.facts["row"]["features"] == {"heart_rate": 72.0}
    db.upgrade(database_url)  # a second upgrade is a no-op
    assert db.current_revision(database_url) == db.head_revision()
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        indexes = {ix["name"]: ix["column_names"] for ix in sa.inspect(engine).get_indexes("predictions")}
        assert indexes["ix_predictions_patient_time"] == ["patient_id", "predicted_at"]
        assert indexes["ix_predictions_time"] == ["predicted_at"]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(db.predictions.insert().values(**smoke.sample_prediction(score=1.5)))
    finally:
        engine.dispose()


def test_mlflow_run_artifact_lands_in_minio(mlflow_url: str, s3: Connections, tmp_path: Path) -> None:
    conns = s3.model_copy(update={"mlflow_tracking_uri": mlflow_url})
    result = smoke.mlflow_run(conns, tmp_path)
    assert result.facts["params"] == {"component": "smoke"}
    assert result.facts["metrics"] == {"auroc": 0.5}
    key = f"{result.facts['experiment_id']}/{result.facts['run_id']}/artifacts/smoke.txt"
    body = s3_client(s3).get_object(Bucket=s3.mlflow_bucket, Key=key)["Body"].read()
    assert body == (tmp_path / "smoke.txt").read_bytes()


def test_prometheus_scrapes_a_registered_target(prometheus: tuple[str, Path]) -> None:
    url, targets = prometheus
    result = smoke.prometheus_scrape(url, targets, timeout_s=60)
    assert result.facts["value"] == 3.0
