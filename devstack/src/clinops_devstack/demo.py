"""``make demo``: the lifecycle of one FeaturePipeline on this machine, step by step, with counts and times.

Runs against the stack of ``make up`` and the control plane of ``make cluster-up`` (the Makefile
starts both first). The operator runs with the local executor; the FeaturePipeline lives in the
local control plane, so ``kubectl get fp`` works as on a cluster. What is generated:

* ``--patients`` inpatients over ``--days`` days ending now, every event streamed through Kafka
  (topics with a prefix of this demo's own) and ingested to bronze; the batch tables (demographics
  and the stroke cohort's tables), the oracle and the ledger are written to the lake directly;
* a scenario switch (calibration drift: the hazard, hence the event rate, times ``--hazard-factor``)
  ``--switch-days`` before the end, so the champion trained on the whole history under-predicts
  after it and the monitor sees it.

Every child's output goes to ``.local/logs/demo/``; the screen shows only the demo's own lines.
No patient identifier is printed (counts only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

from clinops_common.lake import TOPICS
from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_devstack import cluster as kube
from clinops_devstack.settings import REPO_ROOT, StackSettings

NAME = "adverse-event"
MODEL = "adverse-event-demo"
SCORER_PORT = 3000
POLL_S = 2.0  # how often the demo reads the pipeline's status
# Every Spark job here is a short JVM over small data: C2 compilation and parallel GC threads cost it
# more CPU than they save (the history job: 61 CPU-s instead of 111, same rows).
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
KAFKA_PARTITIONS = 3  # the local broker's num.partitions
MIN_AUROC = 0.55  # the demo pipeline's promotion gate (see pipeline_body)
AUDIT_QUERY = (
    'eval "$(make env)"; psql "${CLINOPS_DATABASE_URL/+psycopg/}" '
    '-c "SELECT source, model_version, count(*) FROM predictions GROUP BY 1, 2"'
)
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


class Demo:
    def __init__(self, s: StackSettings, conns: Connections, stamp: str) -> None:
        self.s, self.conns, self.stamp = s, conns, stamp
        self.t0 = time.monotonic()
        self.logs = REPO_ROOT / ".local" / "logs" / "demo"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.namespace = f"demo-{stamp}"
        self.bucket = f"demo-{stamp}"
        # A registered model of its own: a previous demo's predictions, labels and evaluations (the same
        # patients and hours, version 1 again) never mix with this one's.
        self.model = f"{MODEL}-{stamp}"
        self.prefix = f"demo{stamp}."
        self.summary: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stage_cpu_s = 0.0  # CPU seconds of the pipeline's stages (their recorders' figures)
        self.own_cpu: dict[str, float] = {}  # CPU seconds of the demo's own steps, by step
        self.steps = REPO_ROOT / ".local" / "demo" / f"steps-{stamp}"  # the recorder's folder per child
        # Downloaded model versions, this demo's own.
        self.models = REPO_ROOT / ".local" / "demo" / f"models-{stamp}"
        self._api: Any = None
        self.oracle: dict[tuple[str, datetime], float] = {}  # the generator's true 24 h risk per (patient, hour)

    def say(self, text: str) -> None:
        typer.echo(f"[{time.monotonic() - self.t0:6.1f}s] {text}")

    def note(self, text: str) -> None:
        self.say(text)
        self.summary.append(text)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.conns.model_copy(update={"lake_bucket": self.bucket}).as_env(),
            "CLINOPS_SPARK_MASTER": "local[2]",
            "CLINOPS_SPARK_JARS_DIR": str(self.s.spark_jars_dir()),
            "JAVA_TOOL_OPTIONS": JVM_OPTIONS,
            "KUBECONFIG": str(kube.admin_kubeconfig(self.s)),
            "CLINOPS_MODEL_CACHE": str(self.models),
            "CLINOPS_TRAINER_MODEL_CACHE_DIR": str(self.models / "trainer"),
            "CLINOPS_MONITOR_CACHE_DIR": str(self.models / "monitor"),
            **extra,
        }

    def recorded(self, name: str, argv: list[str]) -> tuple[Path, list[str]]:
        """``argv`` under the local executor's recorder: it records the exit status and the CPU seconds of
        the child's whole process tree (a Spark JVM that outlives its Python included)."""
        state = self.steps / name
        state.mkdir(parents=True, exist_ok=True)
        return state, [sys.executable, "-m", "clinops_operator.recorder", str(state), "--", *argv]

    def cpu_of(self, name: str) -> float | None:
        """The CPU seconds the recorder of ``name`` wrote (None while it runs or when it wrote none)."""
        try:
            return float((self.steps / name / "cpu").read_text())
        except (OSError, ValueError):
            return None

    def run(self, name: str, argv: list[str], **env: str) -> tuple[str, str]:
        """A child to completion, output to its log; returns (its stdout, `` (N s, M CPU-s)``).
        On failure the log's end is shown."""
        log = self.logs / f"{name}.log"
        state, wrapped = self.recorded(name, argv)
        t = time.monotonic()
        with log.open("ab") as f:
            proc = subprocess.run(wrapped, env=self.env(**env), stdout=subprocess.PIPE, stderr=f, check=False)
        wall = time.monotonic() - t
        (self.logs / f"{name}.out").write_bytes(proc.stdout)
        try:
            code = int((state / "exit").read_text())
        except (OSError, ValueError):
            code = proc.returncode or 1
        if code != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise typer.Exit(self.fail(f"{name} exited {code}; end of {log}:\n{tail}"))
        cpu = self.cpu_of(name) or 0.0
        self.own_cpu[name] = self.own_cpu.get(name, 0.0) + cpu
        return proc.stdout.decode(), f" ({wall:.0f}s, {cpu:.0f} CPU-s)"

    @contextlib.contextmanager
    def in_process(self, name: str) -> Iterator[list[str]]:
        """Time a step the demo runs itself; yields a list that receives `` (N s, M CPU-s)``."""
        t, before = time.monotonic(), _self_cpu()
        out: list[str] = []
        yield out
        cpu = _self_cpu() - before
        self.own_cpu[name] = self.own_cpu.get(name, 0.0) + cpu
        out.append(f" ({time.monotonic() - t:.0f}s, {cpu:.0f} CPU-s)")

    def stage_timing(self, rec: dict[str, Any]) -> str:
        """`` (N s, M CPU-s)`` of a finished stage: wall time from its status, CPU from its recorder."""
        child = str(rec.get("child", "")).rsplit("/", 1)[-1]
        try:
            cpu = float((REPO_ROOT / ".local/operator" / self.namespace / child / "cpu").read_text())
        except (OSError, ValueError):
            return ""
        self.stage_cpu_s += cpu
        try:
            wall = (
                datetime.fromisoformat(rec["finishedAt"]) - datetime.fromisoformat(rec["startedAt"])
            ).total_seconds()
        except (KeyError, ValueError):
            return f" ({cpu:.0f} CPU-s)"
        return f" ({wall:.0f}s, {cpu:.0f} CPU-s)"

    def start(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        """A long-running child (the operator, the scorer) under the recorder, in a session of its own."""
        log = (self.logs / f"{name}.log").open("ab")
        _, wrapped = self.recorded(name, argv)
        proc = subprocess.Popen(
            wrapped, env=self.env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """The operator and the scorer, then any stage still running and the pipeline's long-running
        children (local stages outlive the operator, which would start a stopped child again); each
        recorder writes its CPU figure as it ends (the operator's counts the stages it reaps)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        operator = self.steps / "operator" / "child.pid"  # the operator itself, under its recorder
        deadline = time.monotonic() + 30
        while operator.exists() and Path(f"/proc/{operator.read_text().strip()}").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for pid_file in (REPO_ROOT / ".local" / "operator" / self.namespace).glob("*/pid"):
            if not (pid_file.parent / "exit").exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def fail(self, text: str) -> int:
        typer.echo(f"demo failed: {text}", err=True)
        return 1

    def status(self) -> dict[str, Any]:
        """The pipeline's status, through one API client kept open (a kubectl per poll costs a process)."""
        from kubernetes import client, config

        if self._api is None:
            api = config.new_client_from_config(str(kube.admin_kubeconfig(self.s)))  # type: ignore[no-untyped-call]
            self._api = client.CustomObjectsApi(api)
        try:
            body = self._api.get_namespaced_custom_object(
                "clinops.io", "v1alpha1", self.namespace, "featurepipelines", NAME
            )
        except client.ApiException as err:
            if err.status == 404:  # not applied yet
                return {}
            raise
        return dict(body.get("status") or {})

    def wait_for(self, what: str, check: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            st = self.status()
            if check(st):
                return st
            if st.get("phase") == "Failed":
                cond: dict[str, Any] = next((c for c in st.get("conditions", []) if c["type"] == "Failed"), {})
                raise typer.Exit(self.fail(f"the pipeline failed: {cond.get('message')}"))
            time.sleep(POLL_S)
        raise typer.Exit(self.fail(f"timed out after {timeout_s:.0f}s waiting for {what}"))


def _self_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(143)


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def quiet_kafka_client(log: Path) -> None:
    """The Kafka client's coordinator and metadata messages go to ``log``, not to the screen."""
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("aiokafka", "kafka"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False


def generate(
    d: Demo,
    *,
    patients: int,
    days: int,
    switch_days: float,
    hazard_factor: float,
    streamed_hours: int,
    vitals_interval: int,
) -> tuple[datetime, datetime, list[Any]]:
    """History: the older days written to silver directly; returns (end, the split, the events left to stream)."""
    from clinops_common.storage import s3_client
    from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
    from clinops_common.synthetic.config import Scenario
    from clinops_common.synthetic.sinks import upload
    from clinops_devstack import history

    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    at_hours = (days - switch_days) * 24
    cfg = GeneratorConfig(
        patients=patients,
        days=days,
        seed=11,
        start=start,
        vitals_interval_min=vitals_interval,
        faults=FaultRates.none(),
        scenario=Scenario(kind="calibration_drift", at_hours=at_hours, hazard_factor=hazard_factor),
    )
    with d.in_process("generate") as took:
        ds = generate(cfg)
        d.oracle = {(r["patient_id"], r["time"]): r["p_adverse_event_24h"] for r in ds.oracle}
        cut = history.split_at(end, streamed_hours)
        written, streamed = history.split(ds.messages, cut)
        conns = d.conns.model_copy(update={"lake_bucket": d.bucket})
        create_lake_bucket(s3_client(conns), d.bucket)  # object lock: ingest writes bronze immutably
        upload(ds, conns)
        lines = REPO_ROOT / ".local" / "demo" / f"history-{d.stamp}.ndjson"
        lines.parent.mkdir(parents=True, exist_ok=True)
        with lines.open("wb") as f:
            f.writelines(history.bronze_lines(written))
    d.note(
        f"history: {patients} patients x {days} days ({start:%Y-%m-%d %H:00} to {end:%Y-%m-%d %H:00} UTC), "
        f"{len(ds.messages):,} events, {ds.ledger.adverse_events} adverse events; calibration drift "
        f"(hazard x{hazard_factor}) from {start + timedelta(hours=at_hours):%Y-%m-%d %H:00}; batch tables and "
        f"the oracle written to the lake" + took[0]
    )
    out, took_s = d.run("history", _python("-m", "clinops_devstack.history", str(lines)))
    lines.unlink()
    rows = json.loads(out.strip().splitlines()[-1])
    d.note(
        f"silver (written directly): {len(written):,} events before {cut:%Y-%m-%d %H:00} through the processor's "
        f"rules in one Spark job -> " + ", ".join(f"{table} {n:,}" for table, n in rows.items()) + " rows" + took_s
    )
    return end, cut, streamed


def stream(d: Demo, streamed: list[Any], end: datetime, cut: datetime, *, late: bool = False) -> int:
    """Events from ``cut`` to ``end`` to Kafka. The first part goes before the pipeline exists (its ingest
    child reads from the earliest offset); the late part while it runs."""
    from clinops_common.synthetic.sinks import produce

    quiet_kafka_client(d.logs / "produce.log")
    if not late:
        asyncio.run(create_topics(d))
    with d.in_process("produce") as took:
        sent = asyncio.run(produce(streamed, d.conns, topic_prefix=d.prefix))
    what = "new events arrive" if late else "streamed"
    d.note(f"Kafka: {cut:%Y-%m-%d %H:00} to {end:%Y-%m-%d %H:00} {what}, {sent:,} events "
           f"to topics {d.prefix}*" + took[0])  # fmt: skip
    return sent


def forget_online_features(conns: Connections) -> None:
    """A previous demo's online rows go: its patients have the same ids, and the online store never
    goes backwards, so its newer rows would stand in for this demo's first materialization."""
    from clinops_common.features.online import OnlineStore

    store = OnlineStore.from_url(conns.redis_url.get_secret_value())
    try:
        for key in store.client.scan_iter(f"{store.prefix}:*", count=1000):
            store.client.delete(key)
    finally:
        store.client.close()


async def create_topics(d: Demo) -> None:
    """Every topic of the pipeline before its ingest child subscribes: a topic first produced to later
    (the late hours' first admission) is seen only at the consumer's next metadata refresh, minutes on."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=d.conns.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{d.prefix}{t}", KAFKA_PARTITIONS, 1) for t in TOPICS])
    finally:
        await admin.close()


def wait_ingested(d: Demo, sent: int, timeout_s: float = 600) -> None:
    """Until the pipeline's own ingest child has written every streamed message to bronze."""
    t = time.monotonic()
    while (held := bronze_messages(d)) < sent:
        if time.monotonic() - t > timeout_s:
            raise typer.Exit(d.fail(f"bronze holds {held:,} of {sent:,} messages after {timeout_s:.0f}s "
                                    f"(.local/logs/demo/stages/{d.namespace}/{NAME}-ingest.log)"))  # fmt: skip
        time.sleep(2)
    d.note(f"bronze: the pipeline's ingest child ({NAME}-ingest, a supervised process) wrote {held:,} of "
           f"{sent:,} messages to s3://{d.bucket}/bronze ({time.monotonic() - t:.0f}s)")  # fmt: skip


def bronze_messages(d: Demo) -> int:
    """Messages in bronze and dead letters: each object's name says its offsets (``<partition>-<first>-<last>``)."""
    from clinops_common.storage import s3_client

    s3 = s3_client(d.conns)
    total = 0
    for prefix in ("bronze/", "deadletter/"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=d.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                first, last = o["Key"].rsplit("/", 1)[1].removesuffix(".ndjson").split("-")[1:3]
                total += int(last) - int(first) + 1
    return total


def pipeline_body(d: Demo) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO_ROOT / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] = {"name": NAME, "namespace": d.namespace}  # the first run: clinops.io/run-now, once ingested
    spec = body["spec"]
    spec["sources"]["kafka"] |= {
        "bootstrapServers": d.conns.kafka_bootstrap_servers,
        "topicPrefix": d.prefix,
        "consumerGroup": f"{d.prefix}demo",
    }
    spec["lake"] |= {"endpoint": d.conns.s3_endpoint_url, "bucket": d.bucket}
    spec["stores"]["mlflow"] = {"trackingUri": d.conns.mlflow_tracking_uri}
    # Schedules that do not fire during the demo: the runs here are the first one and the retraining.
    spec["schedules"] = dict.fromkeys(("processing", "featurization", "training", "monitoring"), "0 0 1 1 *")
    # The example's model family and hyperparameters (pytorch-mlp) as they are: on this cohort the
    # gradient-boosted trees' test AUROC was 0.53 (validation 0.57; the MLP's 0.60 beside the oracle's 0.68).
    spec["training"] |= {
        "registeredModelName": d.model,
        "lookbackDays": 30,
        # The example's 0.62 is above what 80 patients give: the oracle itself reached 0.687 on a first
        # model's test rows. The gate still refuses a v2 that does not beat the champion.
        "promotionGate": {"minAuroc": MIN_AUROC, "mustBeatChampion": True},
    }
    return body


def show_stages(d: Demo, st: dict[str, Any], run_id: str, shown: set[str]) -> None:
    """Say each stage of ``run_id`` once, when it has succeeded, with its result's counts."""
    for stage, rec in (st.get("lastRuns") or {}).items():
        key = f"{run_id}/{stage}"
        if rec.get("runId") != run_id or rec.get("state") != "Succeeded" or key in shown:
            continue
        shown.add(key)
        r = rec.get("result") or {}
        suffix = d.stage_timing(rec)

        def note(text: str, suffix: str = suffix) -> None:
            d.note(text + suffix)

        if stage == "processor":
            dates = len(r.get("dates", []))
            note(f"silver: processor read {r.get('objects_read')} bronze objects, replaced {dates} dates")
        elif stage == "featurizer":
            files = sum((r.get("files") or {}).values())
            made = "reused: silver unchanged since it was made" if r.get("reused") else "new"
            note(
                f"features: snapshot {r.get('snapshot_id')} ({made}; {files} Parquet files, "
                f"{r.get('bytes', 0) / 1e6:.1f} MB)"
            )
        elif stage == "materializer":
            rows, n, ttl = r.get("rows"), r.get("patients"), r.get("key_ttl_hours")
            note(f"Redis: {rows} (patient, view) rows for {n} patients, keys expire after {ttl} h")
        elif stage == "trainer":
            m = r.get("metrics") or {}
            gate = "promoted" if r.get("promoted") else "refused by the gate"
            note(
                f"model: {r.get('model_name')} version {r.get('model_version')}: test AUROC {r.get('test_auroc'):.3f} "
                f"(oracle {m.get('oracle_auroc', float('nan')):.3f} on the same rows), {gate}: "
                + "; ".join(r.get("gate_reasons") or [])
            )


def follow_run(d: Demo, trigger: str, timeout_s: float) -> dict[str, Any]:
    st = d.wait_for(f"a {trigger} run", lambda s: (s.get("currentRun") or {}).get("trigger") == trigger, 120)
    run_id = st["currentRun"]["id"]
    d.say(f"run {run_id} ({trigger}): {' -> '.join(st['currentRun']['stages'])}")
    shown: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = d.status()
        show_stages(d, st, run_id, shown)
        if st.get("phase") == "Failed":
            cond: dict[str, Any] = next((c for c in st.get("conditions", []) if c["type"] == "Failed"), {})
            raise typer.Exit(d.fail(f"run {run_id} failed: {cond.get('message')}"))
        if not st.get("currentRun") and st.get("lastRuns", {}).get("trainer", {}).get("runId") == run_id:
            return st
        time.sleep(POLL_S)
    raise typer.Exit(d.fail(f"run {run_id} did not finish within {timeout_s:.0f}s"))


def score(d: Demo, start: datetime, end: datetime) -> None:
    # The scorer starts first (its imports and the model's download take most of a minute) and gets
    # ready while the batch scoring runs.
    started = time.monotonic()
    d.start("scorer", _python("-m", "clinops_scorer", "serve", "--port", str(SCORER_PORT), "--model-name", d.model))
    out, took = d.run("scorer-batch", _python("-m", "clinops_scorer", "batch", "--start", start.isoformat(),
                                               "--end", end.isoformat(), "--model-name", d.model))  # fmt: skip
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    d.note(f"batch scoring: {facts.get('written')} past (patient, hour) rows scored into predictions "
           f"({facts.get('refused', 0)} refused)" + took)  # fmt: skip
    url = f"http://127.0.0.1:{SCORER_PORT}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    else:
        raise typer.Exit(d.fail("the scorer did not become ready within 180s (.local/logs/demo/scorer.log)"))
    d.say(f"scorer (BentoML, following @champion) ready {time.monotonic() - started:.0f}s after its start")


def live_predictions(d: Demo, live: int) -> None:
    """``live`` HTTP predictions from the running scorer, and the audit rows they wrote."""
    import sqlalchemy as sa

    url = f"http://127.0.0.1:{SCORER_PORT}"
    engine = sa.create_engine(d.conns.database_url.get_secret_value())
    patients = [f"PT{i + 1:05d}" for i in range(live)]
    with engine.connect() as c:
        before = c.execute(sa.text("SELECT count(*) FROM predictions WHERE source <> 'batch'")).scalar_one()
    ok, versions, t0 = 0, set(), time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        for pid in patients:
            r = client.post("/predict", json={"patient_id": pid})
            if r.status_code == 200:
                ok += 1
                versions.add(r.json()["model_version"])
    with engine.connect() as c:
        after = c.execute(sa.text("SELECT count(*) FROM predictions WHERE source <> 'batch'")).scalar_one()
    d.note(f"live: {ok}/{live} HTTP predictions in {time.monotonic() - t0:.1f}s from version(s) "
           f"{', '.join(sorted(versions)) or '-'}; {after - before} audit rows written")  # fmt: skip


def evaluate(d: Demo, end: datetime) -> dict[str, Any]:
    out, took = d.run("monitor", _python("-m", "clinops_monitor", "evaluate", "--pipeline", NAME, "--namespace",
                                          d.namespace, "--as-of", end.isoformat()))  # fmt: skip
    ev: dict[str, Any] = json.loads(out)  # its stdout is the document (its log goes to stderr)
    d.note(f"monitor: evaluation {ev['evaluation']} as of {end:%Y-%m-%d %H:00} for version {ev['champion']}: "
           f"{evaluation_figures(ev)}; evaluation {ev.get('seconds', 0):.0f}s, command" + took)  # fmt: skip
    d.note(f"monitor: the oracle on the same labelled predictions: {window_oracle(d, str(ev['champion']), end)} "
           "(most of these hours are the model's own training rows: its AUROC there is optimistic, the oracle's "
           "is not; the trainer's test rows above are the fair comparison)")  # fmt: skip
    if ev["requested"]:
        d.note(f"monitor: retraining requested, reason {', '.join(ev['reasons'])}")
    else:
        d.note(f"monitor: no retraining request ({ev.get('suppressed') or 'no degradation signal'})")
    return ev


def window_oracle(d: Demo, version: str, end: datetime, window_days: int = 7) -> str:
    """AUROC of the champion's labelled predictions beside the generator's oracle on exactly those rows."""
    import numpy as np
    import sqlalchemy as sa

    from clinops_trainer.evaluation import auroc

    query = sa.text(
        "SELECT p.patient_id, p.predicted_at, p.score, o.label FROM prediction_outcomes o"
        " JOIN predictions p ON p.id = o.prediction_id AND p.predicted_at = o.predicted_at"
        " WHERE p.model_name = :model AND p.model_version = :version AND p.predicted_at > :start"
        " AND p.predicted_at <= :end"
    )
    engine = sa.create_engine(d.conns.database_url.get_secret_value())
    with engine.connect() as c:
        rows = c.execute(query, {"model": d.model, "version": version, "start": end - timedelta(days=window_days),
                                 "end": end}).all()  # fmt: skip
    engine.dispose()
    hour = {"minute": 0, "second": 0, "microsecond": 0}
    keyed = [(d.oracle.get((pid, at.astimezone(UTC).replace(**hour))), score, label) for pid, at, score, label in rows]
    covered = [(o, s, y) for o, s, y in keyed if o is not None]
    if not covered:
        return f"no oracle row matches the {len(rows)} labelled predictions"
    o, s, y = (np.asarray(col, dtype=np.float64) for col in zip(*covered, strict=True))
    return f"model AUROC {auroc(y, s):.3f}, oracle {auroc(y, o):.3f} ({len(covered):,} of {len(rows):,} rows)"


def evaluation_figures(ev: dict[str, Any]) -> str:
    """The champion's window figures of a monitor evaluation: outcomes, AUROC and calibration with intervals."""

    def ci(x: dict[str, Any] | None, value: str, lo: str, hi: str) -> str:
        if not x or x.get(value) is None:
            return "n/a"
        return f"{x[value]:.3f} [{x.get(lo) or float('nan'):.3f}, {x.get(hi) or float('nan'):.3f}]"

    perf = (ev.get("performance") or {}).get(str(ev.get("champion"))) or {}
    if perf.get("status") != "ok":
        return f"{perf.get('labelled', 0)} labelled predictions ({perf.get('status', 'no outcomes')})"
    cal = perf.get("calibration") or {}
    drifted = ev.get("drifted_features") or []
    return (
        f"{perf['labelled']:,} labelled predictions, {perf['events']} events; "
        f"AUROC {ci(perf.get('auroc'), 'value', 'lower', 'upper')}; "
        f"observed/expected {ci(cal, 'oe', 'oe_lower', 'oe_upper')} ({cal.get('observed')} vs "
        f"{cal.get('expected') or 0:.0f}), calibration slope {ci(cal, 'slope', 'slope_lower', 'slope_upper')}; "
        f"{len(drifted)} features drifted"
    )


@app.command()
def main(  # noqa: PLR0917 - one parameter per command-line option
    patients: Annotated[int, typer.Option(help="Inpatients.")] = 120,
    days: Annotated[int, typer.Option(help="Days of history, ending now.")] = 6,
    streamed_hours: Annotated[
        int, typer.Option(help="At least this many of the last hours are streamed (from a UTC midnight).")
    ] = 6,
    switch_days: Annotated[float, typer.Option(help="The scenario switch, this many days before the end.")] = 2.0,
    hazard_factor: Annotated[float, typer.Option(help="Calibration drift: factor on the hazard after it.")] = 3.0,
    vitals_interval: Annotated[int, typer.Option(help="Minutes between a patient's vital-sign readings.")] = 30,
    live: Annotated[int, typer.Option(help="Live HTTP predictions sent.")] = 20,
    late_hours: Annotated[
        int, typer.Option(help="The last hours are streamed after champion v1 (new outcomes for the retraining).")
    ] = 6,
    run_timeout: Annotated[float, typer.Option(help="Seconds each pipeline run may take.")] = 1800,
) -> None:
    """The lifecycle end to end: history -> bronze -> silver -> features -> Redis -> champion -> predictions
    -> the monitor's evaluation -> its retraining request -> v2 -> the gate -> the scorer serving the champion."""
    from clinops_devstack import history

    s = StackSettings()
    conns = s.connections()
    d = Demo(s, conns, datetime.now(UTC).strftime("%m%d%H%M%S"))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that `finally` stops what the demo started
    forget_online_features(conns)
    try:
        kube.kubectl(s, "apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "charts/clinops/crds"))
        kube.kubectl(s, "create", "namespace", d.namespace)
        d.say(f"CRDs installed; namespace {d.namespace}; lake bucket {d.bucket}; logs in {d.logs}")
        end, cut, streamed = generate(
            d,
            patients=patients,
            days=days,
            switch_days=switch_days,
            hazard_factor=hazard_factor,
            streamed_hours=streamed_hours,
            vitals_interval=vitals_interval,
        )
        # The last --late-hours arrive after champion v1 and its predictions: the retraining run then
        # learns from outcomes the first run had not seen (without them it would train the same model).
        late_at = max(cut, end - timedelta(hours=late_hours))
        early, late = history.split(streamed, late_at)
        sent = stream(d, early, late_at, cut)
        d.start("operator", _python("-m", "clinops_operator", "run", "--standalone", "--plain-logs",
                                     "--executor", "local", "-n", d.namespace),
                CLINOPS_OPERATOR_LOCAL_STATE_DIR=str(REPO_ROOT / ".local/operator"),
                CLINOPS_OPERATOR_LOCAL_LOG_DIR=str(d.logs / "stages"),
                CLINOPS_TRAINER_BOOTSTRAP_SAMPLES="200")  # fmt: skip
        kube.kubectl(s, "apply", "-f", "-", stdin=yaml.safe_dump(pipeline_body(d)))
        d.say(f"operator (local executor) started; FeaturePipeline {d.namespace}/{NAME} applied: its ingest and "
              "streaming featurizer start")  # fmt: skip
        wait_ingested(d, sent)
        kube.kubectl(s, "annotate", "fp", NAME, "-n", d.namespace, "clinops.io/run-now=first")
        st = follow_run(d, "manual", timeout_s=run_timeout)
        champ = st.get("champion") or {}
        if not champ:
            raise typer.Exit(d.fail(f"no champion after the first run: {st.get('lastTraining')}"))
        score(d, end - timedelta(days=days - 1), end)
        if late:
            sent += stream(d, late, end, late_at, late=True)
            wait_ingested(d, sent)
        ev = evaluate(d, end)
        if ev["requested"]:
            st = follow_run(d, "retrain", timeout_s=run_timeout)
            req = st.get("lastRetrainRequest") or {}
            lt = st.get("lastTraining") or {}
            verdict = "promoted" if lt.get("promoted") else "refused"
            d.note(f"retraining run {req.get('runId')} for evaluation {req.get('evaluation')}: version "
                   f"{lt.get('version')} {verdict}: {'; '.join(lt.get('gateReasons') or [])}")  # fmt: skip
        champ = d.status().get("champion") or {}
        served = wait_served(d, str(champ.get("version")))
        d.note(f"scorer: serving {d.model} version {served} (the champion: version {champ.get('version')})")
        # Live requests once the last run materialized the whole history: version 1's features end where
        # the late hours begin, hours older than the views' TTL, and the scorer refuses stale features (409).
        live_predictions(d, live)
    finally:
        d.stop_all()
        print_summary(d)
    kc = kube.admin_kubeconfig(s)
    typer.echo(f"""
==> where to look
  export KUBECONFIG={kc}
  kubectl get fp -n {d.namespace}            # phase, champion, AUROC, last run
  kubectl describe fp {NAME} -n {d.namespace}  # last run of each stage, lastRetrainRequest, lastTraining
  MLflow UI:   {conns.mlflow_tracking_uri}/#/models/{d.model}
  Prometheus:  {s.url(s.ports.prometheus)}/graph  (e.g. clinops_monitor_auroc, bentoml_service_request_total)
  audit table: {AUDIT_QUERY}
  logs:        {d.logs}""")


def print_summary(d: Demo) -> None:
    """What the demo showed, its time and CPU (also after a failure: how far it got)."""
    elapsed = time.monotonic() - d.t0
    typer.echo("\n==> summary")
    for line in d.summary:
        typer.echo(f"  - {line}")
    typer.echo(f"  - demo time: {elapsed / 60:.1f} min; load average "
               f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min)")  # fmt: skip
    typer.echo(f"  - CPU: {cpu_summary(d)}")


def cpu_summary(d: Demo) -> str:
    """CPU seconds by part, each from a recorder (a process tree's user + system time) or the demo's own."""
    services = {}
    for svc in ("ingest", "stream"):
        with contextlib.suppress(OSError, ValueError):
            services[svc] = float((REPO_ROOT / ".local/operator" / d.namespace / f"{NAME}-{svc}" / "cpu").read_text())
    # The operator's recorder counts the operator and every stage and child it started (it reaps them).
    tree = d.cpu_of("operator")
    operator = None if tree is None else max(0.0, tree - d.stage_cpu_s - sum(services.values()))
    scorer = d.cpu_of("scorer")
    demo_self = _self_cpu()
    steps = {**d.own_cpu, "scorer server": scorer or 0.0, "the demo process (polling, checks)": 0.0}
    own = d.own_cpu.get("generate", 0.0) + d.own_cpu.get("produce", 0.0)  # in-process: inside demo_self
    steps["the demo process (polling, checks)"] = max(0.0, demo_self - own)
    total = demo_self + sum(v for k, v in d.own_cpu.items() if k not in ("generate", "produce")) + (scorer or 0.0)
    total += tree or 0.0
    parts = [f"{total:.0f} s in all", f"pipeline stages {d.stage_cpu_s:.0f} s"]
    parts += [f"{svc} child {v:.0f} s" for svc, v in services.items()]
    parts.append(f"operator {operator:.0f} s" if operator is not None else "operator n/a")
    parts += [f"{k} {v:.0f} s" for k, v in steps.items()]
    return "; ".join(parts)


def wait_served(d: Demo, version: str, timeout_s: float = 60) -> str:
    """The version the running scorer answers with, once it follows the alias to ``version``."""
    url = f"http://127.0.0.1:{SCORER_PORT}/predict"
    deadline, seen = time.monotonic() + timeout_s, "?"
    while time.monotonic() < deadline:
        try:
            r = httpx.post(url, json={"patient_id": "PT00001"}, timeout=5)
            if r.status_code == 200:
                seen = str(r.json()["model_version"])
                if seen == version:
                    return seen
        except httpx.HTTPError:
            pass
        time.sleep(2)
    return seen


if __name__ == "__main__":
    app()
