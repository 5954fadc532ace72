"""The chart's data lifecycle: a pre-install/pre-upgrade hook Job after the per-component Secrets,
and a daily CronJob, each reading credentials only from Secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from clinops_devstack import toolchain
from clinops_devstack.settings import REPO_ROOT, StackSettings

CHART = REPO_ROOT / "charts" / "clinops"


def _render(*values: str) -> list[dict[str, Any]]:
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    argv = [str(helm), "template", "r", str(CHART), "--kube-version", "1.34.4"]
    for v in values:
        argv += ["--set", v]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_lifecycle_hook_runs_after_the_secrets_and_reads_only_secrets() -> None:
    docs = _render("lifecycle.enabled=true", "database.createSecrets=true", "database.ownerPassword=x")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    job = next(j for j in by_kind["Job"] if j["metadata"]["name"] == "r-lifecycle")
    secrets = {s["metadata"]["name"]: s for s in by_kind["Secret"]}
    assert set(secrets) >= {"clinops-db-scorer", "clinops-db-monitor", "clinops-db-migrations"}
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert all(
        int(s["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(hook["helm.sh/hook-weight"])
        for s in secrets.values()
    )
    scorer_url = secrets["clinops-db-scorer"]["stringData"]["url"]
    assert scorer_url.startswith("postgresql+psycopg://clinops_scorer:")
    assert secrets["clinops-db-scorer"]["stringData"]["password"] in scorer_url
    assert (
        secrets["clinops-db-scorer"]["stringData"]["password"]
        != secrets["clinops-db-monitor"]["stringData"]["password"]
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = _env(container)
    assert env["CLINOPS_DATABASE_URL"] == {"secretKeyRef": {"name": "clinops-db-migrations", "key": "url"}}
    assert env["CLINOPS_DB_SCORER_PASSWORD"] == {"secretKeyRef": {"name": "clinops-db-scorer", "key": "password"}}
    assert "secretKeyRef" in env["CLINOPS_S3_SECRET_KEY"]
    assert env["CLINOPS_RETENTION_BRONZE_DAYS"] == "90"
    script = container["args"][0]
    assert "clinops_common.db upgrade" in script
    assert "grant-login" in script
    assert "clinops_common.lifecycle apply" in script
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    cron = by_kind["CronJob"][0]
    run = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "clinops_common.db maintain" in run["args"][0]
    assert "clinops_common.lifecycle sweep" in run["args"][0]
    assert "--dry-run" not in run["args"][0]


def test_lifecycle_is_off_by_default_and_no_secret_is_made_unless_asked() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _render()}
    assert not any(k in ("Job", "CronJob", "Secret") for k, _ in kinds)


def test_the_chart_refuses_an_unknown_lifecycle_value(tmp_path: Path) -> None:
    helm = toolchain.require(toolchain.HELM, StackSettings().cache) / "bin" / "helm"
    proc = subprocess.run(
        [str(helm), "template", "r", str(CHART), "--kube-version", "1.34.4", "--set", "lifecycle.retentionDays.gold=3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "gold" in proc.stderr
