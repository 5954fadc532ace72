"""``python -m clinops_monitor``: the monitor's command line (wiring only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml

from clinops_common.cli import service_app
from clinops_common.logs import configure
from clinops_common.settings import Connections
from clinops_monitor.adapters.kube import Pipelines, training_in_flight
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.adapters.reference import MlflowReferences
from clinops_monitor.config import MonitorSettings, PipelineView
from clinops_monitor.job import run_evaluation

app = service_app(
    "clinops-monitor",
    "Join predictions with outcomes; track AUROC, calibration and drift; ask the operator to retrain.",
    needs=["postgres", "s3", "mlflow"],
)


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@app.command()
def evaluate(
    pipeline: Annotated[str, typer.Option(help="FeaturePipeline name.")],
    namespace: Annotated[str, typer.Option(help="Its namespace.")] = "default",
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this UTC time (default now).")] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="Read the pipeline from this manifest instead of the cluster (no annotation).")
    ] = None,
) -> None:
    """Run one evaluation; record it; set clinops.io/retrain-requested when it asks; print its numbers
    (one JSON document on stdout; the log goes to stderr)."""
    configure("monitor", pipeline=pipeline, namespace=namespace)
    settings, conns = MonitorSettings(), Connections()
    kube = None
    if manifest is not None:
        view = PipelineView.from_body(yaml.safe_load(manifest.read_text()))
    else:
        kube = Pipelines()
        view = kube.get(namespace, pipeline)
    db = Database(conns.database_url.get_secret_value())
    try:
        out = run_evaluation(
            view,
            _as_of(as_of),
            settings=settings,
            conns=conns,
            db=db,
            references=MlflowReferences(view.mlflow_tracking_uri or conns.mlflow_tracking_uri, settings.model_alias),
            patcher=kube,
            training_in_flight=training_in_flight,
        )
    finally:
        db.close()
    ev = out.evaluation
    summary = {
        "evaluation": ev.id,
        "as_of": ev.as_of.isoformat(),
        "champion": ev.champion_version,
        "requested": ev.decision.request,
        "reasons": list(ev.decision.reasons),
        "suppressed": ev.decision.suppressed,
        "request": out.request,
        "labels_written": out.labels_written,
        "seconds": round(out.seconds, 3),
        **{k: v for k, v in ev.numbers().items() if k != "drift"},
        "drifted_features": ev.drift.drifted_features if ev.drift else [],
    }
    typer.echo(json.dumps(summary, indent=2, default=str))


@app.command()
def serve() -> None:
    """Watch FeaturePipelines and evaluate each on its spec.schedules.monitoring cron; serve /metrics."""
    from clinops_monitor.service import serve as run

    configure("monitor")
    settings, conns = MonitorSettings(), Connections()
    run(settings, conns, MlflowReferences(conns.mlflow_tracking_uri, settings.model_alias))


if __name__ == "__main__":
    app()
