"""Stage executors: where a ``StageTask`` runs.

``Executor`` is the small interface the handlers use; it speaks only core types (``StageTask``,
``Pipeline``, ``ChildState``) and the operator's errors. ``KubernetesExecutor`` runs Spark stages as
SparkApplications and the others as Jobs, and a pipeline's long-running children (ingest, the streaming
featurizer) as Deployments, all owned by the pipeline. A local executor (the same stage
commands as processes on one machine) implements the same three methods.

API errors are translated here, at the edge: 403 (forbidden, a quota), 422 (the object is invalid),
400 and a 404 on create (the kind's CRD is not installed) are permanent; everything else (5xx,
429, the connection) is retryable.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from clinops_operator.core import render
from clinops_operator.core.services import ServiceTask
from clinops_operator.core.spec import Pipeline
from clinops_operator.core.stages import LABEL_PIPELINE, StageTask
from clinops_operator.errors import OperatorError, PermanentError, RetryableError

HTTP_NOT_FOUND = 404
HTTP_CONFLICT = 409
# Refusals that a retry cannot change, with the reason a status condition carries.
PERMANENT = {400: "BadRequest", 403: "Forbidden", 404: "KindNotInstalled", 422: "Invalid"}


class Executor(Protocol):
    """Runs stage tasks. Every method is idempotent: calling it twice has the effect of calling it once."""

    def start(self, task: StageTask, pipeline: Pipeline) -> bool:
        """Start the task unless it already runs or ran. True when this call started it."""
        ...

    def observe(self, task: StageTask) -> render.ChildState | None:
        """The task's state, or None if it was never started."""
        ...

    def ensure_service(self, task: ServiceTask, pipeline: Pipeline) -> bool:
        """Keep the long-running child running: start it when absent (or, locally, dead). True when started."""
        ...

    def delete_all(self, pipeline: Pipeline) -> int:
        """Stop and remove everything started for the pipeline (runs' children and long-running ones);
        returns how many objects were deleted."""
        ...


class KubernetesExecutor:
    """SparkApplications and Jobs in the pipeline's namespace, through the Kubernetes API."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)

    def start(self, task: StageTask, pipeline: Pipeline) -> bool:
        obj = render.render(task, pipeline)
        try:
            if task.stage.engine == "spark":
                self.custom.create_namespaced_custom_object(
                    render.SPARK_GROUP, render.SPARK_VERSION, task.namespace, render.SPARK_PLURAL, obj
                )
            else:
                self.batch.create_namespaced_job(task.namespace, cast(Any, obj))
        except ApiException as err:
            if err.status == HTTP_CONFLICT:
                return False  # created before (a restart, a retried handler): never a duplicate
            raise _translate(err, f"create {obj['kind']} {task.name}", creating=True) from err
        except TransportError as err:
            raise RetryableError(f"create {obj['kind']} {task.name}: {err}") from err
        return True

    def ensure_service(self, task: ServiceTask, pipeline: Pipeline) -> bool:
        """Create the Deployment unless it exists (a read first: a reconcile every few seconds finds it there)."""
        obj = render.deployment(task, pipeline)
        try:
            try:
                self.apps.read_namespaced_deployment(task.name, task.namespace)
                return False
            except ApiException as err:
                if err.status != HTTP_NOT_FOUND:
                    raise
            self.apps.create_namespaced_deployment(task.namespace, cast(Any, obj))
        except ApiException as err:
            if err.status == HTTP_CONFLICT:
                return False
            raise _translate(err, f"create Deployment {task.name}", creating=True) from err
        except TransportError as err:
            raise RetryableError(f"create Deployment {task.name}: {err}") from err
        return True

    def observe(self, task: StageTask) -> render.ChildState | None:
        try:
            obj: dict[str, Any]
            if task.stage.engine == "spark":
                obj = cast(
                    dict[str, Any],
                    self.custom.get_namespaced_custom_object(
                        render.SPARK_GROUP, render.SPARK_VERSION, task.namespace, render.SPARK_PLURAL, task.name
                    ),
                )
            else:
                obj = self.batch.read_namespaced_job(task.name, task.namespace).to_dict()
                obj = {"kind": "Job", "status": _camel_job_status(obj.get("status") or {})}
        except ApiException as err:
            if err.status == HTTP_NOT_FOUND:
                return None
            raise _translate(err, f"read {task.name}") from err
        except TransportError as err:
            raise RetryableError(f"read {task.name}: {err}") from err
        return render.observe(obj)

    def delete_all(self, pipeline: Pipeline) -> int:
        try:
            return self._delete_all(pipeline)
        except ApiException as err:
            raise _translate(err, f"delete the children of {pipeline.name}") from err
        except TransportError as err:
            raise RetryableError(f"delete the children of {pipeline.name}: {err}") from err

    def _delete_all(self, pipeline: Pipeline) -> int:
        selector = f"{LABEL_PIPELINE}={pipeline.name}"
        deleted = 0
        body = client.V1DeleteOptions(propagation_policy="Background")
        apps = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(
                render.SPARK_GROUP,
                render.SPARK_VERSION,
                pipeline.namespace,
                render.SPARK_PLURAL,
                label_selector=selector,
            ),
        )
        for app in apps.get("items", []):
            deleted += self._ignore_missing(
                lambda name=app["metadata"]["name"]: self.custom.delete_namespaced_custom_object(
                    render.SPARK_GROUP, render.SPARK_VERSION, pipeline.namespace, render.SPARK_PLURAL, name, body=body
                )
            )
        for job in self.batch.list_namespaced_job(pipeline.namespace, label_selector=selector).items:
            job_name = job.metadata.name if job.metadata else None
            if job_name:
                deleted += self._ignore_missing(
                    lambda name=job_name: self.batch.delete_namespaced_job(name, pipeline.namespace, body=body)
                )
        for dep in self.apps.list_namespaced_deployment(pipeline.namespace, label_selector=selector).items:
            dep_name = dep.metadata.name if dep.metadata else None
            if dep_name:
                deleted += self._ignore_missing(
                    lambda name=dep_name: self.apps.delete_namespaced_deployment(name, pipeline.namespace, body=body)
                )
        return deleted

    @staticmethod
    def _ignore_missing(call: Any) -> int:
        try:
            call()
        except ApiException as err:
            if err.status == HTTP_NOT_FOUND:
                return 0
            raise
        return 1


def _camel_job_status(status: dict[str, Any]) -> dict[str, Any]:
    """The python client's snake_case Job status, as the API's own field names (what ``render`` reads)."""
    conditions = [
        {"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason"), "message": c.get("message")}
        for c in status.get("conditions") or []
    ]
    return {"conditions": conditions, "succeeded": status.get("succeeded"), "failed": status.get("failed")}


def _translate(err: ApiException, what: str, *, creating: bool = False) -> OperatorError:
    """An API error as the operator's own: permanent when retrying cannot help, else retryable."""
    detail = _api_message(err)
    status = int(err.status or 0)
    if status in PERMANENT and (status != HTTP_NOT_FOUND or creating):
        return PermanentError(f"{what}: {status} {detail}", reason=PERMANENT[status])
    return RetryableError(f"{what}: {status} {err.reason}: {detail}")


def _api_message(err: ApiException) -> str:
    """The Status object's message when the body is one, else the start of the body."""
    import json

    try:
        body = json.loads(err.body or "")
    except ValueError:
        return (err.body or str(err.reason) or "")[:500]
    return str(body.get("message") or err.reason)[:500] if isinstance(body, dict) else str(body)[:500]
