"""The materializer's vectorised encoding: the RESP-framed values it sends are exactly the packed
rows (header, float64 features, JSON list of strings) framed as bulk strings, whatever the mix of
string values, nulls and row counts; no server needed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clinops_common.features.definitions import CONTEXT_VIEW, STROKE_VIEW, VITALS_VIEW, FeatureView
from clinops_common.features.online import HEADER, decode, encode_bulks, encode_rows

T = pd.Timestamp("2026-03-01T10:00:00Z")


def frame(view: FeatureView, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        "patient_id": [f"P{i}" for i in range(n)],
        "event_timestamp": T + pd.to_timedelta(rng.integers(0, 48, n), unit="h"),
        "created_timestamp": T + pd.to_timedelta(rng.integers(48, 96, n), unit="h"),
    }
    for f in view.features:
        if f.dtype == "string":
            data[f.name] = rng.choice(np.array(["a", 'qu"ote', "é", None], dtype=object), n)
        elif f.dtype == "bool":
            data[f.name] = pd.array(rng.choice(np.array([True, False, None], dtype=object), n), dtype="boolean")
        elif f.dtype == "int64":
            data[f.name] = pd.array(rng.choice(np.array([0, 7, None], dtype=object), n), dtype="Int64")
        else:
            values = rng.normal(size=n)
            values[rng.random(n) < 0.2] = np.nan
            data[f.name] = values
    return pd.DataFrame(data)


def reference(view: FeatureView, rows: pd.DataFrame) -> list[bytes]:
    """The packed layout written out row by row, the slow and obvious way."""
    numeric = [rows[f.name].tolist() for f in view.features if f.dtype != "string"]
    strings = [rows[f.name].tolist() for f in view.features if f.dtype == "string"]
    events = [t.value // 1000 for t in rows[view.timestamp_field]]
    created = [t.value // 1000 for t in rows[view.created_timestamp_field]]
    out = []
    for i in range(len(rows)):
        blob = HEADER.pack(view.schema_id.encode(), events[i], created[i])
        blob += np.array([np.nan if pd.isna(c[i]) else c[i] for c in numeric], dtype="<f8").tobytes()
        if strings:
            cells = ["null" if pd.isna(c[i]) else json.dumps(str(c[i])) for c in strings]
            blob += f"[{','.join(cells)}]".encode()
        out.append(blob)
    return out


@pytest.mark.parametrize("view", [VITALS_VIEW, CONTEXT_VIEW, STROKE_VIEW], ids=lambda v: v.name)
@pytest.mark.parametrize("n", [1, 3, 2049])  # one row, a few, across the transposition's blocks
def test_bulk_strings_are_the_packed_rows_framed(view: FeatureView, n: int) -> None:
    rows = frame(view, n, seed=n)
    want = reference(view, rows)
    assert encode_rows(view, rows) == want
    bulks = encode_bulks(view, rows).tolist()
    assert bulks == [b"$%d\r\n%s\r\n" % (len(w), w) for w in want]
    got = decode(view, want[-1])
    assert got is not None
    assert got.event_us == rows[view.timestamp_field].iloc[-1].value // 1000


def test_rows_of_a_filtered_frame_keep_their_own_values() -> None:
    """A frame whose index is not 0..n-1 (materialization's latest rows are a selection)."""
    rows = frame(CONTEXT_VIEW, 50, seed=1).iloc[::3]
    assert encode_rows(CONTEXT_VIEW, rows) == reference(CONTEXT_VIEW, rows)
