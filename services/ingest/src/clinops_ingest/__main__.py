"""``python -m clinops_ingest``: the ingest service's command line.

``run`` is the long-running consumer (a Deployment); ``ingest`` is the same consumer as a stage of a
run: it parses exactly ``clinops_common.contracts.IngestArgs``, drains the topics until they are idle
and writes an ``IngestResult`` to the lake.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from prometheus_client import start_http_server

from clinops_common.cli import service_app
from clinops_common.contracts import IngestArgs, IngestResult, stage_command, write_result
from clinops_common.logs import configure
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_ingest.config import IngestSettings
from clinops_ingest.metrics import IngestMetrics
from clinops_ingest.service import Ingestor, S3WriteError

app = service_app(
    "clinops-ingest",
    "Kafka topics to bronze NDJSON on S3, at least once, with a dead-letter prefix for bad messages.",
    needs=["kafka", "s3"],
)


@app.command()
def run(
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds without messages (default: run until SIGTERM).")
    ] = None,
    max_messages: Annotated[int | None, typer.Option(help="Exit after this many messages.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of the Kafka topic names.")] = None,
    group_id: Annotated[str | None, typer.Option(help="Kafka consumer group.")] = None,
) -> None:
    """Consume every topic into bronze (and dead-letter) objects; SIGTERM flushes, commits and exits.

    Other settings come from CLINOPS_INGEST_* variables (batch size and age, memory bound)."""
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "idle_exit_s": idle_exit,
            "max_messages": max_messages,
            "metrics_port": metrics_port,
            "topic_prefix": topic_prefix,
            "group_id": group_id,
        }.items()
        if v is not None
    }
    consumed = _consume(IngestSettings(**overrides), Connections(), configure("ingest"))
    typer.echo(f"consumed {consumed} messages")


def _consume(settings: IngestSettings, conns: Connections, log: Any) -> int:
    metrics = IngestMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr="0.0.0.0", registry=metrics.registry)  # noqa: S104
    try:
        return asyncio.run(Ingestor(settings, conns, log, metrics).run())
    except S3WriteError as err:
        log.error("s3_unavailable", error=str(err))
        raise typer.Exit(2) from err


def ingest(args: IngestArgs) -> None:
    conns = Connections()
    settings = IngestSettings(
        topics=args.topics,
        topic_prefix=args.topic_prefix,
        group_id=args.group_id,
        idle_exit_s=args.idle_exit_s,
        max_messages=args.max_messages,
    )
    consumed = _consume(settings, conns, configure("ingest", pipeline=args.pipeline, run=args.run_id))
    result = IngestResult(pipeline=args.pipeline, run_id=args.run_id, messages=consumed)
    write_result(s3_client(conns), conns.lake_bucket, result)
    typer.echo(result.model_dump_json())


stage_command(app, IngestArgs, ingest)


if __name__ == "__main__":
    app()
