"""Per-component lake credentials and the first version of a bronze name, on the test stack's real MinIO.

Each test bucket gets its own component users, made by the same provisioning as `make up`'s (one
MinIO user and policy per component, ``clinops_common.lifecycle.access``). With ingest's credentials
an overwrite and a delete leave the original bytes retrievable while a replay succeeds; the
processor's credentials cannot delete bronze; and the processor (Spark, reading with the processor's
credentials) turns each name's first version into silver, whatever was put or deleted under it since.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr
from typer.testing import CliRunner

from clinops_common.lake import silver_path
from clinops_common.lifecycle import access, bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_devstack.__main__ import app as devstack_app
from clinops_devstack.provision import ensure_lake_users
from clinops_ingest.core import LakeObject
from clinops_ingest.service import LakeWriter
from clinops_processor import job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DENIED = ("AccessDenied", "InvalidRequest", "ObjectLocked")


def _lake(s3: Connections) -> tuple[str, dict[str, Connections]]:
    """A fresh object-locked lake bucket and one user per component with its policy on it."""
    name = f"lake-{uuid.uuid4().hex[:8]}"
    bucket.create_lake_bucket(s3_client(s3), name)
    users = {c: (f"{name}-{c}", SecretStr(uuid.uuid4().hex)) for c in ("ingest", "processor")}
    ensure_lake_users(s3, name, users)
    conns = {
        c: s3.model_copy(update={"lake_bucket": name, "s3_access_key": SecretStr(a), "s3_secret_key": k})
        for c, (a, k) in users.items()
    }
    return name, conns


def _bronze(values: list[float], offset: int = 0) -> bytes:
    """A bronze object of heart-rate events (the lines ingest writes)."""
    lines = []
    for i, value in enumerate(values):
        event = {
            "schema_version": 1,
            "event_id": f"e{offset + i}",
            "patient_id": "PT00001",
            "event_time": f"2026-11-30T10:{offset + i:02d}:00Z",
            "source": "monitor-1",
            "measurement": "heart_rate",
            "value": value,
            "unit": "bpm",
        }
        lines.append(
            json.dumps(
                {
                    "topic": "vitals",
                    "partition": 0,
                    "offset": offset + i,
                    "timestamp": "2026-11-30T10:00:00Z",
                    "key": "PT00001",
                    "ingested_at": "2026-11-30T10:05:00Z",
                    "event": event,
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _refused(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    code = str(refused.value.response["Error"]["Code"])
    assert code in DENIED, code
    return code


def _writer(conns: Connections) -> LakeWriter:
    return LakeWriter(s3_client(conns), conns.lake_bucket, retry_s=5, lock_days={"bronze/": 90, "deadletter/": 90})


def test_ingest_credentials_cannot_rewrite_or_delete_bronze_and_a_replay_succeeds(s3: Connections) -> None:
    lake, conns = _lake(s3)
    ingest = s3_client(conns["ingest"])
    key = "bronze/vitals/date=2026-11-30/hour=10/0-0-2.ndjson"
    first = _bronze([70.0, 71.0, 72.0])
    assert bucket.lock_state(ingest, lake).enabled  # ingest's check at start, with its own credentials
    writer = _writer(conns["ingest"])
    writer._put(LakeObject(key, first, 3, "bronze"))
    writer._put(LakeObject(key, first.replace(b"10:05:00", b"10:09:00"), 3, "bronze"))  # a replay: same name
    assert writer.replayed == 1
    writer._put(
        LakeObject("deadletter/vitals/date=2026-11-30/hour=10/0-3-3.ndjson", b'{"reason": "x"}\n', 1, "deadletter")
    )

    # ingest may PUT (an unconditional PUT adds a version), never delete, never read back
    ingest.put_object(Bucket=lake, Key=key, Body=b"tampered\n")
    _refused(lambda: ingest.delete_object(Bucket=lake, Key=key))
    first_version = bucket.first_versions(s3_client(s3), lake, key)[key]
    _refused(lambda: ingest.delete_object(Bucket=lake, Key=key, VersionId=first_version.version_id))
    _refused(lambda: ingest.get_object(Bucket=lake, Key=key))
    _refused(lambda: ingest.put_object(Bucket=lake, Key="silver/measurements/x.parquet", Body=b"1"))

    admin = s3_client(s3)
    assert bucket.original(admin, lake, key) == first
    assert [v["DeleteMarker"] for v in bucket.versions(admin, lake, key)] == [False, False]  # no delete took
    assert not first_version.current  # the tampering is the current version; the first one is the record


def test_processor_credentials_cannot_delete_bronze(s3: Connections) -> None:
    lake, conns = _lake(s3)
    key = "bronze/vitals/date=2026-11-30/hour=11/0-0-0.ndjson"
    _writer(conns["ingest"])._put(LakeObject(key, _bronze([80.0]), 1, "bronze"))
    processor = s3_client(conns["processor"])
    assert processor.get_object(Bucket=lake, Key=key)["Body"].read() == _bronze([80.0])
    _refused(lambda: processor.delete_object(Bucket=lake, Key=key))
    version = bucket.first_versions(processor, lake, key)[key].version_id
    _refused(lambda: processor.delete_object(Bucket=lake, Key=key, VersionId=version))
    _refused(lambda: processor.put_object(Bucket=lake, Key=key, Body=b"x\n"))
    assert bucket.versions(s3_client(s3), lake, key)[0]["VersionId"] == version
    assert len(bucket.versions(s3_client(s3), lake, key)) == 1


def test_the_processor_turns_the_first_version_of_each_name_into_silver(spark: SparkSession, s3: Connections) -> None:
    lake, conns = _lake(s3)
    # the processor's Spark reads this bucket with the processor's own credentials (s3a per-bucket keys)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    hadoop.set(f"fs.s3a.bucket.{lake}.access.key", conns["processor"].s3_access_key.get_secret_value())
    hadoop.set(f"fs.s3a.bucket.{lake}.secret.key", conns["processor"].s3_secret_key.get_secret_value())
    writer = _writer(conns["ingest"])
    ingest, admin = s3_client(conns["ingest"]), s3_client(s3)
    folder = "bronze/vitals/date=2026-11-30/hour=10"
    rewritten, deleted, plain = f"{folder}/0-0-1.ndjson", f"{folder}/0-2-2.ndjson", f"{folder}/0-3-3.ndjson"
    writer._put(LakeObject(rewritten, _bronze([61.0, 62.0], offset=0), 2, "bronze"))
    writer._put(LakeObject(deleted, _bronze([63.0], offset=2), 1, "bronze"))
    writer._put(LakeObject(plain, _bronze([64.0], offset=3), 1, "bronze"))
    # someone with PUT rights rewrites a name with other readings; the admin hides another one
    ingest.put_object(Bucket=lake, Key=rewritten, Body=_bronze([150.0, 151.0, 152.0], offset=0))
    admin.delete_object(Bucket=lake, Key=deleted)  # a delete marker; the locked version stays
    firsts = job.list_bronze(admin, lake)
    assert set(firsts) == {rewritten, deleted, plain}
    assert [firsts[k].current for k in (rewritten, deleted, plain)] == [False, False, True]

    result = job.run(spark, conns["processor"])
    assert result.new_objects == 3
    rows = spark.read.parquet(silver_path(lake, "measurements")).orderBy("event_id").collect()
    assert [(r["event_id"], r["value"]) for r in rows] == [("e0", 61.0), ("e1", 62.0), ("e2", 63.0), ("e3", 64.0)]
    # a second run reads nothing new: the tampering is not news
    assert job.run(spark, conns["processor"]).objects_read == 0


def test_make_env_prints_a_components_own_lake_user(stack: Any, s3: Connections) -> None:
    out = CliRunner().invoke(devstack_app, ["env", "ingest"])
    assert out.exit_code == 0, out.output
    assert "export CLINOPS_S3_ACCESS_KEY=clinops-ingest\n" in out.output
    assert CliRunner().invoke(devstack_app, ["env", "nobody"]).exit_code == 2
    # the test stack was provisioned like `make up`: its lake has every component's user and policy
    settings = stack.settings
    lake = settings.lake_bucket
    lifecycle = s3_client(settings.component_connections("lifecycle"))
    assert bucket.lock_state(lifecycle, lake).enabled
    assert {r["ID"] for r in bucket.current_rules(lifecycle, lake)} >= {"clinops-bronze", "clinops-silver"}
    operator = s3_client(settings.component_connections("operator"))
    _refused(lambda: operator.put_object(Bucket=lake, Key="runs/x/y/ingest.json", Body=b"{}"))
    for component in access.COMPONENTS:
        client = s3_client(settings.component_connections(component))
        _refused(lambda c=client: c.delete_object(Bucket=lake, Key="bronze/vitals/x.ndjson"))
