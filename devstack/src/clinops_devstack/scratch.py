"""A throwaway stack: the named components on free loopback ports in a temporary folder.

The test harness and the benchmarks use it, so what they measure runs on the same definitions
`make up` uses, without touching the developer's stack.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import port_for

from clinops_devstack import components as comps
from clinops_devstack import supervisor
from clinops_devstack.settings import Ports, StackSettings


def free_ports() -> Ports:
    """A distinct free loopback port for every field of ``Ports``."""
    chosen: set[int] = set()
    values: dict[str, int] = {}
    for name in Ports.model_fields:
        values[name] = port_for.select_random(exclude_ports=chosen)
        chosen.add(values[name])
    return Ports(**values)


def scratch_home(prefix: str = "clinops-scratch-") -> Path:
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # the postgres account must reach its data folder when we run as root
    return home


@contextmanager
def scratch_stack(names: list[str], **overrides: Any) -> Iterator[StackSettings]:
    """Start ``names`` (in dependency order) on free ports; stop them and delete their data after."""
    home = scratch_home()
    settings = StackSettings(home=home, ports=free_ports(), **overrides)
    started: list[str] = []
    try:
        for comp in comps.components(settings, names):
            started.append(comp.name)  # first: a process that starts but never gets ready is stopped too
            supervisor.start(settings, comp, say=lambda _msg: None)
        yield settings
    finally:
        for name in reversed(started):
            supervisor.stop(settings, name, say=lambda _msg: None)
        shutil.rmtree(home, ignore_errors=True)
