"""The local cluster's one real node: containerd + runc + a kubelet, beside the kwok fakes.

Everything lives under ``<cluster dir>/node`` (``.local/data/kube/node`` for ``make cluster-up``):
containerd's root, state and socket, the kubelet's root and pod logs, the CNI configuration. The
kubelet serves on loopback only, on the ports of ``Ports.kubelet`` / ``Ports.kubelet_healthz``, and
puts every pod under its own cgroup root (``/clinops-<id>``) in each cgroup v1 hierarchy.

Networking: pods on this node use host networking (``hostNetwork: true``). The local stack listens
on loopback only, so a pod in the host's network namespace reaches Kafka, MinIO, PostgreSQL, MLflow
and the API server exactly as the stage commands do on the host, and the node changes no interface,
route, forwarding or iptables setting of the machine. The CNI configuration is loopback-only, so a
pod that asks for its own network namespace fails to start with a clear sandbox error instead of
getting an address outside this machine.

The node is tainted ``clinops.io/real-node=true:NoSchedule`` and labelled ``type=real``: only pods that
tolerate the taint run here; everything else stays on the kwok nodes. Images are never pulled: the
pause image and the test toolbox are built locally and imported at start, ``make image`` imports
clinops' own.

``down`` removes every pod sandbox through the CRI, stops the kubelet and containerd, and then makes
sure nothing is left: no shim of this containerd, no process in the node's cgroups, no mount under the
node's folder, no cgroup, no log symlink.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from clinops_devstack import cluster, oci, pki, supervisor, toolchain
from clinops_devstack.components import Component
from clinops_devstack.settings import StackSettings

NODE_NAME = "clinops-node"  # fixed: the kubelet's client certificate names it (pki.NODE)
NODE_LABEL = "type=real"
TAINT_KEY = "clinops.io/real-node"
TAINT = f"{TAINT_KEY}=true:NoSchedule"
PAUSE_IMAGE = f"clinops.local/pause:{toolchain.PAUSE_VERSION}"
TOOLBOX_IMAGE = "clinops.local/toolbox:busybox"
BUSYBOX = Path("/bin/busybox")
CNI_BIN_DIR = Path("/usr/lib/cni")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
NAMESPACE = "k8s.io"  # containerd namespace the CRI uses
BUILDERS: tuple[str, ...] = ("containerd", "kubelet")


class NodeError(RuntimeError):
    """The real node could not be started, provisioned or cleaned up."""


def node_dir(s: StackSettings) -> Path:
    return cluster.cluster_dir(s) / "node"


def socket_path(s: StackSettings) -> Path:
    return node_dir(s) / "containerd.sock"


def cgroup_root(s: StackSettings) -> str:
    """A cgroup root per node folder, so two clusters on one machine never share one."""
    return "/clinops-" + hashlib.sha256(str(node_dir(s)).encode()).hexdigest()[:10]


def _system(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if not found:
        raise toolchain.ToolError(f"{name} not found: run `make setup` (Debian package)")
    return found


def containerd_config(s: StackSettings) -> str:
    """containerd 1.6 (config version 2): own root, state, socket; CRI with runc and loopback CNI."""
    d = node_dir(s)
    runc = _system("runc", "/usr/sbin/runc")
    return f"""version = 2
root = "{d / "containerd" / "root"}"
state = "{d / "containerd" / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{socket_path(s)}"

[ttrpc]
  address = "{d / "containerd.ttrpc.sock"}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / "containerd" / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # No CAP_SYS_RESOURCE here: never ask runc to lower a score below containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{d / "cni"}"
    max_conf_num = 1
