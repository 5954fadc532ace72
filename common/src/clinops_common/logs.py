"""Structured JSON logs for every service: one line per event, never patient payloads."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(component: str, level: str = "INFO", **context: str) -> structlog.stdlib.BoundLogger:
    """JSON lines on stderr, bound to ``component`` (and e.g. ``pipeline``, ``run``); call once at start-up."""
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper(), logging.INFO), format="%(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        cache_logger_on_first_use=True,
    )
    log: Any = structlog.get_logger().bind(component=component, **context)
    return log  # type: ignore[no-any-return]
