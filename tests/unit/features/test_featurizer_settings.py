"""The featurizer's Spark tuning: what the stage session gets and what the featurize job plans under."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinops_featurizer.config import JIT_LIGHT_JAVA_OPTIONS, FeaturizerSettings


def test_defaults_are_the_measured_ones() -> None:
    s = FeaturizerSettings()
    conf = s.spark_conf()
    assert conf["spark.driver.extraJavaOptions"] == JIT_LIGHT_JAVA_OPTIONS
    assert "spark.eventLog.enabled" not in conf
    assert s.sql_conf() == {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}
    assert "spark.sql.codegen.wholeStage" not in conf  # the session keeps Spark's (the stroke job plans under it)


def test_environment_turns_each_back_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLINOPS_FEATURIZER_DRIVER_JAVA_OPTIONS", "")
    monkeypatch.setenv("CLINOPS_FEATURIZER_WHOLE_STAGE_CODEGEN", "true")
    monkeypatch.setenv("CLINOPS_FEATURIZER_EVENT_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("CLINOPS_FEATURIZER_EXTRA_SPARK_CONF", '{"spark.sql.adaptive.enabled": "true", "a.b": "c"}')
    s = FeaturizerSettings()
    conf = s.spark_conf()
    assert "spark.driver.extraJavaOptions" not in conf
    assert conf["spark.eventLog.dir"] == tmp_path.as_uri()
    assert conf["a.b"] == "c"
    assert s.sql_conf() == {"spark.sql.codegen.wholeStage": "true", "spark.sql.adaptive.enabled": "true"}
