"""The BentoML service: ``POST /predict``, ``POST /predict/batch``, ``/livez``, ``/readyz``, ``/metrics``.

``python -m clinops_scorer serve`` runs ``bentoml serve clinops_scorer.service:Scorer`` with the
settings. Each request: one online-store read (Redis), the champion's CPU inference path, one audit
row per prediction committed (group commit) before the response is sent.

``/predict`` and ``/predict/batch`` are coroutines: the read and the model (a few hundred
microseconds of CPU for one patient, proportionally more for a batch) run on the event loop and
they await the audit commit, which runs on the same loop (``audit_loop.LoopAuditWriter``: an async
PostgreSQL connection), so a request costs no hop to a worker thread and back, and a commit no
wake-up of a writer thread (``make profile-scorer-http``, ``make profile-scorer-tail``).
``ScoringEngine.score`` is the same path for synchronous callers (tools, tests), through a writer
thread (``audit.AuditWriter``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bentoml
import numpy as np
from pydantic import ValidationError
from starlette.responses import JSONResponse

from clinops_common.logs import configure
from clinops_common.settings import ServingConnections
from clinops_scorer import core, metrics
from clinops_scorer.audit import AuditUnavailable, AuditWriter, PostgresProbe, libpq_dsn
from clinops_scorer.audit_loop import LoopAuditWriter
from clinops_scorer.config import ScorerSettings
from clinops_scorer.online import FeaturesUnavailable, OnlineFeatures
from clinops_scorer.registry import ChampionHolder
from clinops_scorer.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorBody,
    Prediction,
    PredictRequest,
    Refusal,
    ViewFreshness,
)
from clinops_scorer.server import answer, service_config
from clinops_scorer.worker import freeze_loaded, settle_heap, tune, watch_collections

SETTINGS = ScorerSettings()


class RequestErrorsWithoutPayload(logging.Filter):
    """BentoML logs a rejected request with its traceback, and a pydantic error quotes the input (a
    patient id is PHI): keep the fields and error types, drop the values."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            fields = sorted({".".join(str(p) for p in e["loc"]) or "<body>" for e in exc.errors()})
            kinds = sorted({e["type"] for e in exc.errors()})
            record.msg = f"{record.getMessage()}: rejected input, fields {fields}, errors {kinds}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


class Unavailable(RuntimeError):
    """503: no prediction can be made right now (no model, Redis or PostgreSQL unreachable)."""


@dataclass(frozen=True)
class Outcome:
    prediction: Prediction | None = None
    refusal: Refusal | None = None


@dataclass
class Pending:
    """A request between scoring and its committed audit rows."""

    t0: float
    now: datetime
    champion: core.Champion
    outcomes: list[Outcome | None]  # None: scored, answered once its row is committed
    scored: list[tuple[int, core.Assessment]]  # (position in the request, its assessment), one per row
    rows: list[core.AuditRow]


def _freshness(assessment: core.Assessment) -> dict[str, ViewFreshness]:
    return {
        v.view: ViewFreshness(status=v.status, event_timestamp=v.event_time, age_seconds=v.age_s)
        for v in assessment.views
    }


def _refusal(patient_id: str, decision: core.Decision, assessment: core.Assessment) -> Refusal:
    if decision == "unknown":
        return Refusal(patient_id=patient_id, status=404, error="unknown patient: no features in the online store")
    named = ", ".join(f"{v.view} ({v.status})" for v in assessment.views if v.status != "fresh")
    return Refusal(
        patient_id=patient_id,
        status=409,
        error=f"features not fresh enough to predict: {named}",
        stale_views=list(assessment.stale),
        missing_views=list(assessment.missing),
    )


