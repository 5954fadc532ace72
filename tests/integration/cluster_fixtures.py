"""A real local control plane for the operator, chart and monitor tests, once per session.

Registered as fixtures by ``tests/integration/conftest.py`` (one instance for every folder).

``cluster`` starts etcd, kube-apiserver (RBAC), kube-controller-manager, kube-scheduler and kwok with
two fake nodes, with the same definitions `make cluster-up` uses, on free ports in the session's
temporary folder, and installs the real SparkApplication CRD and the FeaturePipeline CRD. Every object
the operator creates is validated by the API server against those schemas. Operators run with a
token of the chart's own ServiceAccount (``Cluster.operator_kubeconfig``), not as the admin.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# Fast reconciles and retries in tests; read once when the handlers module is first imported.
os.environ.setdefault("CLINOPS_OPERATOR_RECONCILE_INTERVAL_S", "0.5")
os.environ.setdefault("CLINOPS_OPERATOR_BACKOFF_S", "1")
os.environ.setdefault("CLINOPS_OPERATOR_RETRY_DELAY_S", "1")

from clinops_devstack import cluster as kube
from clinops_devstack import node, supervisor, toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings

REUSE = os.environ.get("CLINOPS_TEST_STACK", "") == "reuse"
EXAMPLE = REPO_ROOT / "manifests" / "adverse-event.yaml"


OPERATOR_RELEASE = "clinops-it"  # not the chart test's release: both may be installed at once
OPERATOR_NAMESPACE = "clinops-it"
OPERATOR_TEMPLATES = (
    "serviceaccount.yaml",
    "clusterrole.yaml",
    "clusterrolebinding.yaml",
    "pipeline-services-rbac.yaml",
)


@dataclass
class Cluster:
    settings: StackSettings
    kubeconfig: Path  # the admin's: tests use it to set up and inspect
    operator_kubeconfig: Path  # a token of the chart's operator ServiceAccount: operators run with it

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return kube.kubectl(self.settings, *args, stdin=stdin, check=check)

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None

    def names(self, kind: str, namespace: str, selector: str = "") -> list[str]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return sorted(item["metadata"]["name"] for item in json.loads(self.kubectl(*args))["items"])


@pytest.fixture(scope="session")
def cluster(stack: Any) -> Iterator[Cluster]:
    s: StackSettings = stack.settings
    if not REUSE:
        for comp in kube.components(s):
            stack.started.append(comp.name)  # first: a process that starts but fails provisioning is stopped too
            supervisor.start(s, comp, say=lambda _msg: None)
        kube.provision(s)
    elif not all(supervisor.status(s, c).healthy for c in kube.components(s)):
        pytest.fail("CLINOPS_TEST_STACK=reuse but the control plane is not healthy: run `make cluster-up`")
    kubeconfig = kube.admin_kubeconfig(s)
    operator_kubeconfig = _operator_kubeconfig(s, kubeconfig)
    # $KUBECONFIG is read by the operators the tests run (in this process and as children), never by
    # the tests' own kubectl and helm calls (they pass the admin's): every operator in these tests
    # acts with exactly the chart's RBAC, so a permission the chart lacks fails a test.
    # The operator reads stage results from the lake with CLINOPS_S3_* (the harness's MinIO).
    lake = {k: v for k, v in stack.ensure("minio").as_env().items() if k.startswith(("CLINOPS_S3_", "CLINOPS_LAKE_"))}
    env = {"KUBECONFIG": str(operator_kubeconfig), **lake}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield Cluster(s, kubeconfig, operator_kubeconfig)
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _operator_kubeconfig(s: StackSettings, admin: Path) -> Path:
    """Install the chart's ServiceAccount, ClusterRole and binding (as rendered by helm) and write a
    kubeconfig that holds a token of that ServiceAccount (TokenRequest API)."""
    helm = toolchain.require(toolchain.HELM, s.cache) / "bin" / "helm"
    show = [x for t in OPERATOR_TEMPLATES for x in ("--show-only", f"templates/{t}")]
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            OPERATOR_RELEASE,
            str(REPO_ROOT / "charts" / "clinops"),
            "-n",
            OPERATOR_NAMESPACE,
            "--kube-version",
            "1.34.4",
            *show,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not kube.kubectl(s, "get", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found").strip():
        kube.kubectl(s, "create", "namespace", OPERATOR_NAMESPACE)
    kube.kubectl(s, "apply", "-f", "-", stdin=rendered)
    account = f"{OPERATOR_RELEASE}-operator"
    token = kube.kubectl(s, "create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=6h").strip()
    config = yaml.safe_load(admin.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = account
    path = admin.with_name("operator-kubeconfig")
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    deadline = time.monotonic() + 30
    while not cluster.kubectl("get", "serviceaccount", "default", "-n", name, "--ignore-not-found").strip():
        if time.monotonic() > deadline:
            pytest.fail(f"no default service account in {name}")
        time.sleep(0.2)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[str]:
    """The real kubelet node (containerd + runc) beside the kwok nodes; its name. Stopped, and every
    trace of it removed, at the end of the session."""
    s = cluster.settings
    if REUSE:
        if not all(supervisor.status(s, c).healthy for c in node.components(s)):
            pytest.fail("CLINOPS_TEST_STACK=reuse but the real node is not running: run `make cluster-up`")
        yield node.NODE_NAME
        return
    if os.geteuid() != 0:
        pytest.skip("the real node (containerd, kubelet, cgroups, mounts) needs root")
    try:
        for comp in node.components(s):
            supervisor.start(s, comp, say=lambda _msg: None)
        yield node.NODE_NAME
    finally:
        node.down(s, say=lambda _msg: None)


def _imported(cluster: Cluster, name: str) -> str:
    """Image ``name`` imported into the real node: its reference. `make setup` (or `make image`) builds
    its system and Python layers; a test only builds the code layer, in seconds, when the sources
    changed since. Skipped, saying so, when those layers are missing (a cold build takes minutes)."""
    from clinops_devstack import image

    s = cluster.settings
    if not image.has_base_layers(s, name):
        pytest.skip(f"the {name} image is not built: run `make image` (tests never build its system or Python layer)")
    built = image.build(s, name, say=lambda _msg: None)
    image.import_into_node(s, built)
    return built.ref


@pytest.fixture(scope="session")
def clinops_image(cluster: Cluster, real_node: str) -> str:
    """The ``clinops`` image imported into the real node."""
    return _imported(cluster, "clinops")


@pytest.fixture(scope="session")
def clinops_trainer_image(cluster: Cluster, real_node: str, clinops_image: str) -> str:
    """The ``clinops-trainer`` image (``clinops`` plus torch's layer, ~5 GB more) imported into the real node."""
    return _imported(cluster, "clinops-trainer")
