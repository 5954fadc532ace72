"""Offline snapshots on a local filesystem and the online store's encoding: no server needed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from clinops_common.features.definitions import CONTEXT_VIEW, STROKE_VIEW, VITALS_VIEW, FeatureView
from clinops_common.features.offline import DataFile, OfflineStore, SnapshotNotFound
from clinops_common.features.online import decode, encode_rows, latest_rows

T = pd.Timestamp("2026-03-01T10:00:00Z")


def rows(view: FeatureView, pids: list[str], steps: list[int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "patient_id": pids,
        "event_timestamp": [T + pd.Timedelta(hours=h) for h in steps],
        "created_timestamp": [T + pd.Timedelta(hours=h, minutes=5) for h in steps],
    }
    for f in view.features:
        if f.dtype == "string":
            data[f.name] = ["x", None, *["y"] * (len(pids) - 2)][: len(pids)]
        elif f.dtype == "bool":
            data[f.name] = pd.array([True, None, *[False] * (len(pids) - 2)][: len(pids)], dtype="boolean")
        elif f.dtype == "int64":
            data[f.name] = pd.array([3, None, *[1] * (len(pids) - 2)][: len(pids)], dtype="Int64")
        else:
            values = rng.normal(size=len(pids))
            values[1 % len(pids)] = np.nan
            data[f.name] = values
    return pd.DataFrame(data)


@pytest.mark.parametrize("view", [VITALS_VIEW, CONTEXT_VIEW, STROKE_VIEW], ids=lambda v: v.name)
def test_packed_rows_decode_to_the_same_values(view: FeatureView) -> None:
    frame = rows(view, ["A", "B", "C"], [0, 1, 2])
    for i, blob in enumerate(encode_rows(view, frame)):
        got = decode(view, blob)
        assert got is not None
        assert got.event_us == int(frame["event_timestamp"][i].value // 1000)
        for f in view.features:
            want = frame[f.name][i]
            if pd.isna(want):
                assert got.values[f.name] is None, f.name
            else:
                assert got.values[f.name] == want, f.name
                assert (
                    type(got.values[f.name]) is {"float64": float, "int64": int, "bool": bool, "string": str}[f.dtype]
                )


def test_a_value_written_under_another_schema_reads_as_missing() -> None:
    blob = encode_rows(VITALS_VIEW, rows(VITALS_VIEW, ["A", "B"], [0, 1]))[0]
    changed = FeatureView(VITALS_VIEW.name, VITALS_VIEW.source, VITALS_VIEW.ttl, VITALS_VIEW.features[:-1], "")
    assert decode(changed, blob) is None
    assert decode(VITALS_VIEW, None) is None


def test_latest_rows_respect_the_as_of_time() -> None:
    frame = rows(VITALS_VIEW, ["A", "A", "A", "B"], [0, 1, 2, 0])
    frame.loc[1, "created_timestamp"] = T + pd.Timedelta(hours=9)  # step 1 backfilled late
    latest = latest_rows(VITALS_VIEW, frame, as_of=(T + timedelta(hours=1, minutes=30)).to_pydatetime())
    assert dict(zip(latest["patient_id"], latest["event_timestamp"], strict=True)) == {"A": T, "B": T}


def write(root: Path, view: FeatureView, frame: pd.DataFrame, date: str, name: str) -> DataFile:
    path = root / view.name / f"date={date}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return DataFile(f"{view.name}/date={date}/{name}", path.stat().st_size, date)


def test_snapshots_replace_rewritten_dates_and_keep_the_old_ones_readable(tmp_path: Path) -> None:
    store = OfflineStore(pafs.LocalFileSystem(), str(tmp_path))
    with pytest.raises(SnapshotNotFound):
        store.snapshot()
    day1 = rows(VITALS_VIEW, ["A", "B"], [0, 1], seed=1)
    day2 = rows(VITALS_VIEW, ["A", "B"], [24, 25], seed=2)
    first = store.commit(
        {
            VITALS_VIEW.name: [
                write(tmp_path, VITALS_VIEW, day1, "2026-03-01", "a.parquet"),
                write(tmp_path, VITALS_VIEW, day2, "2026-03-02", "b.parquet"),
            ]
        }
    )
    redo = rows(VITALS_VIEW, ["A"], [0], seed=3)
    second = store.commit({VITALS_VIEW.name: [write(tmp_path, VITALS_VIEW, redo, "2026-03-01", "c.parquet")]})
    assert second.parent == first.snapshot_id
    assert store.latest_id() == second.snapshot_id
    assert sorted(f.path.rsplit("/", 1)[1] for f in second.files(VITALS_VIEW.name)) == ["b.parquet", "c.parquet"]
    assert len(store.read(VITALS_VIEW, second)) == 3
    old = store.read(VITALS_VIEW, store.snapshot(first.snapshot_id))
    assert len(old) == 4
    assert len(store.read(VITALS_VIEW, first, dates=["2026-03-02"])) == 2
    assert list(store.read(CONTEXT_VIEW, first).columns) == list(CONTEXT_VIEW.columns)  # a view never written: empty
