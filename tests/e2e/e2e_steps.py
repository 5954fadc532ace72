"""The steps of an end-to-end scenario, shared by the local-cluster and the kind scenarios.

Each step takes a ``Kubectl`` (a callable running kubectl against the scenario's cluster and returning
its stdout) so that the same code drives the local control plane with its real node and a kind
cluster: install the chart, create the Secrets, apply a pipeline, wait for its phase and children,
ask a scorer for a prediction, delete the pipeline and see every child go.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import yaml

from clinops_devstack.settings import REPO_ROOT

CHART = REPO_ROOT / "charts" / "clinops"
EXAMPLE = REPO_ROOT / "manifests" / "adverse-event.yaml"
LABEL_PIPELINE = "clinops.io/pipeline"
LABEL_SERVICE = "clinops.io/service"


class Kubectl(Protocol):
    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str: ...


def _helm(
    helm: Path, command: str, kubeconfig: Path, release: str, namespace: str, values: Mapping[str, Any], timeout_s: int
) -> None:
    proc = subprocess.run(
        [
            str(helm),
            command,
            release,
            str(CHART),
            "--namespace",
            namespace,
            *(["--create-namespace"] if command == "install" else []),
            "--values",
            "-",
            "--wait",
            "--timeout",
            f"{timeout_s}s",
            f"--kubeconfig={kubeconfig}",
        ],
        input=yaml.safe_dump(dict(values)),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"helm {command} failed:\n{proc.stdout}{proc.stderr}")


def helm_install(
    helm: Path, kubeconfig: Path, release: str, namespace: str, values: Mapping[str, Any], timeout_s: int = 300
) -> None:
    """``helm install`` the chart with ``values`` and wait until its Deployments' pods are Ready."""
    _helm(helm, "install", kubeconfig, release, namespace, values, timeout_s)


def helm_upgrade(
    helm: Path, kubeconfig: Path, release: str, namespace: str, values: Mapping[str, Any], timeout_s: int = 300
) -> None:
    """``helm upgrade`` the release to ``values`` (all of them) and wait until its pods are Ready."""
    _helm(helm, "upgrade", kubeconfig, release, namespace, values, timeout_s)


def helm_uninstall(helm: Path, kubeconfig: Path, release: str, namespace: str, timeout_s: int = 300) -> None:
    """``helm uninstall`` the release and wait until its resources are gone (its cluster-scoped ones too:
    another release of the chart in another namespace could not own them otherwise)."""
    proc = subprocess.run(
        [
            str(helm),
            "uninstall",
            release,
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            f"{timeout_s}s",
            f"--kubeconfig={kubeconfig}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"helm uninstall failed:\n{proc.stdout}{proc.stderr}")


def create_secret(kubectl: Kubectl, namespace: str, name: str, data: Mapping[str, str]) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(data),
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(body))


def pipeline_body(name: str, namespace: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The example pipeline (manifests/adverse-event.yaml) under a new name, changed by ``edit``."""
    body: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    body["metadata"] |= {"name": name, "namespace": namespace}
    edit(body["spec"])
    return body


def get(kubectl: Kubectl, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    out = kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def items(kubectl: Kubectl, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", kind, "-n", namespace, "-o", "json", *(["-l", selector] if selector else [])]
    result: list[dict[str, Any]] = json.loads(kubectl(*args))["items"]
    return result


def wait_phase(
    kubectl: Kubectl, name: str, namespace: str, phases: tuple[str, ...], timeout_s: float, poll_s: float = 2
) -> dict[str, Any]:
    """The pipeline once its phase is one of ``phases`` (fails with its status and its children's pods)."""
    deadline = time.monotonic() + timeout_s
    fp: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        fp = get(kubectl, "featurepipeline", name, namespace)
        if fp and (fp.get("status") or {}).get("phase") in phases:
            return fp
        time.sleep(poll_s)
    pods = kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False)
    raise AssertionError(
        f"pipeline {namespace}/{name} not in {phases} after {timeout_s:.0f}s: "
        f"{json.dumps((fp or {}).get('status'), indent=1)}\n{pods}"
    )


def child_pods(kubectl: Kubectl, pipeline: str, namespace: str) -> list[dict[str, Any]]:
    return items(kubectl, "pods", namespace, f"{LABEL_PIPELINE}={pipeline}")


def wait_services_running(
    kubectl: Kubectl, pipeline: str, namespace: str, components: tuple[str, ...], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """The pod of each of the pipeline's long-running children (``clinops.io/service``) once its
    container runs (fails with the pods' states and the end of a crashed container's log)."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        found = {}
        for pod in child_pods(kubectl, pipeline, namespace):
            component = pod["metadata"]["labels"].get(LABEL_SERVICE)
            states = (pod.get("status") or {}).get("containerStatuses") or []
            if component in components and states and "running" in (states[0].get("state") or {}):
                found[component] = pod
        if set(found) == set(components):
            return found
        time.sleep(2)
    states = {
        p["metadata"]["name"]: (p.get("status") or {}).get("containerStatuses")
        for p in child_pods(kubectl, pipeline, namespace)
        if p["metadata"]["labels"].get(LABEL_SERVICE) in components
    }
    missing = sorted(set(components) - set(found))
    raise AssertionError(f"not running after {timeout_s:.0f}s: {missing}\n{json.dumps(states, indent=1)}")


def service_endpoints(kubectl: Kubectl, service: str, namespace: str) -> list[str]:
    """``host:port`` of every ready endpoint of a Service (its EndpointSlices)."""
    slices = items(kubectl, "endpointslices", namespace, f"kubernetes.io/service-name={service}")
    found = []
    for sl in slices:
        ports = [p["port"] for p in sl.get("ports") or []]
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready"):
                found += [f"{addr}:{port}" for addr in ep["addresses"] for port in ports]
    return sorted(found)


def predict(address: str, patient_id: str, timeout_s: float = 10) -> dict[str, Any]:
    response = httpx.post(f"http://{address}/predict", json={"patient_id": patient_id}, timeout=timeout_s)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_gone(kubectl: Kubectl, pipeline: str, namespace: str, kinds: tuple[str, ...], timeout_s: float) -> None:
    """Every object of ``kinds`` labelled with the pipeline is gone (fails naming what is left)."""
    deadline = time.monotonic() + timeout_s
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [
            f"{kind}/{o['metadata']['name']}"
            for kind in kinds
            for o in items(kubectl, kind, namespace, f"{LABEL_PIPELINE}={pipeline}")
        ]
        if not left:
            return
        time.sleep(1)
    raise AssertionError(f"left after deleting pipeline {pipeline}: {left}")
