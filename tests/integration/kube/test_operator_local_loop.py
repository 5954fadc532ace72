"""The whole loop on the local control plane with the local executor and the real stack, small data.

One FeaturePipeline is applied; the operator (``python -m clinops_operator run --executor local``,
a child process with the chart's ServiceAccount token) runs processor -> featurizer -> materializer
-> trainer as local processes against the harness's MinIO, Redis, PostgreSQL and MLflow: the older
days of a generated cohort written to silver as the lifecycle demo does, the last hours through
Kafka, ingest and bronze. The trainer registers version 1 and status.champion says so; the scorer's
batch command scores the past days with it into ``predictions``; the monitor's evaluate command then
labels them, evaluates the champion over its window and, since the pipeline's AUROC floor (0.95, set
above what any model reaches on this data) is above the whole interval, writes
``clinops.io/retrain-requested`` itself; exactly one retraining run follows and registers version 2
(with no new bronze since the first run, its featurizer reuses the first run's snapshot).
The operator is SIGKILLed at three points (processor running, trainer running, retraining run
started) and restarted each time: no stage starts twice (one state directory and one command line
per child), no run registers two versions, the loop completes. A second pipeline whose lake bucket
does not exist fails at the processor with that stage and reason in its condition; once fixed, its
next run starts normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import example_body, wait_for
from mlflow.tracking import MlflowClient

from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.sinks import produce, upload
from clinops_devstack import history

PIPELINE = "loop"
BROKEN = "loop-broken"
# The trainer's time split needs labelled days and adverse events in each part (a day is purged
# between parts): 80 patients x 5 days left a test part of 560 rows with 17 positives. 150 patients x
# 8 days with hourly vitals: 240k events, 121 adverse events, a test part of 3,600 rows (split 60/20/20).
PATIENTS, DAYS, VITALS_EVERY_MIN = 150, 8, 60
AUROC_FLOOR = 0.95  # the monitor's: above the whole interval of any model's AUROC on this data
# How long each part of the loop may take (a run's stages on 2 cores); longer on a loaded machine.
WAIT_S = float(os.environ.get("CLINOPS_LOOP_WAIT_S", "1200"))
LOGS_ROOT = Path(__file__).resolve().parents[3] / ".local" / "test-loop"


@dataclass
class World:
    cluster: Any
    namespace: str
    conns: Connections
    env: dict[str, str]
    state: Path
    logs: Path
    log: Path
    model: str
    end: datetime  # the end of the generated history (this hour)


def _stage_env(conns: Connections, stack: Any) -> dict[str, str]:
    return {
        **os.environ,  # KUBECONFIG (the operator's token), the fast CLINOPS_OPERATOR_* settings
        **conns.as_env(),  # the local executor resolves the spec's secret references from these
        # Both cores: the ingest and stream children and the operator are idle while a Spark stage runs
        # (the featurize stage on this cohort's size: 124 s at local[1] in one run by hand, 82 s at local[2]
        # in make bench-featurize; README: the featurizer's CPU).
        "CLINOPS_SPARK_MASTER": "local[2]",
        "CLINOPS_SPARK_JARS_DIR": str(stack.settings.spark_jars_dir()),
        "CLINOPS_TRAINER_BOOTSTRAP_SAMPLES": "200",
        "CLINOPS_TRAINER_THREADS": "1",
        "JAVA_TOOL_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",  # short Spark JVMs: less CPU
    }


def _ingest(conns: Connections, env: dict[str, str], tmp: Path) -> datetime:
    """Generate a cohort; write its older days to silver as the demo does, stream the last hours.

    The point-in-time join's leakage guard keeps only feature rows created at or before each training
    row's time: a week of history sent through Kafka now would be created now, and every feature of every
    training row would be missing (the model then learns nothing: test AUROC 0.49 beside an oracle's 0.78).
    So the days before the last UTC midnight at least 6 hours back go straight to silver, stamped as
    ingested when they were sent (``clinops_devstack.history``, the processor's own rules in one Spark
    job), and the rest goes through Kafka, ingest and bronze to the pipeline's processor."""
    start = (datetime.now(UTC) - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    cfg = GeneratorConfig(patients=PATIENTS, days=DAYS, seed=13, start=start, vitals_interval_min=VITALS_EVERY_MIN)
    ds = generate(cfg.model_copy(update={"faults": FaultRates.none()}))
    upload(ds, conns)
    written, streamed = history.split(ds.messages, history.split_at(start + timedelta(days=DAYS), 6))
    lines = tmp / "history.ndjson"
    with lines.open("wb") as f:
        f.writelines(history.bronze_lines(written))
    with (tmp / "history.log").open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "clinops_devstack.history", str(lines)],
            env=env, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=600,
        )  # fmt: skip
    lines.unlink()
    prefix = f"loop{uuid.uuid4().hex[:6]}."
    assert asyncio.run(produce(streamed, conns, topic_prefix=prefix)) == len(streamed)
    argv = [sys.executable, "-m", "clinops_ingest", "run", "--idle-exit", "3", "--topic-prefix", prefix]
    argv += ["--group-id", f"{prefix}g"]
    with (tmp / "ingest.log").open("ab") as out:
        subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=300)
    return start + timedelta(days=DAYS)


