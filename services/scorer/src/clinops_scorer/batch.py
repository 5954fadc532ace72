"""Batch scoring of past hours: every (patient, hourly step) of an offline snapshot, scored by the
champion exactly as ``/predict`` would have scored it at that time.

For each step t the feature values are the point-in-time join's (the row with the latest event at
or before t among rows created by t: what materialization at t put in Redis, the no-skew
property), each view's row is judged with the online rules (stale when older than the view's TTL,
missing when there is none) and the same policy applies: unknown patients are skipped, stale or
missing views are refused (counted) or imputed and flagged ``degraded``. Rows are written to
``predictions`` with ``source = 'batch'``, ``predicted_at = t`` and ids derived from (model,
version, patient, t): re-running a window writes nothing twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinops_common.features.definitions import feature_service, feature_view
from clinops_common.features.offline import OfflineStore
from clinops_common.features.pit import point_in_time_join, utc
from clinops_scorer import core
from clinops_scorer.audit import connect, insert_rows

# A view's rows are read back this far before the window (beyond its TTL), to tell stale from missing.
LOOKBACK_MIN = timedelta(days=2)


@dataclass
class BatchResult:
    batch_id: str
    snapshot_id: str
    model_name: str
    model_version: str
    steps: int = 0
    patients: int = 0
    scored: int = 0
    degraded: int = 0
    refused: int = 0
    unknown: int = 0
    written: int = 0  # new rows (a re-run of a window writes none)
    seconds: float = 0.0
    refused_by_view: dict[str, int] = field(default_factory=dict)


def hourly_steps(start: datetime, end: datetime) -> pd.DatetimeIndex:
    """Every whole hour t with start <= t < end (UTC)."""
    lo, hi = _utc(start), _utc(end)
    steps = pd.date_range(lo.ceil("h"), hi, freq="h")
    return steps[steps < hi]


def _utc(t: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


def _dates(lo: pd.Timestamp, hi: pd.Timestamp) -> list[str]:
    return [d.strftime("%Y-%m-%d") for d in pd.date_range(lo.normalize(), hi.normalize(), freq="D")]


@dataclass(frozen=True)
class ScoredChunk:
    rows: list[core.AuditRow]
    refused: int
    unknown: int
    refused_by_view: dict[str, int]


def score_steps(
    champ: core.Champion,
    store: OfflineStore,
    steps: pd.DatetimeIndex,
    *,
    snapshot: str | None = None,
    policy: Literal["refuse", "degrade"] = "refuse",
    batch_id: str | None = None,
    chunk_steps: int = 24,
) -> Iterator[ScoredChunk]:
    """Audit rows for every (patient, step), a chunk of steps at a time."""
    pkg = champ.package
    svc = feature_service(pkg.feature_service)
    snap = store.snapshot(snapshot)
    batch_id = batch_id or uuid.uuid4().hex
    if len(steps) == 0:
        return
    by_view = svc.by_view()
    views = {name: feature_view(name) for name in champ.order.views}
    # each view's rows once for the whole window (plus enough before it)
    rows = {}
    for name, view in views.items():
        lookback = max(LOOKBACK_MIN, 2 * view.ttl)
        rows[name] = store.read(view, snap, by_view[name], dates=_dates(steps[0] - lookback, steps[-1]))
    patients = sorted(set().union(*(set(r[views[n].entity.join_key]) for n, r in rows.items())))
    if not patients:
        return
    for c in range(0, len(steps), chunk_steps):
        part = steps[c : c + chunk_steps]
        ents = pd.DataFrame(
            {
                "patient_id": np.repeat(np.asarray(patients, dtype=object), len(part)),
                "event_timestamp": np.tile(part.to_numpy(), len(patients)),
            }
        )
        ents["event_timestamp"] = utc(ents["event_timestamp"])
        yield _score_chunk(
            champ,
            views=views,
            by_view=by_view,
            rows=rows,
            ents=ents,
            policy=policy,
            batch_id=batch_id,
            snapshot_id=snap.snapshot_id,
        )


def _score_chunk(
    champ: core.Champion,
    *,
    views: dict[str, Any],
    by_view: dict[str, tuple[str, ...]],
    rows: dict[str, pd.DataFrame],
    ents: pd.DataFrame,
    policy: Literal["refuse", "degrade"],
    batch_id: str,
    snapshot_id: str,
) -> ScoredChunk:
    n = len(ents)
    t_ns = ents["event_timestamp"].to_numpy(dtype="datetime64[ns]").view("i8")
    columns: dict[str, pd.Series] = {}
    status: dict[str, np.ndarray] = {}  # 0 fresh, 1 stale, 2 missing
    event_times: dict[str, pd.Series] = {}
    for name, view in views.items():
        feats = list(by_view[name])
        joined = point_in_time_join(
            ents,
            rows[name],
            feats,
            ttl=timedelta(0),  # the winner regardless of age: staleness is judged below, as online
            join_key=view.entity.join_key,
            timestamp_field=view.timestamp_field,
            created_timestamp_field=view.created_timestamp_field,
        )
        ev = joined[view.timestamp_field]
        missing = ev.isna().to_numpy()
        ev_ns = ev.to_numpy(dtype="datetime64[ns]").view("i8")
        ttl_ns = int(view.ttl.total_seconds() * 1e9)
        stale = ~missing & (ttl_ns > 0) & (t_ns - ev_ns > ttl_ns)
        st = np.where(missing, 2, np.where(stale, 1, 0))
        status[name] = st
        event_times[name] = ev
        for f in feats:
            col = joined[f].copy()
            if stale.any():
                col[stale] = None  # a stale row's values are not used (as the online store nulls them)
            columns[f] = col
    names = list(views)
    states = np.column_stack([status[n] for n in names])
    unknown = (states == 2).all(axis=1)
    not_fresh = (states != 0).any(axis=1) & ~unknown
    refused = not_fresh if policy == "refuse" else np.zeros(n, dtype=bool)
    keep = ~unknown & ~refused
    refused_by_view = {nm: int(((states[:, j] != 0) & refused).sum()) for j, nm in enumerate(names)}
    frame = pd.DataFrame(columns, index=ents.index).loc[keep]
    out: list[core.AuditRow] = []
    if len(frame):
        matrix = champ.package.vectorize_frame(frame)
        probs = champ.package.predict_proba(matrix)
        idx = np.flatnonzero(keep)
        pids = ents["patient_id"].to_numpy()[idx]
        times = ents["event_timestamp"].iloc[idx]
        evs = {nm: event_times[nm].iloc[idx] for nm in names}
        for k, (pid, t, p) in enumerate(zip(pids, times, probs, strict=True)):
            at = t.to_pydatetime()
            view_states = states[idx[k]]
            out.append(
                core.AuditRow(
                    id=core.batch_prediction_id(champ.name, champ.version, str(pid), at),
                    patient_id=str(pid),
                    predicted_at=at,
                    score=float(p),
                    risk_level=champ.package.risk_level(float(p)),
                    model_name=champ.name,
                    model_version=champ.version,
                    order=champ.order,
                    feature_values=matrix[k],
                    feature_event_times=[_ts(evs[nm].iloc[k]) for nm in champ.order.views],
                    degraded=bool((view_states != 0).any()),
                    stale_views=tuple(nm for j, nm in enumerate(names) if view_states[j] == 1),
                    missing_views=tuple(nm for j, nm in enumerate(names) if view_states[j] == 2),
                    source="batch",
                    batch_id=batch_id,
                    snapshot_id=snapshot_id,
                )
            )
    return ScoredChunk(out, int(refused.sum()), int(unknown.sum()), refused_by_view)


def _ts(value: Any) -> datetime | None:
    return None if pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def run(
    champ: core.Champion,
    store: OfflineStore,
    dsn: str,
    *,
    start: datetime,
    end: datetime,
    snapshot: str | None = None,
    policy: Literal["refuse", "degrade"] = "refuse",
    batch_id: str | None = None,
    progress: Callable[[BatchResult], None] | None = None,
    commit_rows: int = 5000,
) -> BatchResult:
    """Score the window and write the rows (committed every ``commit_rows``); returns the counts."""
    t0 = time.perf_counter()
    steps = hourly_steps(start, end)
    snap_id = store.snapshot(snapshot).snapshot_id
    result = BatchResult(batch_id or uuid.uuid4().hex, snap_id, champ.name, champ.version, steps=len(steps))
    known: set[str] = set()
    patients: set[str] = set()
    with connect(dsn) as conn:
        for chunk in score_steps(champ, store, steps, snapshot=snap_id, policy=policy, batch_id=result.batch_id):
            for i in range(0, len(chunk.rows), commit_rows):
                part = chunk.rows[i : i + commit_rows]
                result.written += insert_rows(conn, part, known)
                conn.commit()
                known.update(r.order.id for r in part)
            result.scored += len(chunk.rows)
            result.degraded += sum(r.degraded for r in chunk.rows)
            result.refused += chunk.refused
            result.unknown += chunk.unknown
            for v, k in chunk.refused_by_view.items():
                result.refused_by_view[v] = result.refused_by_view.get(v, 0) + k
            patients.update(r.patient_id for r in chunk.rows)
            result.patients = len(patients)
            result.seconds = time.perf_counter() - t0
            if progress is not None:
                progress(result)
    result.seconds = time.perf_counter() - t0
    return result
