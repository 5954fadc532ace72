"""The Helm chart: lint, strict offline schema validation, a real install and the operator's RBAC matrix."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clinops_devstack import kubeconform, schemas, toolchain
from clinops_devstack.settings import REPO_ROOT

CHART = REPO_ROOT / "charts" / "clinops"
SCENARIOS = [None, *sorted((CHART / "ci").glob("*-values.yaml"))]
RELEASE = "clinops"
RELEASE_NAMESPACE = "clinops-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}-operator"


def _helm(cache: Path, *args: str, kubeconfig: Path | None = None) -> str:
    helm = toolchain.require(toolchain.HELM, cache) / "bin" / "helm"
    argv = [str(helm), *args, *([f"--kubeconfig={kubeconfig}"] if kubeconfig else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def cache() -> Path:
    from clinops_devstack.settings import StackSettings

    return StackSettings().cache


@pytest.fixture(scope="module")
def crd_schemas(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crd-schemas")
    spark = toolchain.require(toolchain.SPARK_OPERATOR_CRDS, cache) / toolchain.SPARK_APPLICATION_CRD
    schemas.write_crd_schemas([spark, *sorted((CHART / "crds").glob("*.yaml"))], out)
    return out


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda v: v.stem if v else "defaults")
def test_helm_lint_strict(cache: Path, values: Path | None) -> None:
    _helm(cache, "lint", "--strict", str(CHART), *(["-f", str(values)] if values else []))


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda v: v.stem if v else "defaults")
def test_rendered_chart_passes_kubeconform_strict_offline(cache: Path, crd_schemas: Path, values: Path | None) -> None:
    rendered = _helm(
        cache,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--include-crds",
        "--kube-version",
        "1.34.4",
        *(["-f", str(values)] if values else []),
    )
    report = kubeconform.kubeconform(cache, crd_schemas, [], stdin=rendered)
    assert "Invalid: 0, Errors: 0, Skipped: 0" in report, report
    for kind in ("Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"):
        assert f"kind: {kind}" in rendered


def test_examples_and_rendered_children_pass_kubeconform(cache: Path, crd_schemas: Path, tmp_path: Path) -> None:
    children = tmp_path / "children.yaml"
    render = subprocess.run(
        [sys.executable, "-m", "clinops_operator", "render", str(REPO_ROOT / "manifests" / "adverse-event.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    children.write_text(render.stdout)
    examples = sorted(str(p) for p in (REPO_ROOT / "manifests").glob("*.yaml"))
    report = kubeconform.kubeconform(cache, crd_schemas, [*examples, str(children)])
    assert "Invalid: 0, Errors: 0, Skipped: 0" in report, report


def test_kubeconform_is_strict(cache: Path, crd_schemas: Path) -> None:
    """An unknown field fails, in a built-in kind and in a custom resource alike."""
    bad_deployment = """apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 1
  replicaz: 2
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec: {containers: [{name: c, image: i}]}
"""
    bad_pipeline = (REPO_ROOT / "manifests" / "adverse-event.yaml").read_text().replace("bucket: lake", "bukket: lake")
    for doc in (bad_deployment, bad_pipeline):
        with pytest.raises(toolchain.ToolError, match="additional properties"):
            kubeconform.kubeconform(cache, crd_schemas, [], stdin=doc)


@pytest.fixture(scope="module")
def installed(cluster: Any, cache: Path) -> Iterator[None]:
    _helm(
        cache,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
        kubeconfig=cluster.kubeconfig,
    )
    yield
    _helm(cache, "uninstall", RELEASE, "--namespace", RELEASE_NAMESPACE, "--wait", kubeconfig=cluster.kubeconfig)


def test_helm_install_creates_a_scheduled_operator_pod_with_its_service_account(cluster: Any, installed: None) -> None:
    """What the control plane itself does with the release: the Deployment's ReplicaSet makes one pod,
    the scheduler binds it to a node, and it runs as the chart's ServiceAccount. (Whether the container
    starts and turns Ready needs a kubelet: see the skipped test below.)"""
    deployment = cluster.get("deployment", f"{RELEASE}-operator", RELEASE_NAMESPACE)
    assert deployment["status"].get("observedGeneration") == deployment["metadata"]["generation"]
    assert deployment["status"].get("replicas") == 1
    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    pods = json.loads(cluster.kubectl("get", "pods", "-n", RELEASE_NAMESPACE, "-l", selector, "-o", "json"))["items"]
    assert len(pods) == 1
    owner = pods[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet"
    assert owner["name"].startswith(f"{RELEASE}-operator-")
    assert pods[0]["spec"]["nodeName"], "the scheduler bound the pod to a node"
    assert pods[0]["spec"]["serviceAccountName"] == f"{RELEASE}-operator"
    labels = deployment["metadata"]["labels"]
    for key in ("name", "instance", "version", "managed-by", "component", "part-of"):
        assert f"app.kubernetes.io/{key}" in labels
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]
    assert container["allowPrivilegeEscalation"] is False


@pytest.mark.skip(
    reason="no kubelet here: kwok marks every pod Running and Ready without starting its container, so a "
    "readiness check on this cluster would pass for an image that cannot even be pulled; "
    "tests/e2e/test_kind.py checks the real rollout, readiness and restarts on kind"
)
def test_the_operator_container_starts_and_becomes_ready() -> None:
    raise AssertionError("runs only where a kubelet runs the container")


# The matrix pins the ClusterRole from the outside; that the operator needs no more than this is
# shown by the operator tests, which run with a token of the chart's ServiceAccount (cluster_fixtures.py).
ALLOWED = [
    ("get", "featurepipelines.clinops.io", ""),
    ("watch", "featurepipelines.clinops.io", ""),
    ("patch", "featurepipelines.clinops.io", ""),
    ("patch", "featurepipelines.clinops.io", "status"),
    ("create", "sparkapplications.sparkoperator.k8s.io", ""),
    ("get", "sparkapplications.sparkoperator.k8s.io", ""),
    ("delete", "sparkapplications.sparkoperator.k8s.io", ""),
    ("create", "jobs.batch", ""),
    ("get", "jobs.batch", ""),
    ("create", "deployments.apps", ""),  # a pipeline's ingest and streaming featurizer
    ("delete", "deployments.apps", ""),
    ("delete", "jobs.batch", ""),
    ("create", "events", ""),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("patch", "clusterkopfpeerings.kopf.dev", ""),
]
DENIED = [
    ("get", "secrets", ""),
    ("list", "secrets", ""),
    ("watch", "secrets", ""),
    ("get", "configmaps", ""),
    ("create", "pods", ""),
    ("delete", "pods", ""),
    ("create", "pods/exec", ""),
    ("update", "deployments.apps", ""),
    ("patch", "deployments.apps", ""),
    ("update", "deployments.apps", "scale"),
    ("create", "featurepipelines.clinops.io", ""),
    ("delete", "featurepipelines.clinops.io", ""),
    ("update", "featurepipelines.clinops.io", ""),
    ("update", "sparkapplications.sparkoperator.k8s.io", ""),
    ("patch", "jobs.batch", ""),
    ("delete", "namespaces", ""),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("impersonate", "users", ""),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ("*", "*", ""),
]


def _can_i(cluster: Any, verb: str, resource: str, subresource: str) -> str:
    args = ["auth", "can-i", verb, resource, f"--as={SERVICE_ACCOUNT}", "--namespace=default"]
    if subresource:
        args.append(f"--subresource={subresource}")
    from clinops_devstack import cluster as kube

    return kube.kubectl_run(cluster.settings, *args).stdout.strip()


def test_rbac_matrix_least_privilege(cluster: Any, installed: None) -> None:
    matrix = {(v, r, s): _can_i(cluster, v, r, s) for v, r, s in ALLOWED + DENIED}
    wrong = {k: got for k, got in matrix.items() if got != ("yes" if k in ALLOWED else "no")}
    assert not wrong, f"unexpected answers (verb, resource, subresource): {wrong}"
    # Not cluster-admin: not even read access to every resource.
    assert _can_i(cluster, "list", "*", "") == "no"
