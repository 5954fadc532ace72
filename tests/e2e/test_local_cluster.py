"""End to end on the local cluster: the chart's pods and a pipeline's Jobs run for real on the real node.

The local control plane (etcd, kube-apiserver, controller manager, scheduler, kwok) with its one real
kubelet node (containerd + runc), the images of `make image` imported into it, and the harness's
MinIO, Redis, PostgreSQL and MLflow on loopback. The steps (tests/e2e/e2e_steps.py) are the kind
scenario's:

1. ``helm install`` the chart: the operator's pod runs the clinops image on the real node under its
   ServiceAccount (host network; it reaches the API server on loopback) and becomes Ready.
2. Secrets created; the example pipeline applied, pointed at the local stack (the harness's Kafka
   too), its pods placed on the real node with a fraction of a core each (``spec.pods``). Its
   long-running children, the ``<pipeline>-ingest`` and ``<pipeline>-stream`` Deployments, run their
   consumers on the real node against that Kafka.
3. The materializer Job's pod writes the online store and the trainer Job's pod (the clinops image,
   no torch: no baseline) trains ``gradient-boosted-trees`` and registers it in MLflow; the gate's
   decision is in the pipeline's status (on this small cohort it refuses the model for its AUROC,
   and the test then moves the ``champion`` alias itself). (``pytorch-mlp``
   needs the clinops-trainer image, torch's layer, ~5 GB more to import: not in this scenario.)
4. ``helm upgrade`` adds a scorer: its pod loads the champion and answers ``/predict`` through its
   Service's endpoint (the pod's host-network address).
5. A second pipeline over an empty lake (bad input): its trainer's pod finds no labelled rows in the
   empty snapshot and fails (kwok mode: the materializer finds no snapshot), and the pipeline fails
   with the Job's reason; the pod's log says why.
6. Deleting a pipeline deletes every child and pod (owner references, the garbage collector): Jobs,
   SparkApplications, the ingest and stream Deployments and their ReplicaSets.

The processor's and featurizer's SparkApplications run for real (``CLINOPS_E2E_REAL_SPARK=1``, the
default): the real spark-operator (controller and mutating webhook, ``clinops_devstack.spark_operator``,
local processes acting in this scenario's namespace only) submits each with spark-submit, and the
driver and executor pods run the clinops image on the real node (host network, a tenth of a core
each). The cohort's events are produced to the harness's Kafka (topics of their own) and ingested to
bronze with the ingest stage's own command before the pipeline is applied; the pipeline's processor
makes silver of them and its featurizer the offline snapshot the materializer and trainer read.
With ``CLINOPS_E2E_REAL_SPARK=0`` kwok's stand-in completes the SparkApplications instead, and the
snapshot they would have written is written before the pipeline is applied by the featurizer's own
Spark code (``clinops_devstack.cohort``) in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from e2e_steps import (
    child_pods,
    create_secret,
    get,
    helm_install,
    helm_uninstall,
    helm_upgrade,
    items,
    pipeline_body,
    predict,
    service_endpoints,
    wait_gone,
    wait_phase,
    wait_services_running,
)
from mlflow import MlflowClient

from clinops_common import db
from clinops_common.lifecycle.bucket import create_lake_bucket
from clinops_common.settings import Connections
from clinops_common.storage import s3_client
from clinops_common.synthetic import FaultRates, GeneratorConfig, generate
from clinops_common.synthetic.sinks import produce, upload
from clinops_devstack import node, spark_operator, supervisor, toolchain
from clinops_devstack.cohort import Cohort, build_cohort
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import Stage, task

# Setup (control plane, real node, image import, the offline snapshot, helm install) counts against a
# test's timeout: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

RELEASE = "clinops"
NAMESPACE = "clinops-e2e"
LAKE_BUCKET = "e2e-lake"
EMPTY_BUCKET = "e2e-empty-lake"
TOLERATION = {"key": node.TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
ON_REAL_NODE = {"nodeSelector": {"type": "real"}, "tolerations": [TOLERATION]}
CHILD_KINDS = ("jobs", "sparkapplications", "deployments", "replicasets", "pods")
LABEL = "clinops.io/pipeline"
NEVER = "0 0 1 1 *"  # schedules that do not fire during the test: only the run-now annotation starts runs
# The processor's and featurizer's SparkApplications run for real (spark-operator, driver and executor
# pods on the real node); 0: kwok's stand-in completes them and the snapshot is written beforehand.
REAL_SPARK = os.environ.get("CLINOPS_E2E_REAL_SPARK", "1") == "1"
TOPIC_PREFIX = f"e2e{uuid.uuid4().hex[:6]}-"  # the harness's Kafka is shared: topics of this run's own


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def lake(s3: Connections) -> Connections:
    """Both lakes as `python -m clinops_common.lifecycle create-bucket` makes them (object lock: the
    ingest Deployment refuses to write bronze to a bucket without it)."""
    client = s3_client(s3)
    for bucket in (LAKE_BUCKET, EMPTY_BUCKET):
        create_lake_bucket(client, bucket)
    return s3.model_copy(update={"lake_bucket": LAKE_BUCKET})


def _cohort_config() -> GeneratorConfig:
    """24 inpatients over the 4 days up to this hour."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return GeneratorConfig(
        seed=14,
        patients=24,
        days=4,
        cohort=24,
        start=hour - timedelta(days=4),
        vitals_interval_min=20,
        faults=FaultRates.none(),
    )


