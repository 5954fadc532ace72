"""The reference for the benchmark: a BentoML hello endpoint with the scorer's server settings and
request model and worker tuning, doing no work. ``bentoml serve clinops_devstack.bench.hello:Hello``."""

from __future__ import annotations

import bentoml

from clinops_scorer import metrics
from clinops_scorer.config import ScorerSettings
from clinops_scorer.schemas import PredictRequest
from clinops_scorer.worker import settle_heap

SETTINGS = ScorerSettings()


@bentoml.service(
    name="hello",
    workers=SETTINGS.workers,
    threads=SETTINGS.threads,
    traffic={"timeout": 30},
    metrics={"enabled": True, "duration": {"buckets": list(metrics.LATENCY_BUCKETS)}},
    logging={"access": {"enabled": False}},
)
class Hello:
    def __init__(self) -> None:
        settle_heap()  # as the scorer's worker does

    @bentoml.api(route="/predict", input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    def predict(self, patient_id: str) -> dict[str, str]:
        return {"patient_id": patient_id, "hello": "world"}
