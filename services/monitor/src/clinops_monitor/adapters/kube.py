"""Kubernetes: list and watch FeaturePipelines, and patch the one annotation the monitor owns.

RBAC (the chart's monitor ClusterRole): featurepipelines get, list, watch, patch; nothing else.
"""

from __future__ import annotations

import os
from typing import Any

from clinops_monitor.config import GROUP, PLURAL, VERSION, PipelineView
from clinops_monitor.core.decision import ANNOTATION

# The CRD's phases while a run is in progress (status.phase enum): every stage of a run that trains
# (ingest, processor, featurizer, materializer, trainer) is part of that training run.
RUN_PHASES = frozenset({"Ingesting", "Processing", "Featurizing", "Materializing", "Training"})
TRAINER_STAGE = "trainer"  # the operator's Stage.TRAINER, as status.currentRun.stages names it


def load_config() -> None:
    """In a pod its ServiceAccount; elsewhere ``$KUBECONFIG`` as it is now (the client library reads the
    variable once, at import, which would miss a value set later), else ``~/.kube/config``."""
    from kubernetes import config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


class Pipelines:
    def __init__(self) -> None:
        from kubernetes import client

        load_config()
        self.api = client.CustomObjectsApi()

    def list(self, namespace: str | None = None) -> list[PipelineView]:
        body: Any
        if namespace:
            body = self.api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        else:
            body = self.api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        return [PipelineView.from_body(item) for item in body.get("items", [])]

    def get(self, namespace: str, name: str) -> PipelineView:
        body: Any = self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return PipelineView.from_body(body)

    def request_retraining(self, namespace: str, name: str, value: str) -> None:
        """Set ``clinops.io/retrain-requested`` (a merge patch of that one annotation)."""
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"annotations": {ANNOTATION: value}}}
        )


def run_trains(p: PipelineView) -> bool:
    """The pipeline's current run will train: its stages (``status.currentRun.stages``) include the
    trainer, or, where the status does not list them, the phase is one of a run's."""
    if p.run_stages is not None:
        return TRAINER_STAGE in p.run_stages
    return p.phase in RUN_PHASES


def training_in_flight(p: PipelineView, last_request_at_rfc3339: str | None) -> bool:
    """A run that trains is in progress (any of its phases, Materializing included), or our last
    request is newer than the last finished run."""
    if run_trains(p):
        return True
    if last_request_at_rfc3339 and (not p.last_run_time or p.last_run_time < last_request_at_rfc3339):
        return ANNOTATION in p.annotations
    return False
