"""The offline store's sweep on real MinIO and a real MLflow registry: old snapshots expire (never the
newest, never one a registered model version names), files no kept snapshot lists go once past the
grace period, and a dry run deletes nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.tracking import MlflowClient

from clinops_common.features.offline import SNAPSHOTS, DataFile, OfflineStore
from clinops_common.lifecycle import sweep
from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client, s3_filesystem


def _file(store: OfflineStore, rel: str) -> DataFile:
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": [1]}), buf)
    with store.fs.open_output_stream(f"{store.root}/{rel}") as f:
        f.write(buf.getvalue())
    return DataFile(rel, len(buf.getvalue()), rel.split("date=")[1].split("/", maxsplit=1)[0])


def _exists(store: OfflineStore, rel: str) -> bool:
    import pyarrow.fs as pafs

    return store.fs.get_file_info(f"{store.root}/{rel}").type == pafs.FileType.File


def test_sweep_expires_unnamed_old_snapshots_and_deletes_only_unlisted_old_files(
    s3: Connections, mlflow_url: str
) -> None:
    lake = f"sweep-{uuid.uuid4().hex[:8]}"
    create_lake_bucket(s3_client(s3), lake)
    store = OfflineStore(s3_filesystem(s3), f"{lake}/features/offline")
    old = datetime.now(UTC) - timedelta(days=800)  # past the 730-day retention
    v = "vitals_1h"
    a1, shared = _file(store, f"{v}/date=2024-01-01/a1.parquet"), _file(store, f"{v}/date=2024-01-02/shared.parquet")
    named = store.commit({v: [a1, shared]}, now=old)  # A: old, a model names it
    b1 = _file(store, f"{v}/date=2024-01-01/b1.parquet")
    store.commit({v: [b1]}, now=old + timedelta(hours=1))  # B: old, replaces a1; nobody names it
    c1 = _file(store, f"{v}/date=2024-01-01/c1.parquet")
    newest = store.commit({v: [c1]}, now=old + timedelta(hours=2))  # C: old too, but the newest
    orphan = _file(store, f"{v}/date=2024-01-03/orphan.parquet")  # a failed write: no snapshot lists it

    client = MlflowClient(tracking_uri=mlflow_url)
    model = f"sweep-model-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(model)
    mv = client.create_model_version(model, source="s3://mlflow/none", tags={sweep.SNAPSHOT_TAG: named.snapshot_id})
    names = sweep.named_snapshots(mlflow_url)
    assert names[named.snapshot_id] == f"{model} v{mv.version}"

    env = {**os.environ, **s3.as_env(), "CLINOPS_LAKE_BUCKET": lake, "CLINOPS_RETENTION_SWEEP_GRACE_HOURS": "0"}
    cmd = [sys.executable, "-m", "clinops_common.lifecycle", "sweep"]
    dry = subprocess.run([*cmd, "--dry-run"], env=env, capture_output=True, text=True, check=False)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"would delete {b1.path}" in dry.stdout
    assert f"would delete {orphan.path}" in dry.stdout
    assert a1.path not in dry.stdout
    assert all(_exists(store, f.path) for f in (a1, shared, b1, c1, orphan))  # the dry run deleted nothing

    # within a grace period, an unlisted file is spared (a featurizer may be writing it)
    files = sweep.stored_files(store)
    spared = sweep.plan(
        sweep.snapshots(store), store.latest_id(), names, files,
        now=datetime.now(UTC), retention=timedelta(days=730), grace=timedelta(hours=1),
    )  # fmt: skip
    assert spared.deleted == []
    assert sorted(spared.spared_young) == sorted([b1.path, orphan.path])

    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not _exists(store, b1.path)
    assert not _exists(store, orphan.path)
    for kept in (a1, shared, c1):  # every file of the named snapshot and of the newest
        assert _exists(store, kept.path)
    left = sorted(s.snapshot_id for s in sweep.snapshots(store))
    assert left == sorted([named.snapshot_id, newest.snapshot_id])
    assert store.latest_id() == newest.snapshot_id
    assert {f.path for f in store.snapshot(named.snapshot_id).files(v)} == {a1.path, shared.path}
    assert _exists(store, f"{SNAPSHOTS}/{named.snapshot_id}.json".replace(".json", ".json"))
