"""The reference for the benchmark: a BentoML hello endpoint with the scorer's server settings
(``clinops_scorer.server.service_config``), request model and worker tuning, answering a pydantic
model as the scorer's ``/predict`` does (an ``async`` API answering a finished ``Response``), doing no
work.

    bentoml serve clinops_devstack.bench.hello:Hello
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel

from clinops_scorer.config import ScorerSettings
from clinops_scorer.schemas import PredictRequest
from clinops_scorer.server import answer, service_config
from clinops_scorer.worker import settle_heap, tune

SETTINGS = ScorerSettings()


class Greeting(BaseModel):
    patient_id: str
    hello: str


@bentoml.service(name="hello", **service_config(SETTINGS))
class Hello:
    def __init__(self) -> None:
        tune(SETTINGS.gil_switch_interval_ms, SETTINGS.gc_threshold0)  # as the scorer's worker does
        settle_heap()

    @bentoml.api(route="/predict", input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    async def predict(self, patient_id: str) -> Greeting:
        return answer(Greeting(patient_id=patient_id, hello="world"))  # type: ignore[return-value]
