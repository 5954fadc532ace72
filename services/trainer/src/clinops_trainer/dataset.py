"""Entity rows and labels (pure): which (patient, time) rows a run trains on.

Streaming (adverse event): entity rows are every (patient, hourly step) of the label view in the
lookback window ``(end - lookback, end]``, where ``end`` is the snapshot's latest step (not the
wall clock, so a past snapshot trains the same way). A row whose label window ``(t, t + 24h]``
reaches past ``end`` is unlabelled (its outcome is not known yet): left out and counted.

Stroke: entity rows are the ``stroke_label`` view's rows (one per clinic visit on or after the
patient's registration and before the patient's stroke, labelled ``stroke_within_1y``). ``end`` is
the stroke run's as-of date; a visit whose horizon ``(visit, visit + 365 days]`` reaches past it is
unlabelled the same way (a stroke may still come) and left out, counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from clinops_common.features.pit import utc


@dataclass(frozen=True)
class EntityRows:
    rows: pd.DataFrame  # patient_id, event_timestamp
    end: pd.Timestamp
    in_window: int
    unlabeled: int


def streaming_entity_rows(
    steps: pd.DataFrame, lookback: timedelta, horizon: timedelta, key: str = "patient_id", ts: str = "event_timestamp"
) -> EntityRows:
    if steps.empty:
        return EntityRows(steps[[key, ts]].copy(), pd.Timestamp("NaT"), 0, 0)
    t = utc(steps[ts])
    end = t.max()
    window = steps.loc[(t > end - lookback).to_numpy(), [key, ts]].copy()
    window[ts] = utc(window[ts])
    window = window.drop_duplicates([key, ts])
    labeled = window[window[ts] + horizon <= end]
    rows = labeled.sort_values([ts, key], kind="stable").reset_index(drop=True)
    return EntityRows(rows, end, len(window), len(window) - len(labeled))


def stroke_entity_rows(
    visits: pd.DataFrame,
    end: pd.Timestamp,
    horizon: timedelta,
    label: str,
    *,
    key: str = "patient_id",
    ts: str = "event_timestamp",
) -> EntityRows:
    """The ``stroke_label`` rows whose horizon ends at or before ``end``: (key, ts, label), sorted."""
    if visits.empty or pd.isna(end):
        return EntityRows(visits[[key, ts, label]].copy(), pd.Timestamp("NaT"), len(visits), len(visits))
    rows = visits[[key, ts, label]].copy()
    rows[ts] = utc(rows[ts])
    rows = rows.drop_duplicates([key, ts])
    labeled = rows[rows[ts] + horizon <= end]
    out = labeled.sort_values([ts, key], kind="stable").reset_index(drop=True)
    return EntityRows(out, end, len(rows), len(rows) - len(labeled))
