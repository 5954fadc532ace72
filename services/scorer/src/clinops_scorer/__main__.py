"""``python -m clinops_scorer``: serve the champion over HTTP, or score past hours in batch."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from clinops_common.cli import service_app
from clinops_scorer.config import ScorerSettings

app = service_app(
    "clinops-scorer",
    "Real-time risk scoring: one Redis read, the champion model, an audit row in PostgreSQL per prediction.",
    needs=["redis", "postgres", "mlflow"],
)
console = Console(soft_wrap=True, stderr=True)


def _env(**overrides: object) -> None:
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"CLINOPS_SCORER_{key.upper()}"] = str(value)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [CLINOPS_SCORER_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [CLINOPS_SCORER_PORT].")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model [CLINOPS_SCORER_MODEL_NAME].")] = None,
    model_alias: Annotated[str | None, typer.Option(help="Alias followed [CLINOPS_SCORER_MODEL_ALIAS].")] = None,
    feature_policy: Annotated[
        str | None, typer.Option(help="refuse (409) or degrade (impute, flag) [CLINOPS_SCORER_FEATURE_POLICY].")
    ] = None,
) -> None:
    """Run the BentoML service (bentoml serve clinops_scorer.service:Scorer) with the settings.

    Every CLINOPS_SCORER_* setting applies (see clinops_scorer.config); options here override them."""
    _env(host=host, port=port, model_name=model_name, model_alias=model_alias, feature_policy=feature_policy)
    settings = ScorerSettings()  # validate before handing over
    bentoml = shutil.which("bentoml", path=os.path.dirname(sys.executable)) or shutil.which("bentoml")
    if bentoml is None:
        console.print("[red]bentoml is not installed in this environment[/]")
        raise typer.Exit(2)
    argv = [
        bentoml,
        "serve",
        "clinops_scorer.service:Scorer",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--timeout-graceful-shutdown",
        str(int(settings.graceful_shutdown_s)),
    ]
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    # BentoML keeps its Prometheus multiprocess files under its home and empties them when a server starts:
    # a home per scorer, so two scorers on one machine (each model has its own) keep their own metrics
    os.environ.setdefault("BENTOML_HOME", str(Path(tempfile.gettempdir()) / f"clinops-scorer-{settings.port}"))
    os.execv(bentoml, argv)  # noqa: S606 - the server gets the signals (SIGTERM drains) directly


def _when(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r} (e.g. 2026-03-01T00:00:00Z)") from None


@app.command()
def batch(  # noqa: PLR0917 - one parameter per command-line option
    start: Annotated[str, typer.Option(help="First hour scored (ISO 8601, UTC when no offset).")],
    end: Annotated[str, typer.Option(help="End of the window, exclusive.")],
    snapshot: Annotated[str | None, typer.Option(help="Offline snapshot id (default: the latest).")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model [CLINOPS_SCORER_MODEL_NAME].")] = None,
    model_alias: Annotated[str | None, typer.Option(help="Alias [CLINOPS_SCORER_MODEL_ALIAS].")] = None,
    version: Annotated[str | None, typer.Option(help="A model version instead of the alias.")] = None,
    feature_policy: Annotated[
        str | None, typer.Option(help="refuse or degrade [CLINOPS_SCORER_FEATURE_POLICY].")
    ] = None,
    batch_id: Annotated[str | None, typer.Option(help="Recorded on every row (default: random).")] = None,
) -> None:
    """Score every (patient, hourly step) in [START, END) of an offline snapshot with the champion, as
    /predict would have at each step, and write the rows to predictions (source = batch)."""
    from clinops_common.db import upgrade
    from clinops_common.features.offline import OfflineStore, SnapshotNotFound
    from clinops_common.model import resolve_alias
    from clinops_common.settings import LakeConnection, ServingConnections
    from clinops_scorer import batch as batch_job
    from clinops_scorer.audit import libpq_dsn
    from clinops_scorer.registry import load_champion

    _env(model_name=model_name, model_alias=model_alias, feature_policy=feature_policy)
    settings = ScorerSettings()
    conns, lake = ServingConnections(), LakeConnection()
    t0, t1 = _when(start), _when(end)
    if t1 <= t0:
        raise typer.BadParameter("--end must be after --start")
    uri = conns.mlflow_tracking_uri
    chosen = version or resolve_alias(uri, settings.model_name, settings.model_alias)
    if chosen is None:
        console.print(f"[red]no models:/{settings.model_name}@{settings.model_alias} in {uri}[/]")
        raise typer.Exit(1)
    champ = load_champion(uri, settings.model_name, chosen, settings.model_cache_dir)
    database_url = conns.database_url.get_secret_value()
    upgrade(database_url)
    console.print(f"scoring [{t0.isoformat()}, {t1.isoformat()}) with {champ.name} version {champ.version}")

    def progress(r: batch_job.BatchResult) -> None:
        console.print(f"  {r.scored} rows scored, {r.written} written, {r.refused} refused ({r.seconds:.1f}s)")

    policy: Literal["refuse", "degrade"] = settings.feature_policy
    try:
        result = batch_job.run(
            champ,
            OfflineStore.for_lake(lake),
            libpq_dsn(database_url),
            start=t0,
            end=t1,
            snapshot=snapshot,
            policy=policy,
            batch_id=batch_id,
            progress=progress,
        )
    except SnapshotNotFound as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(1) from None
    for key, value in vars(result).items():
        print(f"{key}={value}")


if __name__ == "__main__":
    app()