def _body(namespace: str, name: str, conns: Connections, bucket: str) -> dict[str, Any]:
    body = example_body(namespace)
    body["metadata"] |= {"name": name, "annotations": {"clinops.io/run-now": "first"}}
    spec = body["spec"]
    spec["sources"]["kafka"]["bootstrapServers"] = conns.kafka_bootstrap_servers
    spec["lake"] |= {"endpoint": conns.s3_endpoint_url, "bucket": bucket}
    spec["stores"]["mlflow"] = {"trackingUri": conns.mlflow_tracking_uri}
    # The example's model (pytorch-mlp, its hyperparameters): on these few days the gradient-boosted
    # trees' test AUROC was a coin toss around 0.5 (0.537, then 0.494: the gate refused v1).
    spec["training"] |= {
        "registeredModelName": f"{name}-{uuid.uuid4().hex[:6]}",
        "lookbackDays": 30,
        "split": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "promotionGate": {"minAuroc": 0.5, "mustBeatChampion": False},
    }
    # The monitor asks for retraining when the whole interval of the champion's rolling AUROC is below
    # the floor: 0.95 is above what any model reaches on this data (the oracle's is about 0.7).
    spec["monitoring"] = {**spec.get("monitoring", {}), "aurocFloor": AUROC_FLOOR}
    return body


