"""A SparkApplication's driver and executors: the stages' security context, /tmp, the image's jars and
the spec's own Spark properties (what spark-operator's webhook puts on the pods)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clinops_operator.core import render, stages
from clinops_operator.core.spec import Pipeline

REPO = Path(__file__).resolve().parents[3]


def _app(spark: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "adverse-event.yaml").read_text())
    body["metadata"] |= {"uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
    if spark is not None:
        body["spec"]["spark"] = spark
    p = Pipeline.from_body(body)
    return render.render(stages.task(p, stages.Stage.FEATURIZER, "m1"), p)


def test_driver_and_executors_run_non_root_read_only_with_a_writable_tmp() -> None:
    app = _app()
    assert app["spec"]["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    for role in ("driver", "executor"):
        pod = app["spec"][role]
        assert pod["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["podSecurityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001}
        assert pod["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_spec_spark_conf_and_master_reach_the_application_but_cannot_move_the_image_jars() -> None:
    app = _app(
        {
            "kubernetesMaster": "https://127.0.0.1:6443",
            "sparkConf": {
                "spark.sql.shuffle.partitions": "2",
                "spark.driver.extraClassPath": "/elsewhere/*",
            },
        }
    )
    assert app["spec"]["driver"]["kubernetesMaster"] == "https://127.0.0.1:6443"
    assert "kubernetesMaster" not in app["spec"]["executor"]
    conf = app["spec"]["sparkConf"]
    assert conf["spark.sql.shuffle.partitions"] == "2"
    assert conf["spark.driver.extraClassPath"] == "/opt/clinops/jars/*"
    assert conf["spark.executor.extraClassPath"] == "/opt/clinops/jars/*"


def test_without_spark_conf_only_the_jars_are_set() -> None:
    assert "kubernetesMaster" not in _app()["spec"]["driver"]
    assert _app()["spec"]["sparkConf"] == {
        "spark.driver.extraClassPath": "/opt/clinops/jars/*",
        "spark.executor.extraClassPath": "/opt/clinops/jars/*",
    }
