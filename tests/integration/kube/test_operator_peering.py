"""HA: two operator replicas share a kopf peering object; only the higher-priority one acts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kube_helpers import example_body, wait_for


def _replica(name: str, priority: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "clinops_operator", "run", "--priority", str(priority), "--plain-logs"],
            env={**os.environ, "CLINOPS_OPERATOR_PEERING_NAME": name},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _peers(cluster: Any, name: str) -> int:
    out = cluster.kubectl("get", "clusterkopfpeering", name, "-o", "json")
    return len(json.loads(out).get("status") or {})


def test_with_peering_only_the_highest_priority_replica_creates_children(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    name = f"peering-{namespace}"
    cluster.kubectl(
        "apply", "-f", "-", stdin=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata:\n  name: {name}\n"
    )
    logs = {"high": tmp_path / "high.log", "low": tmp_path / "low.log"}
    replicas = {"high": _replica(name, 100, logs["high"])}
    try:
        wait_for("the first replica in the peering", lambda: _peers(cluster, name) == 1, timeout_s=60)
        replicas["low"] = _replica(name, 10, logs["low"])
        wait_for("both replicas in the peering", lambda: _peers(cluster, name) == 2, timeout_s=60)
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))

        def ready() -> bool:
            fp = cluster.get("featurepipeline", "adverse-event", namespace) or {}
            return (fp.get("status") or {}).get("phase") == "Ready"

        wait_for("phase Ready", ready, timeout_s=90)
        # Judge the low-priority replica by what it did while the high-priority one was alive: once
        # the high one stops, the low one rightly takes over.
        low_while_paused = logs["low"].read_text()
        _stop(replicas["high"])
        # Stop the low one only once it has seen the high one go (else the order of the two shutdowns
        # decides whether it logs the resume): proof that it was paused until then.
        wait_for(
            "the low-priority replica resuming",
            lambda: "Resuming operations after the pause" in logs["low"].read_text(),
            timeout_s=60,
        )
    finally:
        for proc in replicas.values():
            _stop(proc)
        cluster.kubectl("delete", "clusterkopfpeering", name, "--wait=false", check=False)
    high = logs["high"].read_text()
    assert f"{namespace}/adverse-event: created adverse-event-proc-" in high, high[-2000:]
    assert f"{namespace}/adverse-event" not in low_while_paused, low_while_paused[-2000:]
    assert replicas["high"].returncode == replicas["low"].returncode == 0
