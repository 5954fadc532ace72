"""kopf handlers for FeaturePipeline: each a few lines around the pure core.

* startup: settings (own progress prefix, finalizer, backoff, peering), the executor and the result reader;
* create / resume / update: record what the operator saw (observedGeneration, phase Pending);
* the reconcile timer: start runs (run-now annotation, cron schedules) and drive them stage by stage;
* the reconcile timer also keeps the pipeline's long-running children (ingest, the streaming featurizer);
* delete: remove the pipeline's children (owner references also let the garbage collector do it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client
from kubernetes import config as kube_config

from clinops_operator.config import OperatorSettings
from clinops_operator.core import runs, services
from clinops_operator.core.spec import GROUP, PLURAL, VERSION, Pipeline
from clinops_operator.core.times import parse_iso
from clinops_operator.errors import PermanentError, RetryableError
from clinops_operator.executor import Executor, KubernetesExecutor
from clinops_operator.results import LakeResults, ResultReader

SETTINGS = OperatorSettings()
LOG = logging.getLogger("clinops_operator")
RESOURCE = (GROUP, VERSION, PLURAL)


def kubernetes_api() -> client.ApiClient:
    """In a pod: its service account. Elsewhere: $KUBECONFIG (or ~/.kube/config)."""
    try:
        kube_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The pod's service account, else $KUBECONFIG as it is now (not as it was when a library was imported).

    In a pod the API server is where ``KUBERNETES_SERVICE_HOST``/``_PORT`` say, as for the Kubernetes
    client libraries (kopf's own default, ``kubernetes.default.svc``, needs cluster DNS)."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if info is not None and host:
        server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        info = dataclasses.replace(info, server=server)
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=SETTINGS.storage_prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=SETTINGS.storage_prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = SETTINGS.finalizer
    settings.execution.default_backoff = SETTINGS.backoff_s
    settings.networking.request_timeout = SETTINGS.request_timeout_s
    settings.peering.name = SETTINGS.peering_name
    settings.posting.level = logging.WARNING  # Kubernetes events for problems only, not every timer tick
    if "executor" not in memo:  # tests may bring their own
        memo["executor"] = make_executor(SETTINGS)
    if "results" not in memo:
        memo["results"] = LakeResults.from_env()


def make_executor(settings: OperatorSettings) -> Executor:
    if settings.executor == "local":
        from clinops_operator.local import LocalExecutor

        return LocalExecutor(
            settings.local_state_dir, settings.local_log_dir, start_grace_s=settings.local_start_grace_s
        )
    return KubernetesExecutor(kubernetes_api())


def _executor(memo: kopf.Memo) -> Executor:
    executor: Executor = memo["executor"]
    return executor


def _results(memo: kopf.Memo) -> ResultReader:
    reader: ResultReader = memo["results"]
    return reader


def _pipeline(body: kopf.Body) -> Pipeline:
    try:
        return Pipeline.from_body(body)
    except ValueError as err:  # the CRD's schema makes this rare: an older schema, a hand-edited object
        raise kopf.PermanentError(f"spec cannot be read: {err}") from err


@kopf.on.create(*RESOURCE)
@kopf.on.resume(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def observe_spec(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Acknowledge the spec. Phase and conditions belong to the reconcile timer alone (no racing writers)."""
    p = _pipeline(body)
    patch.status["observedGeneration"] = p.generation
    for name in runs.invalid_schedules(p):
        LOG.warning("%s/%s: invalid cron expression in schedules.%s", p.namespace, p.name, name)


@kopf.timer(*RESOURCE, interval=SETTINGS.reconcile_interval_s, id="reconcile")
def reconcile(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Start due runs and move the current one along; create children the run needs."""
    if meta.get("deletionTimestamp"):
        return
    p = _pipeline(body)
    executor, results = _executor(memo), _results(memo)
    now = datetime.now(UTC)
    try:
        outcome = runs.reconcile(
            p,
            status=status,
            annotations=meta.get("annotations") or {},
            created=parse_iso(meta["creationTimestamp"]),
            now=now,
            observe=executor.observe,
            read_result=lambda t: results.read(p, t),
        )
    except RetryableError as err:
        raise kopf.TemporaryError(str(err), delay=SETTINGS.retry_delay_s) from err
    except PermanentError as err:  # e.g. reading a child is forbidden: the run cannot go on
        outcome = runs.halt(p, status, err.reason, str(err), now)
        _patch(patch, outcome)
        raise kopf.PermanentError(str(err)) from err
    _log(p, outcome.events)
    try:
        for task in outcome.start:
            if executor.start(task, p):
                LOG.info(
                    "%s/%s: created %s",
                    p.namespace,
                    p.name,
                    task.name,
                    extra={"pipeline": p.name, "run": task.run_id, "stage": task.stage.value, "child": task.name},
                )
    except RetryableError as err:
        raise kopf.TemporaryError(str(err), delay=SETTINGS.retry_delay_s) from err
    except PermanentError as err:
        # The run ends Failed with the API server's reason, so the next tick does not try again.
        outcome = runs.refuse(p, status, outcome, task, reason=err.reason, message=str(err), now=now)
        _patch(patch, outcome)
        _log(p, outcome.events)
        raise kopf.PermanentError(outcome.events[-1]) from err
    _patch(patch, outcome)
    if outcome.refused:
        raise kopf.PermanentError(f"spec cannot run: {outcome.refused}")
    keep_services(p, executor)


def keep_services(p: Pipeline, executor: Executor) -> None:
    """Ingest and the streaming featurizer: started when absent (or, locally, dead), every reconcile."""
    try:
        for svc in services.service_tasks(p):
            if executor.ensure_service(svc, p):
                LOG.info("%s/%s: started %s", p.namespace, p.name, svc.name, extra={"pipeline": p.name})
    except RetryableError as err:
        raise kopf.TemporaryError(str(err), delay=SETTINGS.retry_delay_s) from err
    except PermanentError as err:  # e.g. no right to create Deployments: the runs go on without them
        LOG.warning("%s/%s: %s", p.namespace, p.name, err, extra={"pipeline": p.name})


def _patch(patch: kopf.Patch, outcome: runs.Outcome) -> None:
    for key, value in outcome.status.items():
        patch.status[key] = value


def _log(p: Pipeline, events: list[str]) -> None:
    for event in events:
        LOG.info("%s/%s: %s", p.namespace, p.name, event, extra={"pipeline": p.name, "namespace": p.namespace})


@kopf.on.delete(*RESOURCE)
def cleanup(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Delete the pipeline's SparkApplications, Jobs and Deployments (their pods follow), or its local processes."""
    p = _pipeline(body)
    try:
        deleted = _executor(memo).delete_all(p)
    except RetryableError as err:
        raise kopf.TemporaryError(str(err), delay=SETTINGS.retry_delay_s) from err
    LOG.info("%s/%s: deleted %d children", p.namespace, p.name, deleted, extra={"pipeline": p.name})