def _start(w: World) -> subprocess.Popen[bytes]:
    env = {
        **w.env,
        "CLINOPS_OPERATOR_LOCAL_STATE_DIR": str(w.state),
        "CLINOPS_OPERATOR_LOCAL_LOG_DIR": str(w.logs),
    }
    argv = [sys.executable, "-m", "clinops_operator", "run", "--standalone", "--plain-logs", "--executor", "local"]
    with w.log.open("ab") as out:
        return subprocess.Popen(
            [*argv, "-n", w.namespace], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # the operator alone: its stages run in sessions of their own
    proc.wait(timeout=30)


def _status(w: World, name: str = PIPELINE) -> dict[str, Any]:
    return (w.cluster.get("featurepipeline", name, w.namespace) or {}).get("status") or {}


def _stage_running(w: World, run_trigger: str, stage: str, name: str = PIPELINE) -> bool:
    status = _status(w, name)
    _fail_fast(status)
    run = status.get("currentRun") or {}
    return run.get("trigger") == run_trigger and run.get("stage") == stage


def _fail_fast(status: dict[str, Any]) -> None:
    """A failed pipeline ends the test at once, with its condition (which carries the stage log's end)."""
    if status.get("phase") == "Failed":
        cond = next(c for c in status["conditions"] if c["type"] == "Failed")
        failed = [r for r in (status.get("lastRuns") or {}).values() if r.get("state") == "Failed"]
        logs = "".join(f"\n--- end of {log}:\n{_tail(Path(log))}" for log in _logs_named(failed))
        pytest.fail(f"the pipeline failed: {cond['reason']}: {cond['message']}{logs}")


def _logs_named(records: list[dict[str, Any]]) -> list[str]:
    """The stage logs a failed stage's message names (``(log <path>)``)."""
    found = []
    for rec in records:
        msg = str(rec.get("message", ""))
        if "(log " in msg:
            found.append(msg.split("(log ", 1)[1].split(")", 1)[0])
    return found


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"(unreadable: {err})"


def _ready(w: World) -> bool:
    status = _status(w)
    _fail_fast(status)
    return status.get("phase") == "Ready" and not status.get("currentRun")


@pytest.fixture(scope="module")
def world(
    cluster: Any, kafka: Connections, s3: Connections, redis_url: str, database_url: str, mlflow_url: str, stack: Any,
) -> Iterator[World]:  # fmt: skip
    # The operator's and the stages' logs are kept under .local/test-loop/ (the pytest basetemp of a
    # machine that runs other tests meanwhile is rotated away before anyone reads them).
    tmp = LOGS_ROOT / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    tmp.mkdir(parents=True)
    bucket = f"loop-{uuid.uuid4().hex[:8]}"
    create_lake_bucket(s3_client(s3), bucket)  # object lock: ingest writes bronze immutably
    conns = kafka.model_copy(update={"lake_bucket": bucket})
    env = _stage_env(conns, stack)
    namespace = f"loop-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    log = tmp / "operator.log"
    end = _ingest(conns, env, tmp)
    body = _body(namespace, PIPELINE, conns, bucket)
    w = World(
        cluster,
        namespace,
        conns,
        env,
        tmp / "state",
        tmp / "logs",
        log,
        body["spec"]["training"]["registeredModelName"],
        end,
    )
    w.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    yield w
    _stop_stages(w.state)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _stop_stages(state: Path) -> None:
    """Stages outlive the operator by design: stop any a failed test left running (its recorder's group)."""
    for pid_file in state.glob("*/*/pid"):
        if not (pid_file.parent / "exit").exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def _command(w: World, name: str, *args: str) -> str:
    """Run ``python -m <args>`` with the stages' environment; its stdout (the log beside the stages')."""
    log = w.logs / f"{name}.log"
    with log.open("ab") as err:
        proc = subprocess.run(
            [sys.executable, "-m", *args], env=w.env, stdout=subprocess.PIPE, stderr=err, timeout=600, check=False
        )
    out = proc.stdout.decode()
    (w.logs / f"{name}.out").write_text(out)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{out[-2000:]}\n{_tail(log)}"
    return out


def _score_and_evaluate(w: World) -> dict[str, Any]:
    """The champion scores the past days (the scorer's batch command, rows into predictions); the
    monitor's evaluate command labels them and evaluates the champion as of the end of the history."""
    out = _command(w, "scorer-batch", "clinops_scorer", "batch", "--model-name", w.model,
                   "--start", (w.end - timedelta(days=DAYS - 1)).isoformat(), "--end", w.end.isoformat())  # fmt: skip
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert int(facts["written"]) >= 1000, out  # most past (patient, hour) rows had features
    out = _command(w, "monitor-evaluate", "clinops_monitor", "evaluate", "--pipeline", PIPELINE,
                   "--namespace", w.namespace, "--as-of", w.end.isoformat())  # fmt: skip
    ev: dict[str, Any] = json.loads(out)  # its stdout is the document (its log goes to stderr)
    return ev


@pytest.mark.timeout(int(3 * WAIT_S + 600))
def test_one_apply_gives_a_champion_then_a_retraining_request_gives_one_more_version_through_three_sigkills(
    world: World,
) -> None:
    w = world
    op = _start(w)
    try:
        wait_for("the processor to run", lambda: _stage_running(w, "manual", "processor"), timeout_s=120)
        _kill(op)  # 1: a stage running
        op = _start(w)
        wait_for("the trainer to run", lambda: _stage_running(w, "manual", "trainer"), timeout_s=WAIT_S, every_s=1)
        _kill(op)  # 2: the trainer running
        op = _start(w)
        wait_for("champion v1", lambda: _ready(w), timeout_s=WAIT_S, every_s=1)
        first = _status(w)
        assert first["champion"]["version"] == "1", first
        assert first["champion"]["metrics"]["auroc"] >= 0.5
        assert first["lastTraining"]["promoted"] is True

        ev = _score_and_evaluate(w)
        perf = ev["performance"][str(ev["champion"])]
        assert ev["champion"] == "1", ev
        assert perf["status"] == "ok", perf
        assert perf["labelled"] >= 200, perf  # the pipeline's minOutcomes
        assert perf["events"] > 0, perf
        assert perf["auroc"]["upper"] < AUROC_FLOOR, perf
        assert ev["requested"] is True, ev
        assert "auroc_below_floor" in ev["reasons"], ev
        value = ev["request"]  # the annotation's value the monitor wrote
        wait_for("the retraining run", lambda: (_status(w).get("currentRun") or {}).get("trigger") == "retrain")
        _kill(op)  # 3: just after the retraining run started
        op = _start(w)
        wait_for("the retraining run to end", lambda: _ready(w), timeout_s=WAIT_S, every_s=1)
    finally:
        if op.poll() is None:
            op.send_signal(signal.SIGTERM)
            op.wait(timeout=60)
    status = _status(w)
    tail = w.log.read_text()[-3000:]
    assert status["phase"] == "Ready", (status, tail)
    request = status["lastRetrainRequest"]
    assert request["value"] == value
    assert request["evaluation"] == ev["evaluation"], request
    assert request["reason"].split(",") == ev["reasons"], request
    assert status["champion"]["version"] == "2"
    assert status["champion"]["runId"] == request["runId"] == status["lastTraining"]["runId"]
    # Nothing new reached bronze between the runs, so the retraining run's featurizer found the inputs of
    # the first run's snapshot unchanged and reused it (were there new bronze, it must have made another).
    proc, feat = (status["lastRuns"][s]["result"] for s in ("processor", "featurizer"))
    first_snapshot = first["lastRuns"]["featurizer"]["result"]["snapshot_id"]
    assert first["lastRuns"]["featurizer"]["result"]["reused"] is False
    assert (feat["reused"], feat["snapshot_id"] == first_snapshot) == (
        (True, True) if proc["new_objects"] == 0 else (False, False)
    ), (proc, feat)

    # Every child started exactly once: one state directory and one command line each.
    first_run, retrain_run = first["lastRuns"]["trainer"]["runId"], request["runId"]
    # The long-running children (ingest, the streaming featurizer) were started once too: each
    # restarted operator found them running and left them alone.
    children = sorted(p.name for p in (w.state / w.namespace).iterdir())
    expected = sorted(f"{PIPELINE}-{s}-{r}" for r in (first_run, retrain_run) for s in ("proc", "feat", "mat", "train"))
    assert children == sorted([*expected, f"{PIPELINE}-ingest", f"{PIPELINE}-stream"])
    for svc in ("ingest", "stream"):
        assert (w.state / w.namespace / f"{PIPELINE}-{svc}" / "restarts").read_text() == "0", svc
    for child in children:
        lines = (w.logs / w.namespace / f"{child}.log").read_text().splitlines()
        assert sum(ln.startswith(f"$ {sys.executable} ") for ln in lines) == 1, child

    # One registered version per run, each tagged with its run.
    versions = MlflowClient(w.conns.mlflow_tracking_uri).search_model_versions(f"name='{w.model}'")
    by_run = sorted((v.version, v.tags.get("clinops.run_id")) for v in versions)
    assert by_run == [("1", first_run), ("2", retrain_run)]
    assert MlflowClient(w.conns.mlflow_tracking_uri).get_model_version_by_alias(w.model, "champion").version == "2"


@pytest.mark.timeout(900)
def test_a_failing_stage_names_itself_and_its_reason_and_the_next_run_starts(world: World) -> None:
    w = world
    body = _body(w.namespace, BROKEN, w.conns, "no-such-bucket-here")
    w.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    op = _start(w)
    try:
        wait_for("the failure", lambda: _status(w, BROKEN).get("phase") == "Failed", timeout_s=300, every_s=1)
        failed = next(c for c in _status(w, BROKEN)["conditions"] if c["type"] == "Failed")
        assert failed["status"] == "True"
        assert failed["reason"] == "ProcessFailed"
        assert failed["message"].startswith(f"processor SparkApplication {BROKEN}-proc-"), failed
        assert "exit status" in failed["message"], failed
        assert _status(w, BROKEN)["lastRuns"]["processor"]["state"] == "Failed"

        body["spec"]["lake"]["bucket"] = w.conns.lake_bucket
        body["metadata"]["annotations"]["clinops.io/run-now"] = "second"
        w.cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
        wait_for(
            "the next run's processor to succeed",
            lambda: (_status(w, BROKEN).get("lastRuns") or {}).get("featurizer", {}).get("state") == "Running",
            timeout_s=300,
            every_s=1,
        )
        run = _status(w, BROKEN)["currentRun"]
        assert run["trigger"] == "manual"
        assert _status(w, BROKEN)["phase"] == "Featurizing"
        # Each run has its own processor child: the failed one was not started again.
        procs = [p.name for p in (w.state / w.namespace).iterdir() if p.name.startswith(f"{BROKEN}-proc-")]
        assert len(procs) == 2
        # Deleting the pipeline stops its running stage (the cleanup handler) and forgets its children.
        w.cluster.kubectl("delete", "featurepipeline", BROKEN, "-n", w.namespace, "--wait=true", "--timeout=60s")
        assert not [p for p in (w.state / w.namespace).iterdir() if p.name.startswith(f"{BROKEN}-")]
    finally:
        op.send_signal(signal.SIGTERM)
        op.wait(timeout=60)