@pytest.fixture(scope="module")
def cohort(lake: Connections, kafka: Connections, stack: Any) -> Iterator[Cohort | None]:
    """The cohort in the lake. Real Spark: its events in bronze (produced to Kafka, ingested by the
    ingest stage's own command), its batch tables and oracle uploaded; the pipeline's Spark stages make
    silver and the snapshot. Otherwise: featurized into the offline store by the featurizer's Spark
    code (what the featurizer SparkApplication would have written)."""
    if REAL_SPARK:
        _bronze_cohort(lake, kafka)
        yield None
        return
    from clinops_common.spark import spark_session
    from clinops_processor.job import SPARK_CONF

    spark = spark_session(
        "clinops-e2e",
        lake,
        settings=stack.settings.spark("local[2]"),
        extra_conf={**SPARK_CONF, "spark.sql.shuffle.partitions": "2"},
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield build_cohort(lake, spark, _cohort_config(), stroke=False)
    finally:
        spark.stop()  # the integration tests' own session starts with its own settings


def _bronze_cohort(lake: Connections, kafka: Connections) -> None:
    conns = kafka.model_copy(update={"lake_bucket": LAKE_BUCKET})
    ds = generate(_cohort_config())
    sent = asyncio.run(produce(ds.messages, conns, topic_prefix=TOPIC_PREFIX))
    assert sent == len(ds.messages)
    upload(ds, conns)  # batch tables (demographics) and the oracle
    body = pipeline_body("adverse-event", NAMESPACE, _spec(lake, kafka, "", "unused", LAKE_BUCKET, "-"))
    body["metadata"]["uid"] = str(uuid.uuid4())
    t = task(Pipeline.from_body(body), Stage.INGEST, "e2e-bronze")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        **dict(t.env),
        **{k: v for k, v in conns.as_env().items() if k in {e.env for e in t.secret_env}},
    }
    proc = subprocess.run(
        [sys.executable, "-m", t.stage.package, *t.args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, f"ingest to bronze failed:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def local_spark_operator(cluster: Any, installed: dict[str, Any]) -> Iterator[None]:
    """The real spark-operator (webhook, then controller) for this scenario's namespace; stopped, its
    webhook configurations and namespace removed, afterwards."""
    if not REAL_SPARK:
        yield
        return
    s = cluster.settings
    comps = spark_operator.components(s, [NAMESPACE])
    try:
        for comp in comps:
            supervisor.start(s, comp, say=lambda _msg: None)
        yield
    finally:
        for comp in reversed(comps):
            supervisor.stop(s, comp.name, say=lambda _msg: None)
        spark_operator.unregister_webhooks(s)
        cluster.kubectl("delete", "namespace", spark_operator.WEBHOOK_NAMESPACE, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module", autouse=True)
def redis_left_clean(redis_url: str) -> Iterator[None]:
    """The harness's Redis is shared: the feature keys this scenario's pods wrote go with it."""
    yield
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter("clinops:fs:*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def installed(
    cluster: Any,
    cohort: Cohort | None,
    clinops_image: str,
    lake: Connections,
    kafka: Connections,
    redis_url: str,
    database_url: str,
    mlflow_url: str,
) -> Iterator[dict[str, Any]]:
    """The chart installed (operator only) with its Secrets; the operator pod Ready on the real node.
    Uninstalled afterwards, and its namespace deleted: later tests install the chart again."""
    s = cluster.settings
    cluster.kubectl("create", "namespace", NAMESPACE)
    db.upgrade(database_url)
    lake_keys = {
        "accessKeyId": lake.s3_access_key.get_secret_value(),
        "secretAccessKey": lake.s3_secret_key.get_secret_value(),
    }
    create_secret(cluster.kubectl, NAMESPACE, "clinops-lake", lake_keys)
    # The scorer's own lake Secret (lake.componentSecrets.scorer); here with the harness's one key pair.
    create_secret(cluster.kubectl, NAMESPACE, "clinops-lake-scorer", lake_keys)
    create_secret(cluster.kubectl, NAMESPACE, "clinops-redis", {"url": redis_url})
    create_secret(cluster.kubectl, NAMESPACE, "clinops-postgres", {"url": database_url})
    create_secret(cluster.kubectl, NAMESPACE, "clinops-db-scorer", {"url": database_url})
    repository, _, tag = clinops_image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "hostNetwork": True,
        "peering": {"enabled": False},
        "operator": {
            "healthPort": _free_port(),
            "reconcileIntervalSeconds": 2,
            "backoffSeconds": 2,
            # Host network and no kube-proxy: the API server on loopback instead of the kubernetes Service.
            "extraEnv": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": s.host},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(s.ports.kube_apiserver)},
            ],
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "768Mi"}},
            **ON_REAL_NODE,
        },
        "lake": {"endpoint": lake.s3_endpoint_url},
        "endpoints": {"mlflowTrackingUri": mlflow_url},
        "scorer": {
            "port": _free_port(),
            "threads": 4,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1536Mi"}},
            "podDisruptionBudget": {"enabled": False},
            **ON_REAL_NODE,
        },
        "scorers": [],
        "monitor": {"enabled": False},
        "networkPolicy": {"enabled": False},  # nothing enforces NetworkPolicies without a pod network
    }
    helm = toolchain.require(toolchain.HELM, s.cache) / "bin" / "helm"
    helm_install(helm, cluster.kubeconfig, RELEASE, NAMESPACE, values)
    yield {"helm": helm, "values": values}
    helm_uninstall(helm, cluster.kubeconfig, RELEASE, NAMESPACE)
    cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", check=False)


