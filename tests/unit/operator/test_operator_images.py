"""What a rendered child relies on in its image exists: the entry point file, and the jars come from settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from clinops_common.spark import IMAGE_JARS_DIR, SparkSettings
from clinops_operator.core import render, stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]


def pipeline(name: str) -> Pipeline:
    body = yaml.safe_load((REPO / "manifests" / f"{name}.yaml").read_text())
    body["metadata"]["uid"] = "u1"
    return Pipeline.from_body(body)


@pytest.mark.parametrize("stage", [s for s in stages.Stage if s.engine == "spark"], ids=str)
def test_main_application_file_is_the_packages_own_entry_point(stage: stages.Stage) -> None:
    p = pipeline("stroke-risk" if stage is stages.Stage.STROKE else "adverse-event")
    app = render.render(stages.task(p, stage, "m1"), p)
    main = app["spec"]["mainApplicationFile"]
    prefix = f"local://{render.IMAGE_SITE_PACKAGES}/"
    assert main.startswith(prefix)
    relative = main.removeprefix(prefix)  # e.g. clinops_processor/__main__.py
    spec = importlib.util.find_spec(stage.package)
    assert spec is not None
    assert spec.submodule_search_locations is not None
    site_packages = Path(next(iter(spec.submodule_search_locations))).parent
    assert (site_packages / relative).is_file(), f"{relative} is not a file of the installed package"
    assert app["spec"]["arguments"][0] == stage.contract.value
    conf = app["spec"]["sparkConf"]
    assert conf["spark.driver.extraClassPath"] == f"{render.IMAGE_JARS}/*"
    assert str(IMAGE_JARS_DIR) == render.IMAGE_JARS


@pytest.mark.parametrize("stage", [s for s in stages.Stage if s.engine == "job"], ids=str)
def test_job_stages_run_their_package(stage: stages.Stage) -> None:
    p = pipeline("adverse-event")
    container = render.render(stages.task(p, stage, "m1"), p)["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", stage.package]
    assert container["args"][0] == stage.contract.value


def test_spark_jars_come_from_settings_and_a_missing_folder_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLINOPS_SPARK_JARS_DIR", raising=False)
    assert SparkSettings().jars_dir == Path("/opt/clinops/jars")
    with pytest.raises(FileNotFoundError, match="CLINOPS_SPARK_JARS_DIR"):
        SparkSettings(jars_dir=tmp_path).jars()
    (tmp_path / "hadoop-aws.jar").write_bytes(b"")
    monkeypatch.setenv("CLINOPS_SPARK_JARS_DIR", str(tmp_path))
    assert SparkSettings().jars() == [tmp_path / "hadoop-aws.jar"]
