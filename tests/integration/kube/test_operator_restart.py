"""Kill the operator (SIGKILL, no clean-up) in the middle of a run: the next one finishes it, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import example_body, wait_for

from clinops_devstack import toolchain


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


def _wait_for_phase(cluster: Any, namespace: str, phase: str, timeout_s: float) -> list[str]:
    """Watch the pipeline's phase until it is ``phase``; the phases seen, in order."""
    kubectl = toolchain.require(toolchain.KUBERNETES, cluster.settings.cache) / "bin" / "kubectl"
    argv = [str(kubectl), f"--kubeconfig={cluster.kubeconfig}", "get", "featurepipeline", "adverse-event"]
    argv += ["-n", namespace, "--watch", "-o", 'jsonpath={.status.phase}{"\\n"}']
    watch = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout_s, watch.kill)
    timer.start()
    seen: list[str] = []
    try:
        assert watch.stdout is not None
        for line in watch.stdout:
            if line.strip() and (not seen or seen[-1] != line.strip()):
                seen.append(line.strip())
            if seen and seen[-1] == phase:
                return seen
    finally:
        timer.cancel()
        watch.kill()
        watch.wait()
    pytest.fail(f"no phase {phase} within {timeout_s:.0f}s (seen: {seen})")


def test_killed_mid_run_the_restarted_operator_completes_the_run_without_duplicates(
    cluster: Any, namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    first = _start_operator(log)
    try:
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
        # A watch, not polling: the phase lasts a few seconds, a loaded machine can poll past it.
        phases = _wait_for_phase(cluster, namespace, "Featurizing", timeout_s=90)
    finally:
        _stop(first, signal.SIGKILL)
    assert phases[-1] == "Featurizing", phases
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
    job_pods = [p for p in pods if any(o["kind"] == "Job" for o in p["metadata"].get("ownerReferences", []))]
    assert len(job_pods) == 2, "one materializer and one trainer pod: each Job was created once"
