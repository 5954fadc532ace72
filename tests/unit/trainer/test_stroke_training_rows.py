"""The stroke model's rows (pure parts): visits whose horizon reaches past the as-of date are left
out, the split keeps each patient's visits on one side, and the trainer refuses a feature service
holding label-encoding or sensitive fields."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from clinops_trainer.dataset import stroke_entity_rows
from clinops_trainer.job import TrainingError, check_stroke_service
from clinops_trainer.split import check_parts, grouped_split

YEAR = timedelta(days=365)
END = pd.Timestamp("2026-03-08T00:00:00Z")


def test_visits_within_the_horizon_of_the_as_of_date_are_unlabeled() -> None:
    visits = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P2"],
            "event_timestamp": pd.to_datetime(["2024-01-10", "2025-03-08", "2025-03-09", "2025-12-01"], utc=True),
            "created_timestamp": pd.to_datetime(["2024-01-10", "2025-03-08", "2025-03-09", "2025-12-01"], utc=True),
            "stroke_within_1y": [0.0, 1.0, 0.0, 0.0],
        }
    )
    rows = stroke_entity_rows(visits, END, YEAR, "stroke_within_1y")
    # 2025-03-08 + 365 days = 2026-03-08: exactly at the end is known; a day later is not
    assert rows.rows[["patient_id", "stroke_within_1y"]].values.tolist() == [["P1", 0.0], ["P1", 1.0]]
    assert (rows.in_window, rows.unlabeled, rows.end) == (4, 2, END)
    assert list(rows.rows.columns) == ["patient_id", "event_timestamp", "stroke_within_1y"]


def test_no_as_of_date_means_no_labelled_rows() -> None:
    visits = pd.DataFrame(
        {"patient_id": ["P1"], "event_timestamp": pd.to_datetime(["2024-01-10"], utc=True), "stroke_within_1y": [1.0]}
    )
    rows = stroke_entity_rows(visits, pd.Timestamp("NaT"), YEAR, "stroke_within_1y")
    assert (len(rows.rows), rows.unlabeled) == (1, 1)


def test_grouped_split_keeps_a_patients_visits_together_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    patients = np.repeat([f"P{i}" for i in range(400)], rng.integers(1, 4, size=400))
    y = (rng.random(len(patients)) < 0.1).astype(np.int8)
    groups = pd.Series(patients)
    a = grouped_split(groups, y, (0.7, 0.15, 0.15), 5)
    b = grouped_split(groups, y, (0.7, 0.15, 0.15), 5)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("train", "validation", "test"))
    sides = [set(patients[getattr(a, k)]) for k in ("train", "validation", "test")]
    assert sum(len(s) for s in sides) == len(set(patients))  # each patient on one side only
    assert sum(len(getattr(a, k)) for k in ("train", "validation", "test")) == len(patients)
    assert 0.6 < len(sides[0]) / 400 < 0.8
    counts = check_parts(a, y)
    assert all(c["positives"] > 0 for c in counts.values())
    c = grouped_split(groups, y, (0.7, 0.15, 0.15), 6)
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (["age", "days_since_stroke"], "encode the label: \\['days_since_stroke'\\]"),
        (["age", "stroke_within_1y"], "encode the label"),
        (["age", "blood_type", "insurance_type"], "sensitive fields .*\\['blood_type', 'insurance_type'\\]"),
    ],
)
def test_a_stroke_service_with_label_or_sensitive_fields_is_refused(features: list[str], message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        check_stroke_service("bad_v1", features)


def test_the_stroke_service_itself_passes() -> None:
    from clinops_common.features.definitions import feature_service

    check_stroke_service("stroke_risk_v1", feature_service("stroke_risk_v1").feature_names)
