"""Ground truth: horizon closed + outcome watermark + allowed lateness; pending is never negative."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
import pandas as pd
from hypothesis import given, settings

from clinops_monitor.core.groundtruth import label, watermark

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H24 = timedelta(hours=24)


def _preds(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [r[0] for r in rows],
            "patient_id": [r[1] for r in rows],
            "predicted_at": pd.to_datetime([T0 + timedelta(hours=r[2]) for r in rows], utc=True),
        }
    )


def _outcomes(rows: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": [r[0] for r in rows],
            "event_time": pd.to_datetime([T0 + timedelta(hours=r[1]) for r in rows], utc=True),
            "ingested_at": pd.to_datetime([T0 + timedelta(hours=r[2]) for r in rows], utc=True),
            "outcome_type": [r[3] for r in rows],
        }
    )


def test_a_prediction_is_labelled_only_after_horizon_and_lateness() -> None:
    preds = _preds([("a", "P1", 0), ("b", "P2", 0), ("c", "P1", 10)])
    outs = _outcomes([("P1", 5, 6, "adverse_event"), ("P3", 40, 41, "adverse_event")])
    early = label(preds, outs, as_of=T0 + timedelta(hours=30), horizon=H24, allowed_lateness=timedelta(hours=6))
    # latest outcome seen by 30h is at 5h: watermark -1h, nothing closed
    assert early.labels.empty
    assert early.pending == 3
    late = label(preds, outs, as_of=T0 + timedelta(hours=50), horizon=H24, allowed_lateness=timedelta(hours=6))
    assert late.watermark == T0 + timedelta(hours=34)
    got = dict(zip(late.labels["prediction_id"], late.labels["label"], strict=True))
    assert got == {"a": 1, "b": 0, "c": 0}  # c: event at 5h is before 10h; its horizon ends at 34h
    assert late.pending == 0


def test_the_horizon_is_open_at_the_prediction_time_and_closed_at_its_end() -> None:
    preds = _preds([("at", "P1", 5), ("end", "P1", -19), ("past", "P1", -19.5)])
    outs = _outcomes([("P1", 5, 5, "adverse_event"), ("P9", 100, 100, "adverse_event")])
    got = label(preds, outs, as_of=T0 + timedelta(hours=100), horizon=H24, allowed_lateness=timedelta(0))
    labels = dict(zip(got.labels["prediction_id"], got.labels["label"], strict=True))
    assert labels == {"at": 0, "end": 1, "past": 0}


def test_outcomes_received_after_as_of_do_not_count() -> None:
    preds = _preds([("a", "P1", 0)])
    outs = _outcomes([("P1", 3, 60, "adverse_event"), ("P2", 40, 40, "adverse_event")])
    got = label(preds, outs, as_of=T0 + timedelta(hours=45), horizon=H24, allowed_lateness=timedelta(hours=2))
    assert got.labels["label"].tolist() == [0]
    later = label(preds, outs, as_of=T0 + timedelta(hours=61), horizon=H24, allowed_lateness=timedelta(hours=2))
    assert later.labels["label"].tolist() == [1]


def test_other_outcome_types_move_the_watermark_but_are_not_events() -> None:
    preds = _preds([("a", "P1", 0)])
    outs = _outcomes([("P1", 3, 3, "readmission"), ("P2", 40, 40, "readmission")])
    got = label(preds, outs, as_of=T0 + timedelta(hours=45), horizon=H24, allowed_lateness=timedelta(hours=2))
    assert got.labels["label"].tolist() == [0]


def test_no_outcome_yet_means_everything_pending() -> None:
    preds = _preds([("a", "P1", 0)])
    assert watermark(_outcomes([]), T0, timedelta(0)) is None
    got = label(preds, _outcomes([]), as_of=T0 + timedelta(days=9), horizon=H24, allowed_lateness=timedelta(0))
    assert got.pending == 1
    assert got.labels.empty


@settings(max_examples=60, deadline=None)
@given(
    pred_hours=st.lists(st.floats(0, 100), min_size=1, max_size=30),
    event_hours=st.lists(st.tuples(st.floats(0, 130), st.floats(0, 12)), max_size=20),
    as_of_h=st.floats(0, 160),
    lateness_h=st.floats(0, 12),
)
def test_labels_match_the_definition_and_pending_is_never_negative(
    pred_hours: list[float], event_hours: list[tuple[float, float]], as_of_h: float, lateness_h: float
) -> None:
    preds = _preds([(f"p{i}", f"P{i % 3}", h) for i, h in enumerate(pred_hours)])
    outs = _outcomes([(f"P{i % 3}", h, h + d, "adverse_event") for i, (h, d) in enumerate(event_hours)])
    as_of = T0 + timedelta(hours=as_of_h)
    got = label(preds, outs, as_of=as_of, horizon=H24, allowed_lateness=timedelta(hours=lateness_h))
    made = int((preds["predicted_at"] <= pd.Timestamp(as_of)).sum())
    assert got.pending >= 0
    assert got.pending + len(got.labels) == made
    seen = outs[outs["ingested_at"] <= pd.Timestamp(as_of)]
    for row in got.labels.itertuples():
        p = preds.set_index("id").loc[row.prediction_id]
        assert got.watermark is not None
        assert p.predicted_at + H24 <= pd.Timestamp(got.watermark)  # closed before the watermark
        mine = seen[seen["patient_id"] == p.patient_id]["event_time"]
        expected = int(((mine > p.predicted_at) & (mine <= p.predicted_at + H24)).any())
        assert row.label == expected
