"""The trainer where one family's library is missing (the clinops image has no torch): the other family
trains without a baseline, and asking for the missing family is a clear error before anything starts."""

from __future__ import annotations

import importlib.util

import pytest

from clinops_common.contracts import TrainArgs
from clinops_common.settings import TrainingConnections
from clinops_trainer import families, job
from clinops_trainer.config import TrainerSettings


def test_the_baseline_is_the_other_family_where_its_library_is_installed() -> None:
    assert job.baseline_family("gradient-boosted-trees", lambda _f: True) == "pytorch-mlp"
    assert job.baseline_family("pytorch-mlp", lambda _f: True) == "gradient-boosted-trees"


def test_no_baseline_where_the_other_familys_library_is_missing() -> None:
    without_torch = lambda f: families.LIBRARY[f] != "torch"  # noqa: E731
    assert job.baseline_family("gradient-boosted-trees", without_torch) == ""


def test_availability_follows_the_installed_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    assert families.available("gradient-boosted-trees")  # xgboost is in every image and the dev env
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch" else object())
    assert not families.available("pytorch-mlp")
    assert families.available("gradient-boosted-trees")


def test_the_missing_family_as_the_candidate_fails_clearly_before_any_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(families, "available", lambda f: families.LIBRARY[f] != "torch")
    args = TrainArgs(pipeline="adverse-event", run_id="m1", registered_model_name="m", model_family="pytorch-mlp")
    conns = TrainingConnections(
        s3_endpoint_url="http://127.0.0.1:9",
        s3_access_key="k",
        s3_secret_key="s",
        lake_bucket="lake",
        mlflow_tracking_uri="http://127.0.0.1:9",
    )
    with pytest.raises(job.TrainingError, match=r"needs torch.*clinops-trainer image"):
        job.train(args, conns, TrainerSettings(), say=lambda _m: None)
