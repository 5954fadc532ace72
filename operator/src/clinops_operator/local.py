"""The local executor: each stage's rendered command as a process on this machine.

The same ``StageTask`` a pod gets: the same argv (``python -m <package> <stage> --...``) and the same
``CLINOPS_*`` environment (the spec's plain values; each secret reference resolved from the
operator's own environment, under the variable name the pod would get, since a local process has
no Secret to mount). Spark stages run with ``CLINOPS_SPARK_MASTER`` (e.g. ``local[2]``) passed
through from the operator's environment.

Start, observe and delete have the Kubernetes executor's semantics, and survive a SIGKILL of the
operator: a stage's state directory ``<state dir>/<namespace>/<child name>/`` is created with an
atomic ``mkdir`` before anything starts (a second start of the same child finds it and starts
nothing, as a 409 does on a cluster), and the stage runs under ``clinops_operator.recorder``, in a
session of its own, which records the stage's exit status in that directory. A restarted operator
therefore reads how a stage it started before ended, or sees it still running (the recorder's pid
is alive), and never starts it twice. A stage whose recorder died without an exit status (the
machine restarted) is Failed with reason ``ProcessLost``; it is not started again by this run.
Each stage's output goes to ``<log dir>/<namespace>/<child name>.log``.

A pipeline's long-running children (ingest, the streaming featurizer: ``core.services``) run the same
way, under the recorder in a state directory of their own, and ``ensure_service`` (each reconcile)
starts one again when its recorder has recorded an exit or is gone. ``delete_all`` stops both kinds
(SIGTERM to the recorder's process group, which passes it on) and removes their directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from clinops_operator.core.render import ChildState
from clinops_operator.core.services import ServiceTask
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import StageTask
from clinops_operator.errors import PermanentError
from clinops_operator.recorder import CHILD_PID, EXIT, PID

TASK = "task.json"
# What a local stage inherits from the operator besides the rendered variables: the machine's basics
# and the settings that say where a stage runs here (Spark master, jar folder, JVM options, caches).
PASS = (
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME", "JAVA_TOOL_OPTIONS", "VIRTUAL_ENV", "PYTHONPATH",
    "SPARK_LOCAL_IP",
)  # fmt: skip
PASS_PREFIXES = (
    "CLINOPS_SPARK_",
    "CLINOPS_TRAINER_",
    "CLINOPS_FEATURIZER_",
    "CLINOPS_PROCESSOR_",
    "CLINOPS_INGEST_",
    "CLINOPS_STREAM_",
)
RESTARTS = "restarts"
STOP_WAIT_S = 10.0  # delete_all: how long a stopped recorder may take to record its exit
LOG_TAIL_LINES = 12  # a failed stage's condition carries the end of its log: the error and what led to it
LOG_TAIL_CHARS = 2000


def stage_env(task: StageTask | ServiceTask, environ: Mapping[str, str]) -> dict[str, str]:
    """The process environment of ``task``: what a pod gets, secrets resolved from ``environ``."""
    missing = [s.env for s in task.secret_env if not environ.get(s.env)]
    if missing:
        what = task.stage.value if isinstance(task, StageTask) else task.component
        raise PermanentError(
            f"{what} needs {', '.join(missing)} in the operator's environment "
            '(the local executor resolves the spec\'s secret references from it; `eval "$(make env)"`)',
            reason="MissingCredential",
        )
    passed = {k: v for k, v in environ.items() if k in PASS or k.startswith(PASS_PREFIXES)}
    return {**passed, **dict(task.env), **{s.env: environ[s.env] for s in task.secret_env}}


def command(task: StageTask) -> list[str]:
    """The argv a Job's container runs (``python -m <package> <args>``), with this interpreter."""
    return [sys.executable, "-m", task.stage.package, *task.args]


def service_command(task: ServiceTask) -> list[str]:
    """The argv a long-running child's container runs (``python -m <module> <args>``), with this interpreter."""
    return [sys.executable, "-m", task.module, *task.args]


