"""The processor's service template: one settings class (``CLINOPS_PROCESSOR_*``) and its run metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from clinops_processor.config import ProcessorSettings
from clinops_processor.metrics import ProcessorMetrics


def test_settings_come_from_processor_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLINOPS_PROCESSOR_SHUFFLE_PARTITIONS", "3")
    monkeypatch.setenv("CLINOPS_PROCESSOR_METRICS_FILE", str(tmp_path / "m.prom"))
    s = ProcessorSettings()
    assert s.metrics_file == tmp_path / "m.prom"
    conf = s.spark_conf()
    assert conf["spark.sql.shuffle.partitions"] == "3"
    assert conf["spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version"] == "2"


def test_defaults_leave_shuffle_partitions_to_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINOPS_PROCESSOR_SHUFFLE_PARTITIONS", raising=False)
    assert "spark.sql.shuffle.partitions" not in ProcessorSettings().spark_conf()


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINOPS_PROCESSOR_SHUFFLE_PARTITIONS", "zero")
    with pytest.raises(ValidationError, match="shuffle_partitions"):
        ProcessorSettings()


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
    }


def test_a_run_writes_its_metrics_as_a_text_file(tmp_path: Path) -> None:
    m = ProcessorMetrics()
    m.record(new_objects=7, objects_read=9, dates=2, seconds=12.5)
    out = tmp_path / "sub" / "processor.prom"
    m.write(out)
    got = _samples(out)
    assert got[("clinops_processor_new_objects", ())] == 7
    assert got[("clinops_processor_objects_read", ())] == 9
    assert got[("clinops_processor_dates_recomputed", ())] == 2
    assert got[("clinops_processor_run_duration_seconds", ())] == 12.5
    assert got[("clinops_processor_last_run_timestamp_seconds", (("result", "success"),))] > 1.7e9


def test_a_failed_run_is_recorded_as_a_failure(tmp_path: Path) -> None:
    m = ProcessorMetrics()
    m.record_failure(3.0)
    m.write(tmp_path / "p.prom")
    got = _samples(tmp_path / "p.prom")
    assert ("clinops_processor_last_run_timestamp_seconds", (("result", "failure"),)) in got
    assert ("clinops_processor_last_run_timestamp_seconds", (("result", "success"),)) not in got
