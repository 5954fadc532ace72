"""The stage command lines, run as the demo runs them: processor ``process`` and ``summary``, then the
featurizer's ``featurize``, ``materialize``, ``online`` and ``training-set``, each once, as a child
process against the harness's MinIO and Redis; every output is checked against what is in the stores.

Bronze is written with the ingest service's own renderer (no Kafka needed to test these commands).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from clinops_common.features.definitions import FEATURE_SERVICES, LABEL_VIEW
from clinops_common.features.offline import OfflineStore
from clinops_common.features.online import OnlineStore
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_devstack.settings import StackSettings
from clinops_ingest.core import Record, render, validate

PATIENTS = 3


SPARK_ENV = {"CLINOPS_SPARK_MASTER": "local[2]", "CLINOPS_SPARK_JARS_DIR": str(StackSettings().spark_jars_dir())}


def run(run_id: str) -> tuple[str, ...]:
    """A stage command's run identity (the stage contract's --pipeline and --run-id)."""
    return ("--pipeline", "cli", "--run-id", run_id)


def cli(conns: Connections, module: str, *args: str) -> str:
    """``python -m <module> <args>`` with the connections in its environment; its stdout.

    The one place these tests spell a command line: adapt it here when the stages' arguments change."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **conns.as_env(), **SPARK_ENV},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"{module} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def lake(s3: Connections, redis_url: str) -> Iterator[tuple[Connections, Any]]:
    """A fresh bucket holding bronze for a small cohort over the last 12 hours (as the ingest writes it)."""
    conns = s3.model_copy(update={"lake_bucket": f"cli-{uuid.uuid4().hex[:10]}"})
    client = s3_client(conns)
    client.create_bucket(Bucket=conns.lake_bucket)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    ds = generate(
        GeneratorConfig(patients=PATIENTS, days=0.5, seed=3, start=start, faults=FaultRates(out_of_range=0.01)),
        keep_truth=True,
    )
    offsets: dict[str, int] = {}
    records: dict[str, list[Record]] = {}
    for m in ds.messages:
        offset = offsets[m.topic] = offsets.get(m.topic, -1) + 1
        records.setdefault(m.topic, []).append(Record(m.topic, 0, offset, m.timestamp_ms, m.key, m.value))
    objects = [o for recs in records.values() for o in render([validate(r) for r in recs], datetime.now(UTC))]
    for o in objects:
        client.put_object(Bucket=conns.lake_bucket, Key=o.key, Body=o.body)
    yield conns, {"dataset": ds, "bronze": sorted(o.key for o in objects if o.layer == "bronze")}
    r = redis.Redis.from_url(redis_url)
    for key in r.scan_iter("clinops:fs:*"):
        r.delete(key)
    r.close()


@pytest.fixture(scope="module")
def processed(lake: tuple[Connections, Any]) -> dict[str, Any]:
    conns, made = lake
    out = cli(conns, "clinops_processor", "process", *run("p1"))
    return {"result": json.loads(out.strip().splitlines()[-1]), **made}


def test_process_reports_what_it_read_and_silver_holds_the_ledger(lake: Any, processed: dict[str, Any]) -> None:
    conns, _ = lake
    ds = processed["dataset"]
    result = processed["result"]
    assert result["new_objects"] == result["objects_read"] == len(processed["bronze"])
    days = {datetime.fromtimestamp(t.event_time_ms / 1000, UTC).date().isoformat() for t in ds.truths}
    assert result["dates"] == sorted(days)
    lines = [line.rsplit(maxsplit=1) for line in cli(conns, "clinops_processor", "summary").splitlines()]
    counts = {name.strip(): value for name, value in lines if value.isdigit()}
    silver = ds.ledger.silver_rows()
    for table in ("measurements", "medications", "admissions", "outcomes"):
        assert int(counts[f"silver {table} rows"]) == silver[table], (table, counts)
    assert int(counts["quarantine rows"]) == sum(ds.ledger.quarantine.values()) > 0
    assert int(counts["bronze objects"]) == len(processed["bronze"])
    # run again: nothing new, nothing read
    again = json.loads(cli(conns, "clinops_processor", "process", *run("p2")).strip().splitlines()[-1])
    assert {k: again[k] for k in ("new_objects", "objects_read", "dates")} == {
        "new_objects": 0,
        "objects_read": 0,
        "dates": [],
    }
    assert (again["pipeline"], again["run_id"]) == ("cli", "p2")


