"""BentoML's server settings for the scorer, shared with the benchmark's hello reference.

What BentoML 1.4 runs around every request, and what is kept (measured with ``make
profile-scorer-http``; the README's scorer section gives the figures):

- Prometheus metrics (``bentoml_service_*``): kept, with buckets fine enough for a millisecond SLO.
- OpenTelemetry: BentoML always wraps the app in OpenTelemetry's ASGI middleware, which builds a
  server span and a span per ASGI message (five per request) even when the sample rate is 0 and
  nothing is exported. With ``CLINOPS_SCORER_TRACING`` off (the default) every URL is excluded, so
  the middleware passes requests straight through; on, BentoML's ``tracing`` configuration
  (exporter, sample rate) applies as usual.
- Access log: off (the scorer logs each prediction itself, by prediction id, never a patient id).
- CORS: off (BentoML's default; the scorer is called by services, not browsers).
- Answers: a finished ``Response`` (``answer``), not a model for BentoML to serialize.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from clinops_scorer import metrics
from clinops_scorer.config import ScorerSettings

EVERY_URL = [".*"]


def service_config(settings: ScorerSettings) -> dict[str, Any]:
    """Keyword arguments of ``@bentoml.service`` for the scorer's server settings."""
    config: dict[str, Any] = {
        "workers": settings.workers,
        "threads": settings.threads,
        "traffic": {"timeout": 30},
        "metrics": {"enabled": True, "duration": {"buckets": list(metrics.LATENCY_BUCKETS)}},
        "logging": {"access": {"enabled": False}},
    }
    if not settings.tracing:
        config["tracing"] = {"excluded_urls": EVERY_URL}
    return config


def answer(model: BaseModel) -> Response:
    """A 200 with ``model`` as its JSON body. BentoML would validate the returned model again, build its
    JSON schema (for a root model) and write the body as a chunked stream of three ASGI messages; a
    finished ``Response`` goes out as one (the OpenAPI document still shows the annotated model)."""
    return Response(model.model_dump_json(), media_type="application/json")
