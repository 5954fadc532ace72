"""The operator (kopf's KopfRunner, in this process) against the local control plane.

The operator runs with a token of the chart's ServiceAccount (the ``cluster`` fixture's
``$KUBECONFIG``), so a verb the chart's ClusterRole lacks fails these tests. kwok stands in for the
kubelets and spark-operator: SparkApplications go SUBMITTED -> RUNNING -> COMPLETED, pods of Jobs
"run" and succeed (no container runs: these tests prove what the operator does, not what the
children do); a pipeline labelled ``clinops.io/simulate-failure=<stage>`` propagates the label to
its children and kwok fails that stage's child.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kube_helpers import example_body, wait_for

RUN_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def operator(cluster: Any) -> Iterator[KopfRunner]:
    with KopfRunner(["run", "--standalone", "--all-namespaces", "-m", "clinops_operator.handlers"]) as runner:
        yield runner
    assert runner.exception is None, runner.output[-3000:]


def _phase(cluster: Any, namespace: str, name: str = "adverse-event") -> str:
    fp = cluster.get("featurepipeline", name, namespace) or {}
    return str((fp.get("status") or {}).get("phase", ""))


def test_run_now_goes_from_spark_applications_to_trainer_job_to_ready(
    cluster: Any, namespace: str, operator: KopfRunner
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    phases: list[str] = []

    def ready() -> bool:
        phase = _phase(cluster, namespace)
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
        return phase == "Ready"

    wait_for("phase Ready", ready, timeout_s=RUN_TIMEOUT_S, every_s=0.2)
    fp = cluster.get("featurepipeline", "adverse-event", namespace)
    uid = fp["metadata"]["uid"]
    run_id = fp["status"]["lastRuns"]["trainer"]["runId"]

    apps = cluster.names("sparkapplications", namespace)
    assert apps == [f"adverse-event-feat-{run_id}", f"adverse-event-proc-{run_id}"]
    for name in apps:
        app = cluster.get("sparkapplication", name, namespace)
        assert app["status"]["applicationState"]["state"] == "COMPLETED"
        assert app["metadata"]["ownerReferences"][0]["uid"] == uid
    assert cluster.names("jobs", namespace) == [f"adverse-event-mat-{run_id}", f"adverse-event-train-{run_id}"]
    job = cluster.get("job", f"adverse-event-train-{run_id}", namespace)
    assert job["metadata"]["ownerReferences"][0]["uid"] == uid
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job['metadata']['name']}", "-o", "json")
    assert [p["status"]["phase"] for p in yaml.safe_load(pods)["items"]] == ["Succeeded"]

    assert {s: r["state"] for s, r in fp["status"]["lastRuns"].items()} == dict.fromkeys(
        ("processor", "featurizer", "materializer", "trainer"), "Succeeded"
    )
    # kwok's children write no result documents: recorded as such, and the trainer trains on the latest snapshot
    assert "result" not in fp["status"]["lastRuns"]["featurizer"]
    assert "champion" not in fp["status"]
    conditions = {c["type"]: c for c in fp["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Running"]["status"] == "False"
    assert fp["status"]["observedGeneration"] == fp["metadata"]["generation"]
    # Phases seen by polling every 0.2 s: never out of order.
    order = ["Pending", "Processing", "Featurizing", "Materializing", "Training", "Ready"]
    assert phases == sorted(phases, key=order.index), phases


@pytest.mark.parametrize(
    ("stage", "reason", "detail"),
    [
        ("processor", "SparkApplicationFailed", "simulated"),
        ("featurizer", "SparkApplicationFailed", "simulated"),
        ("trainer", "BackoffLimitExceeded", "backoff limit"),
    ],
)
def test_a_failing_child_fails_the_pipeline_with_its_reason(
    cluster: Any, namespace: str, operator: KopfRunner, stage: str, reason: str, detail: str
) -> None:
    body = example_body(namespace, labels={"clinops.io/simulate-failure": stage})
    body["spec"]["training"]["backoffLimit"] = 0
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    wait_for("phase Failed", lambda: _phase(cluster, namespace) == "Failed", timeout_s=RUN_TIMEOUT_S)
    status = cluster.get("featurepipeline", "adverse-event", namespace)["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True"
    assert failed["reason"] == reason
    assert stage in failed["message"]
    assert detail in failed["message"]
    assert status["lastRuns"][stage]["state"] == "Failed"
    later = {
        "processor": ["featurizer", "materializer", "trainer"],
        "featurizer": ["materializer", "trainer"],
        "trainer": [],
    }[stage]
    assert not set(later) & set(status["lastRuns"]), "no stage starts after a failed one"


def test_deleting_the_pipeline_removes_its_children(cluster: Any, namespace: str, operator: KopfRunner) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    wait_for("phase Ready", lambda: _phase(cluster, namespace) == "Ready", timeout_s=RUN_TIMEOUT_S)
    assert len(cluster.names("sparkapplications", namespace)) == 2
    assert len(cluster.names("jobs", namespace)) == 2  # materializer, trainer
    cluster.kubectl("delete", "featurepipeline", "adverse-event", "-n", namespace, "--timeout=60s")

    def gone() -> bool:
        return not (
            cluster.names("sparkapplications", namespace)
            or cluster.names("jobs", namespace)
            or cluster.names("pods", namespace)
        )

    wait_for("children deleted", gone, timeout_s=60)


def test_a_new_run_now_value_starts_a_second_run(cluster: Any, namespace: str, operator: KopfRunner) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    wait_for("first run Ready", lambda: _phase(cluster, namespace) == "Ready", timeout_s=RUN_TIMEOUT_S)
    cluster.kubectl("annotate", "fp", "adverse-event", "-n", namespace, "clinops.io/run-now=second", "--overwrite")
    wait_for("second run's jobs", lambda: len(cluster.names("jobs", namespace)) == 4, timeout_s=RUN_TIMEOUT_S)
    wait_for("second run Ready", lambda: _phase(cluster, namespace) == "Ready", timeout_s=RUN_TIMEOUT_S)
    assert len(cluster.names("sparkapplications", namespace)) == 4
