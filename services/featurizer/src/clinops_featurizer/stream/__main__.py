"""``python -m clinops_featurizer.stream``: the streaming featurizer (a long-running Deployment).

Wiring only: settings from ``CLINOPS_STREAM_*`` (``config``), endpoints from ``Connections``, the loop
in ``service``. Imports nothing of Spark, so it starts in a second or two.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from clinops_common.cli import service_app
from clinops_common.logs import configure
from clinops_common.settings import Connections

app = service_app(
    "clinops-stream",
    "Kafka vitals and labs to the online store, seconds after each event (the batch path's statistics and rules).",
    needs=["kafka", "redis"],
)


@app.command()
def stream(
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds without messages (default: run until SIGTERM).")
    ] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of the Kafka topic names.")] = None,
    lateness: Annotated[
        float | None, typer.Option(help="Allowed lateness in seconds (older events are left to the batch).")
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
) -> None:
    """Stream vitals and labs events into the online store: each patient's rows of its latest hour,
    seconds after an event; the hourly batch corrects what came later than the allowed lateness.

    Other settings come from CLINOPS_STREAM_* variables (replay hours, poll interval, key TTL)."""
    from prometheus_client import start_http_server

    from clinops_featurizer.stream.config import StreamSettings
    from clinops_featurizer.stream.metrics import StreamMetrics
    from clinops_featurizer.stream.service import StreamFeaturizer

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "idle_exit_s": idle_exit,
            "topic_prefix": topic_prefix,
            "lateness_s": lateness,
            "metrics_port": metrics_port,
        }.items()
        if v is not None
    }
    settings = StreamSettings(**overrides)
    metrics = StreamMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0", registry=metrics.registry)  # noqa: S104
    featurizer = StreamFeaturizer(settings, Connections(), configure("stream"), metrics)
    consumed = asyncio.run(featurizer.run())
    typer.echo(f"consumed {consumed} messages, wrote {featurizer.written} online rows")


if __name__ == "__main__":
    app()
