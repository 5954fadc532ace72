"""End to end on a kind cluster (kind-config.yaml), for machines with a container runtime.

The same steps (tests/e2e/e2e_steps.py) run without Docker on the local cluster (test_local_cluster.py);
this file exercises them on a real kubelet-backed cluster: the chart installs and its operator pod
really runs and becomes Ready (what kwok can only pretend), the operator acts on a pipeline with its
own ServiceAccount, the API server enforces the FeaturePipeline schema, and that account has least
privilege.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from e2e_steps import helm_install, pipeline_body

from clinops_devstack import toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings


def _docker_running() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


# The image to run: `make image` builds it (an OCI layout in .local/images/clinops) and the chart's default
# (ghcr.io/clinops/clinops) is not published; load it into kind (`tar -C .local/images/clinops -c . >
# clinops.tar && kind load image-archive clinops.tar`) and name it.
IMAGE = os.environ.get("CLINOPS_E2E_OPERATOR_IMAGE", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("kind") and _docker_running()),
        reason="kind needs a container runtime; the local control plane runs these (tests/integration/kube)",
    ),
    pytest.mark.skipif(
        not IMAGE,
        reason="no operator image: set CLINOPS_E2E_OPERATOR_IMAGE to an image loaded into kind "
        "(`make image` builds it; a real rollout cannot be checked without one)",
    ),
]

CLUSTER = f"clinops-e2e-{uuid.uuid4().hex[:6]}"
RELEASE, NAMESPACE = "clinops", "clinops-system"


def _run(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)}:\n{proc.stdout}{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("kind") / "kubeconfig"
    _run(
        "kind",
        "create",
        "cluster",
        "--name",
        CLUSTER,
        "--config",
        str(REPO_ROOT / "kind-config.yaml"),
        "--kubeconfig",
        str(path),
        "--wait",
        "180s",
    )
    try:
        yield path
    finally:
        _run("kind", "delete", "cluster", "--name", CLUSTER, check=False)


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    binary = toolchain.require(toolchain.KUBERNETES, StackSettings().cache) / "bin" / "kubectl"
    return _run(str(binary), f"--kubeconfig={kubeconfig}", *args, stdin=stdin, check=check)


@pytest.fixture(scope="module")
def installed(kubeconfig: Path) -> Path:
    """The chart installed and its operator rolled out: helm waits for the Deployment's pods to be
    Ready (a real kubelet ran the container and its probes passed), then kubectl confirms the rollout."""
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    repository, _, tag = IMAGE.rpartition(":") if ":" in IMAGE.rsplit("/", 1)[-1] else (IMAGE, "", "")
    image = {"repository": repository, "pullPolicy": "Never", **({"tag": tag} if tag else {})}
    helm_install(helm, kubeconfig, RELEASE, NAMESPACE, {"image": image})
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/featurepipelines.clinops.io", "--timeout=60s")
    kubectl(kubeconfig, "rollout", "status", f"deployment/{RELEASE}-operator", "-n", NAMESPACE, "--timeout=180s")
    return kubeconfig


def test_the_operator_pod_runs_ready_and_does_not_restart(installed: Path) -> None:
    deployment = json.loads(
        kubectl(installed, "get", "deployment", f"{RELEASE}-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    assert deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"] == 1
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    pods = json.loads(kubectl(installed, "get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "json").stdout)["items"]
    assert len(pods) == 1
    status = pods[0]["status"]["containerStatuses"][0]
    assert status["ready"] is True
    assert "running" in status["state"], status["state"]
    assert status["restartCount"] == 0, status


def test_the_operator_acts_on_a_pipeline_with_its_own_service_account(installed: Path) -> None:
    """The running pod, with the chart's RBAC, sees a FeaturePipeline and writes its status."""
    body = pipeline_body("adverse-event", "default", lambda _spec: None)
    body["metadata"]["annotations"] = {}  # no run: spark-operator is not installed here
    kubectl(installed, "apply", "-f", "-", stdin=yaml.safe_dump(body))
    deadline = time.monotonic() + 120
    phase = ""
    while time.monotonic() < deadline and not phase:
        fp = json.loads(kubectl(installed, "get", "fp", "adverse-event", "-n", "default", "-o", "json").stdout)
        phase = (fp.get("status") or {}).get("phase", "")
        time.sleep(1)
    assert phase in ("Pending", "Processing"), f"the operator did not act on the pipeline (phase {phase!r})"


def test_every_node_of_the_kind_config_is_ready(kubeconfig: Path) -> None:
    nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
    expected = len(yaml.safe_load((REPO_ROOT / "kind-config.yaml").read_text())["nodes"])
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert len(ready) == expected


def test_the_api_server_rejects_a_split_that_does_not_sum_to_one(installed: Path) -> None:
    body = yaml.safe_load((REPO_ROOT / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"]["namespace"] = "default"
    body["spec"]["training"]["split"] = {"train": 0.8, "validation": 0.15, "test": 0.15}
    proc = kubectl(installed, "apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
    assert proc.returncode != 0
    assert "spec.training.split" in proc.stderr


def test_the_operator_cannot_read_secrets_and_is_not_cluster_admin(installed: Path) -> None:
    sa = f"--as=system:serviceaccount:{NAMESPACE}:{RELEASE}-operator"
    assert (
        kubectl(
            installed,
            "auth",
            "can-i",
            "create",
            "sparkapplications.sparkoperator.k8s.io",
            sa,
            "-n",
            "default",
            check=False,
        ).stdout.strip()
        == "yes"
    )
    assert (
        kubectl(installed, "auth", "can-i", "get", "secrets", sa, "-n", "default", check=False).stdout.strip() == "no"
    )
    assert kubectl(installed, "auth", "can-i", "*", "*", sa, check=False).stdout.strip() == "no"
