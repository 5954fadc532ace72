"""Every PromQL expression of the monitor's dashboard returns data from a real Prometheus scraping
the monitor's /metrics; the alert rules pass ``promtool check rules``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import port_for
import pytest
from prometheus_client import start_http_server

from clinops_devstack.settings import REPO_ROOT
from clinops_monitor.core.decision import Policy
from clinops_monitor.core.drift import quantile_bins
from clinops_monitor.core.evaluation import Reference, evaluate
from clinops_monitor.metrics import MonitorMetrics

DASHBOARD = REPO_ROOT / "charts" / "clinops" / "dashboards" / "clinops-monitor.json"
ALERTS = REPO_ROOT / "charts" / "clinops" / "files" / "monitor-alerts.yaml"


def _evaluation() -> object:
    rng = np.random.default_rng(0)
    n = 5000
    p = rng.beta(1, 9, n)
    frame = pd.DataFrame({"model_version": "3", "score": p, "label": (rng.random(n) < 2 * p).astype(int)})
    ref = {"heart_rate_mean_1h": rng.normal(80, 10, 4000), "probability": rng.beta(1, 9, 4000)}
    cur = {"heart_rate_mean_1h": rng.normal(90, 10, 3000), "probability": rng.beta(1, 6, 3000)}
    reference = Reference(("heart_rate_mean_1h",), ref, {k: quantile_bins(v) for k, v in ref.items()})
    return evaluate(
        evaluation_id="e-1",
        as_of=datetime.now(UTC),
        window_days=7,
        model_name="adverse-event",
        champion_version="3",
        labelled=frame,
        pending=12,
        watermark=datetime.now(UTC),
        current=cur,
        reference=reference,
        min_outcomes=200,
        psi_threshold=0.2,
        ks_p_value=0.01,
        policy=Policy(auroc_floor=0.9),
        previous_drift_flags=[],
        last_request_at=None,
        training_in_flight=False,
        volume={"LOW": 4000, "MEDIUM": 800, "HIGH": 200},
    )


def _exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dash["panels"] for t in panel["targets"]]
    return [e.replace("$namespace", ".*").replace("$pipeline", ".*") for e in exprs]


def test_every_dashboard_expression_returns_data(prometheus: tuple[str, Path]) -> None:
    url, targets = prometheus
    metrics = MonitorMetrics()
    ev = _evaluation()
    metrics.publish("default", "adverse-event", 0.9, ev, 1.5)  # type: ignore[arg-type]
    assert ev.decision.request  # type: ignore[attr-defined]
    port = port_for.select_random()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    target = targets / "monitor-dashboard.json"
    target.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"job": "clinops-monitor"}}]))
    try:
        pending = _exprs()
        assert len(pending) >= 14
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            pending = [e for e in pending if not _query(url, e)]
            if pending:
                time.sleep(1)
        assert pending == [], f"no data for: {pending}"
    finally:
        target.unlink(missing_ok=True)
        server.shutdown()
        thread.join(5)


def _query(url: str, promql: str) -> list[object]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) not installed")
def test_alert_rules_pass_promtool() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 7 rules found" in out.stdout
