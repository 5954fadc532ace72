"""Start, stop and inspect the local stack's processes.

Each component runs in its own session (so it outlives the command that started it, and a signal to
its process group reaches its children) with its output in ``<home>/logs/<name>.log``. A pid file in
``<home>/run/`` records the pid and the kernel's start time of that pid, so ``stop`` signals exactly
the process ``start`` launched and never a stranger that reused the pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from clinops_devstack.components import Component
from clinops_devstack.settings import StackSettings

STOP_SIGNALS = {"postgres": signal.SIGINT}  # SIGINT is PostgreSQL's "fast" shutdown
Say = Callable[[str], None]


class StartError(RuntimeError):
    """A component did not become ready; the message carries the end of its log."""


@dataclass(frozen=True)
class Status:
    name: str
    pid: int | None
    healthy: bool
    url: str

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def log_path(s: StackSettings, name: str) -> Path:
    return s.home / "logs" / f"{name}.log"


def _pid_path(s: StackSettings, name: str) -> Path:
    return s.home / "run" / f"{name}.pid"


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def running_pid(s: StackSettings, name: str) -> int | None:
    """The pid of the process we started for ``name`` if it still runs, else None."""
    path = _pid_path(s, name)
    try:
        pid_text, started = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if _start_time(pid) != started:
        path.unlink(missing_ok=True)  # stale: the process is gone (or the pid was reused)
        return None
    return pid


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(s: StackSettings, comp: Component, say: Say = print) -> None:
    """Start ``comp`` unless it already runs, wait until it is ready, then provision it."""
    if running_pid(s, comp.name) is not None:
        _wait_ready(s, comp)
        say(f"{comp.name}: already running")
    else:
        for sub in ("logs", "run"):
            (s.home / sub).mkdir(parents=True, exist_ok=True)
        if comp.prepare:
            comp.prepare()
        log = log_path(s, comp.name)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                comp.argv,
                env={**os.environ, **comp.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=comp.user,
                group=comp.user,
                cwd=s.home,
            )
        _pid_path(s, comp.name).write_text(f"{proc.pid} {_start_time(proc.pid)}\n")
        t0 = time.monotonic()
        _wait_ready(s, comp, proc)
        say(f"{comp.name}: started in {time.monotonic() - t0:.1f}s, pid {proc.pid}")
    if comp.provision:
        comp.provision()


def _wait_ready(s: StackSettings, comp: Component, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + s.start_timeout_s
    delay = 0.1
    while time.monotonic() < deadline:
        if comp.ready():
            return
        if proc is not None and proc.poll() is not None:
            _pid_path(s, comp.name).unlink(missing_ok=True)
            raise StartError(
                f"{comp.name} exited with code {proc.returncode} before it was ready. "
                f"End of {log_path(s, comp.name)}:\n{_tail(log_path(s, comp.name))}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise StartError(
        f"{comp.name} was not ready after {s.start_timeout_s:.0f}s at {comp.url}. "
        f"End of {log_path(s, comp.name)}:\n{_tail(log_path(s, comp.name))}"
    )


def stop(s: StackSettings, name: str, say: Say = print, timeout_s: float = 45.0) -> None:
    """Stop the process group we started for ``name``; SIGKILL it if it lingers."""
    pid = running_pid(s, name)
    if pid is None:
        say(f"{name}: not running")
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, STOP_SIGNALS.get(name, signal.SIGTERM))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.1)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        say(f"{name}: did not stop in {timeout_s:.0f}s, killed")
    else:
        say(f"{name}: stopped")
    _pid_path(s, name).unlink(missing_ok=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # A zombie leader still counts for killpg: reap it if it is our child.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    return any(_pgid_of(p) == pgid for p in _all_pids())


def _all_pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def _pgid_of(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[2]) if fields[0] != "Z" else None


def status(s: StackSettings, comp: Component) -> Status:
    pid = running_pid(s, comp.name)
    return Status(comp.name, pid, pid is not None and comp.ready(), comp.url)
