"""The scorer end to end: materialized features -> /predict -> the model applied to the offline
training row of the same patient and hour; batch scoring of that hour gives the same number; every
answer has its committed audit row; unknown, stale and missing are never silent."""

from __future__ import annotations

import re
import threading
import time
import uuid

import httpx
import numpy as np
import psycopg
import pytest
from scorer_helpers import NO_MEDS, STALE, ScorerProcess, World, register, train_package

from clinops_scorer import batch
from clinops_scorer.audit import libpq_dsn
from clinops_scorer.registry import load_champion


def audit_rows(database_url: str, ids: list[str]) -> dict[str, dict[str, object]]:
    with psycopg.connect(libpq_dsn(database_url)) as conn:
        cur = conn.execute(
            "SELECT id::text, patient_id, score, risk_level, model_name, model_version, source, degraded,"
            " features, feature_event_times, stale_views, missing_views FROM prediction_audit WHERE id = ANY(%s)",
            [[uuid.UUID(i) for i in ids]],
        )
        cols = [d.name for d in cur.description or []]
        return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_predict_equals_the_offline_training_row_and_batch(
    scorer: ScorerProcess, world: World, database_url: str, mlflow_url: str
) -> None:
    patients = ["PT00001", "PT00007", "PT00023"]
    answers = [httpx.post(f"{scorer.url}/predict", json={"patient_id": p}, timeout=10) for p in patients]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
    got = {a.json()["patient_id"]: a.json() for a in answers}
    order = list(world.package.feature_order)
    offline = world.package.predict_frame(world.training.loc[patients, order])
    for p, expected in zip(patients, offline, strict=True):
        body = got[p]
        assert body["model_name"] == world.model_name
        assert body["model_version"] == world.version
        assert body["adverse_event_probability"] == pytest.approx(float(expected), abs=1e-6)
        assert body["risk_level"] == world.package.risk_level(body["adverse_event_probability"])
        assert body["degraded"] is False
        assert set(body["feature_freshness"]) == {"vitals", "labs", "medications", "context"}
        assert all(f["status"] == "fresh" for f in body["feature_freshness"].values())
        assert all(0 <= f["age_seconds"] < 3600 + 60 for f in body["feature_freshness"].values())

    # the audit: one committed row per answer, its features readable as JSON, equal to the offline row
    rows = audit_rows(database_url, [b["prediction_id"] for b in got.values()])
    assert len(rows) == len(patients)
    for body in got.values():
        row = rows[body["prediction_id"]]
        assert row["patient_id"] == body["patient_id"]
        assert row["score"] == pytest.approx(body["adverse_event_probability"], abs=1e-9)
        assert row["source"] == "online"
        assert row["model_version"] == world.version
        features = row["features"]
        assert isinstance(features, dict)
        assert len(features) == len(order)
        expected_row = world.training.loc[body["patient_id"]]
        hr = expected_row["heart_rate_mean_1h"]
        assert features["heart_rate_mean_1h"] == (None if np.isnan(hr) else pytest.approx(hr, rel=1e-6))
        assert set(row["feature_event_times"]) == {"vitals", "labs", "medications", "context"}  # type: ignore[arg-type]

    # batch scoring of the same hour: the same numbers, marked batch, at the historical time
    champ = load_champion(mlflow_url, world.model_name, world.version, None)
    steps = batch.hourly_steps(world.hour.to_pydatetime(), (world.hour + np.timedelta64(1, "h")).to_pydatetime())
    assert len(steps) == 1
    dsn = libpq_dsn(database_url)
    result = batch.run(champ, world.store, dsn, start=steps[0], end=steps[0] + np.timedelta64(1, "h"))
    assert result.unknown == 0
    assert result.refused == 2  # the stale and the medication-less patient
    assert result.written == result.scored == 40
    with psycopg.connect(dsn) as conn:
        back = dict(
            conn.execute(
                "SELECT patient_id, score FROM predictions WHERE batch_id = %s AND predicted_at = %s",
                [result.batch_id, world.hour.to_pydatetime()],
            ).fetchall()
        )
    for p in patients:
        assert back[p] == pytest.approx(got[p]["adverse_event_probability"], abs=1e-6)
    again = batch.run(champ, world.store, dsn, start=steps[0], end=steps[0] + np.timedelta64(1, "h"))
    assert again.scored == 40
    assert again.written == 0  # same ids: nothing written twice


