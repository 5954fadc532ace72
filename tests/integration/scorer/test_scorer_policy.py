"""The other missing/stale policy: ``degrade`` predicts with the training imputation and flags the
response and the audit row; batch scoring under the same policy gives the same number."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from scorer_helpers import NO_MEDS, STALE, World

from clinops_common.settings import ServingConnections
from clinops_scorer import batch, metrics
from clinops_scorer.audit import libpq_dsn
from clinops_scorer.config import ScorerSettings
from clinops_scorer.service import ScoringEngine


def test_degrade_policy_imputes_flags_and_matches_batch(
    world: World, redis_url: str, database_url: str, mlflow_url: str, tmp_path: Path
) -> None:
    settings = ScorerSettings(
        model_name=world.model_name,
        online_prefix=world.prefix,
        feature_policy="degrade",
        model_cache_dir=tmp_path / "cache",
        poll_interval_s=30,
    )
    conns = ServingConnections(
        redis_url=SecretStr(redis_url), database_url=SecretStr(database_url), mlflow_tracking_uri=mlflow_url
    )
    engine = ScoringEngine(settings, conns, metrics.build(CollectorRegistry()))
    try:
        deadline = time.monotonic() + 60
        while engine.models.current is None:
            assert time.monotonic() < deadline, "no champion loaded"
            time.sleep(0.1)
        assert engine.ready()
        stale, missing, fresh, unknown = engine.score([STALE, NO_MEDS, "PT00004", "PT-NOBODY"], "predict_batch")
    finally:
        engine.close()

    assert unknown.refusal is not None
    assert unknown.refusal.status == 404  # an unknown patient is never imputed
    assert fresh.prediction is not None
    assert fresh.prediction.degraded is False
    s, m = stale.prediction, missing.prediction
    assert s is not None
    assert m is not None
    assert s.degraded is True
    assert s.degraded_views == ["labs"]
    assert s.feature_freshness["labs"].status == "stale"
    assert m.degraded_views == ["medications"]
    assert m.feature_freshness["medications"].status == "missing"
    # the training imputation: the offline training row (the stale labs are null there too)
    expected = world.package.predict_frame(world.training.loc[[STALE, NO_MEDS], list(world.package.feature_order)])
    assert [s.adverse_event_probability, m.adverse_event_probability] == pytest.approx(expected.tolist(), abs=1e-6)

    dsn = libpq_dsn(database_url)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id, degraded, stale_views, missing_views FROM predictions WHERE id = ANY(%s)",
            [[s.prediction_id, m.prediction_id]],
        ).fetchall()
    flags = {r[0]: r[1:] for r in rows}
    assert flags[s.prediction_id] == (True, ["labs"], None)
    assert flags[m.prediction_id] == (True, None, ["medications"])

    champ = engine.models.current
    assert champ is not None
    start = world.hour.to_pydatetime()
    result = batch.run(champ, world.store, dsn, start=start, end=start + np.timedelta64(1, "h"), policy="degrade")
    assert result.refused == 0
    assert result.degraded == 2
    with psycopg.connect(dsn) as conn:
        back = dict(
            conn.execute(
                "SELECT patient_id, score FROM predictions WHERE batch_id = %s AND degraded", [result.batch_id]
            ).fetchall()
        )
    assert back[STALE] == pytest.approx(s.adverse_event_probability, abs=1e-6)
    assert back[NO_MEDS] == pytest.approx(m.adverse_event_probability, abs=1e-6)