"""


CNI_CONFIG = {"cniVersion": "1.0.0", "name": "clinops-host-only", "plugins": [{"type": "loopback"}]}


def kubelet_config(s: StackSettings) -> str:
    """The KubeletConfiguration: loopback ports, webhook auth, cgroupfs under our own root, no iptables."""
    d = node_dir(s)
    ca = cluster.pki_dir(s) / "ca.crt"
    body = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": s.host,
        "port": s.ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": s.host,
        "healthzPort": s.ports.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{socket_path(s)}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root(s),
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "failCgroupV1": False,
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "podLogsDir": str(d / "pod-logs"),
        "registerNode": True,
        "maxPods": 30,
        "serializeImagePulls": False,
        # The disk is shared: never evict our pods or delete our locally built images for space.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusReportFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "5s",
        "fileCheckFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "localStorageCapacityIsolation": True,
        "resolvConf": "/etc/resolv.conf",
        "staticPodPath": "",
    }
    return json.dumps(body, indent=2)


def _ctr(
    s: StackSettings, *args: str, stdin: bytes | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [_system("ctr"), "--address", str(socket_path(s)), "--namespace", NAMESPACE, *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def _crictl(s: StackSettings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    crictl = toolchain.require(toolchain.CRICTL, s.cache) / "bin" / "crictl"
    return subprocess.run(
        [str(crictl), "--runtime-endpoint", f"unix://{socket_path(s)}", "--timeout", "60s", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def containerd_ready(s: StackSettings) -> bool:
    if not socket_path(s).exists():
        return False
    try:
        return _ctr(s, "version", timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def containerd(s: StackSettings) -> Component:
    d = node_dir(s)
    config = d / "containerd.toml"

    def prepare() -> None:
        for sub in ("containerd/root", "containerd/state", "containerd/opt", "cni"):
            (d / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        config.write_text(containerd_config(s))
        (d / "cni" / "10-clinops.conflist").write_text(json.dumps(CNI_CONFIG))

    return Component(
        name="containerd",
        argv=[_system("containerd", "/usr/bin/containerd"), "--config", str(config), "--log-level", "warn"],
        url=f"unix://{socket_path(s)}",
        ready=lambda: containerd_ready(s),
        prepare=prepare,
        provision=lambda: import_base_images(s),
        after=("kube-apiserver",),
    )


# ---- images the node needs before any pod: pause (the sandbox) and a busybox toolbox for tests ----


def _image_cache(s: StackSettings) -> Path:
    return s.cache / "images"


def _busybox_version() -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "busybox-static"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip().replace(":", "_").replace("+", "_") or "unknown"


def _build_tree_image(
    s: StackSettings, ref: str, key: str, fill: Callable[[Path], None], config: oci.ImageConfig
) -> Path:
    """An archive of a one-layer image whose tree ``fill`` writes, cached by ``key``."""
    archive = _image_cache(s) / f"{key}.oci.tar"
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clinops-img-", dir=archive.parent) as tmp:
        root = Path(tmp) / "rootfs"
        root.mkdir()
        fill(root)
        layer = oci.tar_layer(root, Path(tmp) / "layer.tar", comment=f"{ref} tree")
        oci.write_archive(ref, config, [layer], archive)
    return archive


def pause_archive(s: StackSettings) -> Path:
    binary = toolchain.require(toolchain.PAUSE, s.cache) / "bin" / "pause"

    def fill(root: Path) -> None:
        shutil.copy2(binary, root / "pause")

    config = oci.ImageConfig(entrypoint=["/pause"], user="65535:65535")
    return _build_tree_image(s, PAUSE_IMAGE, f"pause-{toolchain.PAUSE_VERSION}", fill, config)


def toolbox_archive(s: StackSettings) -> Path:
    """busybox-static (Debian) as a tiny image: a shell for node tests, runs as nobody."""
    if not BUSYBOX.exists():
        raise toolchain.ToolError("busybox-static is not installed: run `make setup`")

    def fill(root: Path) -> None:
        (root / "bin").mkdir()
        (root / "tmp").mkdir(mode=0o1777)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        for applet in ("sh", "echo", "cat", "sleep", "env", "id", "wget", "ls", "true", "false"):
            (root / "bin" / applet).symlink_to("busybox")

    config = oci.ImageConfig(cmd=["/bin/sh"], env=["PATH=/bin"], user="65534:65534")
    return _build_tree_image(s, TOOLBOX_IMAGE, f"toolbox-busybox-{_busybox_version()}", fill, config)


def import_archive(s: StackSettings, archive: Path) -> None:
    """Import an OCI archive into the node's containerd (unpacked for overlayfs, visible to the CRI)."""
    proc = _ctr(s, "images", "import", "--snapshotter", "overlayfs", str(archive))
    if proc.returncode != 0:
        raise NodeError(f"ctr images import {archive} failed:\n{proc.stderr.decode(errors='replace')[-2000:]}")


def import_base_images(s: StackSettings) -> None:
    for archive in (pause_archive(s), toolbox_archive(s)):
        import_archive(s, archive)


# ---- the kubelet ----


