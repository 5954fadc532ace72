"""The lake: silver ``outcomes`` (Parquet, one partition per event date), read with pyarrow."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from clinops_common.lake import key
from clinops_common.settings import Connections
from clinops_common.storage import s3_filesystem

COLUMNS = ["patient_id", "event_time", "outcome_type", "ingested_at"]


def read_outcomes(conns: Connections, start: datetime, end: datetime) -> pd.DataFrame:
    """Silver outcomes with event dates from ``start`` to ``end`` (inclusive, whole days)."""
    fs = s3_filesystem(conns)
    root = f"{conns.lake_bucket}/{key('silver', 'outcomes')}"
    days = pd.date_range(start.date(), (end + timedelta(days=1)).date(), freq="D")
    wanted = [f"{root}/date={d:%Y-%m-%d}" for d in days]
    files = [
        info.path
        for folder in wanted
        if fs.get_file_info(folder).type == pafs.FileType.Directory
        for info in fs.get_file_info(pafs.FileSelector(folder))
        if info.type == pafs.FileType.File and info.path.endswith(".parquet")
    ]
    if not files:
        return empty()
    ds = pads.dataset(files, filesystem=fs, format="parquet")
    frame = ds.to_table(columns=COLUMNS).to_pandas()
    for col in ("event_time", "ingested_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.Series(dtype=object),
            "event_time": pd.Series(dtype="datetime64[ns, UTC]"),
            "outcome_type": pd.Series(dtype=object),
            "ingested_at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
