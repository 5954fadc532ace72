"""spec.pods: where the stages' pods run and what they request, rendered into Jobs and SparkApplications."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clinops_operator.core import render, services, stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]
TOLERATION = {"key": "clinops.io/real-node", "operator": "Exists", "effect": "NoSchedule"}


def _pipeline(pods: dict[str, Any] | None) -> Pipeline:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
    if pods is not None:
        body["spec"]["pods"] = pods
    return Pipeline.from_body(body)


PODS = {
    "nodeSelector": {"type": "real"},
    "tolerations": [TOLERATION],
    "hostNetwork": True,
    "cpuRequest": "100m",
    "memoryRequest": "256Mi",
}


def test_a_job_pod_gets_the_node_selector_tolerations_host_network_and_requests() -> None:
    p = _pipeline(PODS)
    job = render.render(stages.task(p, stages.Stage.TRAINER, "m1"), p)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"type": "real"}
    assert pod["tolerations"] == [TOLERATION]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}


def test_spark_driver_and_executors_get_the_same_placement_and_a_core_request() -> None:
    p = _pipeline(PODS)
    app = render.render(stages.task(p, stages.Stage.PROCESSOR, "m1"), p)
    for role in ("driver", "executor"):
        spec = app["spec"][role]
        assert spec["nodeSelector"] == {"type": "real"}
        assert spec["tolerations"] == [TOLERATION]
        assert spec["hostNetwork"] is True
        assert spec["coreRequest"] == "100m"
        assert "dnsPolicy" not in spec  # not a SparkPodSpec field


def test_without_spec_pods_nothing_is_added() -> None:
    p = _pipeline(None)
    job = render.render(stages.task(p, stages.Stage.TRAINER, "m1"), p)
    pod = job["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "hostNetwork", "dnsPolicy"} & pod.keys()
    assert "resources" not in pod["containers"][0]
    app = render.render(stages.task(p, stages.Stage.PROCESSOR, "m1"), p)
    assert "coreRequest" not in app["spec"]["driver"]


def test_the_ingest_and_stream_deployments_get_the_same_placement_and_requests() -> None:
    p = _pipeline(PODS)
    tasks = services.service_tasks(p)
    assert {t.component for t in tasks} == {"ingest", "stream"}
    for t in tasks:
        pod = render.deployment(t, p)["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"type": "real"}, t.component
        assert pod["tolerations"] == [TOLERATION]
        assert pod["hostNetwork"] is True
        assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}}
        assert pod["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"
    bare = _pipeline(None)
    for t in services.service_tasks(bare):
        pod = render.deployment(t, bare)["spec"]["template"]["spec"]
        assert not {"nodeSelector", "tolerations", "hostNetwork", "dnsPolicy"} & pod.keys()
        assert "resources" not in pod["containers"][0]
