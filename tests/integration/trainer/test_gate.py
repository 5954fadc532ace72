"""The promotion gate against a real registry: the first model passes on the minimum alone, a better
run moves the champion alias, a worse one is registered but refused with the reason, and the
champion is re-scored on the new run's test rows."""

from __future__ import annotations

import json

from clinops_common.contracts import TrainArgs
from clinops_common.settings import Connections
from clinops_trainer import job
from clinops_trainer.config import TrainerSettings

NAME = "gate-adverse-event"
# a deliberately weak MLP: one epoch, four hidden units, a tiny learning rate
WEAK = {"hidden_units": [4], "epochs": 1, "learning_rate": 1e-5, "seed": 0}
TREES = {"n_estimators": 60, "seed": 0}


def _args(run_id: str, family: str, hp: dict[str, object], min_auroc: float) -> TrainArgs:
    return TrainArgs.model_validate(
        {
            "pipeline": "gate",
            "run_id": run_id,
            "registered_model_name": NAME,
            "model_family": family,
            "min_auroc": min_auroc,
            "hyperparameters": hp,
        }
    )


def test_better_moves_the_alias_worse_is_refused_with_the_reason(conns: Connections, settings: TrainerSettings) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(conns.mlflow_tracking_uri)
    weak = job.train(_args("g1", "pytorch-mlp", WEAK, 0.0), conns, settings, say=print)
    assert weak.promoted
    assert weak.gate_reasons[-1] == "no champion yet"

    better = job.train(_args("g2", "gradient-boosted-trees", TREES, 0.5), conns, settings, say=print)
    assert better.promoted, better.gate_reasons
    assert client.get_model_version_by_alias(NAME, "champion").version == better.model_version
    assert better.metrics["champion_test_auroc"] < better.metrics["test_auroc"]
    assert better.metrics["auroc_diff_ci_low"] <= better.metrics["auroc_diff_vs_champion"]
    assert any(r.startswith(f"beats champion version {weak.model_version}") for r in better.gate_reasons)

    worse = job.train(_args("g3", "pytorch-mlp", WEAK, 0.0), conns, settings, say=print)
    assert not worse.promoted
    assert worse.model_version == "3"  # registered, not promoted
    assert client.get_model_version_by_alias(NAME, "champion").version == better.model_version
    reason = next(r for r in worse.gate_reasons if "champion" in r)
    assert reason.startswith(f"does not beat champion version {better.model_version} re-scored on the same test rows")
    assert "paired bootstrap 95% CI" in reason
    # the champion was re-scored on this run's test rows: the same rows, so the same AUROC as its own test
    # when the test part is the same (same snapshot, same split)
    assert abs(worse.metrics["champion_test_auroc"] - better.metrics["test_auroc"]) < 1e-6
    mv = client.get_model_version(NAME, worse.model_version)
    assert mv.tags["clinops.gate"] == "refused"
    assert json.loads(mv.tags["clinops.gate_reasons"]) == list(worse.gate_reasons)
    run = client.get_run(worse.mlflow_run_id)
    assert run.data.tags["clinops.gate"] == "refused"
    assert "champion_test_auroc" in run.data.metrics