class ScoringEngine:
    """Read, judge, score, audit: the request path, independent of the HTTP framework."""

    def __init__(
        self,
        settings: ScorerSettings,
        conns: ServingConnections,
        m: metrics.Metrics,
        models: ChampionHolder | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = m
        self.log: Any = configure("scorer", settings.log_level)
        self.online = OnlineFeatures(
            conns.redis_url.get_secret_value(), prefix=settings.online_prefix, timeout_s=settings.redis_timeout_s
        )
        dsn = libpq_dsn(conns.database_url.get_secret_value())
        self.audit = AuditWriter(
            dsn,
            linger_s=settings.audit_linger_ms / 1000,
            max_rows=settings.audit_max_rows,
            connect_timeout_s=settings.postgres_connect_timeout_s,
            on_commit=m.on_commit,
        )
        self.loop_audit = (
            LoopAuditWriter(
                dsn,
                linger_s=settings.audit_linger_ms / 1000,
                max_rows=settings.audit_max_rows,
                connect_timeout_s=settings.postgres_connect_timeout_s,
                on_commit=m.on_commit,
            )
            if settings.audit_writer == "loop"
            else None
        )
        self.postgres = PostgresProbe(dsn, settings.postgres_connect_timeout_s)
        self.models = models or ChampionHolder(
            conns.mlflow_tracking_uri,
            settings.model_name,
            settings.model_alias,
            poll_interval_s=settings.poll_interval_s,
            cache_dir=settings.model_cache_dir,
            on_swap=self._swapped,
            on_failure=self._load_failed,
        )
        self.models.start()

    # ---- model lifecycle ----
    def _swapped(self, old: core.Champion | None, new: core.Champion) -> None:
        if old is not None:
            self.metrics.model_info.labels(old.name, old.version).set(0)
        self.metrics.model_info.labels(new.name, new.version).set(1)
        self.metrics.model_swaps.inc()
        freeze_loaded()  # the version's objects out of the collector's full passes (see worker.py)
        self.log.info(
            "model_loaded",
            model_name=new.name,
            model_version=new.version,
            previous_version=old.version if old else None,
            feature_order_id=new.order.id,
        )

    def _load_failed(self, reason: str) -> None:
        self.metrics.model_load_failures.inc()
        self.log.warning("model_load_failed", model_name=self.settings.model_name, reason=reason)

    def ready(self) -> bool:
        return self.models.current is not None and self.online.ping() and self.postgres.ping()

    async def aclose(self) -> None:
        """``close``, after the event loop's audit writer has committed what it was handed."""
        if self.loop_audit is not None:
            await self.loop_audit.aclose()
        self.close()

    def close(self) -> None:
        self.models.stop()
        self.audit.close()
        self.postgres.close()
        self.online.close()
        self.log.info("scorer_stopped")

    # ---- the request path: prepare (read, judge, score), commit the audit rows, finish ----
    def score(self, patient_ids: Sequence[str], endpoint: str) -> list[Outcome]:
        """The whole path, blocking until the audit rows are committed (for a thread)."""
        pending = self.prepare(patient_ids)
        if pending.rows:
            t = time.perf_counter()
            try:
                self.audit.write(pending.rows, self.settings.audit_timeout_s)
            except AuditUnavailable as err:
                raise self._audit_failed(pending, err) from None
            self.metrics.audit_wait_seconds.observe(time.perf_counter() - t)
        return self.finish(pending, endpoint)

    async def score_async(self, patient_ids: Sequence[str], endpoint: str) -> list[Outcome]:
        """The whole path on the event loop: the read and the model inline (a few hundred microseconds
        of CPU), the audit commit awaited (the writer thread wakes the loop once it is durable)."""
        pending = self.prepare(patient_ids)
        if pending.rows:
            t = time.perf_counter()
            try:
                if self.loop_audit is not None:
                    await self.loop_audit.write(pending.rows, self.settings.audit_timeout_s)
                else:
                    await self.audit.write_async(pending.rows, self.settings.audit_timeout_s)
            except AuditUnavailable as err:
                raise self._audit_failed(pending, err) from None
            self.metrics.audit_wait_seconds.observe(time.perf_counter() - t)
        return self.finish(pending, endpoint)

    def prepare(self, patient_ids: Sequence[str]) -> Pending:
        """Read, judge and score; the audit rows of the scored patients, not yet committed."""
        t0 = time.perf_counter()
        champ = self.models.current
        if champ is None:
            raise Unavailable(
                f"no model loaded yet: waiting for models:/{self.settings.model_name}@{self.settings.model_alias}"
            )
        try:
            stored = self.online.read(champ.package.feature_service, patient_ids)
        except FeaturesUnavailable as err:
            raise Unavailable(str(err)) from None
        t_read = time.perf_counter()
        self.metrics.feature_read_seconds.observe(t_read - t0)
        now = datetime.now(UTC)

        outcomes: list[Outcome | None] = []
        scored: list[tuple[int, core.Assessment, np.ndarray]] = []
        for i, (patient_id, views) in enumerate(zip(patient_ids, stored, strict=True)):
            assessment = core.assess({view: row.freshness for view, row in views.items()}, champ.order.views)
            for v in assessment.views:
                if v.status != "fresh":
                    self.metrics.views_not_fresh.labels(v.view, v.status).inc()
            decision = core.decide(assessment, self.settings.feature_policy)
            if decision in ("unknown", "refuse"):
                self.metrics.refusals.labels("unknown_patient" if decision == "unknown" else "features_not_fresh").inc()
                outcomes.append(Outcome(refusal=_refusal(patient_id, decision, assessment)))
                continue
            outcomes.append(None)
            scored.append((i, assessment, core.raw_row(champ, views)))
        if not scored:
            return Pending(t0, now, champ, outcomes, [], [])

        probabilities = champ.package.predict_proba(np.stack([s[2] for s in scored]))
        t_model = time.perf_counter()
        self.metrics.model_seconds.observe(t_model - t_read)
        latency_ms = (t_model - t0) * 1000
        rows = [
            core.audit_row(
                uuid.uuid4(),
                patient_ids[i],
                now,
                float(p),
                champ,
                vector,
                assessment,
                latency_ms=latency_ms,
            )
            for (i, assessment, vector), p in zip(scored, probabilities, strict=True)
        ]
        return Pending(t0, now, champ, outcomes, [(i, a) for i, a, _ in scored], rows)

    def _audit_failed(self, pending: Pending, err: AuditUnavailable) -> Unavailable:
        self.metrics.refusals.labels("audit_unavailable").inc(len(pending.rows))
        self.log.error("audit_failed", reason=str(err), rows=len(pending.rows), model_version=pending.champion.version)
        return Unavailable(f"the audit trail is unavailable, no prediction made ({err})")

    def finish(self, pending: Pending, endpoint: str) -> list[Outcome]:
        """Once the rows are committed: metrics, the log line per prediction, the answers."""
        champ, now, outcomes = pending.champion, pending.now, pending.outcomes
        if not pending.rows:
            return [o for o in outcomes if o is not None]
        elapsed = time.perf_counter() - pending.t0
        self.metrics.request_seconds.labels(endpoint).observe(elapsed)
        for (i, assessment), row in zip(pending.scored, pending.rows, strict=True):
            self.metrics.predictions.labels(champ.version, row.risk_level, str(row.degraded).lower()).inc()
            self.log.info(
                "prediction",
                prediction_id=str(row.id),
                model_version=champ.version,
                risk_level=row.risk_level,
                degraded=row.degraded,
                latency_ms=round(elapsed * 1000, 3),
            )
            outcomes[i] = Outcome(
                prediction=Prediction(
                    prediction_id=row.id,
                    patient_id=row.patient_id,
                    adverse_event_probability=row.score,
                    risk_level=row.risk_level,
                    model_name=champ.name,
                    model_version=champ.version,
                    outcome=champ.package.label or champ.package.feature_service,
                    predicted_at=now,
                    degraded=row.degraded,
                    degraded_views=list(assessment.degraded_views) if row.degraded else [],
                    feature_freshness=_freshness(assessment),
                )
            )
        return [o for o in outcomes if o is not None]


class DocumentedValidationErrors:
    """ASGI middleware: BentoML answers a body that fails validation with 400 and a list in ``detail``,
    while its own OpenAPI document declares ``detail`` a string. Rewrite those answers to the documented
    shape, naming each field and the problem (never the input value)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/predict"):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def wrapped(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 400:
                start = message
                return
            if message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = _documented_400(b"".join(chunks))
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, wrapped)


def _documented_400(raw: bytes) -> bytes:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        parts = []
        for e in body["detail"]:
            loc = ".".join(str(p) for p in e.get("loc", ())) or "body"
            parts.append(f"{loc}: {e.get('msg', e.get('type', 'invalid'))}")
        body["detail"] = "; ".join(parts)
        return json.dumps(body).encode()
    return raw


def error(status: int, message: str, refusal: Refusal | None = None) -> JSONResponse:
    body = ErrorBody(error=message)
    if refusal is not None and status == 409:
        body = ErrorBody(error=message, stale_views=refusal.stale_views, missing_views=refusal.missing_views)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


@bentoml.service(name="clinops-scorer", **service_config(SETTINGS))
class Scorer:
    """Real-time risk scoring: one Redis read, the champion model, an audited prediction."""

    def __init__(self) -> None:
        logging.getLogger("bentoml._internal.server.http_app").addFilter(RequestErrorsWithoutPayload())
        m = metrics.build()
        self.engine = ScoringEngine(SETTINGS, ServingConnections(), m)
        tune(SETTINGS.gil_switch_interval_ms, SETTINGS.gc_threshold0)
        watch_collections(lambda gen, s: m.gc_pause_seconds.labels(str(gen)).observe(s))
        settle_heap()

    def __is_ready__(self) -> bool:
        return self.engine.ready()

    @bentoml.api(route="/predict", input_spec=PredictRequest)  # type: ignore[untyped-decorator]
    async def predict(self, patient_id: str) -> Prediction:
        """Score one patient with the champion model; the audit row is committed before the answer."""
        try:
            (outcome,) = await self.engine.score_async([patient_id], "predict")
        except Unavailable as err:
            return error(503, str(err))  # type: ignore[return-value]
        if outcome.refusal is not None:
            return error(outcome.refusal.status, outcome.refusal.error, outcome.refusal)  # type: ignore[return-value]
        assert outcome.prediction is not None
        return answer(outcome.prediction)  # type: ignore[return-value]

    @bentoml.api(route="/predict/batch", input_spec=BatchRequest)  # type: ignore[untyped-decorator]
    async def predict_batch(self, patient_ids: list[str]) -> BatchResponse:
        """Score up to CLINOPS_SCORER_MAX_BATCH patients in one pipelined read and one group commit."""
        try:
            outcomes = await self.engine.score_async(patient_ids, "predict_batch")
        except Unavailable as err:
            return error(503, str(err))  # type: ignore[return-value]
        return answer(  # type: ignore[return-value]
            BatchResponse(
                predictions=[o.prediction for o in outcomes if o.prediction is not None],
                refused=[o.refusal for o in outcomes if o.refusal is not None],
            )
        )

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    async def shutdown(self) -> None:
        """After the server drained in-flight requests: flush and close the audit writers."""
        await self.engine.aclose()


Scorer.add_asgi_middleware(DocumentedValidationErrors)  # type: ignore[attr-defined]
