"""The local executor's start / observe / delete on real processes (the stage command is a short
Python one-liner here; tests/integration/kube runs the real stage commands through it)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from clinops_operator.core import stages
from clinops_operator.core.render import ChildState
from clinops_operator.core.spec import Pipeline
from clinops_operator.errors import PermanentError
from clinops_operator.local import LocalExecutor, stage_env
from clinops_operator.recorder import PID

REPO = Path(__file__).resolve().parents[3]
SECRETS = {
    "CLINOPS_S3_ACCESS_KEY": "ak",
    "CLINOPS_S3_SECRET_KEY": "sk",
    "CLINOPS_REDIS_URL": "redis://x",
    "CLINOPS_DATABASE_URL": "postgresql://x",
}


def pipeline() -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "u1"}
    return Pipeline.from_body(body)


def python(code: str) -> Callable[[stages.StageTask], list[str]]:
    return lambda _t: [sys.executable, "-c", code]


def executor(tmp: Path, code: str, **kw: float) -> LocalExecutor:
    env = {"PATH": os.environ["PATH"], **SECRETS}
    return LocalExecutor(tmp / "state", tmp / "logs", environ=env, argv=python(code), **kw)


def wait(ex: LocalExecutor, t: stages.StageTask, state: str, timeout_s: float = 20, reason: str = "") -> ChildState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = ex.observe(t)
        if seen is not None and seen.state == state and reason in seen.reason:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{t.name} not {state}: {ex.observe(t)}")


def test_a_stage_runs_once_and_reports_success(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.PROCESSOR, "m1")
    ex = executor(tmp_path, "import os,time; print('hello', os.environ['CLINOPS_LAKE_BUCKET']); time.sleep(0.5)")
    assert ex.observe(t) is None
    assert ex.start(t, p) is True
    assert ex.start(t, p) is False  # a second start of the same child starts nothing
    assert ex.observe(t) in (ChildState("Running", "ProcessRunning"), ChildState("Running", "ProcessStarting"))
    assert wait(ex, t, "Succeeded") == ChildState("Succeeded", "ProcessExited")
    log = ex.log_path(t).read_text()
    assert "hello lake" in log  # the rendered environment reached the process
    assert log.count("$ ") == 1


def test_a_failing_stage_says_its_exit_status_and_the_end_of_its_log(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.TRAINER, "m1")
    code = "import sys; print('\\n'.join(f'step {i}' for i in range(40))); print('train failed: no labelled rows')"
    ex = executor(tmp_path, code + "; print('mlflow: run ended', flush=True); sys.exit(1)")
    ex.start(t, p)
    failed = wait(ex, t, "Failed")
    assert failed.reason == "ProcessFailed"
    assert "exit status 1" in failed.message
    # Not only the last line: the error a few lines before it (a library's exit message after it).
    assert "train failed: no labelled rows | mlflow: run ended" in failed.message
    assert "step 39" in failed.message
    assert "step 20" not in failed.message  # the end of the log, not all of it


def test_a_restarted_executor_finds_the_running_stage_and_its_end(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.FEATURIZER, "m1")
    first = executor(tmp_path, "import time; time.sleep(1.5)")
    first.start(t, p)
    wait(first, t, "Running", reason="ProcessRunning")
    del first  # the operator is gone; the stage is not (its own session)
    second = executor(tmp_path, "import time; time.sleep(1.5)")
    assert second.observe(t) == ChildState("Running", "ProcessRunning")
    assert second.start(t, p) is False
    assert wait(second, t, "Succeeded").reason == "ProcessExited"
    assert ex_log_count(second, t) == 1


def ex_log_count(ex: LocalExecutor, t: stages.StageTask) -> int:
    return ex.log_path(t).read_text().count("$ ")


def test_a_recorder_killed_without_an_exit_status_is_process_lost_not_restarted(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.MATERIALIZER, "m1")
    ex = executor(tmp_path, "import time; time.sleep(30)", start_grace_s=0.5)
    ex.start(t, p)
    wait(ex, t, "Running", reason="ProcessRunning")
    state = tmp_path / "state" / p.namespace / t.name
    os.killpg(int((state / PID).read_text()), signal.SIGKILL)  # the recorder and the stage, no exit status
    lost = wait(ex, t, "Failed")
    assert lost.reason == "ProcessLost"
    assert ex.start(t, p) is False


def test_delete_all_stops_and_forgets_the_pipelines_stages(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.PROCESSOR, "m2")
    ex = executor(tmp_path, "import time; time.sleep(60)")
    ex.start(t, p)
    wait(ex, t, "Running", reason="ProcessRunning")
    pid = int((tmp_path / "state" / p.namespace / t.name / PID).read_text())
    assert ex.delete_all(p) == 1
    assert ex.observe(t) is None
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        ex.observe(t)  # reaps
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_a_missing_credential_is_a_permanent_error_naming_the_variable() -> None:
    t = stages.task(pipeline(), stages.Stage.PROCESSOR, "m1")
    with pytest.raises(PermanentError, match="CLINOPS_REDIS_URL") as err:
        stage_env(t, {k: v for k, v in SECRETS.items() if k != "CLINOPS_REDIS_URL"})
    assert err.value.reason == "MissingCredential"
    env = stage_env(t, {**SECRETS, "CLINOPS_SPARK_MASTER": "local[1]", "AWS_PROFILE": "mine"})
    assert env["CLINOPS_SPARK_MASTER"] == "local[1]"
    assert "AWS_PROFILE" not in env  # only the rendered variables and the machine's basics
    assert env["CLINOPS_S3_ENDPOINT_URL"] == "http://minio.clinops:9000"


def test_the_recorder_records_the_cpu_seconds_a_stage_used_with_what_outlived_it(tmp_path: Path) -> None:
    p = pipeline()
    t = stages.task(p, stages.Stage.FEATURIZER, "m1")
    # The stage leaves a process behind that burns 0.3 s of CPU after the stage has exited (as a
    # Spark JVM outlives its Python for a moment): counted too.
    burn = "import time\\ntime.sleep(0.3)\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"
    ex = executor(tmp_path, f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', '{burn}'])")
    ex.start(t, p)
    wait(ex, t, "Succeeded")
    cpu = float((tmp_path / "state" / p.namespace / t.name / "cpu").read_text())
    assert 0.3 <= cpu < 30
