"""The worker's interpreter tuning: the GIL switch interval and gen-0 threshold are set as asked, and
every garbage collection is observed with its generation and a non-negative pause."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from clinops_scorer.worker import tune, watch_collections


@pytest.fixture
def restore_interpreter() -> Iterator[None]:
    interval, threshold, callbacks = sys.getswitchinterval(), gc.get_threshold(), list(gc.callbacks)
    yield
    sys.setswitchinterval(interval)
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks


@pytest.mark.usefixtures("restore_interpreter")
def test_tune_sets_the_switch_interval_and_the_young_threshold() -> None:
    _, t1, t2 = gc.get_threshold()
    tune(0.5, 12_345)
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    assert gc.get_threshold() == (12_345, t1, t2)
    tune(2.0)  # no threshold: the collector's is left alone
    assert sys.getswitchinterval() == pytest.approx(0.002)
    assert gc.get_threshold() == (12_345, t1, t2)


@pytest.mark.usefixtures("restore_interpreter")
def test_every_collection_is_observed_with_its_generation() -> None:
    seen: list[tuple[int, float]] = []
    watch_collections(lambda gen, s: seen.append((gen, s)))
    gc.collect(0)
    gc.collect(2)
    assert [g for g, _ in seen[-2:]] == [0, 2]
    assert all(s >= 0 for _, s in seen)
