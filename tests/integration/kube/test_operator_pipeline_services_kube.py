"""A pipeline's long-running children on the local control plane: the operator (kopf's KopfRunner,
with a token of the chart's ServiceAccount) creates an ingest and a streaming-featurizer Deployment
per streaming pipeline, creates one again when it is deleted by hand, and deletes both with the
pipeline. kwok stands in for the kubelets (no container runs here: this proves the operator's side,
and that the chart's RBAC lets it do exactly this); a batch pipeline gets none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kube_helpers import example_body, wait_for


@pytest.fixture(scope="module")
def operator(cluster: Any) -> Iterator[KopfRunner]:
    with KopfRunner(["run", "--standalone", "--all-namespaces", "-m", "clinops_operator.handlers"]) as runner:
        yield runner
    assert runner.exception is None, runner.output[-3000:]


def test_ingest_and_stream_deployments_are_created_kept_and_deleted_with_the_pipeline(
    cluster: Any, namespace: str, operator: KopfRunner
) -> None:
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    wanted = ["adverse-event-ingest", "adverse-event-stream"]
    wait_for("both Deployments", lambda: cluster.names("deployments", namespace) == wanted, timeout_s=60)
    uid = cluster.get("featurepipeline", "adverse-event", namespace)["metadata"]["uid"]
    for name in wanted:
        d = cluster.get("deployment", name, namespace)
        assert d["metadata"]["ownerReferences"][0]["uid"] == uid
        assert d["metadata"]["labels"]["clinops.io/pipeline"] == "adverse-event"
        assert d["spec"]["replicas"] == 1
    ingest = cluster.get("deployment", "adverse-event-ingest", namespace)["spec"]["template"]["spec"]
    assert ingest["containers"][0]["args"][:1] == ["run"]

    # Kept: deleted by hand, created again by the next reconcile (a new object, same name).
    cluster.kubectl("delete", "deployment", "adverse-event-ingest", "-n", namespace, "--wait=true")
    old = cluster.get("deployment", "adverse-event-stream", namespace)["metadata"]["uid"]
    wait_for("ingest again", lambda: cluster.get("deployment", "adverse-event-ingest", namespace), timeout_s=60)
    assert cluster.get("deployment", "adverse-event-stream", namespace)["metadata"]["uid"] == old  # left alone

    cluster.kubectl("delete", "featurepipeline", "adverse-event", "-n", namespace, "--timeout=60s")
    wait_for("Deployments deleted", lambda: not cluster.names("deployments", namespace), timeout_s=60)


def test_a_batch_pipeline_has_no_long_running_children(cluster: Any, namespace: str, operator: KopfRunner) -> None:
    body = example_body(namespace, name="stroke-risk", annotations={"clinops.io/run-now": "one"})
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    wait_for(
        "the pipeline seen", lambda: (cluster.get("featurepipeline", "stroke-risk", namespace) or {}).get("status")
    )
    wait_for("a run (the reconcile went past the long-running children)",
             lambda: cluster.names("sparkapplications", namespace), timeout_s=60)  # fmt: skip
    assert cluster.names("deployments", namespace) == []
