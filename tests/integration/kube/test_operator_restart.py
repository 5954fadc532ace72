"""Kill the operator (SIGKILL, no clean-up) in the middle of a run: the next one finishes it, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kube_helpers import example_body, wait_for


def _start_operator(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "clinops_operator", "run", "--standalone", "--plain-logs"],
            env=dict(os.environ),  # KUBECONFIG and the fast CLINOPS_OPERATOR_* settings
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)


def _children(cluster: Any, namespace: str) -> Iterator[str]:
    yield from (f"SparkApplication/{n}" for n in cluster.names("sparkapplications", namespace))
    yield from (f"Job/{n}" for n in cluster.names("jobs", namespace))


def test_killed_mid_run_the_restarted_operator_completes_the_run_without_duplicates(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    first = _start_operator(log)
    try:
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))

        def featurizing() -> bool:
            fp = cluster.get("featurepipeline", "adverse-event", namespace) or {}
            return (fp.get("status") or {}).get("phase") == "Featurizing"

        wait_for("phase Featurizing", featurizing, timeout_s=90, every_s=0.1)
    finally:
        _stop(first, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    seen_at_kill = sorted(_children(cluster, namespace))

    second = _start_operator(log)
    try:

        def ready() -> bool:
            fp = cluster.get("featurepipeline", "adverse-event", namespace) or {}
            return (fp.get("status") or {}).get("phase") == "Ready"

        wait_for("phase Ready after the restart", ready, timeout_s=90)
    finally:
        _stop(second, signal.SIGTERM)
    assert second.returncode == 0, log.read_text()[-3000:]

    children = sorted(_children(cluster, namespace))
    run_id = cluster.get("featurepipeline", "adverse-event", namespace)["status"]["lastRuns"]["trainer"]["runId"]
    assert children == [
        f"Job/adverse-event-mat-{run_id}",
        f"Job/adverse-event-train-{run_id}",
        f"SparkApplication/adverse-event-feat-{run_id}",
        f"SparkApplication/adverse-event-proc-{run_id}",
    ]
    assert set(seen_at_kill) <= set(children)
    pods = yaml.safe_load(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    assert len(pods) == 2, "one materializer and one trainer pod: each Job was created once"
