"""``make bench-featurize``: the featurize stage's cost on small silver, beside a trivial Spark job.

A throwaway MinIO on a free port; for each size (``--sizes``, patients x days) the generator's
fault-free events (every topic, vitals every ``--vitals-interval-min`` minutes) are written to a lake
bucket of their own (object lock, as the harness's) as silver in the processor's layout and schema,
with the batch cohort beside them. Then, per size, two processes, each run exactly as the operator
renders a stage (``python -m ...`` with the ``CLINOPS_*`` environment, ``local[2]``; the caller's
``CLINOPS_FEATURIZER_*`` settings are passed on to both, to compare them):

- the stage: ``python -m clinops_featurizer featurize --pipeline bench --run-id ...``;
- the reference: a Spark job with the same session settings (``clinops_featurizer.session.start``)
  that reads each silver table the stage reads and counts it (``reference`` below).

The CPU seconds are those of the process and everything under it, the Spark JVM included (this
process is the subreaper of both and reaps the JVM before reading ``RUSAGE_CHILDREN``), so a loaded
machine stretches the wall time but hardly the CPU. Prints one ``name=value`` per line, per size
``<p>x<d>``: ``featurize_wall_s``, ``featurize_cpu_s``, ``reference_wall_s``, ``reference_cpu_s``,
``featurize_vs_reference_ratio`` (CPU), ``silver_rows`` and ``feature_rows``, and the 1-minute load
average before each run. ``--event-log DIR`` keeps each stage's Spark event log (the job/stage list
the Spark UI's history server shows) for profiling.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from clinops_common.settings import Connections
from clinops_operator.recorder import become_subreaper, reap_orphans

app = typer.Typer(add_completion=False, help=__doc__)
TABLES = ("measurements", "medications", "admissions", "outcomes")

REFERENCE = """
import sys
from clinops_common.settings import Connections
from clinops_featurizer import adapters, session
from clinops_featurizer.config import FeaturizerSettings

conns = Connections()
spark, _ = session.start(conns, "clinops-bench-reference", FeaturizerSettings())
try:
    for t in {tables!r}:
        print(t, adapters.read_silver(spark, conns.lake_bucket, t).count(), flush=True)
finally:
    spark.stop()
"""


def say(name: str, value: float | int | str) -> None:
    print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}", flush=True)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Run ``argv`` to its end; (wall s, CPU s of its process tree, its stdout)."""
    cpu0, t0 = children_cpu_s(), time.perf_counter()
    with log.open("a") as err:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True, check=False)
    wall = time.perf_counter() - t0
    reap_orphans(30.0)  # the Spark JVM a finished child left
    cpu = children_cpu_s() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} exited {proc.returncode}; its log: {log}")
    return wall, cpu, proc.stdout


def write_lake(conns: Connections, bucket: str, patients: int, days: float, vitals_interval_min: float) -> int:
    """Silver (and the batch cohort) of a fault-free world into a bucket of its own; silver rows."""
    from clinops_common.lifecycle.bucket import create_lake_bucket
    from clinops_common.storage import s3_client
    from clinops_devstack.bench.monitor.pipeline import PathConfig, write_history

    create_lake_bucket(s3_client(conns), bucket)
    cfg = PathConfig(
        patients=patients,
        days=int(days),
        vitals_interval_min=vitals_interval_min,
        topics=("vitals", "labs", "medications", "admissions", "outcomes"),
        change_day=float(days) + 1,  # no change inside the history: a stable world
    )
    oracle = write_history(cfg, "stable", conns.model_copy(update={"lake_bucket": bucket}))
    del oracle
    return silver_rows(conns.model_copy(update={"lake_bucket": bucket}))


def silver_rows(conns: Connections) -> int:
    import pyarrow.dataset as ds

    from clinops_common.lake import silver_path
    from clinops_common.storage import s3_filesystem

    fs = s3_filesystem(conns)
    total = 0
    for t in TABLES:
        root = silver_path(conns.lake_bucket, t).removeprefix("s3a://")  # type: ignore[arg-type]
        with contextlib.suppress(FileNotFoundError):
            total += ds.dataset(root, filesystem=fs, format="parquet").count_rows()
    return total


def feature_rows(conns: Connections, snapshot_id: str, dump: Path | None) -> int:
    """Rows of the snapshot's ``vitals`` view (one per patient and hour step); with ``dump``, every
    view's rows sorted by key and step into ``<dump>/<view>.parquet`` (to compare two builds' values)."""
    from clinops_common.features.definitions import FEATURE_VIEWS
    from clinops_common.features.offline import OfflineStore

    store = OfflineStore.for_lake(conns)
    snap = store.snapshot(snapshot_id)
    rows = 0
    for name in snap.views:
        frame = store.read(FEATURE_VIEWS[name], snap)
        rows = len(frame) if name == "vitals" else rows
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            frame.sort_values(["patient_id", "event_timestamp"]).reset_index(drop=True).to_parquet(
                dump / f"{name}.parquet"
            )
    return rows


