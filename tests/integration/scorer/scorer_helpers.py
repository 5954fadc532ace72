"""Shared pieces of the scorer tests: synthetic feature rows in a real offline store (MinIO), a small
model trained here and registered through the model package in a real MLflow, and a scorer server
started with `python -m clinops_scorer serve`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import port_for
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from clinops_common.features.definitions import STREAMING_VIEWS, FeatureView, feature_service
from clinops_common.features.offline import DataFile, OfflineStore
from clinops_common.model import ModelPackage, Thresholds, fit_preprocessing, service_schema_ids
from clinops_common.model.mlflow_model import log_package
from clinops_common.model.onnx_graphs import logistic_graph
from clinops_common.settings import Connections

SERVICE = "adverse_event_v1"
CATEGORIES = {"gender": ["F", "M"], "trial_arm": ["A", "B"], "department": ["ICU", "ward", "ED"]}
STALE = "PT-STALE"  # its labs rows are 5 hours old: stale (TTL 2 h)
NO_MEDS = "PT-NOMEDS"  # no medication rows at all: missing


def this_hour() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("h")


def view_rows(view: FeatureView, patients: list[str], hours: list[pd.Timestamp], seed: int) -> pd.DataFrame:
    """One row per (patient, hour), created at its event time, random plausible values (10% null)."""
    rng = np.random.default_rng(seed)
    n = len(patients) * len(hours)
    data: dict[str, object] = {
        "patient_id": np.repeat(patients, len(hours)),
        "event_timestamp": pd.DatetimeIndex(hours * len(patients)),
    }
    data["created_timestamp"] = data["event_timestamp"]
    for f in view.features:
        if f.dtype == "string":
            col = rng.choice(CATEGORIES[f.name], n).astype(object)
            col[rng.random(n) < 0.05] = None
        else:
            col = rng.normal(50, 15, n)
            col[rng.random(n) < 0.1] = np.nan
        data[f.name] = col
    return pd.DataFrame(data)


def write_offline(store: OfflineStore, patients: list[str], hour: pd.Timestamp, seed: int = 1) -> dict[str, int]:
    """Rows at hour-3 .. hour for every patient and view, labs of STALE only at hour-5, no medication
    rows for NO_MEDS; committed as a new snapshot of ``store``. Returns rows per view."""
    hours = [hour - pd.Timedelta(hours=k) for k in (3, 2, 1, 0)]
    added: dict[str, list[DataFile]] = {}
    counts = {}
    for i, view in enumerate(STREAMING_VIEWS):
        frame = view_rows(view, patients, hours, seed + i)
        if view.name == "labs":
            frame = frame[frame["patient_id"] != STALE]
            old = view_rows(view, [STALE], [hour - pd.Timedelta(hours=5)], seed + 100)
            frame = pd.concat([frame, old], ignore_index=True)
        if view.name == "medications":
            frame = frame[frame["patient_id"] != NO_MEDS]
        files = []
        for date, part in frame.groupby(frame["event_timestamp"].dt.strftime("%Y-%m-%d")):
            rel = f"{view.name}/date={date}/part-{uuid.uuid4().hex}.parquet"
            table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
            store.fs.create_dir(f"{store.root}/{rel.rsplit('/', 1)[0]}", recursive=True)
            pq.write_table(table, f"{store.root}/{rel}", filesystem=store.fs)
            size = store.fs.get_file_info(f"{store.root}/{rel}").size or 0
            files.append(DataFile(rel, int(size), str(date)))
        added[view.name] = files
        counts[view.name] = len(frame)
    store.commit(added)
    return counts


def train_package(frame: pd.DataFrame, name: str, seed: int = 0) -> ModelPackage:
    """A logistic regression fitted (numpy, a few hundred gradient steps) on a synthetic label."""
    order = list(feature_service(SERVICE).feature_names)
    pre = fit_preprocessing(frame, order)
    raw = ModelPackage(name, SERVICE, service_schema_ids(SERVICE), pre, Thresholds(0.3, 0.7), b"").vectorize_frame(
        frame
    )
    x = pre.transform(raw)
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, x.shape[1]) * (rng.random(x.shape[1]) < 0.05)
    y = (x @ truth + rng.normal(0, 0.5, len(x)) > 0).astype(np.float64)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(300):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= 0.1 * (x.T @ (p - y) / len(y) + 0.01 * w)
        b -= 0.1 * float(np.mean(p - y))
    return ModelPackage(
        name=name,
        feature_service=SERVICE,
        schema_ids=service_schema_ids(SERVICE),
        preprocessing=pre,
        thresholds=Thresholds(0.3, 0.7, "test"),
        onnx_model=logistic_graph(w.tolist(), b),
        model_family="logistic-test",
        label="adverse_event_24h",
    )


def register(mlflow_url: str, pkg: ModelPackage, example: pd.DataFrame, alias: str | None = "champion") -> str:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment(f"scorer-test-{pkg.name}")
    with mlflow.start_run():
        info = log_package(pkg, example, registered_model_name=pkg.name)
    version = str(info.registered_model_version)
    if alias:
        MlflowClient(mlflow_url).set_registered_model_alias(pkg.name, alias, version)
    return version


def scorer_env(redis_url: str, database_url: str, mlflow_url: str, **settings: object) -> dict[str, str]:
    env = {
        **os.environ,
        "CLINOPS_REDIS_URL": redis_url,
        "CLINOPS_DATABASE_URL": database_url,
        "CLINOPS_MLFLOW_TRACKING_URI": mlflow_url,
        "BENTOML_DO_NOT_TRACK": "True",
    }
    env.update({f"CLINOPS_SCORER_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class ScorerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def wait_ready(self, timeout_s: float | None = None) -> None:
        if timeout_s is None:  # longer on a loaded machine, as the test stack's start wait
            timeout_s = max(90.0, float(os.environ.get("CLINOPS_TEST_START_TIMEOUT_S", "90")))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the scorer exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the scorer was not ready in {timeout_s:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def tree(self) -> list[psutil.Process]:
        """The server and every process under it (BentoML's workers run in sessions of their own)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal(self, sig: signal.Signals) -> None:
        """SIGTERM goes to the server process (as Kubernetes sends it to PID 1); SIGKILL to the whole
        tree at once (as when a pod is killed)."""
        if sig == signal.SIGKILL:
            for p in self.tree():
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
        else:
            os.kill(self.proc.pid, sig)

    def stop(self, timeout_s: float = 30.0) -> int:
        procs = self.tree()
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:  # nothing of ours may outlive the test
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        return self.proc.returncode


@contextmanager
def run_scorer(env: dict[str, str], log: Path, ready: bool = True) -> Iterator[ScorerProcess]:
    port = port_for.select_random()
    env = {**env, "CLINOPS_SCORER_PORT": str(port), "CLINOPS_SCORER_HOST": "127.0.0.1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "clinops_scorer", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ScorerProcess(proc, f"http://127.0.0.1:{port}", log)
    try:
        if ready:
            server.wait_ready()
        yield server
    finally:
        server.stop()


def utcnow() -> datetime:
    return datetime.now(UTC)


def hours_ago(h: float) -> datetime:
    return utcnow() - timedelta(hours=h)


@dataclass
class World:
    store: OfflineStore
    lake: Connections
    hour: pd.Timestamp
    prefix: str
    model_name: str
    package: ModelPackage
    version: str
    training: pd.DataFrame  # the training rows at `hour`, one per patient
