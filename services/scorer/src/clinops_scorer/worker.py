"""Per-worker process tuning, applied once a BentoML worker has built its service.

- ``gc.freeze()`` moves every object alive after start-up (BentoML, pydantic, onnxruntime, MLflow's
  client: hundreds of thousands of objects) into the permanent generation, so the collector's full
  passes scan only what requests allocate since. Unfrozen, a full pass over that heap stalls every
  request in flight for tens of milliseconds: a tail-latency spike no request caused.
  The champion is loaded in a thread that usually finishes after that first freeze, and it imports
  MLflow's client on the way (about 90,000 objects more), so each swap freezes again
  (``freeze_loaded``): left in the collected generations, those objects made each full collection a
  pause of 20 ms on a quiet core and 50-100 ms on the shared machine (``make profile-scorer-tail``,
  ``clinops_scorer_gc_pause_seconds``). Freezing
  moves objects without collecting (no pause); a swapped-out version's objects are still freed by
  reference counting, only its reference cycles stay.
- The GIL switch interval (``CLINOPS_SCORER_GIL_SWITCH_INTERVAL_MS``, default CPython's 5 ms) and
  the young generation's threshold (``CLINOPS_SCORER_GC_THRESHOLD0``): knobs for measuring, left at
  CPython's defaults because neither moved the tail (0.5 ms and 5,000 measured: README, scorer).
- Collections (``gc_pause``): each collection's pause, by generation, for the metrics.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from typing import Any


def settle_heap() -> int:
    """Collect once, then freeze what survives; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_loaded() -> int:
    """Freeze, without a collection, every object alive now (after a model version is loaded)."""
    gc.freeze()
    return gc.get_freeze_count()


def tune(switch_interval_ms: float, gc_threshold0: int | None = None) -> None:
    """The interpreter's settings for a latency-bound worker (see the module's docstring)."""
    sys.setswitchinterval(switch_interval_ms / 1000)
    if gc_threshold0 is not None:
        _, t1, t2 = gc.get_threshold()
        gc.set_threshold(gc_threshold0, t1, t2)


def watch_collections(observe: Callable[[int, float], None]) -> Callable[[str, dict[str, Any]], None]:
    """Call ``observe(generation, seconds)`` after every collection; returns the installed callback."""
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(int(info["generation"]), time.perf_counter() - started[0])

    gc.callbacks.append(callback)
    return callback
