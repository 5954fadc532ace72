"""Synthetic feature rows and entity rows for the point-in-time join's equivalence test and benchmark.

Hourly rows per patient, with the adversarial cases mixed in on purpose: ties on event time (a later
correction of the same step), values backfilled long after their event time, entity rows exactly at
a TTL edge, patients a view has no row for, and duplicate entity rows.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def patient_ids(n: int) -> np.ndarray:
    return np.array([f"PT{i:06d}" for i in range(n)], dtype=object)


def view_rows(
    n_patients: int, hours: int, n_features: int, *, seed: int, coverage: float = 0.9, prefix: str = "f"
) -> pd.DataFrame:
    """Hourly rows for a share (``coverage``) of the patients, with ties and backfills."""
    rng = np.random.default_rng(seed)
    ids = patient_ids(n_patients)
    covered = ids[rng.random(n_patients) < coverage]
    pid = np.repeat(covered, hours)
    step = np.tile(np.arange(hours), len(covered))
    keep = rng.random(len(pid)) < 0.8  # gaps
    pid, step = pid[keep], step[keep]
    event = T0 + pd.to_timedelta(step, unit="h")
    created = event + pd.to_timedelta(rng.integers(0, 300, len(pid)), unit="s")
    backfill = rng.random(len(pid)) < 0.05  # written hours after the step it describes
    created = created.where(~backfill, event + pd.to_timedelta(rng.integers(2, 30, len(pid)), unit="h"))
    frame = pd.DataFrame({"patient_id": pid, "event_timestamp": event, "created_timestamp": created})
    # ties on event time: a second version of 3% of the rows, created later
    ties = frame.sample(frac=0.03, random_state=seed).copy()
    ties["created_timestamp"] = ties["created_timestamp"] + pd.to_timedelta(rng.integers(1, 7200, len(ties)), unit="s")
    frame = pd.concat([frame, ties], ignore_index=True)
    for j in range(n_features):
        frame[f"{prefix}{j}"] = np.round(rng.normal(size=len(frame)), 6)
    return frame.sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)


def entity_rows(
    n_rows: int, n_patients: int, hours: int, *, seed: int, ttl_edges: timedelta | None = None
) -> pd.DataFrame:
    """Entity rows at random times, some exactly on hour steps, some exactly ``ttl_edges`` after one,
    some for patients no view knows, a few duplicated."""
    rng = np.random.default_rng(seed)
    ids = patient_ids(int(n_patients * 1.05) + 1)  # the last 5% have no rows anywhere
    pid = ids[rng.integers(0, len(ids), n_rows)]
    secs = rng.integers(0, (hours + 3) * 3600, n_rows)
    on_step = rng.random(n_rows) < 0.2
    secs = np.where(on_step, (secs // 3600) * 3600, secs)
    if ttl_edges is not None:
        edge = rng.random(n_rows) < 0.1
        secs = np.where(edge, (secs // 3600) * 3600 + int(ttl_edges.total_seconds()), secs)
    ts = T0 + pd.to_timedelta(secs, unit="s")
    frame = pd.DataFrame({"patient_id": pid, "event_timestamp": ts})
    dup = frame.sample(frac=0.01, random_state=seed)
    frame = pd.concat([frame, dup], ignore_index=True)
    frame["row_id"] = np.arange(len(frame))
    return frame
