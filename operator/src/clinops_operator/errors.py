"""The operator's errors: retryable (try again later) or permanent (the spec must change)."""

from __future__ import annotations


class OperatorError(Exception):
    """Root of the operator's errors."""


class RetryableError(OperatorError):
    """A transient failure (the API server, a conflict); the handler is retried after a delay."""


class PermanentError(OperatorError):
    """The pipeline cannot be reconciled as specified; retrying will not help."""
