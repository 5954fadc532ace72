"""API errors are translated at the executor's edge: refusals are permanent, the rest retryable."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from clinops_operator.errors import PermanentError, RetryableError
from clinops_operator.executor import _translate


def api_error(status: int, reason: str, message: str) -> ApiException:
    err = ApiException(status=status, reason=reason)
    err.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return err


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "BadRequest"), (403, "Forbidden"), (422, "Invalid")],
)
def test_refusals_are_permanent_with_the_reason_and_the_servers_message(status: int, reason: str) -> None:
    err = _translate(api_error(status, "x", "spec.template.spec.containers[0].image: Invalid value"), "create Job j")
    assert isinstance(err, PermanentError)
    assert err.reason == reason
    assert "containers[0].image: Invalid value" in str(err)


def test_a_missing_kind_on_create_is_permanent_but_a_missing_object_on_read_is_not() -> None:
    created = _translate(
        api_error(404, "Not Found", "the server could not find the requested resource"), "c", creating=True
    )
    assert isinstance(created, PermanentError)
    assert created.reason == "KindNotInstalled"
    assert isinstance(_translate(api_error(404, "Not Found", "gone"), "read"), RetryableError)


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_server_trouble_is_retryable(status: int) -> None:
    assert isinstance(_translate(api_error(status, "busy", "try later"), "create"), RetryableError)
