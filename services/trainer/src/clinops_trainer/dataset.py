"""Entity rows and labels (pure): which (patient, time) rows a run trains on.

Streaming (adverse event): entity rows are every (patient, hourly step) of the label view in the
lookback window ``(end - lookback, end]``, where ``end`` is the snapshot's latest step (not the
wall clock, so a past snapshot trains the same way). A row whose label window ``(t, t + 24h]``
reaches past ``end`` is unlabelled (its outcome is not known yet): left out and counted.
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
