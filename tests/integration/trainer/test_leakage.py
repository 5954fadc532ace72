"""No leakage: a feature value backfilled after a row's time never reaches that training row, and
the purge between the split parts holds on the real training set."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clinops_common.contracts import TrainArgs
from clinops_common.features.definitions import VITALS_VIEW
from clinops_common.features.offline import DataFile, OfflineStore
from clinops_common.settings import Connections
from clinops_devstack.cohort import Cohort
from clinops_trainer import job
from clinops_trainer.config import TrainerSettings
from clinops_trainer.lake import Lake

POISON = 9999.0


def test_backfilled_values_never_reach_training_rows_and_the_purge_holds(
    conns: Connections, cohort: Cohort, settings: TrainerSettings
) -> None:
    store = OfflineStore.for_lake(conns)
    base = store.snapshot(cohort.snapshot_id)
    rows = store.read(VITALS_VIEW, base)
    # a correction of every step, with an impossible value, written one hour after the step it describes
    poisoned = rows.copy()
    poisoned["heart_rate_mean_1h"] = POISON
    poisoned["created_timestamp"] = poisoned["event_timestamp"] + timedelta(hours=1, seconds=1)
    files = list(base.files("vitals"))  # re-listed: a commit replaces the dates it is given
    dates = poisoned["event_timestamp"].dt.strftime("%Y-%m-%d")
    for day, part in poisoned.groupby(dates):
        rel = f"vitals/date={day}/part-poison.parquet"
        with store.fs.open_output_stream(f"{store.root}/{rel}") as f:
            pq.write_table(pa.Table.from_pandas(part[list(VITALS_VIEW.columns)], preserve_index=False), f)
        files.append(DataFile(rel, int(store.fs.get_file_info(f"{store.root}/{rel}").size or 0), str(day)))
    snap = store.commit({"vitals": files})
    args = TrainArgs(pipeline="leak", run_id="l1", registered_model_name="leak", snapshot_id=snap.snapshot_id)
    lake = Lake(conns, settings.oracle_key)
    data = job.load_data(args, lake, lake.snapshot(snap.snapshot_id), settings, say=print)
    assert len(store.read(VITALS_VIEW, snap)) == 2 * len(rows)  # the poison is in the snapshot
    hr = data.frame["heart_rate_mean_1h"].to_numpy()
    assert not np.any(hr == POISON), "a value created after the row's time reached a training row"
    assert np.isfinite(hr).mean() > 0.5

    # the purge: every training row's label window ends before the first validation row, and so on
    t = pd.to_datetime(data.frame["event_timestamp"], utc=True)
    horizon = timedelta(hours=settings.label_horizon_hours)
    assert t.iloc[data.parts.train].max() + horizon < t.iloc[data.parts.validation].min()
    assert t.iloc[data.parts.validation].max() + horizon < t.iloc[data.parts.test].min()
    assert data.parts.purged > 0
    assert data.unlabeled >= cohort.patients * 23
