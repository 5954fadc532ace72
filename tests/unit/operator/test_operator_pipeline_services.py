"""A pipeline's long-running children (ingest, the streaming featurizer): what the operator renders,
and the local executor keeping them as supervised processes (a short Python loop stands in for the
service here; tests/integration/kube runs the real commands)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from clinops_operator.core import render, services
from clinops_operator.core.spec import Pipeline
from clinops_operator.local import LocalExecutor
from clinops_operator.recorder import CHILD_PID, EXIT, PID

REPO = Path(__file__).resolve().parents[3]
SECRETS = {
    "CLINOPS_S3_ACCESS_KEY": "ak",
    "CLINOPS_S3_SECRET_KEY": "sk",
    "CLINOPS_REDIS_URL": "redis://x",
    "CLINOPS_DATABASE_URL": "postgresql://x",
}
LOOP = "import os, time\nprint('up', os.environ['CLINOPS_LAKE_BUCKET'], flush=True)\nwhile True: time.sleep(0.1)"


def pipeline(manifest: str = "adverse-event.yaml") -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / manifest).read_text())
    body["metadata"] |= {"uid": "u1"}
    return Pipeline.from_body(body)


def test_a_streaming_pipeline_has_ingest_and_the_streaming_featurizer_a_batch_one_none() -> None:
    p = pipeline()
    ingest, stream = services.service_tasks(p)
    assert (ingest.name, stream.name) == (f"{p.name}-ingest", f"{p.name}-stream")
    assert (ingest.module, ingest.args[0]) == ("clinops_ingest", "run")
    group = p.spec.sources.kafka.consumer_group or f"clinops-{p.name}"  # type: ignore[union-attr]
    assert ingest.args == ("run", "--group-id", group)
    assert json.loads(dict(ingest.env)["CLINOPS_INGEST_TOPICS"]) == list(p.spec.sources.kafka.topics)  # type: ignore[union-attr]
    assert (stream.module, stream.args) == ("clinops_featurizer.stream", ("stream",))
    assert dict(stream.env)["CLINOPS_STREAM_GROUP_ID"] != group  # its own group: it must not share ingest's partitions
    assert {s.env for s in ingest.secret_env} >= {"CLINOPS_S3_ACCESS_KEY", "CLINOPS_S3_SECRET_KEY"}
    assert services.service_tasks(pipeline("stroke-risk.yaml")) == ()


def test_a_topic_prefix_reaches_both_commands() -> None:
    body = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "u1"}
    body["spec"]["sources"]["kafka"]["topicPrefix"] = "site-a."
    ingest, stream = services.service_tasks(Pipeline.from_body(body))
    assert ingest.args[-2:] == ("--topic-prefix", "site-a.")
    assert stream.args == ("stream", "--topic-prefix", "site-a.")


def test_on_a_cluster_each_is_a_one_replica_deployment_owned_by_the_pipeline_and_locked_down() -> None:
    p = pipeline()
    ingest = services.service_tasks(p)[0]
    d = render.deployment(ingest, p)
    assert (d["apiVersion"], d["kind"], d["metadata"]["name"]) == ("apps/v1", "Deployment", f"{p.name}-ingest")
    assert d["metadata"]["ownerReferences"][0] | {} == render.owner_reference(p)
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert labels["clinops.io/pipeline"] == p.name
    assert labels["clinops.io/service"] == "ingest"
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "clinops_ingest"]
    assert c["args"] == list(ingest.args)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["runAsNonRoot"] is True
    secret_vars = {e["name"] for e in c["env"] if "valueFrom" in e}
    assert "CLINOPS_S3_SECRET_KEY" in secret_vars
    assert not [e for e in c["env"] if e["name"] in secret_vars and "value" in e]  # never a plain secret


def _running(ex: LocalExecutor, state: Path, timeout_s: float = 20) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (state / CHILD_PID).exists() and (state / PID).exists():
            return int((state / CHILD_PID).read_text())
        time.sleep(0.05)
    raise AssertionError(f"{state.name} did not start")


def _gone(pid: int, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_locally_the_process_is_kept_restarted_when_it_dies_and_stopped_with_the_pipeline(tmp_path: Path) -> None:
    p = pipeline()
    svc = services.service_tasks(p)[0]
    env = {"PATH": os.environ["PATH"], **SECRETS}
    ex = LocalExecutor(tmp_path / "state", tmp_path / "logs", environ=env,
                       service_argv=lambda _t: [sys.executable, "-c", LOOP], start_grace_s=5)  # fmt: skip
    state = tmp_path / "state" / p.namespace / svc.name
    assert ex.ensure_service(svc, p) is True
    first = _running(ex, state)
    assert ex.ensure_service(svc, p) is False  # running: nothing started
    # A restarted operator (a new executor over the same folders) finds it and starts nothing.
    again = LocalExecutor(tmp_path / "state", tmp_path / "logs", environ=env,
                          service_argv=lambda _t: [sys.executable, "-c", LOOP], service_backoff_s=1)  # fmt: skip
    assert again.ensure_service(svc, p) is False

    os.kill(first, signal.SIGKILL)  # the service dies; its recorder records it
    deadline = time.monotonic() + 20
    while not (state / EXIT).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (state / EXIT).read_text() == str(-signal.SIGKILL)
    assert again.ensure_service(svc, p) is False  # not at once: after its backoff
    time.sleep(1.1)
    assert again.ensure_service(svc, p) is True  # started again
    second = _running(again, state)
    assert second != first
    assert (state / "restarts").read_text() == "1"
    log = (tmp_path / "logs" / p.namespace / f"{svc.name}.log").read_text()
    assert log.count(f"$ {sys.executable} -c") == 2  # two starts, one log

    assert again.delete_all(p) == 1
    assert _gone(second)
    assert not state.exists()
