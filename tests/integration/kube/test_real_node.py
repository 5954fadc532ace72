"""The real node: a kubelet with containerd and runc registers beside the kwok nodes and really runs pods."""

from __future__ import annotations

import json
from typing import Any

from real_node_helpers import pod_on_real_node, wait_terminated

from clinops_devstack import node


def test_real_node_registers_ready_with_its_taint_and_real_capacity(cluster: Any, real_node: str) -> None:
    obj = json.loads(cluster.kubectl("get", "node", real_node, "-o", "json"))
    ready = {c["type"]: c["status"] for c in obj["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert obj["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6")
    assert obj["metadata"]["labels"]["type"] == "real"
    assert {"key": node.TAINT_KEY, "value": "true", "effect": "NoSchedule"} in obj["spec"]["taints"]
    # The machine's own cores, not kwok's 32 pretend ones.
    assert int(obj["status"]["capacity"]["cpu"]) < 32


def test_a_container_really_runs_on_the_real_node(cluster: Any, real_node: str, namespace: str) -> None:
    # The exit code and the termination message come from the container's own process: the shell
    # computes them from the Downward API and its user id, so kwok (or nothing) could not produce them.
    script = 'echo "ran in $POD_NAMESPACE as $(id -u) sum=$((6*7))" > /dev/termination-log; exit 3'
    pod = pod_on_real_node(
        "probe",
        [
            {
                "name": "probe",
                "image": node.TOOLBOX_IMAGE,
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
                "env": [{"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
            }
        ],
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))
    done = wait_terminated(cluster.kubectl, "probe", namespace)
    assert done["spec"]["nodeName"] == real_node
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 3
    assert state["message"].strip() == f"ran in {namespace} as 65534 sum=42"


def test_pods_without_the_toleration_stay_on_kwok_nodes(cluster: Any, real_node: str, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "fake"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/nothing:1"}]},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(pod))
    cluster.kubectl("wait", "--for=condition=PodScheduled", "pod/fake", "-n", namespace, "--timeout=60s")
    placed = json.loads(cluster.kubectl("get", "pod", "fake", "-n", namespace, "-o", "json"))["spec"]["nodeName"]
    assert placed.startswith("kwok-node-")