def _spec(
    lake: Connections, kafka: Connections, mlflow_url: str, image: str, bucket: str, model: str, api_server: str = ""
) -> Any:
    def edit(spec: dict[str, Any]) -> None:
        # the ingest and stream Deployments consume the harness's Kafka (nothing is produced to it here)
        spec["sources"]["kafka"]["bootstrapServers"] = kafka.kafka_bootstrap_servers
        spec["lake"] |= {"endpoint": lake.s3_endpoint_url, "bucket": bucket}
        spec["stores"]["mlflow"]["trackingUri"] = mlflow_url
        spec["schedules"] = {k: NEVER for k in ("processing", "featurization", "training", "monitoring")}
        spec["training"] |= {
            "modelFamily": "gradient-boosted-trees",
            "registeredModelName": model,
            "hyperparameters": {"nEstimators": 60, "maxDepth": 3, "seed": 7},
            "lookbackDays": 30,
            "promotionGate": {"minAuroc": 0.5, "mustBeatChampion": True},
            "backoffLimit": 0,
            "activeDeadlineSeconds": 900,
        }
        spec["images"] = {
            "processor": image,
            "featurizer": image,
            "ingest": image,
            "monitor": image,
            "trainer": image,  # the trainer without torch: gradient-boosted-trees
            "pullPolicy": "Never",
        }
        spec["pods"] = {**ON_REAL_NODE, "hostNetwork": True, "cpuRequest": "100m", "memoryRequest": "256Mi"}
        if REAL_SPARK:
            spec["sources"]["kafka"]["topicPrefix"] = TOPIC_PREFIX
            spec["spark"] = {
                "driverMemory": "512m",
                "executorInstances": 1,
                "executorMemory": "512m",
                # no cluster DNS: the drivers reach the API server at its loopback address
                "kubernetesMaster": api_server,
                "sparkConf": {
                    "spark.sql.shuffle.partitions": "2",
                    # Host network: a pod's container ports are the node's host ports, so the driver's
                    # and the executor's must differ (the scheduler refuses a second 7079), and be free.
                    "spark.driver.port": str(_free_port()),
                    "spark.driver.blockManager.port": str(_free_port()),
                    "spark.blockManager.port": str(_free_port()),
                    "spark.ui.enabled": "false",
                },
            }

    return edit


