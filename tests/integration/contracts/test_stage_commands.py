"""Every stage the operator renders runs for real, as the rendered command, on the harness's servers.

One run of the streaming pipeline (ingest -> process -> featurize -> materialize; the batch
pipeline's stroke stage runs from its real sources in ``test_stroke_stage_command.py``): each
command line comes from ``clinops_operator.core.stages.task`` (so from the contract models), with
the rendered environment (the spec's plain values; secret references resolved from the harness, as
a local executor resolves them). Each must exit 0 and leave a result document that the operator's
own reader (``clinops_operator.results.LakeResults``) reads back; the featurizer's snapshot id must
reach the materializer's and the trainer's arguments; the Redis keys must expire after the spec's
``stores.redis.ttlHours``. The trainer's rendered command must parse and reach the data: six hours
of three patients hold no labelled row, which it must refuse with a clear message
(``tests/integration/trainer`` trains for real from the same contract).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from clinops_common.contracts import (
    FeaturizeResult,
    IngestResult,
    MaterializeResult,
    ProcessResult,
    StageResult,
    TrainArgs,
)
from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import GeneratorConfig, generate
from clinops_common.synthetic.sinks import produce, upload
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import Stage, StageTask, task
from clinops_operator.results import LakeResults

REPO = Path(__file__).resolve().parents[3]
TTL_HOURS = 6
RUN_ID = "m0c0ffee0"


def pipeline(manifest: str, name: str, conns: Connections, bucket: str) -> Pipeline:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / f"{manifest}.yaml").read_text())
    body["metadata"] |= {"name": name, "uid": str(uuid.uuid4())}
    spec = body["spec"]
    spec["sources"]["kafka"]["bootstrapServers"] = conns.kafka_bootstrap_servers
    spec["lake"] |= {"endpoint": conns.s3_endpoint_url, "bucket": bucket}
    spec["stores"]["redis"]["ttlHours"] = TTL_HOURS
    spec["stores"]["mlflow"] = {"trackingUri": conns.mlflow_tracking_uri}
    return Pipeline.from_body(body)


def run_task(t: StageTask, conns: Connections, stack: Any, log: Path) -> subprocess.CompletedProcess[str]:
    """Run the task's command as a local executor would: rendered env, secrets from our own config."""
    harness = conns.as_env()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        **({"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}),
        **dict(t.env),
        **{s.env: harness[s.env] for s in t.secret_env},
        # both cores: nothing else runs beside a stage here (processor and featurize 74 s at local[1], 50 s)
        "CLINOPS_SPARK_MASTER": "local[2]",
        "CLINOPS_SPARK_JARS_DIR": str(stack.settings.spark_jars_dir()),
    }
    argv = [sys.executable, "-m", t.stage.package, *t.args]
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n# exit {proc.returncode} after {time.monotonic() - started:.1f} s\n")
        f.write(f"{proc.stdout}\n{proc.stderr}\n")
    return proc


@pytest.fixture(scope="module")
def lake(kafka: Connections, s3: Connections, redis_url: str) -> tuple[Connections, str]:
    """A bucket of its own (the processor's state and the offline store start empty)."""
    bucket = f"stages-{uuid.uuid4().hex[:8]}"
    create_lake_bucket(s3_client(s3), bucket)  # object lock: ingest writes bronze immutably
    return kafka.model_copy(update={"lake_bucket": bucket}), bucket


@pytest.fixture(scope="module")
def streaming(
    lake: tuple[Connections, str], stack: Any, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    conns, bucket = lake
    p = pipeline("adverse-event", f"stages-{uuid.uuid4().hex[:6]}", conns, bucket)
    ds = generate(GeneratorConfig(patients=3, days=0.25, seed=5))
    # The online store never goes backwards: rows another test left for the same patient ids with later
    # event times would make this materializer write nothing. Start this run's patients from no row.
    client = redis.Redis.from_url(redis_url)
    client.delete(*(f"clinops:fs:patient:{pt.patient_id}" for pt in ds.patients))
    client.close()
    assert asyncio.run(produce(ds.messages, conns)) == len(ds.messages)
    upload(ds, conns)  # the batch cohort: the featurizer joins demographics, the stroke stage reads all five
    log = tmp_path_factory.mktemp("stages") / "commands.log"
    reader = LakeResults(s3_client(conns))
    done: dict[Stage, StageResult] = {}
    tasks: dict[Stage, StageTask] = {}
    for stage in (Stage.INGEST, Stage.PROCESSOR, Stage.FEATURIZER, Stage.MATERIALIZER):
        t = task(p, stage, RUN_ID, done)
        tasks[stage] = t
        proc = run_task(t, conns, stack, log)
        assert proc.returncode == 0, f"{stage}: {' '.join(t.args)}\n{proc.stderr[-4000:]}"
        result = reader.read(p, t)
        assert result is not None, f"{stage} wrote no result document"
        done[stage] = result
    return {
        "p": p,
        "conns": conns,
        "done": done,
        "tasks": tasks,
        "log": log,
        "messages": len(ds.messages),
        "patients": [pt.patient_id for pt in ds.patients],
    }


def test_ingest_stage_consumes_every_message_and_says_so(streaming: dict[str, Any]) -> None:
    result = streaming["done"][Stage.INGEST]
    assert isinstance(result, IngestResult)
    assert result.messages == streaming["messages"]
    assert (result.pipeline, result.run_id) == (streaming["p"].name, RUN_ID)


def test_process_stage_reports_the_objects_and_dates_it_did(streaming: dict[str, Any]) -> None:
    result = streaming["done"][Stage.PROCESSOR]
    assert isinstance(result, ProcessResult)
    assert result.new_objects > 0
    assert result.dates


def test_featurize_snapshot_id_reaches_materialize_and_train(streaming: dict[str, Any]) -> None:
    feat, mat = streaming["done"][Stage.FEATURIZER], streaming["done"][Stage.MATERIALIZER]
    assert isinstance(feat, FeaturizeResult)
    assert isinstance(mat, MaterializeResult)
    assert feat.files["vitals"] > 0
    tasks = streaming["tasks"]
    assert tasks[Stage.MATERIALIZER].arguments.snapshot_id == feat.snapshot_id
    assert mat.snapshot_id == feat.snapshot_id
    train = task(streaming["p"], Stage.TRAINER, RUN_ID, streaming["done"])
    assert isinstance(train.arguments, TrainArgs)
    assert train.arguments.snapshot_id == feat.snapshot_id
    args = list(train.args)
    assert args[args.index("--snapshot-id") + 1] == feat.snapshot_id


def test_materialized_keys_expire_after_the_specs_ttl_hours(streaming: dict[str, Any], redis_url: str) -> None:
    mat = streaming["done"][Stage.MATERIALIZER]
    assert isinstance(mat, MaterializeResult)
    assert mat.rows > 0
    assert mat.key_ttl_hours == TTL_HOURS
    client = redis.Redis.from_url(redis_url)
    # This run's patients only: the harness's Redis is shared, and other tests (the local-cluster e2e)
    # materialize other patients with their own pipelines' TTLs.
    keys = [f"clinops:fs:patient:{pid}" for pid in streaming["patients"]]
    assert all(client.exists(k) for k in keys), keys
    ttls = [client.ttl(k) for k in keys]
    assert all(TTL_HOURS * 3600 - 120 <= t <= TTL_HOURS * 3600 for t in ttls), ttls


def test_trainer_runs_its_rendered_command_and_refuses_a_snapshot_without_labels(
    streaming: dict[str, Any], stack: Any, mlflow_url: str
) -> None:
    t = task(streaming["p"], Stage.TRAINER, RUN_ID, streaming["done"])
    proc = run_task(t, streaming["conns"], stack, streaming["log"])
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "train failed" in proc.stderr
    assert "No such option" not in proc.stderr
