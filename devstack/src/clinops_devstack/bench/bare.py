"""The floor under the BentoML hello reference: the same request and answer in a bare Starlette app on
the uvicorn BentoML runs (httptools, uvloop), no BentoML. ``uvicorn clinops_devstack.bench.bare:app``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from clinops_scorer.schemas import PredictRequest


async def predict(request: Request) -> Response:
    body = PredictRequest.model_validate_json(await request.body())
    return Response(f'{{"patient_id": "{body.patient_id}", "hello": "world"}}', media_type="application/json")


async def readyz(_: Request) -> Response:
    return PlainTextResponse("\\n")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/readyz", readyz)])
