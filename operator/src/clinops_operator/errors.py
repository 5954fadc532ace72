"""The operator's errors: retryable (try again later) or permanent (the spec or the cluster must change).

Domain code raises these; only the kopf handlers (``handlers.py``) turn them into kopf's
``TemporaryError`` (with a delay) and ``PermanentError`` (the run ends, its condition says why).
"""

from __future__ import annotations


class OperatorError(Exception):
    """Root of the operator's errors; ``reason`` is the CamelCase word a status condition carries."""

    reason = "OperatorError"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class RetryableError(OperatorError):
    """A transient failure (the API server or the lake unavailable, throttling); retried after a delay."""

    reason = "Retrying"


class PermanentError(OperatorError):
    """The pipeline cannot be reconciled as it is (forbidden, invalid, a CRD missing); retrying will not help."""

    reason = "Refused"


class InvalidSpecError(PermanentError):
    """The spec asks for something that cannot run (the CRD's schema cannot catch it)."""

    reason = "InvalidSpec"
