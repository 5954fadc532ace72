"""A local Kubernetes control plane without containers: what ``make cluster-up`` and the tests run.

etcd, kube-apiserver (client certificates, RBAC), kube-controller-manager and kube-scheduler run as
plain processes on loopback, all built by ``make setup``. kwok plays the kubelets: it manages fake
nodes labelled ``type=kwok``, moves pods through their life (pods of Jobs run and succeed), and stands
in for spark-operator by moving SparkApplications through SUBMITTED and RUNNING to COMPLETED (or
FAILED when an application carries ``clinops.io/simulate-failure=<its component>``). See
``kwok/stages.yaml``.

Beside the kwok nodes, ``make cluster-up`` starts one real node (``node.py``: containerd, runc and a
kubelet) on which pods that tolerate its taint really run.

Like the stack's ``components``, this is a description the supervisor runs; ``make cluster-up`` and
the pytest fixture use the same one.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from clinops_devstack import pki, toolchain
from clinops_devstack.components import Component, data_dir
from clinops_devstack.settings import REPO_ROOT, StackSettings

STAGES = Path(__file__).parent / "kwok" / "stages.yaml"
NODE_LABEL = "type=kwok"
SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
DEFAULT_NODES = 2


class ClusterError(RuntimeError):
    """The local control plane could not be started or provisioned."""


def cluster_dir(s: StackSettings) -> Path:
    return data_dir(s, "kube")


def pki_dir(s: StackSettings) -> Path:
    return cluster_dir(s) / "pki"


def admin_kubeconfig(s: StackSettings) -> Path:
    """The admin kubeconfig (``.local/kubeconfig`` for ``make cluster-up``)."""
    return s.home / "kubeconfig"


def apiserver_url(s: StackSettings) -> str:
    return f"https://{s.host}:{s.ports.kube_apiserver}"


def crd_files(s: StackSettings) -> list[Path]:
    """CRDs installed on the local cluster: the real SparkApplication CRD and clinops' own."""
    spark = toolchain.require(toolchain.SPARK_OPERATOR_CRDS, s.cache) / toolchain.SPARK_APPLICATION_CRD
    return [spark, *sorted((REPO_ROOT / "charts" / "clinops" / "crds").glob("*.yaml"))]


