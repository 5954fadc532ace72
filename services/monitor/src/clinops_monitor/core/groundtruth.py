"""Ground truth: which predictions can be labelled as of a time, and with what label.

A prediction made at ``t`` asks about an adverse event in ``(t, t + horizon]``. It is labelled once
that horizon has closed *and* the outcomes stream is known complete up to its end:

    watermark = min(as_of, latest outcome event_time received by as_of) - allowed_lateness
    labelled  <=>  t + horizon <= watermark

``allowed_lateness`` is how late an outcome may arrive after it happened (outcomes are charted hours
late). Until then the prediction is *pending*: it is never counted as a negative. Only outcomes
received (``ingested_at``) by ``as_of`` count, so an evaluation as of a past time is reproducible.
The label is 1 when the patient has an adverse event with ``t < event_time <= t + horizon``.

``label`` states the rule over frames; the monitor applies it set-based in PostgreSQL
(``adapters.postgres.LABEL_SQL``), and a test holds the two to the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

ADVERSE_EVENT = "adverse_event"


@dataclass(frozen=True)
class Labelled:
    """Labels of the predictions whose horizon has closed, and how many are still pending."""

    labels: pd.DataFrame  # prediction_id, label (int8), outcome_at (event time of the first event or NaT)
    pending: int
    watermark: datetime | None


def _utc(ts: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def received_outcomes(outcomes: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Adverse events received by ``as_of`` (columns patient_id, event_time, ingested_at)."""
    keep = (outcomes["outcome_type"] == ADVERSE_EVENT) & (outcomes["ingested_at"] <= _utc(as_of))
    return outcomes.loc[keep, ["patient_id", "event_time", "ingested_at"]]


def watermark(outcomes: pd.DataFrame, as_of: datetime, allowed_lateness: timedelta) -> datetime | None:
    """The time up to which outcomes are known complete, or None while no outcome has arrived.

    ``outcomes`` holds every outcome row (any type: each proves the stream has reached its time)
    with ``event_time`` and ``ingested_at``; only those received by ``as_of`` count."""
    cutoff = _utc(as_of)
    seen = outcomes.loc[outcomes["ingested_at"] <= cutoff, "event_time"]
    if seen.empty:
        return None
    latest = min(pd.Timestamp(seen.max()), cutoff)
    mark: datetime = (latest - allowed_lateness).to_pydatetime()
    return mark


def closed_by(mark: datetime, horizon: timedelta) -> datetime:
    """The latest prediction time whose horizon has closed under the watermark (``t + horizon <= mark``)."""
    return mark - horizon


def label(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    as_of: datetime,
    horizon: timedelta,
    allowed_lateness: timedelta,
) -> Labelled:
    """Label the predictions (``id``, ``patient_id``, ``predicted_at``) made at or before ``as_of``.

    ``outcomes``: silver outcomes (``patient_id``, ``event_time``, ``outcome_type``, ``ingested_at``).
    Returns labels only for predictions whose horizon closed before the watermark."""
    made = predictions.loc[predictions["predicted_at"] <= _utc(as_of)]
    mark = watermark(outcomes, as_of, allowed_lateness)
    empty = pd.DataFrame(
        {
            "prediction_id": pd.Series(dtype=object),
            "predicted_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "label": pd.Series(dtype="int8"),
            "outcome_at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    if mark is None:
        return Labelled(empty, pending=len(made), watermark=None)
    closed = made.loc[made["predicted_at"] <= _utc(closed_by(mark, horizon))]
    pending = len(made) - len(closed)
    if closed.empty:
        return Labelled(empty, pending=pending, watermark=mark)
    events = received_outcomes(outcomes, as_of)[["patient_id", "event_time"]].sort_values("event_time")
    left = closed[["id", "patient_id", "predicted_at"]].sort_values("predicted_at")
    left = left.assign(predicted_at=left["predicted_at"].astype("datetime64[ns, UTC]"))
    events = events.assign(event_time=events["event_time"].astype("datetime64[ns, UTC]"))
    # the first adverse event strictly after the prediction time, per patient
    joined = pd.merge_asof(
        left,
        events.rename(columns={"event_time": "outcome_at"}),
        left_on="predicted_at",
        right_on="outcome_at",
        by="patient_id",
        direction="forward",
        allow_exact_matches=False,
    )
    hit = joined["outcome_at"].notna() & (joined["outcome_at"] <= joined["predicted_at"] + horizon)
    labels = pd.DataFrame(
        {
            "prediction_id": joined["id"].to_numpy(),
            "predicted_at": joined["predicted_at"],  # the prediction's partition key (revision 0004)
            "label": hit.to_numpy().astype(np.int8),
            "outcome_at": joined["outcome_at"].where(hit),
        }
    )
    return Labelled(labels, pending=pending, watermark=mark)
