"""The MLflow adapter: experiment per pipeline, the run's params, metrics and artifacts, the registry
(versions, tags, the champion alias)."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

RUN_TAG = "clinops.run_id"
PIPELINE_TAG = "clinops.pipeline"
RESULT_TAG = "clinops.train_result"
CHAMPION = "champion"


class TrackingUnavailable(RuntimeError):
    """MLflow cannot be reached."""


def experiment_name(pipeline: str) -> str:
    return f"clinops/{pipeline}"


class Tracking:
    def __init__(self, tracking_uri: str) -> None:
        import mlflow
        from mlflow import MlflowClient

        self.uri = tracking_uri
        try:
            httpx.get(f"{tracking_uri.rstrip('/')}/health", timeout=5.0).raise_for_status()
        except httpx.HTTPError as err:
            raise TrackingUnavailable(f"MLflow is unreachable at {tracking_uri}: {err}") from None
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.mlflow = mlflow
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # ---- idempotency ----
    def version_for_run(self, model_name: str, pipeline: str, run_id: str) -> Any | None:
        """The version an earlier attempt of this run id registered, if any."""
        from mlflow.exceptions import MlflowException

        try:
            versions = self.client.search_model_versions(f"name = '{model_name}'")
        except MlflowException:
            return None
        for mv in versions:
            if mv.tags.get(RUN_TAG) == run_id and mv.tags.get(PIPELINE_TAG) == pipeline:
                return mv
        return None

    # ---- the run ----
    def start(self, pipeline: str, run_name: str, tags: Mapping[str, str]) -> str:
        self.mlflow.set_experiment(experiment_name(pipeline))
        run = self.mlflow.start_run(run_name=run_name, tags=dict(tags))
        return str(run.info.run_id)

    def end(self, status: str) -> None:
        self.mlflow.end_run(status=status)

    def params(self, params: Mapping[str, Any]) -> None:
        items = {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in params.items()}
        keys = list(items)
        for i in range(0, len(keys), 90):
            self.mlflow.log_params({k: items[k] for k in keys[i : i + 90]})

    def metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
        if clean:
            self.mlflow.log_metrics(clean, step=step)

    def tags(self, tags: Mapping[str, str]) -> None:
        self.mlflow.set_tags(dict(tags))

    def figure(self, fig: Any, path: str) -> None:
        import matplotlib.pyplot as plt

        self.mlflow.log_figure(fig, path)
        plt.close(fig)

    def json(self, data: Any, path: str) -> None:
        self.mlflow.log_dict(data, path)

    def frame(self, frame: pd.DataFrame, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            frame.to_parquet(local, index=False)
            self.mlflow.log_artifact(str(local), str(Path(path).parent) if "/" in path else None)

    def dataset(self, frame: pd.DataFrame, *, source: str, name: str, label: str, context: str) -> None:
        from mlflow.data.pandas_dataset import from_pandas

        ds = from_pandas(frame, source=source, name=name, targets=label)
        self.mlflow.log_input(ds, context=context)

    # ---- the registry ----
    def champion(self, model_name: str) -> str | None:
        from clinops_common.model import resolve_alias

        return resolve_alias(self.uri, model_name, CHAMPION)

    def tag_version(self, model_name: str, version: str, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(model_name, version, k, v)

    def promote(self, model_name: str, version: str) -> None:
        self.client.set_registered_model_alias(model_name, CHAMPION, version)

    def delete_version(self, model_name: str, version: str) -> None:
        self.client.delete_model_version(model_name, version)
