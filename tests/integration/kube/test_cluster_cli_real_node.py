"""`make cluster-up` / `make cluster-down` (the devstack CLI) on free ports: the real node joins, runs a
pod, and cluster-down leaves no process, mount, cgroup or log link of it on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from real_node_helpers import pod_on_real_node

from clinops_devstack import cluster, node
from clinops_devstack.scratch import free_ports, scratch_home
from clinops_devstack.settings import StackSettings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the real node needs root (containerd, cgroups, mounts)")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinops_devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cluster_up_starts_a_real_node_and_cluster_down_leaves_nothing(tmp_path: Path) -> None:
    home = scratch_home("clinops-cli-node-")
    ports = free_ports()
    env = {**os.environ, "CLINOPS_STACK_HOME": str(home)}
    env.update({f"CLINOPS_STACK_PORTS__{k.upper()}": str(v) for k, v in ports.model_dump().items()})
    s = StackSettings(home=home, ports=ports)
    try:
        up = _cli(env, "cluster-up", "--nodes", "1")
        assert up.returncode == 0, up.stdout + up.stderr
        assert node.NODE_NAME in up.stdout
        # A pod that is still running when cluster-down comes: its container, sandbox, mounts and
        # cgroups must all go with the node.
        pod = pod_on_real_node(
            "sleeper",
            [{"name": "s", "image": node.TOOLBOX_IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "600"]}],
        )
        cluster.kubectl(s, "apply", "-n", "default", "-f", "-", stdin=json.dumps(pod))
        cluster.kubectl(s, "wait", "--for=condition=Ready", "pod/sleeper", "-n", "default", "--timeout=120s")
        assert node.leftovers(s), "a running pod must show up as the node's processes and mounts"
        status = _cli(env, "cluster-status")
        assert status.returncode == 0, status.stdout
        assert "kubelet" in status.stdout
    finally:
        down = _cli(env, "cluster-down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert node.leftovers(s) == []
    assert not [p for p in Path("/proc/self/mountinfo").read_text().splitlines() if str(home) in p]
    subprocess.run(["rm", "-rf", str(home)], check=False)
