"""The lake adapter: the offline store's snapshots, training sets, the oracle and the stroke labels."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from clinops_common.features.definitions import LABEL_VIEW, STROKE_VIEW
from clinops_common.features.offline import OfflineStore, Snapshot
from clinops_common.features.pit import utc
from clinops_common.features.training import build_training_set
from clinops_common.lake import batch_path
from clinops_common.settings import TrainingConnections
from clinops_common.storage import s3_filesystem
from clinops_trainer.dataset import EntityRows, streaming_entity_rows

STROKE_LABEL = "stroke_occurred"


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
    def stroke_entities(self, snap: Snapshot) -> pd.DataFrame:
        """One row per patient of the ``stroke_risk`` view, as of the view's latest created time."""
        rows = self.store.read(STROKE_VIEW, snap, [])
        if rows.empty:
            return rows[["patient_id", "event_timestamp"]]
        as_of = rows["created_timestamp"].max()
        out = pd.DataFrame({"patient_id": rows["patient_id"].drop_duplicates().sort_values().to_numpy()})
        out["event_timestamp"] = as_of
        return out

    def stroke_labels(self) -> pd.DataFrame:
        """``stroke_occurred`` and the cohort's true ``stroke_probability`` (the oracle) per patient,
        from the latest ``conditions`` record."""
        path = batch_path(self.conns.lake_bucket, "conditions").removeprefix("s3a://")
        cols = ["patient_id", "recorded_at", STROKE_LABEL, "stroke_probability"]
        table = pq.ParquetDataset(path, filesystem=self.fs).read(columns=cols)
        frame = table.to_pandas().sort_values(["patient_id", "recorded_at"]).drop_duplicates("patient_id", keep="last")
        return pd.DataFrame(
            {
                "patient_id": frame["patient_id"].astype(str).to_numpy(),
                STROKE_LABEL: frame[STROKE_LABEL].astype("float64").to_numpy(),
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