@pytest.fixture(scope="module")
def featurized(lake: Any, processed: dict[str, Any]) -> dict[str, str]:
    conns, _ = lake
    out = cli(conns, "clinops_featurizer", "featurize", *run("f1"))
    m = re.search(r"featurized (\d+) views -> snapshot (\S+)", out)
    assert m, out
    return {"views": m[1], "snapshot": m[2]}


def test_featurize_publishes_the_snapshot_it_names(lake: Any, featurized: dict[str, str]) -> None:
    conns, _ = lake
    store = OfflineStore.for_lake(conns)
    assert store.latest_id() == featurized["snapshot"]
    snap = store.snapshot()
    with_files = [v for v in snap.views if snap.files(v)]
    assert int(featurized["views"]) == len(with_files)
    assert LABEL_VIEW.name in with_files


def test_materialize_online_and_training_set(lake: Any, featurized: dict[str, str], redis_url: str) -> None:
    conns, _ = lake
    snapshot = featurized["snapshot"]
    as_of = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")  # as the demo: DEMO_AS_OF
    out = cli(conns, "clinops_featurizer", "materialize", *run("z1"), "--end", as_of)
    m = re.search(r"materialized snapshot (\S+) as of .*: (\d+) rows, (\d+) patients", out)
    assert m, out
    assert m[1] == snapshot
    assert int(m[3]) == PATIENTS
    online = OnlineStore.from_url(redis_url)
    stored = sorted(k.decode().rsplit(":", 1)[1] for k in online.client.scan_iter(f"{online.prefix}:patient:*"))
    assert stored == [f"PT{i:05d}" for i in range(1, PATIENTS + 1)]

    out = cli(conns, "clinops_featurizer", "online", "--at", "materialized")
    m = re.search(r"adverse_event_v1 for (PT\d+): (\d+)/(\d+) features present", out)
    assert m, out
    assert m[1] == stored[0]
    assert int(m[3]) == len(FEATURE_SERVICES["adverse_event_v1"].refs)
    assert int(m[2]) > 0
    assert "freshness vitals: fresh" in out, out

    out = cli(conns, "clinops_featurizer", "training-set")
    m = re.search(
        r"training set adverse_event_v1: (\d+) rows x (\d+) columns, snapshot (\S+), label rate ([\d.]+)", out
    )
    assert m, out
    store = OfflineStore.for_lake(conns)
    labels = store.read(LABEL_VIEW, store.snapshot(snapshot))
    assert int(m[1]) == len(labels) > 0
    assert int(m[2]) == 2 + len(FEATURE_SERVICES["adverse_event_v1"].refs) + 1
    assert m[3] == snapshot
    assert float(m[4]) == pytest.approx(labels["adverse_event_24h"].mean(), abs=5e-4)


def test_featurize_again_on_the_same_inputs_reuses_the_snapshot_and_any_change_recomputes(
    lake: Any, featurized: dict[str, str]
) -> None:
    from clinops_common.contracts import FeaturizeArgs, FeaturizeResult, read_result
    from clinops_featurizer import job

    conns, _ = lake
    store = OfflineStore.for_lake(conns)
    out = cli(conns, "clinops_featurizer", "featurize", *run("f2"))
    assert f"unchanged since snapshot {featurized['snapshot']} was made: reused it" in out, out
    assert store.latest_id() == featurized["snapshot"]  # no second snapshot
    result = read_result(s3_client(conns), conns.lake_bucket, FeaturizeResult, "cli", "f2")
    first = read_result(s3_client(conns), conns.lake_bucket, FeaturizeResult, "cli", "f1")
    assert result is not None
    assert first is not None
    assert result.reused
    assert not first.reused
    assert (result.snapshot_id, result.files, result.bytes) == (first.snapshot_id, first.files, first.bytes)

    # Any object added under what it reads is a change (Spark's reader skips "_" files; the fingerprint does not).
    args = FeaturizeArgs(pipeline="cli", run_id="f3")
    marker = "silver/measurements/_touched"
    s3_client(conns).put_object(Bucket=conns.lake_bucket, Key=marker, Body=b"")
    changed = job.input_fingerprint(conns, args)
    assert job.reusable(conns, args, changed) is None
    s3_client(conns).delete_object(Bucket=conns.lake_bucket, Key=marker)
    same = job.input_fingerprint(conns, args)
    assert same != changed
    assert job.reusable(conns, args, same) is not None
    assert job.reusable(conns, args.model_copy(update={"recompute": True}), same) is None
    # Arguments that shape the rows are inputs too; the run's identity is not.
    assert job.input_fingerprint(conns, args.model_copy(update={"start": datetime(2026, 1, 1)})) != same
    assert job.input_fingerprint(conns, args.model_copy(update={"pipeline": "other", "run_id": "x"})) == same
