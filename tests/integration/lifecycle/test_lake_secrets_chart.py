"""The chart's per-component lake credentials: every Deployment, Job and CronJob of the chart reads its
S3 keys from its own Secret, and no two components share one."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from clinops_devstack import toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings

CHART = REPO_ROOT / "charts" / "clinops"


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    argv = [str(helm), "template", "r", str(CHART), "--kube-version", "1.34.4", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _lake_secret_of_each_workload(*values: str) -> dict[str, set[str]]:
    proc = _helm(*[a for v in values for a in ("--set", v)])
    assert proc.returncode == 0, proc.stderr
    out: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if not doc or doc["kind"] not in ("Deployment", "Job", "CronJob"):
            continue
        pod = doc["spec"]["jobTemplate"]["spec"]["template"] if doc["kind"] == "CronJob" else doc["spec"]["template"]
        for c in pod["spec"]["containers"]:
            for e in c.get("env", []):
                if e["name"] in ("CLINOPS_S3_ACCESS_KEY", "CLINOPS_S3_SECRET_KEY"):
                    assert "value" not in e, f"{doc['metadata']['name']}: S3 keys only from a Secret"
                    ref = e["valueFrom"]["secretKeyRef"]
                    out.setdefault(f"{doc['kind']}/{doc['metadata']['name']}", set()).add(ref["name"])
    return out


def test_each_chart_component_reads_its_own_lake_secret() -> None:
    got = _lake_secret_of_each_workload("lifecycle.enabled=true")
    assert got == {
        "Deployment/r-operator": {"clinops-lake"},
        "Deployment/r-scorer-adverse-event": {"clinops-lake-scorer"},
        "Deployment/r-monitor": {"clinops-lake-monitor"},
        "Job/r-lifecycle": {"clinops-lake-admin"},
        "CronJob/r-lifecycle-daily": {"clinops-lake-admin"},
    }
    renamed = _lake_secret_of_each_workload("lake.componentSecrets.scorer=vault-scorer-s3")
    assert renamed["Deployment/r-scorer-adverse-event"] == {"vault-scorer-s3"}


def test_the_schema_refuses_an_unknown_component_secret() -> None:
    proc = _helm("--set", "lake.componentSecrets.featurizr=x")
    assert proc.returncode != 0
    assert "featurizr" in proc.stderr


def test_values_document_every_lake_secret() -> None:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["lake"]["componentSecrets"]) == {"scorer", "monitor"}
    text = (CHART / "values.yaml").read_text()
    assert "stageCredentialsSecretRefs" in text  # where the stages' own Secrets are named