def test_unknown_stale_and_missing_are_refused_with_the_views_named(scorer: ScorerProcess) -> None:
    unknown = httpx.post(f"{scorer.url}/predict", json={"patient_id": "PT-NOBODY"}, timeout=10)
    assert unknown.status_code == 404
    assert "unknown patient" in unknown.json()["error"]
    stale = httpx.post(f"{scorer.url}/predict", json={"patient_id": STALE}, timeout=10)
    assert stale.status_code == 409
    assert stale.json()["stale_views"] == ["labs"]
    assert "labs (stale)" in stale.json()["error"]
    missing = httpx.post(f"{scorer.url}/predict", json={"patient_id": NO_MEDS}, timeout=10)
    assert missing.status_code == 409
    assert missing.json()["missing_views"] == ["medications"]

    both = httpx.post(
        f"{scorer.url}/predict/batch", json={"patient_ids": ["PT00002", STALE, "PT-NOBODY", "PT00003"]}, timeout=10
    )
    assert both.status_code == 200, both.text
    body = both.json()
    assert [p["patient_id"] for p in body["predictions"]] == ["PT00002", "PT00003"]
    assert {r["patient_id"]: r["status"] for r in body["refused"]} == {STALE: 409, "PT-NOBODY": 404}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/predict", {}, "patient_id"),
        ("/predict", {"patient_id": "PT1", "extra": 1}, "extra"),
        ("/predict", {"patient_id": 42}, "patient_id"),
        ("/predict", {"patient_id": "PT 1; DROP"}, "patient_id"),
        ("/predict/batch", {"patient_ids": []}, "patient_ids"),
        ("/predict/batch", {"patient_ids": [f"PT{i}" for i in range(17)]}, "patient_ids"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(scorer: ScorerProcess, path: str, payload: object, field: str) -> None:
    r = httpx.post(f"{scorer.url}{path}", json=payload, timeout=10)
    assert r.status_code == 400, r.text
    assert field in r.text


def test_non_utf8_and_non_json_bodies_are_400(scorer: ScorerProcess) -> None:
    for body in (b"\xff\xfe\x00garbage", b"{not json", b'{"patient_id": "\xc3\x28"}'):
        r = httpx.post(f"{scorer.url}/predict", content=body, headers={"content-type": "application/json"}, timeout=10)
        assert r.status_code == 400, (body, r.status_code, r.text)


def test_metrics_are_fine_grained_and_carry_no_patient_id(scorer: ScorerProcess, world: World) -> None:
    httpx.post(f"{scorer.url}/predict", json={"patient_id": "PT00011"}, timeout=10).raise_for_status()
    assert httpx.post(f"{scorer.url}/predict", json={"patient_id": STALE}, timeout=10).status_code == 409
    assert httpx.post(f"{scorer.url}/predict", json={"patient_id": "PT 00011"}, timeout=10).status_code == 400
    text = httpx.get(f"{scorer.url}/metrics", timeout=10).text
    assert re.search(rf'clinops_scorer_predictions_total\{{.*model_version="{world.version}".*\}} [1-9]', text), text[
        :3000
    ]
    for name in ("feature_read_seconds", "model_seconds", "audit_commit_seconds", "audit_batch_rows"):
        assert f"clinops_scorer_{name}_bucket" in text
    assert 'clinops_scorer_feature_read_seconds_bucket{le="0.001"}' in text
    assert re.search(r'clinops_scorer_feature_views_not_fresh_total\{.*view="labs".*\}', text)
    assert "bentoml_service_request_duration_seconds_bucket" in text
    assert "PT0" not in text
    assert STALE not in text
    log = scorer.log.read_text(errors="replace")
    assert '"prediction_id"' in log
    assert "PT0" not in log  # no patient id in a log line


def test_alias_move_serves_the_new_version_within_the_poll_interval(
    scorer: ScorerProcess, world: World, mlflow_url: str
) -> None:
    """Runs last in this module: it moves the alias, then moves it back."""
    from mlflow import MlflowClient

    new = train_package(world.training.reset_index(), world.model_name, seed=7)
    v2 = register(mlflow_url, new, world.training.reset_index(), alias=None)
    client = MlflowClient(mlflow_url)
    seen: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                r = http.post(f"{scorer.url}/predict", json={"patient_id": "PT00005"})
                seen.append((time.monotonic(), r.status_code, r.json().get("model_version")))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        moved = time.monotonic()
        client.set_registered_model_alias(world.model_name, "champion", v2)
        deadline = moved + 30
        while not any(v == v2 for _, _, v in seen[-3:]):
            assert time.monotonic() < deadline, "the new version was not served within 30 s"
            time.sleep(0.05)
        first_new = min(t for t, _, v in seen if v == v2)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        client.set_registered_model_alias(world.model_name, "champion", world.version)
    assert {code for _, code, _ in seen} == {200}  # in-flight requests finished through the swap
    assert {v for _, _, v in seen} == {world.version, v2}
    assert all(v == v2 for t, _, v in seen if t > first_new + 0.2)  # no request sees the old model after
    # poll interval 1 s, plus the download and warm-up of the new version on a shared machine
    assert first_new - moved < 1.0 + 15
    body = httpx.post(f"{scorer.url}/predict", json={"patient_id": "PT00005"}, timeout=10).json()
    expected = new.predict_frame(world.training.loc[["PT00005"], list(new.feature_order)])[0]
    if body["model_version"] == v2:
        assert body["adverse_event_probability"] == pytest.approx(float(expected), abs=1e-6)
