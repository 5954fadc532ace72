"""Kubernetes: list and watch FeaturePipelines, and patch the one annotation the monitor owns.

RBAC (the chart's monitor ClusterRole): featurepipelines get, list, watch, patch; nothing else.
"""

from __future__ import annotations

import os
from typing import Any

from clinops_monitor.config import GROUP, PLURAL, VERSION, PipelineView
from clinops_monitor.core.decision import ANNOTATION

IN_FLIGHT_PHASES = frozenset({"Processing", "Featurizing", "Training"})


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


def training_in_flight(p: PipelineView, last_request_at_rfc3339: str | None) -> bool:
    """A run is in progress, or our last request is newer than the last finished run."""
    if p.phase in IN_FLIGHT_PHASES:
        return True
    if last_request_at_rfc3339 and (not p.last_run_time or p.last_run_time < last_request_at_rfc3339):
        return ANNOTATION in p.annotations
    return False
