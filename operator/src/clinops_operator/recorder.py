"""``python -m clinops_operator.recorder <state dir> -- <argv...>``: run one stage, record how it ended.

The local executor starts every stage through this small wrapper, in a session of its own, so the
stage outlives the operator. An orphaned process cannot be waited for by a restarted operator, so
the wrapper is the one that waits: it writes its own pid (``pid``) and the stage's (``child.pid``)
into the state directory first, and the stage's exit status (``exit``, written atomically: a temp
file renamed) when it ends, after the CPU seconds it used (``cpu``: user + system, the stage's own
and its waited-for children's, e.g. a Spark JVM; a figure a loaded machine does not stretch).
SIGTERM and SIGINT are passed on to the stage, which finishes or abandons its work as each stage
does on SIGTERM; the wrapper still records the exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

PID, CHILD_PID, EXIT, CPU = "pid", "child.pid", "exit", "cpu"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m clinops_operator.recorder <state dir> -- <command...>\n")
        return 2
    state, command = Path(argv[0]), argv[2:]
    write_atomically(state / PID, str(os.getpid()))
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
    _, status, usage = os.wait4(child.pid, 0)  # the exit status and the CPU the stage (and what it waited for) used
    code = os.waitstatus_to_exitcode(status)
    try:
        write_atomically(state / CPU, f"{usage.ru_utime + usage.ru_stime:.1f}")
        write_atomically(state / EXIT, str(code))
    except OSError:  # the pipeline was deleted meanwhile (its state directory with it)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