RBAC = f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: clinops-node
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:node
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: {pki.NODE.user}
"""


def _cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies: every v1 one and the hybrid v2 mount (runc uses them all)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(left.split()[4]))
    return found


def _make_cgroup_root(s: StackSettings) -> None:
    name = cgroup_root(s).lstrip("/")
    for hierarchy in _cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():  # a new cpuset is empty until given its parent's sets
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (path / f).read_text().strip():
                    (path / f).write_text((hierarchy / f).read_text())


def kubelet_kubeconfig(s: StackSettings) -> Path:
    return node_dir(s) / "kubelet.kubeconfig"


def kubelet(s: StackSettings) -> Component:
    d = node_dir(s)
    config = d / "kubelet.yaml"
    healthz = f"http://{s.host}:{s.ports.kubelet_healthz}/healthz"

    def prepare() -> None:
        pki.ensure_pki(cluster.pki_dir(s), s.host)
        cluster.write_kubeconfig(s, pki.NODE, kubelet_kubeconfig(s))
        for sub in ("kubelet", "pod-logs", "kubelet-certs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        config.write_text(kubelet_config(s))
        cluster.kubectl(s, "apply", "-f", "-", stdin=RBAC)
        _make_cgroup_root(s)

    return Component(
        name="kubelet",
        argv=[
            str(toolchain.require(toolchain.KUBELET, s.cache) / "bin" / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={kubelet_kubeconfig(s)}",
            f"--root-dir={d / 'kubelet'}",
            f"--cert-dir={d / 'kubelet-certs'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-labels={NODE_LABEL},clinops.io/real-node=true",
            f"--register-with-taints={TAINT}",
            "--v=1",
        ],
        url=f"https://{s.host}:{s.ports.kubelet}",
        ready=lambda: _http_ok(healthz),
        prepare=prepare,
        provision=lambda: wait_ready(s),
        after=("containerd",),
    )


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(s: StackSettings, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        proc = cluster.kubectl_run(s, "wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=5s")
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise NodeError(
                f"node {NODE_NAME} not Ready after {timeout_s:.0f}s:\n{proc.stderr}\n"
                + cluster.kubectl(s, "describe", "node", NODE_NAME, check=False)[-3000:]
            )
        time.sleep(1)


def components(s: StackSettings) -> list[Component]:
    """The node's processes, in start order (after the control plane)."""
    return [containerd(s), kubelet(s)]


# ---- tear down: leave nothing behind ----


def down(s: StackSettings, say: Callable[[str], None] = print) -> None:
    """Stop the node and remove every trace of it from the machine (idempotent)."""
    if supervisor.running_pid(s, "containerd") is not None:
        _remove_pods(s, say)
    supervisor.stop(s, "kubelet", say)
    if supervisor.running_pid(s, "containerd") is not None:
        _remove_pods(s, say)  # pods the kubelet restarted while stopping
    supervisor.stop(s, "containerd", say)
    _kill_leftovers(s, say)
    _unmount_under(node_dir(s), say)
    _remove_cgroups(s)
    _remove_log_links(s)


def _remove_pods(s: StackSettings, say: Callable[[str], None]) -> None:
    if not toolchain.CRICTL.ready(s.cache):
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc = _crictl(s, "rmp", "--all", "--force")
        if proc.returncode != 0 and "not found" not in proc.stderr:
            say(f"crictl rmp: {proc.stderr.strip()[-300:]}")


def _shim_pids(s: StackSettings) -> list[int]:
    """Shims of this containerd: their command line names this node's socket."""
    address = str(socket_path(s)).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address in argv:
            pids.append(int(entry.name))
    return pids


def _cgroup_pids(s: StackSettings) -> set[int]:
    pids: set[int] = set()
    name = cgroup_root(s).lstrip("/")
    for hierarchy in _cgroup_hierarchies():
        root = hierarchy / name
        if root.is_dir():
            for procs in root.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def _kill_leftovers(s: StackSettings, say: Callable[[str], None]) -> None:
    for _ in range(20):
        pids = set(_shim_pids(s)) | _cgroup_pids(s)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.25)
    say(f"node: processes still alive after SIGKILL: {sorted(set(_shim_pids(s)) | _cgroup_pids(s))}")


def mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


def _unmount_under(folder: Path, say: Callable[[str], None]) -> None:
    for point in sorted(mounts_under(folder), key=len, reverse=True):
        proc = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            proc = subprocess.run(["umount", "-l", point], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            say(f"node: could not unmount {point}: {proc.stderr.strip()}")


def _remove_cgroups(s: StackSettings) -> None:
    name = cgroup_root(s).lstrip("/")
    for hierarchy in _cgroup_hierarchies():
        root = hierarchy / name
        if not root.is_dir():
            continue
        for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            root.rmdir()


def _remove_log_links(s: StackSettings) -> None:
    """The kubelet links each container's log into /var/log/containers: remove the links to ours."""
    if not CONTAINER_LOG_LINKS.is_dir():
        return
    ours = str(node_dir(s) / "pod-logs")
    for link in CONTAINER_LOG_LINKS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(ours):
                link.unlink()


def leftovers(s: StackSettings) -> list[str]:
    """What of this node is still on the machine (empty after ``down``): for tests and ``cluster-status``."""
    found = [f"mount {m}" for m in mounts_under(node_dir(s))] if node_dir(s).exists() else []
    found += [f"shim pid {p}" for p in _shim_pids(s)]
    found += [f"cgroup process {p}" for p in _cgroup_pids(s)]
    name = cgroup_root(s).lstrip("/")
    found += [f"cgroup {h / name}" for h in _cgroup_hierarchies() if (h / name).exists()]
    found += [f"process {n}" for n in BUILDERS if supervisor.running_pid(s, n) is not None]
    return found
