"""Our point-in-time join equals Feast's ``get_historical_features`` row for row, on the same files.

Feast runs in its own pinned environment (``make setup``); its DuckDB offline store is the reference
(the Dask/file store drops entity rows whose candidates are all outside the TTL, and collapses entity
rows sharing a key and timestamp, feast-dev/feast#6787).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from clinops_common.features.pit import point_in_time_join
from clinops_devstack.bench.pit_data import entity_rows, view_rows
from clinops_devstack.feast_join import ReferenceView, feast_historical_features

N_PATIENTS, HOURS = 300, 48
TTL_A, TTL_B = timedelta(hours=2), timedelta(0)  # b has no TTL


@pytest.fixture(scope="module")
def views() -> list[ReferenceView]:
    a = view_rows(N_PATIENTS, HOURS, 3, seed=1, prefix="a")
    b = view_rows(N_PATIENTS, HOURS, 2, seed=2, coverage=0.5, prefix="b")  # half the patients: no b row
    b["b_label"] = np.where(b["b0"] > 0, "high", "low")
    return [
        ReferenceView("a", a, TTL_A, {f"a{j}": "float64" for j in range(3)}),
        ReferenceView("b", b, TTL_B, {"b0": "float64", "b1": "float64", "b_label": "string"}),
    ]


def ours(entity: pd.DataFrame, views: list[ReferenceView], guard: bool) -> pd.DataFrame:
    out = entity.copy()
    for v in views:
        joined = point_in_time_join(entity, v.rows, list(v.dtypes), ttl=v.ttl, guard=guard)
        found = joined["event_timestamp"].notna()
        # never a value from after the row's timestamp; with the guard, never one created after it
        assert (joined.loc[found, "event_timestamp"] <= entity.loc[found, "event_timestamp"]).all()
        if guard:
            assert (joined.loc[found, "created_timestamp"] <= entity.loc[found, "event_timestamp"]).all()
        else:  # the backfills are really there: without the guard some values were created too late
            assert (joined.loc[found, "created_timestamp"] > entity.loc[found, "event_timestamp"]).any()
        out = out.join(joined[list(v.dtypes)])
    return out


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "no-guard"])
def test_equals_feast_row_for_row(views: list[ReferenceView], guard: bool) -> None:
    entity = entity_rows(3000, N_PATIENTS, HOURS, seed=3, ttl_edges=TTL_A)
    expected, _ = feast_historical_features(entity, views, guard=guard)
    got = ours(entity, views, guard)
    expected = expected.sort_values("row_id").reset_index(drop=True)[got.columns]
    got = got.sort_values("row_id").reset_index(drop=True)
    assert len(expected) == len(entity)
    features = [c for v in views for c in v.dtypes]
    # the adversarial cases are really there
    assert got[features[0]].isna().any()
    assert got["b0"].isna().any()
    for frame in (got, expected):
        frame["b_label"] = frame["b_label"].astype(object).where(frame["b_label"].notna(), None)
    pd.testing.assert_frame_equal(
        got[["row_id", "patient_id", *features]], expected[["row_id", "patient_id", *features]], check_dtype=False
    )
