"""The lake adapter: the offline store's snapshots, training sets, the oracle and the stroke labels."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clinops_common.features.definitions import (
    LABEL_VIEW,
    STROKE_HORIZON,
    STROKE_LABEL,
    STROKE_LABEL_VIEW,
    STROKE_VIEW,
)
from clinops_common.features.offline import OfflineStore, Snapshot
from clinops_common.features.pit import utc
from clinops_common.features.training import build_training_set
from clinops_common.lake import batch_path
from clinops_common.settings import TrainingConnections
from clinops_common.storage import s3_filesystem
from clinops_trainer.dataset import EntityRows, streaming_entity_rows, stroke_entity_rows

__all__ = ["STROKE_LABEL", "Lake", "attach_oracle", "attach_patient_oracle"]


class Lake:
    def __init__(self, conns: TrainingConnections, oracle_key: str) -> None:
        self.conns = conns
        self.fs = s3_filesystem(conns)
        self.store = OfflineStore.for_lake(conns)
        self.oracle_key = oracle_key

    def snapshot(self, snapshot_id: str | None) -> Snapshot:
        return self.store.snapshot(snapshot_id)

    def snapshot_uri(self, snap: Snapshot) -> str:
        return f"s3://{self.store.root}/_snapshots/{snap.snapshot_id}.json"

    # ---- adverse event (streaming views) ----
    def streaming_entities(self, snap: Snapshot, lookback: timedelta, horizon: timedelta) -> EntityRows:
        steps = self.store.read(LABEL_VIEW, snap, [])
        return streaming_entity_rows(steps, lookback, horizon)

    def training_frame(self, entities: pd.DataFrame, service: str, snap: Snapshot, label: str | None) -> pd.DataFrame:
        labels = (label,) if label else ()
        return build_training_set(entities, service, snap.snapshot_id, store=self.store, labels=labels).frame

    def oracle(self) -> pd.DataFrame | None:
        """The generator's oracle (patient_id, event_timestamp, oracle), or None without one."""
        path = f"{self.conns.lake_bucket}/{self.oracle_key}"
        try:
            table = pq.read_table(path, filesystem=self.fs, columns=["patient_id", "time", "p_adverse_event_24h"])
        except (FileNotFoundError, OSError):
            return None
        frame = table.to_pandas()
        return pd.DataFrame(
            {
                "patient_id": frame["patient_id"].astype(str),
                "event_timestamp": utc(frame["time"]),
                "oracle": frame["p_adverse_event_24h"].astype("float64"),
            }
        )

    # ---- the stroke cohort ----
    def stroke_entities(self, snap: Snapshot) -> EntityRows:
        """The ``stroke_label`` rows (one per visit before a stroke) whose horizon ends by the run's
        as-of date (the ``stroke_risk`` view's latest row time)."""
        visits = self.store.read(STROKE_LABEL_VIEW, snap, [STROKE_LABEL])
        risk = self.store.read(STROKE_VIEW, snap, [])
        end = risk["event_timestamp"].max() if len(risk) else pd.Timestamp("NaT")
        return stroke_entity_rows(visits, end, STROKE_HORIZON, STROKE_LABEL)

    def stroke_oracle(self) -> pd.DataFrame:
        """The cohort's true ``stroke_probability`` per patient (the generator's oracle), from the
        latest ``conditions`` record: the patient-level truth, blind to a visit's timing."""
        path = batch_path(self.conns.lake_bucket, "conditions").removeprefix("s3a://")
        cols = ["patient_id", "recorded_at", "stroke_probability"]
        table = pq.ParquetDataset(path, filesystem=self.fs).read(columns=cols)
        frame = table.to_pandas().sort_values(["patient_id", "recorded_at"]).drop_duplicates("patient_id", keep="last")
        return pd.DataFrame(
            {
                "patient_id": frame["patient_id"].astype(str).to_numpy(),
                "oracle": frame["stroke_probability"].astype("float64").to_numpy(),
            }
        )


def attach_oracle(frame: pd.DataFrame, oracle: pd.DataFrame | None) -> np.ndarray:
    """The oracle's probability for each row of ``frame`` (NaN where it has none)."""
    if oracle is None:
        return np.full(len(frame), np.nan)
    keys = frame[["patient_id", "event_timestamp"]].copy()
    keys["event_timestamp"] = utc(keys["event_timestamp"])
    merged = keys.merge(oracle, how="left", on=["patient_id", "event_timestamp"], validate="many_to_one")
    return np.asarray(merged["oracle"].to_numpy(dtype=np.float64))


def attach_patient_oracle(frame: pd.DataFrame, oracle: pd.DataFrame) -> np.ndarray:
    """A per-patient oracle's probability for each row of ``frame`` (NaN where it has none)."""
    merged = frame[["patient_id"]].merge(oracle, how="left", on="patient_id", validate="many_to_one")
    return np.asarray(merged["oracle"].to_numpy(dtype=np.float64))
