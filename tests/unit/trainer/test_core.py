"""Pure parts of the trainer: entity rows, the purged time split, metrics, thresholds, the gate."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from clinops_trainer import evaluation as ev
from clinops_trainer.dataset import streaming_entity_rows
from clinops_trainer.gate import ChampionScore, decide
from clinops_trainer.split import SplitError, check_parts, random_split, time_split
from clinops_trainer.thresholds import confusion, set_thresholds

H = timedelta(hours=24)
T0 = pd.Timestamp("2026-03-01T00:00:00Z")


def _steps(patients: int, hours: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"patient_id": f"P{p}", "event_timestamp": T0 + pd.Timedelta(hours=h)}
            for p in range(patients)
            for h in range(hours)
        ]
    )


def test_entity_rows_count_back_from_the_data_and_leave_unlabeled_rows_out() -> None:
    steps = _steps(3, 100)
    ents = streaming_entity_rows(steps, lookback=timedelta(days=2), horizon=H)
    assert ents.end == T0 + pd.Timedelta(hours=99)
    assert ents.in_window == 3 * 48  # (end - 48h, end]
    assert ents.unlabeled == 3 * 24  # t + 24h > end
    assert (ents.rows["event_timestamp"] + H <= ents.end).all()
    assert ents.rows["event_timestamp"].min() == T0 + pd.Timedelta(hours=52)


def test_time_split_purges_one_horizon_between_parts() -> None:
    times = _steps(4, 300)["event_timestamp"]
    parts = time_split(times, (0.7, 0.15, 0.15), H)
    t = times.reset_index(drop=True)
    tr, va, te = t[parts.train], t[parts.validation], t[parts.test]
    assert tr.max() + H < va.min()  # no training label window reaches a validation row's time
    assert va.max() + H < te.min()
    assert parts.purged == len(t) - len(tr) - len(va) - len(te)
    assert parts.purged >= 2 * 24 * 4 - 8
    kept = len(tr) + len(va) + len(te)
    assert len(tr) / kept == pytest.approx(0.7, abs=0.02)
    assert len(te) / kept == pytest.approx(0.15, abs=0.02)
    assert set(parts.train).isdisjoint(parts.validation)


def test_a_span_too_short_for_the_purges_is_refused() -> None:
    with pytest.raises(SplitError, match="less than the two purges"):
        time_split(_steps(2, 40)["event_timestamp"], (0.7, 0.15, 0.15), H)


def test_a_part_without_positives_is_refused() -> None:
    parts = time_split(_steps(2, 300)["event_timestamp"], (0.7, 0.15, 0.15), H)
    y = np.zeros(600, dtype=np.int8)
    y[parts.train[:5]] = 1
    y[parts.validation[:2]] = 1
    with pytest.raises(SplitError, match="test part has no positive rows"):
        check_parts(parts, y)


def test_random_split_is_stratified_and_seeded() -> None:
    y = np.array([1] * 100 + [0] * 900)
    a, b = random_split(y, (0.7, 0.15, 0.15), 3), random_split(y, (0.7, 0.15, 0.15), 3)
    np.testing.assert_array_equal(a.test, b.test)
    assert y[a.train].sum() == 70
    assert len(a.train) + len(a.validation) + len(a.test) == 1000


def test_metrics_agree_with_scikit_learn_and_calibration_is_recovered() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(-2, 1.2, 20000)
    p_true = 1 / (1 + np.exp(-z))
    y = (rng.random(len(z)) < p_true).astype(np.int8)
    assert ev.auroc(y, p_true) == pytest.approx(roc_auc_score(y, p_true), abs=1e-12)
    ties = np.round(p_true, 1)
    assert ev.auroc(y, ties) == pytest.approx(roc_auc_score(y, ties), abs=1e-12)
    cal = ev.calibration(y, p_true)
    assert cal["calibration_slope"] == pytest.approx(1.0, abs=0.08)
    assert cal["calibration_intercept"] == pytest.approx(0.0, abs=0.06)
    assert cal["oe_ratio"] == pytest.approx(1.0, abs=0.05)
    overconfident = 1 / (1 + np.exp(-(2 * z + 2)))  # logit doubled: slope 0.5
    assert ev.calibration(y, overconfident)["calibration_slope"] == pytest.approx(0.5, abs=0.05)
    a, c = ev.platt(y, 2 * z + 2)
    assert a == pytest.approx(0.5, abs=0.05)
    assert c == pytest.approx(-1.0, abs=0.2)
    m = ev.evaluate(y, p_true, samples=200)
    assert m["auroc_ci_low"] < m["auroc"] < m["auroc_ci_high"]
    lo, hi = ev.bootstrap_auroc(y, p_true, 200, other=ties)
    assert lo < ev.auroc(y, p_true) - ev.auroc(y, ties) < hi


def test_oracle_comparison_uses_only_rows_the_oracle_covers() -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    oracle = np.array([0.1, 0.9, 0.2, 0.8, np.nan, np.nan])
    model = np.array([0.2, 0.6, 0.7, 0.9, 0.9, 0.1])
    out = ev.oracle_comparison(y, model, oracle)
    assert out["oracle_rows"] == 4
    assert out["oracle_auroc"] == 1.0
    assert out["auroc_gap_to_oracle"] == pytest.approx(1.0 - 0.75)


def test_thresholds_follow_the_stated_rule() -> None:
    p = np.linspace(0, 1, 101)
    y = (p >= 0.5).astype(np.int8)  # 51 events, p in [0.5, 1]
    th = set_thresholds(y, p)
    table = confusion(y, p, th)
    caught_high = table["HIGH"]["events"] / y.sum()
    caught_medium_or_high = (table["HIGH"]["events"] + table["MEDIUM"]["events"]) / y.sum()
    assert caught_high >= 0.5
    assert caught_high < 0.55
    assert caught_medium_or_high >= 0.8
    assert th.medium <= th.high


def test_gate_decisions_and_reasons() -> None:
    first = decide(0.80, 0.75, True, None)
    assert first.promote
    assert "no champion yet" in first.reasons
    low = decide(0.70, 0.75, True, None)
    assert not low.promote
    assert "below the minimum" in low.reasons[0]
    better = decide(0.82, 0.75, True, ChampionScore("3", 0.80, (0.001, 0.04)))
    assert better.promote
    assert "beats champion version 3" in better.reasons[1]
    assert "[+0.0010, +0.0400]" in better.reasons[1]
    worse = decide(0.79, 0.75, True, ChampionScore("3", 0.80, (-0.03, 0.01)))
    assert not worse.promote
    assert "does not beat champion version 3" in worse.reasons[1]
    unscorable = decide(0.9, 0.75, True, ChampionScore("2", None, error="features differ"))
    assert not unscorable.promote
    assert "could not be re-scored" in unscorable.reasons[1]
    assert decide(0.79, 0.75, False, ChampionScore("3", 0.80)).promote
