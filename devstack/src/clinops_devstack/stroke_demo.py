"""``make demo-stroke``: the stroke pipeline's stroke stage on a local stack, from its real sources.

1. ``manifests/stroke-risk.yaml`` is read and pointed at the stack (its lake; each ``sources.batch``
   entry at the stack's FerretDB, PostgreSQL or MinIO: with ``make up``'s default ports the URIs are
   the manifest's own);
2. the generator's five stroke tables are written to the systems those entries name (demographics to
   FerretDB, clinical measurements and hospital administration to PostgreSQL, lifestyle and
   conditions as Parquet to MinIO);
3. the operator renders the stroke stage (``clinops_operator.core.stages.task``) and its command line
   runs as a local executor runs it: the rendered environment, each Secret reference resolved from
   the stack (``CLINOPS_SOURCE_<TABLE>_URL`` as ``make env`` prints them);
4. the stage's result is read back as the operator reads it, each view's rows in the snapshot are
   counted and checked against what the generator wrote; any difference exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import typer
import yaml

from clinops_common.contracts import StrokeArgs, StrokeResult
from clinops_common.features.definitions import STROKE_LABEL_VIEW, STROKE_SOURCE_VIEWS, STROKE_VIEW, feature_view
from clinops_common.features.offline import OfflineStore
from clinops_common.lake import BatchTable
from clinops_common.storage import s3_client
from clinops_common.synthetic.config import FaultRates, GeneratorConfig
from clinops_common.synthetic.generator import generate
from clinops_common.synthetic.source_sinks import upload_sources
from clinops_devstack.settings import REPO_ROOT, StackSettings
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import Stage, StageTask, task
from clinops_operator.results import LakeResults

MANIFEST = REPO_ROOT / "manifests" / "stroke-risk.yaml"
Say = Callable[[str], None]


class DemoError(RuntimeError):
    """The stroke stage failed, or its views do not hold what the generator wrote."""


def _point_uri(uri: str, fmt: str, settings: StackSettings, suffix: str) -> str:
    parts = urlsplit(uri)
    if fmt == "mongodb":
        return urlunsplit(("mongodb", f"{settings.host}:{settings.ports.ferretdb}", f"{parts.path}{suffix}", "", ""))
    if fmt == "postgres":
        query = "&".join(
            f"{k}={v}{suffix}" if k == "table" else f"{k}={v}"
            for k, _, v in (q.partition("=") for q in parts.query.split("&") if q)
        )
        return urlunsplit(("postgresql", f"{settings.host}:{settings.ports.postgres}", parts.path, query, ""))
    if fmt in ("parquet", "ndjson"):
        path = parts.path.rstrip("/") + suffix + "/"
        return urlunsplit(("s3a", settings.lake_bucket, path, "", ""))
    raise DemoError(f"the local stack has no system for a {fmt!r} source ({uri})")


def point_at_stack(
    body: dict[str, Any], settings: StackSettings, *, name: str | None = None, suffix: str = ""
) -> Pipeline:
    """The manifest's pipeline with its lake and batch sources on ``settings``' stack; ``suffix``
    makes its tables, collections and prefixes its own (tests share one stack)."""
    body = yaml.safe_load(yaml.safe_dump(body))  # a deep copy
    meta = body.setdefault("metadata", {})
    meta.setdefault("uid", str(uuid.uuid4()))
    if name:
        meta["name"] = name
    spec = body["spec"]
    spec["lake"] |= {"endpoint": settings.url(settings.ports.minio), "bucket": settings.lake_bucket}
    spec.setdefault("stores", {})["mlflow"] = {"trackingUri": settings.url(settings.ports.mlflow)}
    for entry in spec["sources"]["batch"]:
        entry["uri"] = _point_uri(entry["uri"], entry["format"], settings, suffix)
    return Pipeline.from_body(body)


def secret_values(settings: StackSettings, suffix: str = "") -> dict[str, str]:
    """What each Secret reference of a task resolves to on this stack (a local executor's view)."""
    values = settings.env()
    values.update({env: url + suffix for env, url in settings.source_env().items()})  # ?table=<name><suffix>
    return values


def stage_env(t: StageTask, secrets: Mapping[str, str], settings: StackSettings) -> dict[str, str]:
    """The rendered environment, the secrets it references, and where this machine keeps Spark's jars."""
    missing = sorted(s.env for s in t.secret_env if s.env not in secrets)
    if missing:
        raise DemoError(f"no value on this stack for the secret references {missing}")
    local = settings.env()
    spark: dict[str, str] = {
        k: local[k] for k in ("CLINOPS_SPARK_JARS_DIR", "CLINOPS_SPARK_CONNECTORS_DIR") if k in local
    }
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 (where a bare environment's tools look)
        **({"JAVA_HOME": os.environ["JAVA_HOME"]} if "JAVA_HOME" in os.environ else {}),
        **dict(t.env),
        **{s.env: secrets[s.env] for s in t.secret_env},
        "CLINOPS_SPARK_MASTER": os.environ.get("CLINOPS_SPARK_MASTER", "local[2]"),
        **spark,
    }


def expected_view_rows(batch: Mapping[BatchTable, list[dict[str, Any]]], as_of: date) -> dict[str, int]:
    """Each stroke view's rows, counted from the generator's tables (no faults)."""
    out = {STROKE_SOURCE_VIEWS[t].name: len(rows) for t, rows in batch.items()}
    out[STROKE_SOURCE_VIEWS["hospital_admin"].name] = sum(1 for r in batch["hospital_admin"] if r["admission_date"])
    registered = {r["patient_id"]: r["registration_date"] for r in batch["demographics"]}
    visits = {
        (v["patient_id"], v["visit_date"])
        for v in batch["clinical_measurements"]
        if registered[v["patient_id"]] <= v["visit_date"] <= as_of
    }
    out[STROKE_VIEW.name] = len(visits | {(p, as_of) for p in registered})
    strokes = {r["patient_id"]: r["stroke_date"] for r in batch["conditions"] if r["stroke_occurred"]}
    with_record = {r["patient_id"] for r in batch["conditions"]}
    out[STROKE_LABEL_VIEW.name] = sum(1 for p, d in visits if p in with_record and (p not in strokes or d < strokes[p]))
    return out


@dataclass(frozen=True)
class Outcome:
    result: StrokeResult
    views: dict[str, int]
    expected: dict[str, int]
    stage_s: float

    @property
    def mismatches(self) -> dict[str, tuple[int, int]]:
        return {v: (self.views.get(v, 0), n) for v, n in self.expected.items() if self.views.get(v, 0) != n}


def run_stroke_stage(
    p: Pipeline,
    settings: StackSettings,
    *,
    patients: int,
    seed: int,
    run_id: str,
    secrets: Mapping[str, str],
    say: Say,
    timeout_s: float = 900,
) -> Outcome:
    """Generate, upload to the pipeline's sources, run the rendered stroke stage, count its views."""
    conns = settings.connections()
    cfg = GeneratorConfig(patients=1, cohort=patients, days=1, seed=seed, faults=FaultRates.none())
    say(f"==> the generator's stroke cohort: {patients} patients (seed {seed})")
    ds = generate(cfg)
    t = task(p, Stage.STROKE, run_id)
    args = t.arguments
    assert isinstance(args, StrokeArgs)
    say("==> each table to the system spec.sources.batch names")
    saved = {k: os.environ.get(k) for k in secrets}
    os.environ.update({s.env: secrets[s.env] for s in t.secret_env})  # the uploader reads the same variables
    try:
        for line in upload_sources(ds.batch, args.sources, conns):
            say(f"    {line}")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    say(f"==> the operator's stroke stage: python -m {t.stage.package} {' '.join(t.args)}")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", t.stage.package, *t.args],
        env=stage_env(t, secrets, settings),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    stage_s = time.perf_counter() - start
    log = Path(".local/logs/demo-stroke-stage.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout + proc.stderr)  # Spark's own lines stay off the screen
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(("clinops", "Traceback")) or "Error:" in ln]
        raise DemoError(f"the stroke stage exited {proc.returncode} (whole log: {log}):\n" + "\n".join(errors[-12:]))
    for line in proc.stdout.strip().splitlines():
        say(f"    {line}")
    result = LakeResults(s3_client(conns)).read(p, t)
    if not isinstance(result, StrokeResult):
        raise DemoError(f"the stroke stage wrote no result for run {run_id}")
    store = OfflineStore.for_lake(conns)
    snap = store.snapshot(result.snapshot_id)
    names = [*(v.name for v in STROKE_SOURCE_VIEWS.values()), STROKE_VIEW.name, STROKE_LABEL_VIEW.name]
    frames = {n: store.read(feature_view(n), snap, []) for n in names}
    views = {n: len(f) for n, f in frames.items()}
    as_of = frames[STROKE_VIEW.name]["event_timestamp"].max().date()  # the stage's as-of date (its last row)
    return Outcome(result, views, expected_view_rows(ds.batch, as_of), stage_s)


def report(outcome: Outcome, say: Say) -> None:
    r = outcome.result
    say(f"==> snapshot {r.snapshot_id}: views and rows (expected from the generator's tables)")
    for name, rows in outcome.views.items():
        mark = "ok" if rows == outcome.expected[name] else "MISMATCH"
        say(f"    {name:<20} {rows:>8} rows  (expected {outcome.expected[name]})  {mark}")
    for table, counts in r.sources.items():
        say(
            f"    source {table:<22} read {counts['read']}, kept {counts['kept']}, "
            f"quarantined {counts['quarantined']}, skipped {counts.get('skipped', 0)}"
        )
    say(
        f"    {r.patients} patients, {r.high_risk} high risk, {r.training_rows} training rows, "
        f"{r.checks} checks passed; stroke stage {outcome.stage_s:.1f} s"
    )


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    patients: Annotated[int, typer.Option(help="Stroke cohort size.")] = 1000,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 1,
    manifest: Annotated[Path, typer.Option(help="The batch pipeline to run.")] = MANIFEST,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: demo-stroke-<time>).")] = None,
) -> None:
    """Run the stroke stage of MANIFEST on `make up`'s stack from its real sources and check its views."""
    settings = StackSettings()
    body = yaml.safe_load(manifest.read_text())
    p = point_at_stack(body, settings)
    rid = run_id or time.strftime("demo-stroke-%Y%m%dT%H%M%S", time.gmtime())
    try:
        outcome = run_stroke_stage(
            p, settings, patients=patients, seed=seed, run_id=rid, secrets=secret_values(settings), say=print
        )
    except DemoError as err:
        print(f"demo-stroke failed: {err}", file=sys.stderr)
        raise typer.Exit(1) from None
    report(outcome, print)
    if outcome.mismatches:
        print(f"demo-stroke: views differ from the generator's tables: {outcome.mismatches}", file=sys.stderr)
        raise typer.Exit(1)
    print("==> every view holds what the generator wrote")


if __name__ == "__main__":
    app()