def _alive(pid: int, marker: str) -> bool:
    """True when ``pid`` runs (not a zombie) and is the recorder of ``marker`` (not a reused pid)."""
    proc = Path(f"/proc/{pid}")
    try:
        if marker not in proc.joinpath("cmdline").read_bytes().decode(errors="replace"):
            return False
        stat = proc.joinpath("stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "Z"


def _wait_gone(pid: int, marker: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.05)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def log_tail(log: Path, lines: int = LOG_TAIL_LINES, limit: int = LOG_TAIL_CHARS) -> str:
    """The last ``lines`` non-empty lines of ``log``, joined with `` | ``; at most ``limit`` characters (the end)."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 16384))
            kept = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    text = " | ".join(kept[-lines:])
    return text if len(text) <= limit else "..." + text[-limit:]


class LocalExecutor:
    """Stage tasks as supervised local processes (see the module's docstring)."""

    def __init__(
        self,
        state_dir: Path,
        log_dir: Path,
        *,
        environ: Mapping[str, str] | None = None,
        start_grace_s: float = 30.0,
        argv: Callable[[StageTask], list[str]] = command,
        service_argv: Callable[[ServiceTask], list[str]] = service_command,
        service_backoff_s: float = 5.0,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.log_dir = log_dir.resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.start_grace_s = start_grace_s
        self.argv = argv
        self.service_argv = service_argv
        self.service_backoff_s = service_backoff_s
        self._started: dict[str, subprocess.Popen[bytes]] = {}  # reaped in observe (no zombies)

    def _dir(self, namespace: str, name: str) -> Path:
        return self.state_dir / namespace / name

    def log_path(self, task: StageTask) -> Path:
        return self.log_dir / task.namespace / f"{task.name}.log"

    def start(self, task: StageTask, pipeline: Pipeline) -> bool:
        env = stage_env(task, self.environ)
        state = self._dir(task.namespace, task.name)
        state.parent.mkdir(parents=True, exist_ok=True)
        try:
            state.mkdir()  # the claim: atomic, so a second start (a restart, a retried handler) starts nothing
        except FileExistsError:
            return False
        argv = self.argv(task)
        doc = {"pipeline": pipeline.name, "uid": pipeline.uid, "stage": task.stage.value, "run": task.run_id}
        (state / TASK).write_text(json.dumps({**doc, "argv": argv}))
        self._started[task.name] = self._spawn(state, argv, env, self.log_path(task))
        return True

    def _spawn(self, state: Path, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            return subprocess.Popen(
                [sys.executable, "-m", "clinops_operator.recorder", str(state), "--", *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the operator; its own process group for delete_all
            )

    def ensure_service(self, task: ServiceTask, pipeline: Pipeline) -> bool:
        """Start the long-running child unless its recorder runs; a dead one is started again.

        Its state directory is ``<state dir>/<namespace>/<name>/`` like a stage's; ``restarts``
        counts the starts after the first; one that keeps dying waits ``backoff`` before each new
        start. A restarted operator finds a running child by its recorder's pid and leaves it alone."""
        env = stage_env(task, self.environ)
        state = self._dir(task.namespace, task.name)
        state.mkdir(parents=True, exist_ok=True)
        if (proc := self._started.get(task.name)) is not None and proc.poll() is not None:
            del self._started[task.name]
        pid = _read_int(state / PID)
        if pid is not None and not (state / EXIT).exists() and _alive(pid, str(state)):
            return False
        task_file = state / TASK
        if pid is None and task_file.exists() and time.time() - task_file.stat().st_mtime < self.start_grace_s:
            return False  # started a moment ago: the recorder has not written its pid yet
        restarts = _read_int(state / RESTARTS) or 0
        exited = state / EXIT
        if exited.exists() and time.time() - exited.stat().st_mtime < self.backoff(restarts):
            return False  # one that keeps dying is started again less and less often
        starts = restarts + 1 if task_file.exists() else 0
        for name in (PID, CHILD_PID, EXIT):
            (state / name).unlink(missing_ok=True)
        argv = self.service_argv(task)
        doc = {"pipeline": pipeline.name, "uid": pipeline.uid, "service": task.component, "argv": argv}
        task_file.write_text(json.dumps(doc))
        (state / RESTARTS).write_text(str(starts))
        self._started[task.name] = self._spawn(state, argv, env, self.log_dir / task.namespace / f"{task.name}.log")
        return True

    def backoff(self, restarts: int) -> float:
        """Seconds between a long-running child's death and its next start: doubling, at most 5 minutes."""
        return min(300.0, self.service_backoff_s * float(2 ** min(restarts, 16)))

    def observe(self, task: StageTask) -> ChildState | None:
        if (proc := self._started.get(task.name)) is not None and proc.poll() is not None:
            del self._started[task.name]
        state = self._dir(task.namespace, task.name)
        if not state.is_dir():
            return None
        code = _read_int(state / EXIT)
        log = self.log_path(task)
        if code == 0:
            return ChildState("Succeeded", "ProcessExited")
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            tail = log_tail(log)
            return ChildState("Failed", "ProcessFailed", f"{how} (log {log}){'; its end: ' + tail if tail else ''}")
        pid = _read_int(state / PID)
        if pid is not None and _alive(pid, str(state)):
            return ChildState("Running", "ProcessRunning")
        if pid is None and time.time() - state.stat().st_mtime < self.start_grace_s:
            return ChildState("Running", "ProcessStarting")
        return ChildState(
            "Failed",
            "ProcessLost",
            f"the stage's process ended without recording an exit status (log {log})",
        )

    def delete_all(self, pipeline: Pipeline) -> int:
        folder = self.state_dir / pipeline.namespace
        deleted = 0
        for task_file in sorted(folder.glob(f"*/{TASK}")) if folder.is_dir() else []:
            try:
                doc = json.loads(task_file.read_text())
            except (OSError, ValueError):
                continue
            if doc.get("pipeline") != pipeline.name:
                continue
            state = task_file.parent
            pid = _read_int(state / PID)
            if pid is not None and not (state / EXIT).exists() and _alive(pid, str(state)):
                with contextlib.suppress(ProcessLookupError):  # the recorder leads its group: the stage too
                    os.killpg(pid, signal.SIGTERM)
                _wait_gone(pid, str(state), STOP_WAIT_S)  # its last write (the exit status) before the folder goes
            shutil.rmtree(state, ignore_errors=True)
            deleted += 1
        return deleted