def kubeconfig_text(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: clinops-local
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: clinops-local
  context:
    cluster: clinops-local
    user: {user}
current-context: clinops-local
"""


def write_kubeconfig(s: StackSettings, ident: pki.Identity, path: Path) -> Path:
    folder = pki_dir(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        kubeconfig_text(
            apiserver_url(s),
            folder / "ca.crt",
            folder / f"{ident.file_stem}.crt",
            folder / f"{ident.file_stem}.key",
            ident.user,
        )
    )
    path.chmod(0o600)
    return path


def _component_kubeconfig(s: StackSettings, ident: pki.Identity) -> Path:
    return cluster_dir(s) / f"{ident.file_stem}.kubeconfig"


def _healthz(url: str, ca: Path | None = None) -> bool:
    try:
        # Controller manager and scheduler serve on self-signed certificates they make themselves.
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else False
        return httpx.get(url, timeout=2.0, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _bin(s: StackSettings, tool: toolchain.Tool, name: str) -> str:
    return str(toolchain.require(tool, s.cache) / "bin" / name)


def etcd(s: StackSettings) -> Component:
    data = cluster_dir(s) / "etcd"
    client = f"http://{s.host}:{s.ports.etcd}"
    peer = f"http://{s.host}:{s.ports.etcd_peer}"
    return Component(
        name="etcd",
        argv=[
            _bin(s, toolchain.ETCD, "etcd"),
            "--name=clinops",
            f"--data-dir={data}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=clinops={peer}",
            "--log-level=warn",
            # A throwaway development store: no fsync (much faster on a busy disk).
            "--unsafe-no-fsync",
            "--quota-backend-bytes=2147483648",
        ],
        url=client,
        ready=lambda: _healthz(f"{client}/health"),
        prepare=lambda: data.mkdir(parents=True, exist_ok=True, mode=0o700),
    )


def kube_apiserver(s: StackSettings) -> Component:
    folder = pki_dir(s)
    return Component(
        name="kube-apiserver",
        argv=[
            _bin(s, toolchain.KUBERNETES, "kube-apiserver"),
            f"--etcd-servers=http://{s.host}:{s.ports.etcd}",
            f"--bind-address={s.host}",
            f"--advertise-address={s.host}",
            f"--secure-port={s.ports.kube_apiserver}",
            f"--tls-cert-file={folder / 'apiserver.crt'}",
            f"--tls-private-key-file={folder / 'apiserver.key'}",
            f"--client-ca-file={folder / 'ca.crt'}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=true",  # only /livez, /readyz, /healthz and /version are public under RBAC
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={folder / 'sa.pub'}",
            f"--service-account-signing-key-file={folder / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # a loopback advertise address cannot be an endpoint
            f"--cert-dir={cluster_dir(s) / 'apiserver-certs'}",
            "--v=1",
        ],
        url=apiserver_url(s),
        ready=lambda: _healthz(f"{apiserver_url(s)}/readyz", folder / "ca.crt"),
        prepare=lambda: _prepare_pki(s),
        provision=lambda: install_crds(s),
        after=("etcd",),
    )


def _prepare_pki(s: StackSettings) -> None:
    pki.ensure_pki(pki_dir(s), s.host)
    write_kubeconfig(s, pki.ADMIN, admin_kubeconfig(s))
    for ident in (pki.CONTROLLER_MANAGER, pki.SCHEDULER):
        write_kubeconfig(s, ident, _component_kubeconfig(s, ident))


def _auth_flags(kubeconfig: Path) -> list[str]:
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
    ]


def kube_controller_manager(s: StackSettings) -> Component:
    folder = pki_dir(s)
    kubeconfig = _component_kubeconfig(s, pki.CONTROLLER_MANAGER)
    return Component(
        name="kube-controller-manager",
        argv=[
            _bin(s, toolchain.KUBERNETES, "kube-controller-manager"),
            *_auth_flags(kubeconfig),
            f"--bind-address={s.host}",
            f"--secure-port={s.ports.kube_controller_manager}",
            f"--cert-dir={cluster_dir(s) / 'controller-manager-certs'}",
            f"--service-account-private-key-file={folder / 'sa.key'}",
            f"--root-ca-file={folder / 'ca.crt'}",
            f"--cluster-signing-cert-file={folder / 'ca.crt'}",
            f"--cluster-signing-key-file={folder / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
            "--v=1",
        ],
        url=f"https://{s.host}:{s.ports.kube_controller_manager}",
        ready=lambda: _healthz(f"https://{s.host}:{s.ports.kube_controller_manager}/healthz"),
        after=("kube-apiserver",),
    )


def kube_scheduler(s: StackSettings) -> Component:
    kubeconfig = _component_kubeconfig(s, pki.SCHEDULER)
    return Component(
        name="kube-scheduler",
        argv=[
            _bin(s, toolchain.KUBERNETES, "kube-scheduler"),
            *_auth_flags(kubeconfig),
            f"--bind-address={s.host}",
            f"--secure-port={s.ports.kube_scheduler}",
            f"--cert-dir={cluster_dir(s) / 'scheduler-certs'}",
            "--leader-elect=false",
            "--v=1",
        ],
        url=f"https://{s.host}:{s.ports.kube_scheduler}",
        ready=lambda: _healthz(f"https://{s.host}:{s.ports.kube_scheduler}/healthz"),
        after=("kube-apiserver",),
    )


def kwok(s: StackSettings) -> Component:
    return Component(
        name="kwok",
        argv=[
            _bin(s, toolchain.KWOK, "kwok"),
            f"--kubeconfig={admin_kubeconfig(s)}",
            f"--config={STAGES}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={NODE_LABEL}",
            f"--server-address={s.host}:{s.ports.kwok}",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            f"--node-ip={s.host}",
        ],
        url=f"http://{s.host}:{s.ports.kwok}",
        ready=lambda: _healthz(f"http://{s.host}:{s.ports.kwok}/healthz"),
        after=("kube-apiserver",),
    )


BUILDERS: dict[str, Callable[[StackSettings], Component]] = {
    "etcd": etcd,
    "kube-apiserver": kube_apiserver,
    "kube-controller-manager": kube_controller_manager,
    "kube-scheduler": kube_scheduler,
    "kwok": kwok,
}


def components(s: StackSettings) -> list[Component]:
    """The control plane's processes, in start order."""
    return [build(s) for build in BUILDERS.values()]


def kubectl_run(s: StackSettings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the pinned kubectl as the admin against the local cluster."""
    return subprocess.run(
        [_bin(s, toolchain.KUBERNETES, "kubectl"), f"--kubeconfig={admin_kubeconfig(s)}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def kubectl(s: StackSettings, *args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run the pinned kubectl as the admin against the local cluster; return its output."""
    proc = kubectl_run(s, *args, stdin=stdin)
    if check and proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def node_manifest(name: str) -> str:
    """A fake node that kwok manages (it sets the status, kube-scheduler binds pods to it)."""
    return f"""apiVersion: v1
kind: Node
metadata:
  name: {name}
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: {name}
    kubernetes.io/os: linux
    node-role.kubernetes.io/agent: ""
status:
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "110"
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "110"
"""


def install_crds(s: StackSettings, crds: Sequence[Path] | None = None) -> None:
    """Install the CRDs (before kwok starts: its SparkApplication stages need the kind to exist)."""
    for crd in crd_files(s) if crds is None else crds:
        # Server-side: the SparkApplication CRD is too large for the last-applied annotation.
        kubectl(s, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    _retry(s, "CRDs established", "wait", "--for=condition=Established", "crd", "--all", "--timeout=10s")
    _wait_openapi_v3(s)


def served_group_versions(crds: Mapping[str, Any]) -> set[str]:
    """``apis/<group>/<version>`` of every served version in a ``kubectl get crd -o json`` list."""
    paths: set[str] = set()
    for item in crds.get("items", []):
        spec = item["spec"]
        paths.update(f"apis/{spec['group']}/{v['name']}" for v in spec["versions"] if v.get("served", True))
    return paths


def _wait_openapi_v3(s: StackSettings, timeout_s: float = 60.0) -> None:
    """Established is not published: kwok reads the kinds' OpenAPI v3 schema at start and exits when a
    CRD's group/version is not there yet, which the apiserver adds a moment after the CRD is Established."""
    wanted = served_group_versions(json.loads(kubectl(s, "get", "crd", "-o", "json")))

    def missing() -> str | None:
        proc = kubectl_run(s, "get", "--raw", "/openapi/v3")
        left = wanted - set(json.loads(proc.stdout).get("paths", {})) if proc.returncode == 0 else wanted
        return str(sorted(left)) if left else None

    _poll("the OpenAPI v3 paths", missing, timeout_s)


def create_nodes(s: StackSettings, nodes: int = DEFAULT_NODES) -> None:
    """Create the fake nodes kwok manages and wait until they are Ready."""
    manifest = "---\n".join(node_manifest(f"kwok-node-{i}") for i in range(nodes))
    kubectl(s, "apply", "-f", "-", stdin=manifest)
    _retry(s, "nodes Ready", "wait", "--for=condition=Ready", "node", "-l", NODE_LABEL, "--timeout=10s")


def _retry(s: StackSettings, what: str, *args: str, timeout_s: float = 60.0) -> None:
    """``kubectl wait`` fails at once on objects without status yet: ask again until the deadline."""

    def failed() -> str | None:
        proc = kubectl_run(s, *args)
        return None if proc.returncode == 0 else f"{proc.stdout}{proc.stderr}"

    _poll(what, failed, timeout_s)


def _poll(what: str, pending: Callable[[], str | None], timeout_s: float) -> None:
    """Call ``pending`` every half second until it returns None; past the deadline, fail with what it
    last returned."""
    deadline = time.monotonic() + timeout_s
    while (detail := pending()) is not None:
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out waiting for {what}:\n{detail}")
        time.sleep(0.5)


def link_tools(s: StackSettings) -> Path:
    """Put the pinned kubectl and helm in ``<home>/bin`` (``.local/bin``) for a developer's shell."""
    bin_dir = s.home / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool, name in ((toolchain.KUBERNETES, "kubectl"), (toolchain.HELM, "helm")):
        link = bin_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(_bin(s, tool, name))
    return bin_dir


def provision(s: StackSettings, nodes: int = DEFAULT_NODES) -> None:
    """After every component runs: the nodes are Ready and namespaces get their default service account."""
    create_nodes(s, nodes)
    _wait_default_service_account(s)


def _wait_default_service_account(s: StackSettings, timeout_s: float = 60.0) -> None:
    def absent() -> str | None:
        found = kubectl(s, "get", "serviceaccount", "default", "-n", "default", check=False).strip()
        return None if found else "the controller manager has not created it"

    _poll("the default service account", absent, timeout_s)
