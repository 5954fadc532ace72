"""Train end to end on a generated cohort; the registered version loads from models:/<name>@champion
through the model package and gives the probabilities the trainer logged on the test rows."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from clinops_common.contracts import TrainArgs
from clinops_common.model import load_reference, load_registered
from clinops_common.settings import Connections
from clinops_devstack.cohort import Cohort
from clinops_trainer import job
from clinops_trainer.config import TrainerSettings

MLP = {"hidden_units": [32], "epochs": 6, "batch_size": 256, "seed": 3}


def test_train_register_and_load_the_champion(
    conns: Connections, cohort: Cohort, settings: TrainerSettings, tmp_path: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    args = TrainArgs(
        pipeline="e2e",
        run_id="r1",
        registered_model_name="e2e-adverse-event",
        min_auroc=0.5,
        hyperparameters=MLP,
    )
    t0 = time.monotonic()
    result = job.train(args, conns, settings, say=print)
    print(f"train took {time.monotonic() - t0:.1f}s")
    assert result.model_version == "1"
    assert result.promoted, result.gate_reasons
    assert any("no champion yet" in r for r in result.gate_reasons)
    from clinops_common.features.offline import OfflineStore

    assert result.snapshot_id == OfflineStore.for_lake(conns).latest_id()  # the latest snapshot by default
    assert 0.6 < result.metrics["test_auroc"] <= 1
    assert "oracle_auroc" in result.metrics
    assert "auroc_gap_to_oracle" in result.metrics
    assert result.metrics["rows_unlabeled"] >= 48 * 23  # the last 24 hours of each patient

    pkg, version = load_registered(conns.mlflow_tracking_uri, "e2e-adverse-event", cache_dir=tmp_path)
    assert version == "1"
    client = MlflowClient(conns.mlflow_tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["clinops.snapshot_id"] == result.snapshot_id
    assert run.data.params["feature_service"] == "adverse_event_v1"
    assert "schema_id.vitals" in run.data.params
    history = client.get_metric_history(result.mlflow_run_id, "val_auroc")
    assert len(history) >= 2  # one per epoch
    artifacts = {a.path for a in client.list_artifacts(result.mlflow_run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/confusion_matrix.png",
            "plots/feature_importance.png"} <= artifacts  # fmt: skip
    assert run.inputs.dataset_inputs, "the training set is logged as a dataset input"

    logged = pd.read_parquet(
        mlflow.artifacts.download_artifacts(
            run_id=result.mlflow_run_id,
            artifact_path="predictions/test.parquet",
            tracking_uri=conns.mlflow_tracking_uri,
        )
    )
    # rebuild the same test rows from the snapshot and score them through the registered package
    from clinops_common.features.training import build_training_set

    store = OfflineStore.for_lake(conns)
    rows = build_training_set(
        logged[["patient_id", "event_timestamp"]], pkg.feature_service, result.snapshot_id, store=store
    ).frame
    np.testing.assert_allclose(pkg.predict_frame(rows), logged["probability"].to_numpy(), atol=1e-6)
    assert pkg.risk_level(1.0) == "HIGH"

    ref = load_reference(conns.mlflow_tracking_uri, "e2e-adverse-event", version, cache_dir=tmp_path)
    assert 0 < len(ref.sample) <= 20_000
    assert {"probability", "label"} <= set(ref.sample.columns)
    assert set(pkg.feature_order) <= set(ref.bins)


def test_same_seed_same_metrics_and_idempotent_rerun(conns: Connections, settings: TrainerSettings) -> None:
    from mlflow import MlflowClient

    def args(run_id: str) -> TrainArgs:
        return TrainArgs(
            pipeline="e2e",
            run_id=run_id,
            registered_model_name="e2e-repeat",
            model_family="gradient-boosted-trees",
            min_auroc=0.5,
            must_beat_champion=False,
            hyperparameters={"n_estimators": 40, "seed": 1},
        )

    first = job.train(args("a"), conns, settings, say=print)
    again = job.train(args("a"), conns, settings, say=print)  # the same run id: nothing new
    assert again.model_version == first.model_version
    assert again.mlflow_run_id == first.mlflow_run_id
    assert len(MlflowClient(conns.mlflow_tracking_uri).search_model_versions("name = 'e2e-repeat'")) == 1
    second = job.train(args("b"), conns, settings, say=print)  # a new run id, same seed, same data
    assert second.model_version == "2"
    assert {k: second.metrics[k] for k in first.metrics} == first.metrics
