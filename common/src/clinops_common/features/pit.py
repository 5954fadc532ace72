"""The point-in-time join, as a pure function of pandas frames.

For each entity row (patient_id, timestamp t) and each feature view, the value is taken from the
view's row with the latest ``event_timestamp`` such that

- ``event_timestamp <= t`` and, when the view has a TTL, ``event_timestamp >= t - ttl`` (both ends
  inclusive; a TTL of zero means none);
- ties on ``event_timestamp`` go to the latest ``created_timestamp``;
- with the leakage guard (on by default) only rows with ``created_timestamp <= t`` take part: a
  value backfilled after t never reaches a training row for t.

These are Feast's semantics (``get_historical_features``, with ``filter_by_created_timestamp`` for the
guard), which the equivalence test checks row for row.

How: rank the view's rows by (event, created); a row becomes *available* at ``max(event, created)``
with the guard (at ``event`` without); sorted by availability, a running maximum of the rank per
patient is the winner among everything available so far; one as-of merge per view then finds, for
each entity row, the last availability at or before t, hence its winner; the TTL is checked on the
winner's event time (if the latest qualifying event is older than t - ttl, every other one is too).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from clinops_common.features.definitions import CREATED_TIMESTAMP, EVENT_TIMESTAMP


class PointInTimeError(ValueError):
    """The entity rows or a view's rows cannot be joined (a missing column, a naive timestamp...)."""


def utc(series: pd.Series) -> pd.Series:
    """Timestamps as ``datetime64[ns, UTC]`` (naive values are taken as UTC)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        out = series.dt.tz_localize("UTC")
    else:
        out = pd.to_datetime(series, utc=True, cache=False)
    return out.dt.as_unit("ns")


def _ns(series: pd.Series) -> np.ndarray:
    """UTC nanoseconds since the epoch; NaT becomes the smallest int64."""
    return np.asarray(utc(series).dt.tz_localize(None), dtype="datetime64[ns]").view("i8")


def point_in_time_join(
    entity_df: pd.DataFrame,
    view_df: pd.DataFrame,
    features: list[str] | tuple[str, ...],
    *,
    ttl: timedelta,
    join_key: str = "patient_id",
    entity_timestamp: str = EVENT_TIMESTAMP,
    timestamp_field: str = EVENT_TIMESTAMP,
    created_timestamp_field: str = CREATED_TIMESTAMP,
    guard: bool = True,
) -> pd.DataFrame:
    """``features`` of ``view_df`` as of each row of ``entity_df``, in ``entity_df``'s row order.

    Returns one column per feature (null where no row qualifies) plus ``<timestamp_field>`` and
    ``<created_timestamp_field>`` of the chosen row, indexed like ``entity_df``.
    """
    for col in (join_key, entity_timestamp):
        if col not in entity_df.columns:
            raise PointInTimeError(f"entity rows lack column {col!r}")
    missing = {join_key, timestamp_field, created_timestamp_field, *features} - set(view_df.columns)
    if missing:
        raise PointInTimeError(f"feature rows lack columns {sorted(missing)}")

    n = len(entity_df)
    ent_t = _ns(entity_df[entity_timestamp])
    if (ent_t == np.iinfo(np.int64).min).any():
        raise PointInTimeError("entity rows with a null timestamp")
    nat = np.iinfo(np.int64).min
    ev_all = _ns(view_df[timestamp_field])
    cr_all = _ns(view_df[created_timestamp_field])  # NaT is the smallest int64: loses ties, like Feast
    keep = ev_all != nat
    if guard:
        keep &= cr_all != nat  # an unknown creation time cannot be proven old enough
    feats = view_df.loc[keep, list(features)].reset_index(drop=True)
    ev_ns, cr_ns = ev_all[keep], cr_all[keep]

    # One integer code per patient, shared by both sides.
    codes, _ = pd.factorize(pd.concat([entity_df[join_key], view_df.loc[keep, join_key]], ignore_index=True))
    ent_key, view_key = codes[:n], codes[n:]

    # rank: position in (event, created) order (a stable sort, so the result is deterministic).
    order = np.lexsort((cr_ns, ev_ns))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    avail = np.maximum(ev_ns, cr_ns) if guard else ev_ns
    by_avail = pd.DataFrame({"k": view_key, "a": avail, "r": rank}).sort_values(["a", "r"], kind="stable")
    by_avail["w"] = by_avail.groupby("k", sort=False)["r"].cummax()

    left = pd.DataFrame({"k": ent_key, "t": ent_t, "row": np.arange(n)}).sort_values("t", kind="stable")
    merged = pd.merge_asof(
        left,
        by_avail[["k", "a", "w"]],
        left_on="t",
        right_on="a",
        by="k",
        direction="backward",
        allow_exact_matches=True,
    )
    winner = np.full(n, -1, dtype=np.int64)
    w = merged["w"].to_numpy()
    found = ~np.isnan(w)
    winner[merged["row"].to_numpy()[found]] = w[found].astype(np.int64)

    # rank -> original (kept) position
    pos = np.full(n, -1, dtype=np.int64)
    has = winner >= 0
    pos[has] = order[winner[has]]
    if ttl.total_seconds() > 0:
        ttl_ns = int(ttl.total_seconds() * 1e9)
        too_old = np.zeros(n, dtype=bool)
        too_old[has] = ev_ns[pos[has]] < ent_t[has] - ttl_ns
        pos[too_old] = -1
        has = pos >= 0

    out = feats.reindex(np.where(has, pos, -1)).reset_index(drop=True) if len(feats) else _empty(feats, n)
    out[timestamp_field] = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    out[created_timestamp_field] = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    if has.any():
        out.loc[has, timestamp_field] = pd.to_datetime(ev_ns[pos[has]], utc=True)
        out.loc[has, created_timestamp_field] = pd.to_datetime(cr_ns[pos[has]], utc=True)
    out.index = entity_df.index
    return out


def micros(series: pd.Series) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch, UTC (how the online store packs them)."""
    naive: np.ndarray = utc(series).dt.tz_localize(None).to_numpy()
    return naive.astype("datetime64[us]").view("i8")


def _empty(feats: pd.DataFrame, n: int) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([None] * n, dtype=feats[c].dtype) for c in feats.columns})
