"""The stroke model's training set, read from the harness's MinIO like a run reads it: one row per
visit of the ``stroke_label`` view, each with the values known at that visit (a later visit's
glucose never reaches an earlier row), and no label-encoding or sensitive field among its columns."""

from __future__ import annotations

import pandas as pd

from clinops_common.contracts import TrainArgs
from clinops_common.features.definitions import (
    STROKE_CLINICAL_VIEW,
    STROKE_EXCLUDED,
    STROKE_LABEL,
    STROKE_LABEL_VIEW,
    feature_service,
)
from clinops_common.settings import Connections
from clinops_devstack.cohort import Cohort
from clinops_trainer.config import TrainerSettings
from clinops_trainer.job import STROKE_LABEL_FIELDS, load_data
from clinops_trainer.lake import Lake


def test_stroke_rows_are_visits_with_the_values_known_at_each_visit(
    lake: Connections, cohort: Cohort, settings: TrainerSettings
) -> None:
    trainer_lake = Lake(lake, settings.oracle_key)
    snap = trainer_lake.snapshot(cohort.stroke_snapshot_id)
    args = TrainArgs(
        pipeline="stroke-pit",
        run_id="p1",
        registered_model_name="unused",
        feature_service="stroke_risk_v1",
        label=STROKE_LABEL,
    )
    said: list[str] = []
    data = load_data(args, trainer_lake, snap, settings, said.append)
    frame = data.frame
    labels = trainer_lake.store.read(STROKE_LABEL_VIEW, snap, [STROKE_LABEL])
    # every row is a stroke_label visit with its label, and only visits a year or more before the as-of date
    keyed = labels.set_index(["patient_id", "event_timestamp"])[STROKE_LABEL]
    got = frame.set_index(["patient_id", "event_timestamp"])[STROKE_LABEL]
    assert len(got) == data.in_window - data.unlabeled > 900
    pd.testing.assert_series_equal(got, keyed.loc[got.index], check_names=False)
    assert frame["event_timestamp"].max() <= pd.Timestamp(data.data_end) - pd.Timedelta(days=365)
    # the visit's own glucose, not the patient's latest
    clinical = trainer_lake.store.read(STROKE_CLINICAL_VIEW, snap, ["avg_glucose_level"])
    at_visit = clinical.set_index(["patient_id", "event_timestamp"])["avg_glucose_level"]
    pd.testing.assert_series_equal(
        frame.set_index(["patient_id", "event_timestamp"])["avg_glucose_level"],
        at_visit.loc[got.index],
        check_names=False,
    )
    latest = clinical.sort_values("event_timestamp").groupby("patient_id")["avg_glucose_level"].last()
    changed = frame["avg_glucose_level"].to_numpy() != frame["patient_id"].map(latest).to_numpy()
    assert changed.sum() > 100, "later visits changed glucose for many patients; their earlier rows keep the old value"
    # several visits of one patient, and positives and negatives among them
    assert frame["patient_id"].duplicated().any()
    assert 0 < frame[STROKE_LABEL].sum() < len(frame)
    # the split never puts one patient on two sides
    sides = [set(frame["patient_id"].iloc[getattr(data.parts, k)]) for k in ("train", "validation", "test")]
    assert sum(len(s) for s in sides) == frame["patient_id"].nunique()
    # the cohort's oracle covers every row
    assert not pd.isna(data.oracle).any()
    # only the service's features beside the keys and the label
    svc = feature_service("stroke_risk_v1")
    features = set(frame.columns) - {"patient_id", "event_timestamp", STROKE_LABEL}
    assert features == set(svc.feature_names)
    assert not features & (STROKE_LABEL_FIELDS | set(STROKE_EXCLUDED))
    assert any(line.startswith("stroke training rows:") for line in said)
