"""End to end on a kind cluster (kind-config.yaml), for machines with a container runtime.

The same scenarios run without Docker against the local control plane in tests/integration/kube;
this file exercises them on a real kubelet-backed cluster: the chart installs, the API server
enforces the FeaturePipeline schema, and the operator's ServiceAccount has least privilege.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clinops_devstack import toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings


def _docker_running() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (shutil.which("kind") and _docker_running()),
        reason="kind needs a container runtime; the local control plane runs these (tests/integration/kube)",
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
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    _run(
        str(helm),
        "install",
        RELEASE,
        str(REPO_ROOT / "charts" / "clinops"),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        f"--kubeconfig={kubeconfig}",
    )
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd/featurepipelines.clinops.io", "--timeout=60s")
    return kubeconfig


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
