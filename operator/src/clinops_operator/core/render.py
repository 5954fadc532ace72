"""Pure render functions: a stage task to the Kubernetes object that runs it, and back.

``render(task, pipeline)`` gives a SparkApplication (sparkoperator.k8s.io/v1beta2, the real CRD) or a
batch/v1 Job, owned by the pipeline so that deleting it deletes them. ``observe(obj)`` reads such an
object's status into a ``ChildState``.

The images' layout (what the rendered objects rely on): the workspace is installed into the virtual
environment ``/opt/clinops/venv`` (Python 3.11), so a stage's entry point is
``/opt/clinops/venv/lib/python3.11/site-packages/<package>/__main__.py`` (``mainApplicationFile``),
and the Spark s3a jars (hadoop-aws and its AWS SDK bundle) sit in ``/opt/clinops/jars``, where
``clinops_common.spark`` looks by default (``CLINOPS_SPARK_JARS_DIR``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from clinops_operator.core.services import ServiceTask
from clinops_operator.core.spec import API_VERSION, KIND, Pipeline
from clinops_operator.core.stages import Stage, StageTask

SPARK_GROUP = "sparkoperator.k8s.io"
SPARK_VERSION = "v1beta2"
SPARK_PLURAL = "sparkapplications"
IMAGE_SITE_PACKAGES = "/opt/clinops/venv/lib/python3.11/site-packages"
IMAGE_JARS = "/opt/clinops/jars"
STAGE_UID = 10001

Obj = dict[str, Any]
State = Literal["Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class ChildState:
    """What a stage's child says about itself (its result document is read separately)."""

    state: State
    reason: str = ""
    message: str = ""


def owner_reference(p: Pipeline) -> Obj:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": p.name,
        "uid": p.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(t: StageTask, p: Pipeline) -> Obj:
    return {
        "name": t.name,
        "namespace": t.namespace,
        "labels": dict(t.labels),
        "ownerReferences": [owner_reference(p)],
    }


def _env(t: StageTask) -> list[Obj]:
    plain: list[Obj] = [{"name": k, "value": v} for k, v in t.env]
    secret: list[Obj] = [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in t.secret_env
    ]
    return plain + secret


def _container_security() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": STAGE_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def placement(p: Pipeline) -> Obj:
    """A pod's node selector, tolerations and network (``spec.pods``; empty by default): stages and services."""
    pods = p.spec.pods
    out: Obj = {}
    if pods.node_selector:
        out["nodeSelector"] = dict(pods.node_selector)
    if pods.tolerations:
        out["tolerations"] = [dict(t) for t in pods.tolerations]
    if pods.host_network:
        out |= {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}
    return out


def requests(p: Pipeline) -> Obj:
    """A stage container's resource requests (``spec.pods``; none by default)."""
    pods = p.spec.pods
    asked = {k: v for k, v in (("cpu", pods.cpu_request), ("memory", pods.memory_request)) if v}
    return {"requests": asked} if asked else {}


