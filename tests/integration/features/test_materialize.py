"""Materialization into a real Redis: full, then incremental (only newer rows win)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest
import redis

from clinops_common.features.definitions import CONTEXT_VIEW, LABS_VIEW, VITALS_VIEW, FeatureView
from clinops_common.features.materialize import materialize
from clinops_common.features.offline import DataFile, OfflineStore
from clinops_common.features.online import OnlineStore

T = pd.Timestamp("2026-03-01T10:00:00Z")


def vitals(pids: list[str], steps: list[int], created_delay_h: float = 0.1) -> pd.DataFrame:
    data: dict[str, object] = {
        "patient_id": pids,
        "event_timestamp": [T + pd.Timedelta(hours=h) for h in steps],
        "created_timestamp": [T + pd.Timedelta(hours=h + created_delay_h) for h in steps],
    }
    for f in VITALS_VIEW.features:
        data[f.name] = [float(h) for h in steps]  # every value says which step it came from
    return pd.DataFrame(data)


def add(store: OfflineStore, root: Path, frame: pd.DataFrame, name: str) -> None:
    path = root / "vitals" / "date=2026-03-01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    # a new file for an already written date: keep the earlier files too (append, not rewrite)
    snap = store.snapshot() if store.latest_id() else None
    earlier = snap.files("vitals") if snap else []
    store.commit({"vitals": [*earlier, DataFile(f"vitals/date=2026-03-01/{name}", path.stat().st_size, "2026-03-01")]})


@pytest.fixture
def online(redis_url: str) -> Iterator[OnlineStore]:
    client = redis.Redis.from_url(redis_url)
    yield OnlineStore(client, prefix="test-materialize")
    for key in client.scan_iter("test-materialize:*"):
        client.delete(key)
    client.close()


def step_of(store: OnlineStore, pid: str, at: pd.Timestamp) -> float | None:
    reader = OnlineStore(store.client, prefix=store.prefix, clock=at.timestamp)
    value = reader.get_online_features("adverse_event_v1", [pid])[0].features["heart_rate_mean_1h"]
    return None if value is None else float(value)


def test_full_then_incremental(tmp_path: Path, online: OnlineStore) -> None:
    offline = OfflineStore(pafs.LocalFileSystem(), str(tmp_path))
    add(
        offline,
        tmp_path,
        pd.concat([vitals(["A", "A", "B"], [0, 1, 0]), vitals(["C"], [1], created_delay_h=0.5)], ignore_index=True),
        "one.parquet",
    )
    # C's step-1 row is created after the as-of time: not materialized, like the guarded join
    first = offline.snapshot()
    full = materialize(offline, online, end=(T + timedelta(hours=1, minutes=10)).to_pydatetime(), views=("vitals",))
    assert (full.rows, full.patients, full.incremental) == (2, 2, False)
    assert step_of(online, "A", T + timedelta(hours=1, minutes=30)) == 1
    assert step_of(online, "C", T + timedelta(hours=1, minutes=30)) is None
    assert online.client.ttl(online.key("A")) > 47 * 3600
    assert online.state()["snapshot"] == first.snapshot_id

    newer_a = vitals(["A"], [2])
    older_b = vitals(["B"], [-1], created_delay_h=2.5)  # a backfill: created late, describes an older step
    add(offline, tmp_path, pd.concat([newer_a, older_b], ignore_index=True), "two.parquet")
    inc = materialize(offline, online, end=(T + timedelta(hours=2, minutes=30)).to_pydatetime(), incremental=True)
    assert inc.incremental
    assert step_of(online, "A", T + timedelta(hours=2, minutes=30)) == 2
    assert step_of(online, "B", T + timedelta(hours=1)) == 0  # the older backfill did not overwrite
    assert inc.rows == 2  # A's new step and C's step 1, now known; B kept
    assert step_of(online, "C", T + timedelta(hours=2)) == 1
    nothing = materialize(offline, online, end=(T + timedelta(hours=3)).to_pydatetime(), incremental=True)
    assert nothing.rows == 0


def rows_of(view: FeatureView, pids: list[str], seed: int) -> pd.DataFrame:
    """One row per patient with every feature of ``view`` set from ``seed`` (strings from a few values)."""
    rng = np.random.default_rng(seed)
    n = len(pids)
    data: dict[str, object] = {
        "patient_id": pids,
        "event_timestamp": [T + pd.Timedelta(minutes=int(m)) for m in rng.integers(0, 600, n)],
        "created_timestamp": [T + pd.Timedelta(minutes=700)] * n,
    }
    for f in view.features:
        if f.dtype == "string":
            data[f.name] = rng.choice(["a", "b", None], n).tolist()
        elif f.dtype == "bool":
            data[f.name] = rng.integers(0, 2, n).astype(bool)
        elif f.dtype == "int64":
            data[f.name] = rng.integers(0, 100, n)
        else:
            data[f.name] = rng.normal(size=n)
    return pd.DataFrame(data)


def test_blocks_of_patients_write_what_one_block_writes(redis_url: str) -> None:
    """The write encodes the next block of patients while it sends this one: with views holding
    different patients in different orders, small blocks store exactly what one block does."""
    pids = [f"P{i:03d}" for i in range(40)]
    order = np.random.default_rng(1).permutation(40)
    frames = {
        VITALS_VIEW.name: rows_of(VITALS_VIEW, [pids[i] for i in order[:30]], 2),  # 30 patients, shuffled
        LABS_VIEW.name: rows_of(LABS_VIEW, sorted(pids[i] for i in order[25:]), 3),  # the other 10 and 5 more
        CONTEXT_VIEW.name: rows_of(CONTEXT_VIEW, pids[::3], 4),  # strings too
    }
    client = redis.Redis.from_url(redis_url)
    stored = []
    try:
        for prefix, block in (("test-blocks-one", 10_000), ("test-blocks-small", 3)):
            store = OnlineStore(client, prefix=prefix)
            assert store.write(frames, chunk=2, block=block) == sum(len(f) for f in frames.values())
            stored.append({pid: client.hgetall(store.key(pid)) for pid in pids})
    finally:
        for key in client.scan_iter("test-blocks-*"):
            client.delete(key)
        client.close()
    one, small = stored
    assert one == small
    assert all(one[pid] for pid in pids)  # every patient is in some view
    assert {len(one[pid]) for pid in pids} == {1, 2, 3}
