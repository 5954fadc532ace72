"""Time split with a purge of one label horizon between parts (pure).

The rule, for labelled rows with times in [t0, tn] (hourly steps) and a horizon h (24 h):

* span = tn - t0 + 1 step; usable = span - 2h (the two purges);
* c1 = t0 + train x usable, c2 = c1 + h + validation x usable, c3 = c2 + h;
* train: t < c1; purged: c1 <= t < c1 + h; validation: c1 + h <= t < c2; purged: c2 <= t < c3;
  test: t >= c3.

So every training row's label window (t, t + h] ends before the first validation row's time
(t < c1 implies t + h < c1 + h), and likewise validation before test. The fractions apply to the
time kept, so with patients present throughout they are the fractions of rows.

The stroke model's rows are clinic visits, several per patient, from a cohort whose visits span
years: ``grouped_split`` assigns whole patients at random (seeded), stratified by whether a patient
has a positive row, so no patient's visits are on both sides of a split. The labels are per visit
and each row only sees values known at its visit (the point-in-time join), so no purge is needed
between parts that share no patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd


class SplitError(ValueError):
    """The data cannot be split as asked (too short a span, an empty part, a part without positives)."""


@dataclass(frozen=True)
class Parts:
    train: np.ndarray  # row positions
    validation: np.ndarray
    test: np.ndarray
    purged: int
    rule: str
    bounds: dict[str, str]


def time_split(
    times: pd.Series,
    fractions: tuple[float, float, float],
    horizon: timedelta,
    step: timedelta = timedelta(hours=1),
) -> Parts:
    if len(times) == 0:
        raise SplitError("no labelled rows to split")
    t = pd.to_datetime(times, utc=True).reset_index(drop=True)
    t0, tn = t.min(), t.max()
    span = tn - t0 + step
    usable = span - 2 * horizon
    if usable <= timedelta(0):
        raise SplitError(
            f"the labelled rows span {span}, less than the two purges of {horizon}: train on a longer lookback"
        )
    f_train, f_val, _ = fractions
    c1 = t0 + usable * f_train
    c2 = c1 + horizon + usable * f_val
    c3 = c2 + horizon
    train = np.flatnonzero((t < c1).to_numpy())
    val = np.flatnonzero(((t >= c1 + horizon) & (t < c2)).to_numpy())
    test = np.flatnonzero((t >= c3).to_numpy())
    purged = len(t) - len(train) - len(val) - len(test)
    bounds = {
        "train": f"[{t0.isoformat()}, {c1.isoformat()})",
        "validation": f"[{(c1 + horizon).isoformat()}, {c2.isoformat()})",
        "test": f"[{c3.isoformat()}, {tn.isoformat()}]",
    }
    rule = (
        f"time split {fractions} of the span less two purges of {horizon}: "
        "train t < c1, validation c1+h <= t < c2, test t >= c2+h"
    )
    return Parts(train, val, test, purged, rule, bounds)


def random_split(labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> Parts:
    """Stratified random split of rows (the stroke cohort's patients)."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n_train = round(len(idx) * fractions[0])
        n_val = round(len(idx) * fractions[1])
        parts[0] += idx[:n_train].tolist()
        parts[1] += idx[n_train : n_train + n_val].tolist()
        parts[2] += idx[n_train + n_val :].tolist()
    tr, va, te = (np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
    return Parts(tr, va, te, 0, f"random split {fractions} by patient, stratified by label, seed {seed}", {})


def grouped_split(groups: pd.Series, labels: np.ndarray, fractions: tuple[float, float, float], seed: int) -> Parts:
    """Random split of whole groups (patients), stratified by the group's highest label; seeded."""
    g = pd.Series(np.asarray(groups), name="group")
    per_group = pd.Series(labels, index=g.index).groupby(g.to_numpy()).max().sort_index()
    chosen = random_split(per_group.to_numpy(), fractions, seed)
    names = per_group.index.to_numpy()
    side = {}
    for part, idx in enumerate((chosen.train, chosen.validation, chosen.test)):
        side.update(dict.fromkeys(names[idx].tolist(), part))
    where = g.map(side).to_numpy()
    tr, va, te = (np.flatnonzero(where == part) for part in range(3))
    rule = f"random split {fractions} of patients (a patient's rows on one side), stratified by label, seed {seed}"
    return Parts(tr, va, te, 0, rule, {})


def check_parts(parts: Parts, labels: np.ndarray) -> dict[str, dict[str, int]]:
    """Rows and positives per part; a part with no rows or no positives is a ``SplitError``."""
    counts = {}
    for name in ("train", "validation", "test"):
        idx = getattr(parts, name)
        pos = int(np.sum(labels[idx] == 1))
        counts[name] = {"rows": len(idx), "positives": pos}
        if len(idx) == 0:
            raise SplitError(f"the {name} part is empty ({parts.rule})")
        if pos == 0:
            raise SplitError(f"the {name} part has no positive rows ({len(idx)} rows): AUROC is undefined")
        if pos == len(idx):
            raise SplitError(f"the {name} part has no negative rows ({len(idx)} rows)")
    return counts
