"""Pods that run on the real node, and waiting for what the kubelet reports about them."""

from __future__ import annotations

import json
import time
from typing import Any

from clinops_devstack import node


def pod_on_real_node(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A pod that lands on the real node: host network, the node's toleration and label."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "nodeSelector": {"type": "real"},
            "tolerations": [{"key": node.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
            "restartPolicy": "Never",
            "containers": containers,
            **spec,
        },
    }


def wait_terminated(kubectl: Any, name: str, namespace: str, timeout_s: float = 120) -> dict[str, Any]:
    """The pod once every container has terminated (its full object); fails with its status if not."""
    deadline = time.monotonic() + timeout_s
    pod: dict[str, Any] = {}
    while time.monotonic() < deadline:
        pod = json.loads(kubectl("get", "pod", name, "-n", namespace, "-o", "json"))
        statuses = pod.get("status", {}).get("containerStatuses") or []
        if statuses and all("terminated" in st.get("state", {}) for st in statuses):
            return pod
        time.sleep(1)
    events = kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
    raise AssertionError(
        f"pod {namespace}/{name} did not terminate in {timeout_s:.0f}s: {json.dumps(pod.get('status'))}\n{events}"
    )
