"""Runtime settings have no dev defaults: a missing variable is an error at start-up that names it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from clinops_common.settings import Connections, LakeConnection, MissingSettingsError

REQUIRED = {
    "CLINOPS_KAFKA_BOOTSTRAP_SERVERS",
    "CLINOPS_S3_ENDPOINT_URL",
    "CLINOPS_S3_ACCESS_KEY",
    "CLINOPS_S3_SECRET_KEY",
    "CLINOPS_REDIS_URL",
    "CLINOPS_DATABASE_URL",
    "CLINOPS_MLFLOW_TRACKING_URI",
}


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CLINOPS_"):
            monkeypatch.delenv(key)


@pytest.mark.usefixtures("no_settings")
def test_connections_name_every_missing_variable() -> None:
    with pytest.raises(MissingSettingsError) as err:
        Connections()
    assert set(err.value.variables) == REQUIRED
    assert "CLINOPS_REDIS_URL" in str(err.value)


@pytest.mark.usefixtures("no_settings")
def test_one_missing_variable_is_named_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINOPS_S3_ENDPOINT_URL", "http://lake:9000")
    monkeypatch.setenv("CLINOPS_S3_ACCESS_KEY", "k")
    with pytest.raises(MissingSettingsError) as err:
        LakeConnection()
    assert err.value.variables == ["CLINOPS_S3_SECRET_KEY"]


@pytest.mark.parametrize(
    "argv",
    [
        ["clinops_ingest", "run"],
        ["clinops_processor", "process", "--pipeline", "p", "--run-id", "r"],
        ["clinops_featurizer", "materialize", "--pipeline", "p", "--run-id", "r"],
        ["clinops_operator", "run", "--standalone"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_service_started_without_settings_exits_at_once_naming_one(argv: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINOPS_")}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "missing setting(s): CLINOPS_S3_ENDPOINT_URL" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 30


@pytest.mark.usefixtures("no_settings")
def test_training_needs_only_the_lake_and_the_registry() -> None:
    from clinops_common.settings import TrainingConnections

    with pytest.raises(MissingSettingsError) as err:
        TrainingConnections()
    assert set(err.value.variables) == {
        "CLINOPS_S3_ENDPOINT_URL",
        "CLINOPS_S3_ACCESS_KEY",
        "CLINOPS_S3_SECRET_KEY",
        "CLINOPS_MLFLOW_TRACKING_URI",
    }