def _runner_labelled(body: dict[str, Any]) -> dict[str, Any]:
    """Real Spark: the pipeline's label, which its children carry, leaves its SparkApplications to the
    real spark-operator (kwok's stand-in skips applications labelled so)."""
    if REAL_SPARK:
        body["metadata"].setdefault("labels", {})[spark_operator.RUNNER_LABEL] = spark_operator.RUNNER
    return body


def _api_server(cluster: Any) -> str:
    return f"https://{cluster.settings.host}:{cluster.settings.ports.kube_apiserver}"


def _assert_spark_ran_for_real(cluster: Any, pipeline: str, image: str) -> None:
    """The processor's and featurizer's SparkApplications: completed by spark-operator, their drivers
    ran the image on the real node in containerd containers and exited 0, and each had an executor."""
    apps = {
        a["metadata"]["labels"]["clinops.io/stage"]: a
        for a in items(cluster.kubectl, "sparkapplications", NAMESPACE, f"{LABEL}={pipeline}")
    }
    assert {"processor", "featurizer"} <= set(apps), sorted(apps)
    for stage in ("processor", "featurizer"):
        status = apps[stage].get("status") or {}
        assert status["applicationState"]["state"] == "COMPLETED", (stage, status)
        executors = status.get("executorState") or {}
        # The driver asked for executor pods and the job completed on them (a Spark-on-Kubernetes
        # driver has no local executor to fall back on). Their recorded state is not asserted:
        # spark-operator marks an executor that exits as the driver finishes FAILED at times
        # although it completed (kubeflow/spark-operator#2277; seen here once, the application COMPLETED).
        assert executors, (stage, status)
        driver = get(cluster.kubectl, "pod", status["driverInfo"]["podName"], NAMESPACE)
        assert driver is not None, (stage, status["driverInfo"])
        assert driver["spec"]["nodeName"] == node.NODE_NAME, stage
        assert driver["spec"]["hostNetwork"] is True, stage  # the webhook's mutation
        container = driver["spec"]["containers"][0]
        assert container["image"] == image, stage
        assert container["resources"]["requests"]["cpu"] == "100m", stage
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, stage  # the webhook's too
        term = driver["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0, (stage, term)
        assert term["containerID"].startswith("containerd://"), (stage, term)


def test_the_operator_pod_runs_the_image_on_the_real_node_under_its_service_account(
    cluster: Any, installed: dict[str, Any], clinops_image: str
) -> None:
    pods = items(cluster.kubectl, "pods", NAMESPACE, "app.kubernetes.io/component=operator")
    assert len(pods) == 1
    pod = pods[0]
    assert pod["spec"]["nodeName"] == node.NODE_NAME
    assert pod["spec"]["serviceAccountName"] == f"{RELEASE}-operator"
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True, status
    assert "running" in status["state"], status
    assert status["image"].endswith(clinops_image.rsplit("/", 1)[-1])
    assert status["containerID"].startswith("containerd://")  # a real container, not a kwok record


def test_a_pipeline_trains_on_the_real_node_and_its_scorer_answers(
    cluster: Any,
    installed: dict[str, Any],
    local_spark_operator: None,
    cohort: Cohort | None,
    lake: Connections,
    kafka: Connections,
    mlflow_url: str,
    clinops_image: str,
) -> None:
    model = f"e2e-{uuid.uuid4().hex[:6]}"
    edit = _spec(lake, kafka, mlflow_url, clinops_image, LAKE_BUCKET, model, _api_server(cluster))
    body = _runner_labelled(pipeline_body("adverse-event", NAMESPACE, edit))
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    fp = wait_phase(
        cluster.kubectl, "adverse-event", NAMESPACE, ("Ready", "Failed"), timeout_s=900 if REAL_SPARK else 420
    )
    status = fp["status"]
    ends = {
        p["metadata"]["name"]: [
            (s.get("state") or {}).get("terminated", {}).get("message", "")
            for s in p["status"].get("containerStatuses") or []
        ]
        for p in child_pods(cluster.kubectl, "adverse-event", NAMESPACE)
    }
    assert status["phase"] == "Ready", (
        f"{json.dumps(status, indent=1)}\nthe stage pods' ends: {json.dumps(ends, indent=1)}"
    )

    # The Jobs' pods ran on the real node, in real containers, and exited 0.
    pods = {
        p["metadata"]["labels"]["clinops.io/stage"]: p
        for p in child_pods(cluster.kubectl, "adverse-event", NAMESPACE)
        if "clinops.io/stage" in p["metadata"]["labels"]
    }
    assert {"materializer", "trainer"} <= set(pods), sorted(pods)
    for stage in ("materializer", "trainer"):
        pod = pods[stage]
        assert pod["spec"]["nodeName"] == node.NODE_NAME, stage
        assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0, (stage, term)
        assert term["containerID"].startswith("containerd://"), (stage, term)
    assert pods["trainer"]["spec"]["containers"][0]["image"] == clinops_image
    if REAL_SPARK:
        _assert_spark_ran_for_real(cluster, "adverse-event", clinops_image)

    # The long-running children: the ingest and stream consumers run on the real node against Kafka.
    services = wait_services_running(cluster.kubectl, "adverse-event", NAMESPACE, ("ingest", "stream"), timeout_s=120)
    for component, pod in services.items():
        assert pod["spec"]["nodeName"] == node.NODE_NAME, component
        state = pod["status"]["containerStatuses"][0]
        assert state["containerID"].startswith("containerd://"), (component, state)
        assert state["restartCount"] == 0, (component, state)

    # The trainer's pod registered a model, and the gate decided on it.
    training = status["lastTraining"]
    assert training["modelName"] == model
    assert training["version"], training
    if training["promoted"]:
        champion = status["champion"]
        assert champion["modelName"] == model
        assert training["version"] == champion["version"]
    else:
        # 24 patients over 4 days leave ~60 test rows: there the candidate (seed 7) scores test AUROC
        # 0.43 (95% CI 0.25-0.60; the oracle 0.60 on the same rows), under the gate's 0.5 floor (the
        # CRD's minimum), and the gate refuses it, as it should. The trainer's own tests hold the gate
        # to account; here the test moves the alias itself so that the scorer step has a champion.
        assert any("below the minimum" in r for r in training["gateReasons"]), training
        MlflowClient(mlflow_url).set_registered_model_alias(model, "champion", training["version"])
        champion = {"modelName": model, "version": training["version"]}

    # A scorer for that model: its pod loads the champion and answers /predict through its Service.
    values = installed["values"]
    values["scorers"] = [
        {
            "name": "adverse-event",
            "modelName": model,
            "modelAlias": "champion",
            "replicas": 1,
            "featurePolicy": "degrade",
        }
    ]
    helm_upgrade(installed["helm"], cluster.kubeconfig, RELEASE, NAMESPACE, values)
    service = f"{RELEASE}-scorer-adverse-event"
    endpoints = service_endpoints(cluster.kubectl, service, NAMESPACE)
    assert len(endpoints) == 1, endpoints  # the one ready scorer pod, at its host-network address
    assert endpoints[0].endswith(f":{values['scorer']['port']}"), endpoints
    answer = predict(endpoints[0], "PT00001")
    assert answer["patient_id"] == "PT00001"
    assert 0.0 <= answer["adverse_event_probability"] <= 1.0
    assert answer["risk_level"] in ("LOW", "MEDIUM", "HIGH")
    assert str(answer["model_version"]) == str(champion["version"])


def test_a_stage_given_bad_input_fails_the_pipeline_with_the_childs_reason(
    cluster: Any,
    installed: dict[str, Any],
    local_spark_operator: None,
    lake: Connections,
    kafka: Connections,
    mlflow_url: str,
    clinops_image: str,
) -> None:
    """A lake with nothing in it: the first stage that cannot do without data fails on it for real, its
    Job fails, and the pipeline fails with the Job's reason. With real Spark the processor and the
    featurizer run over the empty lake (nothing new is not an error) and the trainer finds no labelled
    rows in their empty snapshot; with kwok's stand-in no snapshot is written and the materializer
    finds none."""
    edit = _spec(lake, kafka, mlflow_url, clinops_image, EMPTY_BUCKET, "e2e-never", _api_server(cluster))
    body = _runner_labelled(pipeline_body("empty-lake", NAMESPACE, edit))
    # Topics of its own, which nothing is produced to: its ingest consumer must not fill the empty lake
    # with the other pipeline's cohort.
    body["spec"]["sources"]["kafka"]["topicPrefix"] = f"{TOPIC_PREFIX}none-"
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps(body))
    fp = wait_phase(cluster.kubectl, "empty-lake", NAMESPACE, ("Ready", "Failed"), timeout_s=600 if REAL_SPARK else 240)
    status = fp["status"]
    assert status["phase"] == "Failed", json.dumps(status, indent=1)
    failed_runs = {stage: r for stage, r in status["lastRuns"].items() if r["state"] == "Failed"}
    assert len(failed_runs) == 1, json.dumps(status["lastRuns"], indent=1)
    [(stage, record)] = failed_runs.items()
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == record["reason"], ready
    assert stage in ready["message"]
    kind, _, name = record["child"].partition("/")
    assert kind == "Job", record
    assert stage == ("trainer" if REAL_SPARK else "materializer"), record
    pods = [
        p
        for p in child_pods(cluster.kubectl, "empty-lake", NAMESPACE)
        if p["metadata"]["labels"].get("clinops.io/stage") == stage
    ]
    assert pods, f"no pod of the failed {stage}"
    assert pods[0]["spec"]["nodeName"] == node.NODE_NAME
    term = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] != 0
    job_obj = get(cluster.kubectl, "job", name, NAMESPACE)
    assert job_obj is not None, f"the failed Job {name} is gone"
    failed = [c for c in job_obj["status"]["conditions"] if c["type"] == "Failed"]
    assert failed
    assert failed[0]["reason"] == record["reason"] == "BackoffLimitExceeded", record
    # The end of the stage's log, as the kubelet reported it (terminationMessagePolicy FallbackToLogsOnError).
    assert ("no labelled rows" if REAL_SPARK else "no snapshot") in term.get("message", ""), term


def test_deleting_a_pipeline_deletes_every_child_and_pod(cluster: Any, installed: dict[str, Any]) -> None:
    for name in ("adverse-event", "empty-lake"):
        if get(cluster.kubectl, "featurepipeline", name, NAMESPACE) is None:
            pytest.skip(f"pipeline {name} was not created (an earlier test failed)")
        assert child_pods(cluster.kubectl, name, NAMESPACE), f"{name} has no pods to delete"
        selector = f"{LABEL}={name}"
        deployments = {d["metadata"]["name"] for d in items(cluster.kubectl, "deployments", NAMESPACE, selector)}
        assert deployments == {f"{name}-ingest", f"{name}-stream"}, deployments
        cluster.kubectl("delete", "featurepipeline", name, "-n", NAMESPACE, "--wait=true", "--timeout=60s")
        wait_gone(cluster.kubectl, name, NAMESPACE, CHILD_KINDS, timeout_s=120)
