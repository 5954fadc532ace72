"""``python -m clinops_common.synthetic``: generate synthetic clinical data; produce it to Kafka."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clinops_common.settings import Connections
from clinops_common.synthetic import sinks
from clinops_common.synthetic.config import FaultRates, GeneratorConfig
from clinops_common.synthetic.generator import generate

app = typer.Typer(
    help="Synthetic clinical data (deterministic by seed): stroke cohort batch tables, streaming events with "
    "injected faults, the oracle and the ledger. Endpoints come from CLINOPS_* variables.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True, soft_wrap=True)

Patients = Annotated[int, typer.Option(help="Streaming inpatients (PT00001...).")]
Days = Annotated[float, typer.Option(help="Days of streaming data.")]
Seed = Annotated[int, typer.Option(help="Random seed: same seed, same data.")]
Start = Annotated[datetime | None, typer.Option(help="Window start, UTC (default: midnight two days ago).")]
Cohort = Annotated[int | None, typer.Option(help="Stroke cohort size for the batch tables (default: --patients).")]
Clean = Annotated[bool, typer.Option("--clean", help="Inject no faults.")]


def _config(
    *, patients: int, days: float, seed: int, start: datetime | None, cohort: int | None, clean: bool
) -> GeneratorConfig:
    extra = {"start": start} if start else {}
    faults = FaultRates.none() if clean else FaultRates()
    return GeneratorConfig(patients=patients, days=days, seed=seed, cohort=cohort, faults=faults, **extra)


@app.command("generate")
def generate_cmd(  # noqa: PLR0917 (typer options)
    out: Annotated[Path, typer.Option(help="Folder for messages.ndjson, ledger.json, oracle.parquet, batch/.")],
    patients: Patients = 10,
    days: Days = 1.0,
    seed: Seed = 7,
    start: Start = None,
    cohort: Cohort = None,
    clean: Clean = False,
    upload: Annotated[bool, typer.Option(help="Also write batch tables, oracle and ledger to the lake.")] = False,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="With --upload: a FeaturePipeline manifest whose spec.sources.batch says where each table goes "
            "(document store, PostgreSQL, S3); credentials from CLINOPS_SOURCE_<TABLE>_URL (`make env`)."
        ),
    ] = None,
) -> None:
    """Generate a data set into a folder (and, with --upload, the batch tables into the lake and, with
    --sources, each into its own system)."""
    cfg = _config(patients=patients, days=days, seed=seed, start=start, cohort=cohort, clean=clean)
    ds = generate(cfg)
    files = sinks.write_files(ds, out)
    console.print(
        f"generated {len(ds.messages)} messages for {cfg.patients} patients over {cfg.days:g} days into {out}"
    )
    for name, path in files.items():
        console.print(f"  {name:<22} {path}")
    if upload:
        conns = Connections()
        for key in sinks.upload(ds, conns):
            console.print(f"  uploaded s3://{conns.lake_bucket}/{key}")
        if sources:
            from clinops_common.sources import from_manifest
            from clinops_common.synthetic.source_sinks import upload_sources

            manifest = yaml.safe_load(sources.read_text())
            for line in upload_sources(ds.batch, from_manifest(manifest["spec"]["sources"]["batch"]), conns):
                console.print(f"  uploaded {line}")
    ledger = ds.ledger.to_dict()
    console.print(f"  valid events per topic: {ledger['valid']}")
    console.print(f"  faults: {ledger['faults']}")
    console.print(
        f"  expected: silver rows {ledger['silver_rows']}, quarantine {ledger['quarantine']}, "
        f"dead letters {ledger['deadletter']}"
    )


@app.command()
def produce(
    source: Annotated[Path, typer.Option("--from", help="A folder written by `generate`.")],
    rate: Annotated[
        float | None, typer.Option(help="Messages per second (default: as fast as Kafka takes them).")
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="Prefix for topic names (tests isolate runs with it).")] = "",
) -> None:
    """Send a generated folder's messages to Kafka in order, at a target rate, with progress."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # topics are created on first use
    path = source / sinks.MESSAGES_FILE
    total = sum(1 for _ in path.open("rb"))
    conns = Connections()
    with Progress(
        TextColumn("producing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("produce", total=total)
        sent = asyncio.run(
            sinks.produce(
                sinks.read_messages(path),
                conns,
                rate=rate,
                topic_prefix=topic_prefix,
                progress=lambda n: bar.update(task, completed=n),
            )
        )
    console.print(f"produced {sent} messages to {conns.kafka_bootstrap_servers}")


if __name__ == "__main__":
    app()
