"""``python -m clinops_operator.recorder <state dir> -- <argv...>``: run one stage, record how it ended.

The local executor starts every stage through this small wrapper, in a session of its own, so the
stage outlives the operator. An orphaned process cannot be waited for by a restarted operator, so
the wrapper is the one that waits: it writes its own pid (``pid``) and the stage's (``child.pid``)
into the state directory first, and the stage's exit status (``exit``, written atomically: a temp
file renamed) when it ends, after the CPU seconds it used (``cpu``: user + system of the stage and
every process under it, a Spark JVM included: the wrapper is their subreaper and reaps them, for at
most 30 s after the stage; a figure a loaded machine does not stretch).
SIGTERM and SIGINT are passed on to the stage, which finishes or abandons its work as each stage
does on SIGTERM; the wrapper still records the exit status.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

PID, CHILD_PID, EXIT, CPU = "pid", "child.pid", "exit", "cpu"
PR_SET_CHILD_SUBREAPER = 36
ORPHAN_WAIT_S = 30.0


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def become_subreaper() -> None:
    """Orphans of the stage (a Spark JVM outlives the Python that started it by a moment) become ours,
    so that their CPU time is counted when we reap them. Linux only; elsewhere nothing changes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap_orphans(timeout_s: float) -> None:
    """Wait for what the stage left behind, at most ``timeout_s`` (a daemon that never ends is left)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m clinops_operator.recorder <state dir> -- <command...>\n")
        return 2
    state, command = Path(argv[0]), argv[2:]
    write_atomically(state / PID, str(os.getpid()))
    become_subreaper()
    try:
        child = subprocess.Popen(command)
    except OSError as err:
        sys.stderr.write(f"cannot start {command[0]}: {err}\n")
        write_atomically(state / EXIT, "127")
        return 127
    write_atomically(state / CHILD_PID, str(child.pid))

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = os.waitstatus_to_exitcode(os.waitpid(child.pid, 0)[1])
    reap_orphans(ORPHAN_WAIT_S)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        write_atomically(state / CPU, f"{usage.ru_utime + usage.ru_stime:.1f}")
        write_atomically(state / EXIT, str(code))
    except OSError:  # the pipeline was deleted meanwhile (its state directory with it)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
