"""``serve``: watch FeaturePipelines, evaluate each on its monitoring cron, expose /metrics.

One loop: every ``poll_interval_s`` it lists the pipelines (a list, not a long watch, so a missed
event cannot leave a pipeline unscheduled), evaluates those whose latest cron slot has not been
evaluated yet (as of that slot), and publishes the gauges. SIGTERM lets the evaluation in progress
finish, then stops. A pipeline whose evaluation fails is logged and retried at the next poll.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from types import FrameType

import structlog
from prometheus_client import start_http_server

from clinops_common.settings import Connections
from clinops_monitor.adapters.kube import Pipelines, training_in_flight
from clinops_monitor.adapters.postgres import Database
from clinops_monitor.config import MonitorSettings
from clinops_monitor.job import ReferenceSource, run_evaluation
from clinops_monitor.metrics import MonitorMetrics
from clinops_monitor.schedule import due

log = structlog.get_logger("clinops.monitor")


def serve(settings: MonitorSettings, conns: Connections, references: ReferenceSource) -> None:
    stop = threading.Event()

    def on_term(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    metrics = MonitorMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=metrics.registry)
    pipelines = Pipelines()
    db = Database(conns.database_url.get_secret_value())
    last: dict[tuple[str, str], datetime] = {}
    log.info("serving", namespace=settings.namespace or "*", metrics_port=settings.metrics_port)
    try:
        while not stop.is_set():
            for p in pipelines.list(settings.namespace):
                if stop.is_set():
                    break
                k = (p.namespace, p.name)
                if k not in last:
                    previous = db.last_evaluation(*k)
                    if previous is not None:
                        last[k] = previous
                slot = due(p.schedule, datetime.now(UTC), last.get(k))
                if slot is None:
                    continue
                try:
                    out = run_evaluation(
                        p,
                        slot,
                        settings=settings,
                        conns=conns,
                        db=db,
                        references=references,
                        patcher=pipelines,
                        training_in_flight=training_in_flight,
                    )
                except Exception as exc:  # one pipeline's failure must not stop the others
                    log.error("evaluation_failed", pipeline=p.name, namespace=p.namespace, error=str(exc))
                    metrics.evaluations.labels(p.namespace, p.name, "failed").inc()
                    continue
                last[k] = slot
                metrics.publish(p.namespace, p.name, p.monitoring.auroc_floor, out.evaluation, out.seconds)
            stop.wait(settings.poll_interval_s)
    finally:
        db.close()