def _spark_pod(p: Pipeline) -> Obj:
    """A driver's or executor's pod in SparkApplication terms: placement and CPU request
    (``spec.pods``), the stages' security context, and an emptyDir at /tmp (the image's root fs is
    read-only; Python, the JVM and spark-submit write there). spark-operator's webhook puts the
    security context, volumes, tolerations, host network and secret environment on the pods."""
    pods = p.spec.pods
    out = {k: v for k, v in placement(p).items() if k != "dnsPolicy"}
    if pods.cpu_request:
        out["coreRequest"] = pods.cpu_request
    return out | {
        "securityContext": _container_security(),
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": STAGE_UID, "fsGroup": STAGE_UID},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }


def main_application_file(stage: Stage) -> str:
    """The stage's entry point in its image: the package's ``__main__.py`` (the same CLI as locally)."""
    return f"local://{IMAGE_SITE_PACKAGES}/{stage.package}/__main__.py"


def spark_conf(p: Pipeline) -> dict[str, str]:
    """The applications' Spark properties: the image's s3a jars on both class paths, then the spec's
    own ``spark.sparkConf`` (which may not move those)."""
    fixed = {
        "spark.driver.extraClassPath": f"{IMAGE_JARS}/*",
        "spark.executor.extraClassPath": f"{IMAGE_JARS}/*",
    }
    return {**p.spec.spark.spark_conf, **fixed}


def spark_application(t: StageTask, p: Pipeline) -> Obj:
    s = p.spec.spark
    pod_labels = dict(t.labels)
    env = _env(t)
    return {
        "apiVersion": f"{SPARK_GROUP}/{SPARK_VERSION}",
        "kind": "SparkApplication",
        "metadata": _metadata(t, p),
        "spec": {
            "type": "Python",
            "mode": "cluster",
            "sparkVersion": s.spark_version,
            "image": t.image,
            "imagePullPolicy": p.spec.images.pull_policy,
            "mainApplicationFile": main_application_file(t.stage),
            "arguments": list(t.args),
            "sparkConf": spark_conf(p),
            "restartPolicy": {"type": "Never"},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "driver": {
                "cores": s.driver_cores,
                "memory": s.driver_memory,
                "serviceAccount": s.service_account,
                **({"kubernetesMaster": s.kubernetes_master} if s.kubernetes_master else {}),
                "labels": dict(pod_labels),
                "env": _env(t),
                **_spark_pod(p),
            },
            "executor": {
                "instances": s.executor_instances,
                "cores": s.executor_cores,
                "memory": s.executor_memory,
                "labels": pod_labels,
                "env": env,
                **_spark_pod(p),
            },
        },
    }


def job(t: StageTask, p: Pipeline) -> Obj:
    tr = p.spec.training
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(t, p),
        "spec": {
            "backoffLimit": tr.backoff_limit,
            "activeDeadlineSeconds": tr.active_deadline_seconds,
            "template": {
                "metadata": {"labels": dict(t.labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": STAGE_UID, "fsGroup": STAGE_UID},
                    **placement(p),
                    "containers": [
                        {
                            "name": t.stage.value,
                            "image": t.image,
                            "imagePullPolicy": p.spec.images.pull_policy,
                            "command": ["python", "-m", t.stage.package],
                            "args": list(t.args),
                            "env": _env(t),
                            # the end of the log becomes the termination message when the stage fails
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": _container_security(),
                            **({"resources": r} if (r := requests(p)) else {}),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def render(t: StageTask, p: Pipeline) -> Obj:
    """The object that runs ``t``: a SparkApplication for Spark stages, a Job for the others."""
    return spark_application(t, p) if t.stage.engine == "spark" else job(t, p)


def observe(obj: Obj) -> ChildState:
    """Read a SparkApplication's or a Job's status."""
    if obj.get("kind") == "SparkApplication":
        return observe_spark_application(obj)
    return observe_job(obj)


_SPARK_FAILED = {"FAILED": "SparkApplicationFailed", "SUBMISSION_FAILED": "SparkSubmissionFailed"}


def observe_spark_application(obj: Obj) -> ChildState:
    app_state = (obj.get("status") or {}).get("applicationState") or {}
    state = app_state.get("state", "")
    if state == "COMPLETED":
        return ChildState("Succeeded", "SparkApplicationCompleted")
    if state in _SPARK_FAILED:
        return ChildState("Failed", _SPARK_FAILED[state], app_state.get("errorMessage", "") or state)
    return ChildState("Running", f"SparkApplication{state.title().replace('_', '') or 'Pending'}")


def observe_job(obj: Obj) -> ChildState:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return ChildState("Succeeded", "JobComplete")
        if cond.get("type") == "Failed":
            return ChildState("Failed", cond.get("reason") or "JobFailed", cond.get("message", ""))
    return ChildState("Running", "JobRunning")


def child_kind(stage: Stage) -> str:
    return "SparkApplication" if stage.engine == "spark" else "Job"


def deployment(t: ServiceTask, p: Pipeline) -> Obj:
    """A pipeline's long-running child (ingest, the streaming featurizer): one replica, owned by the pipeline.

    ``Recreate``: two consumers of one group during a rollout would only rebalance each other."""
    env: list[Obj] = [{"name": k, "value": v} for k, v in t.env]
    env += [{"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in t.secret_env]
    selector = {k: t.labels[k] for k in ("app.kubernetes.io/instance", "app.kubernetes.io/component")}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": t.name,
            "namespace": t.namespace,
            "labels": dict(t.labels),
            "ownerReferences": [owner_reference(p)],
        },
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": dict(t.labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 60,  # SIGTERM: flush, commit, exit
                    "securityContext": {"runAsNonRoot": True, "runAsUser": STAGE_UID, "fsGroup": STAGE_UID},
                    **placement(p),  # spec.pods: the same node, network and requests as the stages' pods
                    "containers": [
                        {
                            "name": t.component,
                            "image": t.image,
                            "imagePullPolicy": p.spec.images.pull_policy,
                            "command": ["python", "-m", t.module],
                            "args": list(t.args),
                            "env": env,
                            # a crashed consumer's last status carries the end of its log
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            "securityContext": _container_security(),
                            **({"resources": r} if (r := requests(p)) else {}),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
