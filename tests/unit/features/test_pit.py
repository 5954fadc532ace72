"""The point-in-time join against a brute-force reading of its definition, on adversarial rows."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinops_common.features.pit import PointInTimeError, point_in_time_join

T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def h(x: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=x)


def brute_force(entity: pd.DataFrame, view: pd.DataFrame, ttl: timedelta, guard: bool) -> list[float | None]:
    out: list[float | None] = []
    for _, e in entity.iterrows():
        t = e["event_timestamp"]
        c = view[(view.patient_id == e.patient_id) & (view.event_timestamp <= t)]
        if ttl.total_seconds() > 0:
            c = c[c.event_timestamp >= t - ttl]
        if guard:
            c = c[c.created_timestamp <= t]
        if c.empty:
            out.append(None)
            continue
        best = c.sort_values(["event_timestamp", "created_timestamp"]).iloc[-1]
        out.append(float(best["x"]))
    return out


def as_list(s: pd.Series) -> list[float | None]:
    return [None if pd.isna(v) else float(v) for v in s]


ADVERSARIAL_VIEW = pd.DataFrame(
    {
        "patient_id": ["A", "A", "A", "B", "B", "C"],
        "event_timestamp": [h(0), h(1), h(1), h(0), h(2), h(0)],
        # A: a tie on event time at 1h, the later-created version wins; B: 2h backfilled at 10h
        "created_timestamp": [h(0), h(1.1), h(1.5), h(0), h(10), h(0)],
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    }
)


@pytest.mark.parametrize("guard", [True, False])
def test_adversarial_rows_match_the_definition(guard: bool) -> None:
    entity = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B", "B", "C", "C", "D"],
            "event_timestamp": [h(1), h(1.2), h(2), h(2), h(3), h(11), h(2), h(2.01), h(5)],
        }
    )
    got = point_in_time_join(entity, ADVERSARIAL_VIEW, ["x"], ttl=timedelta(hours=2), guard=guard)
    assert as_list(got["x"]) == brute_force(entity, ADVERSARIAL_VIEW, timedelta(hours=2), guard)


def test_guard_keeps_backfilled_values_out_and_ttl_edge_is_inclusive() -> None:
    entity = pd.DataFrame(
        {"patient_id": ["B", "B", "C", "C", "D"], "event_timestamp": [h(3), h(11), h(4), h(4.01), h(1)]}
    )
    got = point_in_time_join(entity, ADVERSARIAL_VIEW, ["x"], ttl=timedelta(hours=4))
    # B at 3h: the 2h value was created at 10h, so the 0h value (4.0) is used; at 11h both are too old.
    # C: exactly at the TTL edge the value counts; a moment later it does not. D has no rows at all.
    assert as_list(got["x"]) == [4.0, None, 6.0, None, None]
    assert as_list(point_in_time_join(entity, ADVERSARIAL_VIEW, ["x"], ttl=timedelta(hours=4), guard=False)["x"]) == [
        5.0,
        None,
        6.0,
        None,
        None,
    ]
    assert got.index.equals(entity.index)


def test_no_joined_value_has_an_event_or_created_time_after_its_row() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    view = pd.DataFrame(
        {
            "patient_id": rng.choice(list("ABCDEFG"), n),
            "event_timestamp": [h(float(x)) for x in rng.integers(0, 48, n)],
            "x": rng.normal(size=n),
        }
    )
    view["created_timestamp"] = view["event_timestamp"] + pd.to_timedelta(rng.integers(0, 20, n), unit="h")
    entity = pd.DataFrame(
        {
            "patient_id": rng.choice(list("ABCDEFGH"), 500),
            "event_timestamp": [h(float(x)) for x in rng.uniform(0, 60, 500)],
        }
    )
    got = point_in_time_join(entity, view, ["x"], ttl=timedelta(hours=6))
    joined = got["x"].notna()
    assert joined.any()
    assert (got.loc[joined, "event_timestamp"] <= entity.loc[joined, "event_timestamp"]).all()
    assert (got.loc[joined, "created_timestamp"] <= entity.loc[joined, "event_timestamp"]).all()


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(PointInTimeError, match="created_timestamp"):
        point_in_time_join(
            pd.DataFrame({"patient_id": ["A"], "event_timestamp": [h(0)]}),
            ADVERSARIAL_VIEW.drop(columns=["created_timestamp"]),
            ["x"],
            ttl=timedelta(0),
        )


rows = st.lists(
    st.tuples(st.sampled_from("ABC"), st.integers(0, 12), st.integers(0, 6)),
    min_size=0,
    max_size=30,
    unique_by=lambda r: r,
)


@settings(max_examples=150, deadline=None)
@given(
    view_rows=rows,
    ent_rows=st.lists(st.tuples(st.sampled_from("ABCD"), st.integers(0, 16)), min_size=1, max_size=20),
    ttl_h=st.sampled_from([0, 1, 3]),
    guard=st.booleans(),
)
def test_equals_the_definition_on_any_rows(
    view_rows: list[tuple[str, int, int]], ent_rows: list[tuple[str, int]], ttl_h: int, guard: bool
) -> None:
    # (patient, event hour, created delay); unique, so no two rows tie on both timestamps
    view = pd.DataFrame(
        {
            "patient_id": pd.Series([r[0] for r in view_rows], dtype=object),
            "event_timestamp": pd.Series([h(r[1]) for r in view_rows], dtype="datetime64[ns, UTC]"),
            "created_timestamp": pd.Series([h(r[1] + r[2]) for r in view_rows], dtype="datetime64[ns, UTC]"),
            "x": pd.Series([float(i) for i in range(len(view_rows))], dtype="float64"),
        }
    )
    entity = pd.DataFrame({"patient_id": [e[0] for e in ent_rows], "event_timestamp": [h(e[1]) for e in ent_rows]})
    got = point_in_time_join(entity, view, ["x"], ttl=timedelta(hours=ttl_h), guard=guard)
    assert as_list(got["x"]) == brute_force(entity, view, timedelta(hours=ttl_h), guard)