def event_log_summary(folder: Path, since: float) -> dict[str, float]:
    """Jobs, stages, tasks, the tasks' own CPU seconds and the physical plans' size, from the Spark
    event logs written in ``folder`` after ``since`` (the rest of a stage's CPU is the driver's:
    planning, code generation and compilation, the JIT, GC, Python)."""
    out = dict.fromkeys(("jobs", "stages", "tasks", "task_cpu_s", "task_gc_s", "sql_plans", "plan_chars"), 0.0)
    for f in folder.rglob("events_*"):
        if f.stat().st_mtime < since:
            continue
        for line in f.open():
            e = json.loads(line)
            kind = e["Event"]
            if kind == "SparkListenerJobStart":
                out["jobs"] += 1
            elif kind == "SparkListenerStageCompleted":
                out["stages"] += 1
            elif kind == "SparkListenerTaskEnd":
                m = e.get("Task Metrics") or {}
                out["tasks"] += 1
                out["task_cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
                out["task_gc_s"] += m.get("JVM GC Time", 0) / 1e3
            elif kind.endswith("SparkListenerSQLExecutionStart"):
                out["sql_plans"] += 1
                out["plan_chars"] += len(e.get("physicalPlanDescription", ""))
    return out


def parse_size(text: str) -> tuple[int, float]:
    p, _, d = text.partition("x")
    return int(p), float(d)


@app.command()
def main(  # noqa: PLR0917 - typer options
    sizes: Annotated[str, typer.Option(help="Comma-separated <patients>x<days> sizes.")] = "60x3,240x6",
    vitals_interval_min: Annotated[float, typer.Option(help="Minutes between vital-sign readings.")] = 30.0,
    master: Annotated[str, typer.Option(help="Spark master of both processes.")] = "local[2]",
    event_log: Annotated[Path | None, typer.Option(help="Keep each stage's Spark event log in this folder.")] = None,
    dump: Annotated[
        Path | None, typer.Option(help="Write every view's rows, sorted, to <dump>/<size>/<view>.parquet.")
    ] = None,
    java_options: Annotated[
        str | None, typer.Option(help="JAVA_TOOL_OPTIONS of both processes (default: as the environment has it).")
    ] = None,
) -> None:
    from clinops_devstack.scratch import scratch_stack

    become_subreaper()
    with scratch_stack(["minio"]) as s:
        conns = s.connections()
        log = s.home / "bench-featurize.log"
        base = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(s.home)),
            **{
                k: os.environ[k]
                for k in ("JAVA_HOME", "JAVA_TOOL_OPTIONS", "VIRTUAL_ENV", "PYTHONPATH")
                if k in os.environ
            },
            **{k: v for k, v in os.environ.items() if k.startswith("CLINOPS_FEATURIZER_")},  # its settings
            "CLINOPS_SPARK_MASTER": master,
            "CLINOPS_SPARK_JARS_DIR": str(s.spark_jars_dir()),
        }
        if java_options is not None:
            base["JAVA_TOOL_OPTIONS"] = java_options
        lakes = []
        for size in sizes.split(","):
            patients, days = parse_size(size)
            name = f"{patients}x{days:g}"
            bucket = f"bench-featurize-{name.replace('.', '-')}"
            t0 = time.perf_counter()
            rows = write_lake(conns, bucket, patients, days, vitals_interval_min)
            print(f"# {name}: {rows} silver rows written in {time.perf_counter() - t0:.1f}s", flush=True)
            lakes.append((name, bucket, rows))
        for name, bucket, rows in lakes:
            lake = conns.model_copy(update={"lake_bucket": bucket})
            env = {**base, **lake.as_env()}
            stage_env = dict(env)
            if event_log is not None:
                event_log.mkdir(parents=True, exist_ok=True)
                stage_env["CLINOPS_FEATURIZER_EVENT_LOG_DIR"] = str(event_log.resolve())
            say(f"load_average_1m_{name}", os.getloadavg()[0])
            wall_r, cpu_r, _ = timed(
                [sys.executable, "-c", REFERENCE.format(tables=TABLES)], env, log
            )  # first: it also warms the page cache for the stage
            run_id = f"bench{int(time.time())}"
            argv = [sys.executable, "-m", "clinops_featurizer", "featurize", "--pipeline", "bench", "--run-id", run_id]
            argv += ["--recompute", "true"]  # the stage's computing is measured, never a reused snapshot
            started = time.time()
            wall_f, cpu_f, out = timed(argv, stage_env, log)
            say(f"silver_rows_{name}", rows)
            snapshot = result_snapshot(lake, run_id)
            say(f"feature_rows_{name}", feature_rows(lake, snapshot, dump / name if dump else None))
            say(f"featurize_wall_s_{name}", wall_f)
            say(f"featurize_cpu_s_{name}", cpu_f)
            say(f"reference_wall_s_{name}", wall_r)
            say(f"reference_cpu_s_{name}", cpu_r)
            say(f"featurize_vs_reference_ratio_{name}", cpu_f / cpu_r)
            if event_log is not None:
                summary = event_log_summary(event_log, started)
                for key, value in summary.items():
                    say(f"eventlog_{key}_{name}", value if key.endswith("_s") else int(value))
                say(f"eventlog_outside_tasks_cpu_s_{name}", cpu_f - summary["task_cpu_s"])
            print(f"# {out.strip()}", flush=True)
        say("load_average_1m_end", os.getloadavg()[0])


def result_snapshot(conns: Connections, run_id: str) -> str:
    """The snapshot id of the stage's result document (as the operator reads it)."""
    from clinops_common.contracts import result_key
    from clinops_common.storage import s3_client

    body = s3_client(conns).get_object(Bucket=conns.lake_bucket, Key=result_key("bench", run_id, "featurize"))
    return str(json.loads(body["Body"].read())["snapshot_id"])


if __name__ == "__main__":
    app()
