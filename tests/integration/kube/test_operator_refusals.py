"""Children the API server refuses for good end the run at once, with the reason in the condition.

403: a ResourceQuota allowing no SparkApplication in the namespace (the quota admission plugin refuses
the processor's): after one attempt the pipeline is Failed with reason Forbidden and the API server's
message, and the operator does not try again. 422: a ValidatingAdmissionPolicy bound to the namespace
refuses the processor's SparkApplication as Invalid: the same, with reason Invalid. An invalid spec is
refused the same way (InvalidSpec).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kube_helpers import example_body, wait_for

from clinops_devstack import cluster as kube

RUN_TIMEOUT_S = 90.0
SETTLE_S = 4.0  # eight reconcile intervals of 0.5 s


@pytest.fixture(scope="module")
def operator(cluster: Any) -> Iterator[KopfRunner]:
    with KopfRunner(["run", "--standalone", "--all-namespaces", "-m", "clinops_operator.handlers"]) as runner:
        yield runner
    assert runner.exception is None, runner.output[-3000:]


def _status(cluster: Any, namespace: str) -> dict[str, Any]:
    fp = (
        cluster.get("featurepipeline", "adverse-event", namespace)
        or cluster.get("featurepipeline", "stroke-risk", namespace)
        or {}
    )
    return dict(fp.get("status") or {})


def _failed(cluster: Any, namespace: str) -> dict[str, Any] | None:
    return next((c for c in _status(cluster, namespace).get("conditions", []) if c["type"] == "Failed"), None)


def _refusal_events(cluster: Any, namespace: str) -> int:
    """Kubernetes events kopf posted about the pipeline that report a refusal."""
    out = cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
    return sum(
        "refused" in (e.get("message") or "")
        for e in yaml.safe_load(out)["items"]
        if (e.get("involvedObject") or {}).get("kind") == "FeaturePipeline"
    )


def _assert_refused_once(cluster: Any, namespace: str, operator: KopfRunner, stage: str, reason: str) -> None:
    wait_for("phase Failed", lambda: _status(cluster, namespace).get("phase") == "Failed", timeout_s=RUN_TIMEOUT_S)
    first = _failed(cluster, namespace)
    assert first is not None
    assert first["status"] == "True"
    assert first["reason"] == reason
    assert f"{stage} " in first["message"]
    assert "refused" in first["message"]
    status = _status(cluster, namespace)
    assert status["lastRuns"][stage]["state"] == "Failed"
    assert status["lastRuns"][stage]["reason"] == reason
    assert "currentRun" not in status
    record = status["lastRuns"][stage]
    events = _refusal_events(cluster, namespace)
    time.sleep(SETTLE_S)
    # A second attempt would stamp the stage record and the condition again, and log another refusal.
    assert _status(cluster, namespace)["lastRuns"][stage] == record, "no further attempt"
    assert _failed(cluster, namespace) == first
    assert _refusal_events(cluster, namespace) == events <= 1, "no retry loop"


def test_a_child_refused_with_403_fails_the_run_once_with_reason_forbidden(
    cluster: Any, namespace: str, operator: KopfRunner
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-spark", "namespace": namespace},
        "spec": {"hard": {"count/sparkapplications.sparkoperator.k8s.io": "0"}},
    }
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(quota))

    def enforced() -> bool:  # the quota controller has computed its usage: admission now enforces it
        q = cluster.get("resourcequota", "no-spark", namespace) or {}
        return "used" in (q.get("status") or {})

    wait_for("quota status", enforced, timeout_s=60)
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
    _assert_refused_once(cluster, namespace, operator, "processor", "Forbidden")
    assert "exceeded quota" in (_failed(cluster, namespace) or {})["message"]
    assert cluster.names("sparkapplications", namespace) == []


def test_an_invalid_spec_is_refused_with_reason_invalid_spec(
    cluster: Any, namespace: str, operator: KopfRunner
) -> None:
    body = example_body(namespace)
    body["spec"]["features"]["windows"] = ["1h"]  # the feature service computes 1h, 6h and 24h
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    wait_for("condition Failed", lambda: _failed(cluster, namespace), timeout_s=RUN_TIMEOUT_S)
    failed = _failed(cluster, namespace) or {}
    assert failed["reason"] == "InvalidSpec"
    assert "features.windows" in failed["message"]
    time.sleep(SETTLE_S)
    assert cluster.names("sparkapplications", namespace) == []
    assert _failed(cluster, namespace) == failed


def _driver_account_policy(namespace: str) -> list[dict[str, Any]]:
    """A CEL admission policy, bound to ``namespace`` only: SparkApplications' drivers must run as
    ``spark-restricted`` (the example pipeline's run as ``clinops-spark``)."""
    name = f"spark-driver-account-{namespace}"
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["sparkoperator.k8s.io"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["sparkapplications"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": "has(object.spec.driver.serviceAccount)"
                        " && object.spec.driver.serviceAccount == 'spark-restricted'",
                        "message": "the driver must run as the spark-restricted service account",
                    }
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
            },
        },
    ]


def test_a_child_refused_with_422_fails_the_run_once_with_reason_invalid(
    cluster: Any, namespace: str, operator: KopfRunner
) -> None:
    policy = _driver_account_policy(namespace)
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(policy))
    probe = {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": "4.1.4",
            "mainApplicationFile": "local:///probe.py",
            "driver": {"serviceAccount": "someone-else"},
            "executor": {},
        },
    }

    def enforced() -> bool:  # the policy is compiled and bound: a server-side dry run is refused
        proc = kube.kubectl_run(cluster.settings, "create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(probe))
        return proc.returncode != 0 and "spark-restricted" in proc.stderr

    try:
        wait_for("admission policy in force", enforced, timeout_s=60, every_s=1.0)
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(example_body(namespace)))
        _assert_refused_once(cluster, namespace, operator, "processor", "Invalid")
        assert "spark-restricted" in (_failed(cluster, namespace) or {})["message"]
        assert cluster.names("sparkapplications", namespace) == []
    finally:
        for doc in reversed(policy):
            cluster.kubectl("delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False)
