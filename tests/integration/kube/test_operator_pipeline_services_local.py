"""A pipeline's long-running children with the local executor, on the local control plane and the
real stack: the operator (``python -m clinops_operator run --executor local``, a child process with
the chart's ServiceAccount token) starts the pipeline's ingest and streaming featurizer as
supervised processes; the real ingest writes what is sent to the pipeline's prefixed topics to
bronze; killed, it is started again; deleting the pipeline stops both and removes their folders."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import example_body, wait_for

from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.sinks import produce

NAME = "adverse-event"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "Z"


def _child_pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "child.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) and not (folder / "exit").exists() else None


@pytest.fixture
def operator(
    cluster: Any, kafka: Connections, s3: Connections, redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    state, logs = tmp_path / "state", tmp_path / "logs"
    env = {
        **os.environ,
        **kafka.as_env(),
        "CLINOPS_OPERATOR_LOCAL_STATE_DIR": str(state),
        "CLINOPS_OPERATOR_LOCAL_LOG_DIR": str(logs),
    }
    argv = [sys.executable, "-m", "clinops_operator", "run", "--standalone", "--plain-logs", "--executor", "local"]
    with (tmp_path / "operator.log").open("ab") as out:
        proc = subprocess.Popen([*argv, "-n", namespace], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc, state / namespace, logs / namespace
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        for pid_file in state.glob("*/*/pid"):  # whatever a failed test left running
            if not (pid_file.parent / "exit").exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.killpg(int(pid_file.read_text()), signal.SIGTERM)


@pytest.mark.timeout(600)
def test_ingest_and_stream_run_as_supervised_processes_restarted_and_stopped_with_the_pipeline(
    cluster: Any, kafka: Connections, namespace: str, operator: tuple[subprocess.Popen[bytes], Path, Path]
) -> None:
    _, state, logs = operator
    bucket = f"svc-{uuid.uuid4().hex[:8]}"
    create_lake_bucket(s3_client(kafka), bucket)
    prefix = f"svc{uuid.uuid4().hex[:6]}."
    body = example_body(namespace)
    body["metadata"].get("annotations", {}).pop("clinops.io/run-now", None)  # no run: the children alone
    body["spec"]["sources"]["kafka"] |= {"bootstrapServers": kafka.kafka_bootstrap_servers, "topicPrefix": prefix}
    body["spec"]["lake"] |= {"endpoint": kafka.s3_endpoint_url, "bucket": bucket}
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))

    ingest, stream = state / f"{NAME}-ingest", state / f"{NAME}-stream"
    first = wait_for("ingest running", lambda: _child_pid(ingest), timeout_s=120)
    wait_for("the streaming featurizer running", lambda: _child_pid(stream), timeout_s=120)

    # The real ingest: what is sent to the pipeline's prefixed topics lands in its bucket's bronze.
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    cfg = GeneratorConfig(patients=2, days=1, seed=5, start=start, vitals_interval_min=60, faults=FaultRates.none())
    messages = generate(cfg).messages[:200]
    assert asyncio.run(produce(messages, kafka, topic_prefix=prefix)) == len(messages)
    s3 = s3_client(kafka)

    def bronze() -> int:
        return sum(1 for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="bronze/")
                   for _ in page.get("Contents", []))  # fmt: skip

    wait_for("bronze objects from the pipeline's ingest", bronze, timeout_s=120)

    os.kill(first, signal.SIGKILL)  # it dies: the next reconciles start it again (after a short backoff)
    second = wait_for("ingest started again", lambda: (p := _child_pid(ingest)) and p != first and p, timeout_s=120)
    assert (ingest / "restarts").read_text() == "1"
    assert (logs / f"{NAME}-ingest.log").read_text().count(f"$ {sys.executable} -m clinops_ingest run") == 2

    stream_pid = _child_pid(stream)
    assert stream_pid is not None
    cluster.kubectl("delete", "featurepipeline", NAME, "-n", namespace, "--timeout=90s")
    deadline = time.monotonic() + 60
    while (_alive(second) or _alive(stream_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(second), "ingest still runs after its pipeline was deleted"
    assert not _alive(stream_pid), "the streaming featurizer still runs after its pipeline was deleted"
    assert not ingest.exists()
    assert not stream.exists()
