"""``python -m clinops_trainer train`` as the trainer Job runs it: the command line rendered from the
stage contract, the stroke model, bad input (clear message, exit 1, nothing registered) and SIGTERM
(MLflow run KILLED, nothing registered)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from clinops_common.contracts import TrainArgs, TrainResult, read_result, render
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_devstack.cohort import Cohort


def _env(conns: Connections) -> dict[str, str]:
    return {**os.environ, **conns.as_env(), "CLINOPS_TRAINER_BOOTSTRAP_SAMPLES": "200"}


def _train(conns: Connections, argv: list[str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clinops_trainer", *argv],
        env=_env(conns),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _versions(conns: Connections, name: str) -> list[object]:
    from mlflow import MlflowClient

    return list(MlflowClient(conns.mlflow_tracking_uri).search_model_versions(f"name = '{name}'"))


def test_rendered_command_trains_the_stroke_model(conns: Connections, cohort: Cohort) -> None:
    args = TrainArgs(
        pipeline="stroke-risk",
        run_id="s1",
        model_family="gradient-boosted-trees",
        registered_model_name="stroke_risk_v1",
        feature_service="stroke_risk_v1",
        label="stroke_within_1y",
        min_auroc=0.55,
        hyperparameters={"n_estimators": 80, "seed": 0},
    )
    proc = _train(conns, render(args))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = TrainResult.model_validate_json(proc.stdout.strip().splitlines()[-1])
    assert result.model_version == "1"
    assert result.promoted, result.gate_reasons
    m = result.metrics
    # one row per visit before a stroke whose year of follow-up ended by the as-of date
    assert m["rows_train"] + m["rows_validation"] + m["rows_test"] > 900
    assert m["rows_unlabeled"] > 1000  # every patient's latest visit is less than a year old
    assert m["positives_test"] > 5
    assert "oracle_auroc" in m  # the cohort's true stroke probability on the same rows
    assert m["oracle_auroc"] > 0.6
    assert m["auroc_gap_to_oracle"] == pytest.approx(m["oracle_auroc"] - result.test_auroc, abs=1e-9)
    print(f"stroke model test AUROC {result.test_auroc:.4f}, oracle {m['oracle_auroc']:.4f} on the same rows")
    stored = read_result(s3_client(conns), conns.lake_bucket, TrainResult, "stroke-risk", "s1")
    assert stored == result
    assert "stroke training rows:" in proc.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--feature-service", "nope_v1"], "unknown feature service 'nope_v1'"),
        (["--snapshot-id", "20200101T000000Z-deadbeef"], "no snapshot '20200101T000000Z-deadbeef'"),
        (["--lookback-days", "2"], "less than the two purges"),
        (["--model-family", "random-forest"], "--model-family"),
        (["--split", '{"train":0.9,"validation":0.2,"test":0.1}'], "sum to 1"),
    ],
)
def test_bad_input_fails_clearly_and_registers_nothing(
    conns: Connections, cohort: Cohort, extra: list[str], message: str
) -> None:
    base = ["train", "--pipeline", "bad", "--run-id", "b1", "--registered-model-name", "bad-input"]
    proc = _train(conns, [*base, *extra], timeout=200)
    assert proc.returncode in (1, 2), proc.stderr[-2000:]
    assert message in proc.stderr
    assert _versions(conns, "bad-input") == []


def test_unreachable_mlflow_or_s3_fails_clearly(conns: Connections, cohort: Cohort) -> None:
    base = ["train", "--pipeline", "bad", "--run-id", "b2", "--registered-model-name", "bad-unreachable"]
    no_mlflow = conns.model_copy(update={"mlflow_tracking_uri": "http://127.0.0.1:9"})
    proc = _train(no_mlflow, base, timeout=120)
    assert proc.returncode == 1
    assert "MLflow is unreachable at http://127.0.0.1:9" in proc.stderr
    no_s3 = conns.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    proc = _train(no_s3, base, timeout=300)
    assert proc.returncode == 1
    assert "cannot read the lake at http://127.0.0.1:9" in proc.stderr
    assert _versions(conns, "bad-unreachable") == []


def test_sigterm_ends_the_run_killed_and_registers_nothing(conns: Connections, cohort: Cohort) -> None:
    from mlflow import MlflowClient

    argv = [
        "train", "--pipeline", "term", "--run-id", "t1", "--registered-model-name", "term-model",
        "--hyperparameters", '{"epochs": 500, "patience": 500, "hidden_units": [256, 256]}',
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "clinops_trainer", *argv],
        env=_env(conns),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        seen.append(line)
        if "pytorch-mlp step 1:" in line or time.monotonic() > deadline:
            break
    assert any("step 1:" in line for line in seen), "".join(seen)[-2000:]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "nothing registered" in err
    client = MlflowClient(conns.mlflow_tracking_uri)
    exp = client.get_experiment_by_name("clinops/term")
    runs = client.search_runs([exp.experiment_id], "tags.`clinops.run_id` = 't1'")
    assert [r.info.status for r in runs] == ["KILLED"]
    assert _versions(conns, "term-model") == []
