"""The lake's lifecycle on a real MinIO: retention rules applied once (a second run changes nothing),
an expiry carried out by MinIO's scanner, and bronze that no credential can rewrite or delete while
ingest's replay of a name still succeeds.

This module starts its own MinIO with ``MINIO_SCANNER_SPEED=fastest`` (a scanner cycle a second, no
sleeping between objects: ``StackSettings.minio_scanner_speed``) so that a rule acts within seconds
instead of the default minute-long cycles; the shared test stack keeps the default speed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clinops_common.lifecycle import bucket, rules
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_devstack import components as comps
from clinops_devstack import supervisor
from clinops_devstack.scratch import free_ports, scratch_home
from clinops_devstack.settings import StackSettings
from clinops_ingest.core import LakeObject
from clinops_ingest.service import LakeWriter

SCANNER_WAIT_S = 120


@pytest.fixture(scope="module")
def fast_minio() -> Iterator[Connections]:
    home = scratch_home("clinops-lifecycle-")
    settings = StackSettings(home=home, ports=free_ports(), minio_scanner_speed="fastest", start_timeout_s=180)
    supervisor.start(settings, comps.minio(settings), say=lambda _m: None)
    try:
        yield settings.connections()
    finally:
        supervisor.stop(settings, "minio", say=lambda _m: None)
        shutil.rmtree(home, ignore_errors=True)


def _bucket(conns: Connections) -> str:
    name = f"lake-{uuid.uuid4().hex[:8]}"
    assert bucket.create_lake_bucket(s3_client(conns), name)
    return name


def _cli(conns: Connections, lake: str, *args: str, **env: str) -> str:
    full = {**os.environ, **conns.as_env(), "CLINOPS_LAKE_BUCKET": lake, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "clinops_common.lifecycle", *args], env=full, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_stack_lake_is_locked_and_has_every_layer_rule(fast_minio: Connections) -> None:
    """What `make up` provisions (the same component definition started here)."""
    s3 = s3_client(fast_minio)
    assert bucket.lock_state(s3, fast_minio.lake_bucket) == bucket.LockState(True, "Enabled")
    held = {r["ID"]: rules.normalise(r) for r in bucket.current_rules(s3, fast_minio.lake_bucket)}
    assert held == {r.rule_id: r.to_s3() for r in rules.layer_rules(rules.RetentionSettings())}


def test_apply_sets_each_layer_rule_and_a_second_run_changes_nothing(fast_minio: Connections) -> None:
    s3 = s3_client(fast_minio)
    lake = _bucket(fast_minio)
    foreign = {"ID": "team-scratch", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled", "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=lake, LifecycleConfiguration={"Rules": [foreign]})  # type: ignore[typeddict-item]

    out = _cli(fast_minio, lake, "apply")
    assert "lifecycle rules applied" in out
    held = {r["ID"]: rules.normalise(r) for r in bucket.current_rules(s3, lake)}
    assert held["team-scratch"] == foreign  # someone else's rule is kept
    assert held["clinops-bronze"]["Expiration"] == {"Days": 90}
    assert held["clinops-deadletter"]["Expiration"] == {"Days": 90}
    assert held["clinops-silver"]["Expiration"] == {"Days": 730}
    assert "Expiration" not in held["clinops-offline-features"]  # the sweep decides; versions go after a day
    assert held["clinops-offline-features"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert held["clinops-stroke"]["Expiration"] == {"Days": 730}  # each run's folder, by age
    assert held["clinops-stroke"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}

    assert "lifecycle rules unchanged" in _cli(fast_minio, lake, "apply")
    assert {r["ID"]: rules.normalise(r) for r in bucket.current_rules(s3, lake)} == held

    shown = _cli(fast_minio, lake, "show", CLINOPS_RETENTION_SILVER_DAYS="365")
    assert "differs from settings" in shown
    assert "object lock: enabled" in shown
    assert "lifecycle rules applied" in _cli(fast_minio, lake, "apply", CLINOPS_RETENTION_SILVER_DAYS="365")
    assert rules.normalise(next(r for r in bucket.current_rules(s3, lake) if r["ID"] == "clinops-silver"))[
        "Expiration"
    ] == {"Days": 365}


def _wait_for_delete_marker(s3: Any, lake: str, key: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < SCANNER_WAIT_S:
        if any(v["DeleteMarker"] for v in bucket.versions(s3, lake, key)):
            return time.monotonic() - t0
        time.sleep(1)
    raise AssertionError(f"MinIO's scanner did not expire {key} within {SCANNER_WAIT_S} s")


def test_an_expiry_date_in_the_past_is_carried_out_by_the_scanner(fast_minio: Connections) -> None:
    s3 = s3_client(fast_minio)
    lake = _bucket(fast_minio)
    bucket.apply_rules(s3, lake, rules.layer_rules(rules.RetentionSettings()))
    s3.put_object(Bucket=lake, Key="bronze/vitals/date=2026-01-01/hour=00/0-0-9.ndjson", Body=b"{}\n")
    s3.put_object(Bucket=lake, Key="scratch/expire-me.txt", Body=b"old")
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    rule = {
        "ID": "scratch-past",
        "Filter": {"Prefix": "scratch/"},
        "Status": "Enabled",
        "Expiration": {"Date": midnight},
    }
    current = bucket.current_rules(s3, lake)
    s3.put_bucket_lifecycle_configuration(Bucket=lake, LifecycleConfiguration={"Rules": [*current, rule]})  # type: ignore[typeddict-item]

    waited = _wait_for_delete_marker(s3, lake, "scratch/expire-me.txt")
    print(f"expired after {waited:.1f} s")
    # the expiry is the scanner's delete (a delete marker on the versioned lake), not a read-time filter
    with pytest.raises(ClientError):
        s3.get_object(Bucket=lake, Key="scratch/expire-me.txt")
    bronze = bucket.versions(s3, lake, "bronze/vitals/date=2026-01-01/hour=00/0-0-9.ndjson")
    assert [v["DeleteMarker"] for v in bronze] == [False]  # written today: 90 days to go


def test_bronze_cannot_be_rewritten_or_deleted_and_a_replay_succeeds(fast_minio: Connections) -> None:
    s3 = s3_client(fast_minio)
    lake = _bucket(fast_minio)
    key = "bronze/vitals/date=2026-12-01/hour=10/2-100-199.ndjson"
    writer = LakeWriter(s3, lake, retry_s=5, lock_days={"bronze/": 90, "deadletter/": 90})
    first = b'{"offset": 100}\n'
    writer._put(LakeObject(key, first, 1, "bronze"))
    # a replay after a crash rebuilds the same name (a new ingested_at): it succeeds and writes nothing
    writer._put(LakeObject(key, b'{"offset": 100, "replayed": true}\n', 1, "bronze"))
    assert writer.replayed == 1
    assert [v["DeleteMarker"] for v in bucket.versions(s3, lake, key)] == [False]
    head = s3.head_object(Bucket=lake, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=89)

    # the same credentials, bypassing ingest's conditional write: an overwrite, deletes
    s3.put_object(Bucket=lake, Key=key, Body=b"tampered\n")
    s3.delete_object(Bucket=lake, Key=key)  # a delete marker: the locked version stays
    first_version = bucket.versions(s3, lake, key)[0]["VersionId"]
    for attempt in (
        lambda: s3.delete_object(Bucket=lake, Key=key, VersionId=first_version),
        lambda: s3.delete_object(Bucket=lake, Key=key, VersionId=first_version, BypassGovernanceRetention=True),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] in ("AccessDenied", "InvalidRequest", "ObjectLocked")
    assert bucket.original(s3, lake, key) == first
    # an unlocked layer (silver) is ordinary: its objects can be replaced and removed
    s3.put_object(Bucket=lake, Key="silver/x.parquet", Body=b"1")
    v = bucket.versions(s3, lake, "silver/x.parquet")[0]["VersionId"]
    s3.delete_object(Bucket=lake, Key="silver/x.parquet", VersionId=v)
